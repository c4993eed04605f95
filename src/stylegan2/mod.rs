//! StyleGAN2(-ADA) networks in candle, numerically equal to the official PyTorch
//! implementation (`training/networks.py` of stylegan2-ada-pytorch) and loading its state
//! dicts by their key names: the mapping and synthesis networks (`skip` architecture) and the
//! discriminator (`resnet` architecture, or `orig` when the weights have no skip layers),
//! unconditional or conditional (class labels). The architecture is read from the tensors;
//! what they cannot tell (clamp, minibatch-std group) from what a checkpoint states
//! (`network_info`).
//!
//! Parameters are kept raw, as stored, and scaled at run time (equalised learning rate), so
//! gradients are with respect to the stored tensors, as in the reference.
//!
//! The model only: layers and their operations (`bias_act`, `resample`, `fir`, `bilinear`),
//! the networks, official checkpoints and fresh initialisation, ADA's augmentation, the
//! presets, drawing images from a checkpoint (`sampling`) and how the networks plug into the
//! shared trainer (`trainable`). A training run of them is the run layer's (`run::stylegan2`).

pub mod augment;
pub mod bias_act;
mod bilinear;
pub mod dataset;
pub mod discriminator;
mod fir;
pub mod generator;
pub mod init;
pub mod latents;
pub mod layers;
pub mod network_info;
pub mod presets;
pub mod resample;
pub mod sampling;
pub mod trainable;
pub mod weights;

pub use dataset::TrainingSet;
pub use discriminator::Discriminator;
pub use generator::{Generator, Mapping, Synthesis};
pub use init::Architecture;
pub use layers::NoiseMode;
pub use weights::Weights;
