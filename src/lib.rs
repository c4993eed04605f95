//! whichgan core: exact evaluation metrics for GANs, the readers and writers they need, the
//! shared GAN trainer, the StyleGAN2 networks and the runs built on them.
//!
//! Modules depend downwards only, bottom to top: [`error`], [`io`], [`backend`] and
//! [`runtime`]; then [`metrics`], [`conv`], [`plot`], [`dataset`]; then the training loop
//! ([`train`]); then the models ([`stylegan2`], [`features`]); then runs and studies
//! ([`run`], [`select`], [`classes`], [`study`]). The command-line tool sits on top.
//!
//! Every fallible function returns [`Result`], whose [`Error`] says what was wrong and where
//! (file, row, column), in one line a user can act on.

pub mod backend;
pub mod classes;
pub mod conv;
pub mod dataset;
pub mod error;
pub mod features;
pub mod io;
pub mod metrics;
pub mod plot;
pub mod run;
pub mod runtime;
pub mod select;
pub mod study;
pub mod stylegan2;
pub mod train;

#[cfg(test)]
mod test_util;

pub use error::{Error, Result};
pub use io::Points;
