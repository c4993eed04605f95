//! Toy 2-D GAN lab: the study's synthetic distributions, MLP generator and discriminator, and
//! the synthetic experiments.

pub mod distributions;

pub use distributions::Distribution;
pub mod field;
pub mod nets;
pub mod study;
pub mod train;
