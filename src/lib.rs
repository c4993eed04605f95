//! whichgan core: exact evaluation metrics for GANs, the readers and writers they need, the
//! shared GAN trainer and the StyleGAN2 networks.
//!
//! Every fallible function returns [`Result`], whose [`Error`] says what was wrong and where
//! (file, row, column), in one line a user can act on.

pub mod backend;
pub mod conv;
pub mod dataset;
pub mod error;
pub mod features;
pub mod io;
pub mod metrics;
pub mod plot;
pub mod select;
pub mod stylegan2;
pub mod train;

#[cfg(test)]
mod test_util;

pub use error::{Error, Result};
pub use io::Points;
