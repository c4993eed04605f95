//! Backward passes whose gradients are differentiated again (R1, path length): only these keep
//! the graph of the gradients they compute.
//!
//! candle builds differentiable gradients on a thread whose first backward pass saw
//! `CANDLE_GRAD_DO_NOT_DETACH` set, and then in every pass on that thread. Kept in every pass, a
//! training step's backward would hold all its intermediate gradients until it ends (about three
//! times the memory and twice the time for StyleGAN2 at 512 channels). So these passes run on
//! one worker thread that starts with the switch on, and every other backward pass detaches as
//! usual.

use super::{generic_ops_forced, with_ops_choice};
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use std::sync::mpsc;
use std::sync::OnceLock;

thread_local! {
    /// Whether this thread's backward passes keep the graphs of their gradients.
    static KEEPS_GRAPHS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// candle's switch (an environment variable read once per thread, at its first backward pass).
const SWITCH: &str = "CANDLE_GRAD_DO_NOT_DETACH";

/// Whether a backward pass running on this thread builds gradients that may be differentiated
/// again (the worker below, or candle's switch set for the whole process); operations may
/// compute plain, faster gradients otherwise.
pub fn gradients_are_differentiable() -> bool {
    KEEPS_GRAPHS.with(|keeps| keeps.get()) || switched_on_for_the_process()
}

/// Whether candle's switch was on for every thread, read as candle reads it (set, non-empty,
/// not "0") and only once: the worker's start sets it for a moment, and that must not count.
fn switched_on_for_the_process() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var(SWITCH).is_ok_and(|s| !s.is_empty() && s != "0"))
}

/// `output.backward()` with gradients that can be differentiated again.
pub fn differentiable_backward(output: &Tensor) -> Result<GradStore> {
    let (reply, answer) = mpsc::channel();
    let job = Job {
        output: output.clone(),
        generic_ops: generic_ops_forced(),
        reply,
    };
    let lost =
        || Error::invalid("the differentiable backward pass stopped (a panic in an operation)");
    worker().send(job).map_err(|_| lost())?;
    Ok(answer.recv().map_err(|_| lost())??)
}

struct Job {
    output: Tensor,
    /// The caller's choice of operations (see [`super`]), kept on the worker.
    generic_ops: bool,
    reply: mpsc::Sender<candle_core::Result<GradStore>>,
}

fn worker() -> &'static mpsc::Sender<Job> {
    static WORKER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    WORKER.get_or_init(|| {
        // Read the process-wide setting before the worker's start changes the variable.
        switched_on_for_the_process();
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, started) = mpsc::channel();
        std::thread::Builder::new()
            .name("differentiable-backward".into())
            .spawn(move || {
                keep_graphs_on_this_thread();
                KEEPS_GRAPHS.with(|keeps| keeps.set(true));
                ready.send(()).ok();
                for job in queue {
                    let grads = with_ops_choice(job.generic_ops, || job.output.backward());
                    job.reply.send(grads).ok();
                }
            })
            .expect("the system can start a thread");
        started.recv().expect("the worker starts");
        jobs
    })
}

/// Turns candle's per-thread switch on for this thread: one backward pass while the
/// environment variable is set, then the variable as it was. The calling thread waits
/// meanwhile and the library starts no other thread that runs backward passes; another thread
/// of the caller's whose first backward pass fell in this moment would keep graphs too (the
/// same gradients, more memory).
fn keep_graphs_on_this_thread() {
    let before = std::env::var_os(SWITCH);
    std::env::set_var(SWITCH, "1");
    let x = Var::new(1f32, &Device::Cpu).expect("a scalar");
    x.as_tensor()
        .sqr()
        .and_then(|y| y.backward())
        .expect("a scalar's backward pass");
    match before {
        Some(value) => std::env::set_var(SWITCH, value),
        None => std::env::remove_var(SWITCH),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// d/dx of Σ ∂/∂x Σ(x²)³, with the gradient from `backward`.
    fn second_derivative(backward: impl Fn(&Tensor) -> GradStore) -> Vec<f32> {
        let x = Var::new(&[1.5f32, -2.0], &Device::Cpu).unwrap();
        let y = x
            .as_tensor()
            .sqr()
            .unwrap()
            .powf(3.0)
            .unwrap()
            .sum_all()
            .unwrap();
        let grad = backward(&y).get(x.as_tensor()).unwrap().clone();
        let second = grad.sum_all().unwrap().backward().unwrap();
        second.get(x.as_tensor()).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn gradients_of_gradients_here_and_detached_gradients_elsewhere() {
        // ∂/∂x Σx⁶ = 6x⁵, whose derivative is 30x⁴.
        let full = second_derivative(|y| differentiable_backward(y).unwrap());
        assert_eq!(full, vec![151.875, 480.0]);
        // This thread's own passes detach between operations: only the last one (x² → 2x)
        // stays differentiable, 3(x²)² · 2 = 6x⁴.
        let detached = second_derivative(|y| y.backward().unwrap());
        assert_eq!(detached, vec![30.375, 96.0]);
    }
}
