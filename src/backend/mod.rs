//! Which implementation an operation runs: this crate's CPU kernels (fused, f32), or the
//! generic tensor operations every candle device has, which is what a GPU runs. The generic
//! path can be forced on the CPU (`WHICHGAN_GENERIC_OPS=1`, or [`with_generic_ops`] in a
//! test), so machines without a GPU check the GPU's code too.
//!
//! Also here, since operations below the trainer need it: whether a backward pass builds
//! gradients that are differentiated again ([`differentiable_backward`]).

mod differentiable;

pub use differentiable::{differentiable_backward, gradients_are_differentiable};

use candle_core::{DType, Tensor};
use std::cell::Cell;

thread_local! {
    static GENERIC: Cell<bool> = Cell::new(
        std::env::var_os("WHICHGAN_GENERIC_OPS").is_some_and(|v| v != "0"),
    );
}

/// Whether `t` goes to the CPU kernels: an f32 tensor on the CPU, unless the generic
/// operations are forced on this thread.
pub fn cpu_kernels(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32 && !GENERIC.with(Cell::get)
}

/// Whether the generic operations are forced on this thread.
pub fn generic_ops_forced() -> bool {
    GENERIC.with(Cell::get)
}

/// Runs `f` with the generic operations forced on this thread.
pub fn with_generic_ops<T>(f: impl FnOnce() -> T) -> T {
    with_ops_choice(true, f)
}

/// Runs `f` with the generic operations forced (`generic`) or not on this thread.
pub fn with_ops_choice<T>(generic: bool, f: impl FnOnce() -> T) -> T {
    let before = GENERIC.with(|g| g.replace(generic));
    let out = f();
    GENERIC.with(|g| g.set(before));
    out
}
