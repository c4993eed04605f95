//! The layers of StyleGAN2 with equalised learning rate: parameters are stored raw and scaled
//! at run time by a gain (1/√fan_in, times the layer's learning-rate multiplier).

use super::ops::{self, bias_act, Activation};
use super::weights::Weights;
use crate::Result;
use candle_core::{Tensor, Var};

/// A fully connected layer (`FullyConnectedLayer`).
pub struct FullyConnected {
    pub weight: Var,
    pub bias: Var,
    weight_gain: f64,
    bias_gain: f64,
    act: Activation,
}

impl FullyConnected {
    /// Loads `<name>.weight` [out, in] and `<name>.bias` [out].
    pub fn load(
        w: &Weights,
        name: &str,
        out: usize,
        input: usize,
        lr_multiplier: f64,
        act: Activation,
    ) -> Result<Self> {
        Ok(FullyConnected {
            weight: w.param(&format!("{name}.weight"), &[out, input])?,
            bias: w.param(&format!("{name}.bias"), &[out])?,
            weight_gain: lr_multiplier / (input as f64).sqrt(),
            bias_gain: lr_multiplier,
            act,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let weight = (self.weight.as_tensor() * gain32(self.weight_gain))?;
        let bias = if self.bias_gain != 1.0 {
            (self.bias.as_tensor() * gain32(self.bias_gain))?
        } else {
            self.bias.as_tensor().clone()
        };
        let y = x.matmul(&weight.t()?)?;
        bias_act(&y, Some(&bias), self.act, self.act.default_gain(), None)
    }
}

/// A gain as the reference applies it: rounded to f32 once.
pub fn gain32(g: f64) -> f64 {
    g as f32 as f64
}

/// How a synthesis layer adds noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseMode {
    /// The layer's stored noise image.
    Const,
    /// Fresh standard-normal noise per sample, drawn from a stream fixed by the seed and layer.
    Random { seed: u64 },
    /// No noise.
    None,
}

/// A modulated convolution (`modulated_conv2d`, fused form): per-sample weights
/// `weight · style`, optionally demodulated, as one batched convolution.
/// `x` [N, I, H, W], `weight` [O, I, k, k], `styles` [N, I]; `up` doubles the resolution.
pub fn modulated_conv2d(
    x: &Tensor,
    weight: &Tensor,
    styles: &Tensor,
    demodulate: bool,
    up: bool,
) -> Result<Tensor> {
    let (n, i, _, _) = x.dims4()?;
    let (o, k) = (weight.dim(0)?, weight.dim(3)?);
    // w[n, o, i, ·] = styles[n, i] · weight[o, i, ·], as one outer product per input channel
    // (a batched product with an inner dimension of 1: the same single multiplications, and
    // gradients that are matrix products rather than reductions over broadcast axes).
    let per_channel = weight.permute((1, 0, 2, 3))?.reshape((i, 1, o * k * k))?;
    let styles = styles.t()?.reshape((i, n, 1))?;
    let w = styles
        .matmul(&per_channel.contiguous()?)?
        .reshape((i, n, o, k * k))?
        .permute((1, 2, 0, 3))?
        .contiguous()?
        .reshape((n, o, i * k * k))?;
    let w = if demodulate {
        let d = (w.sqr()?.sum_keepdim(2)? + 1e-8)?.sqrt()?.recip()?;
        w.broadcast_mul(&d)?
    } else {
        w
    };
    let w = w.reshape((n, o, i, k, k))?;
    if up {
        ops::conv2d_up2(x, &w)
    } else {
        ops::conv2d(x, &w, k / 2, 1)
    }
}

/// A convolution layer of the discriminator (`Conv2dLayer`): weight gain 1/√(I·k²), optional
/// bias, activation with its default gain, optional 2× down-sampling.
pub struct Conv2dLayer {
    pub weight: Var,
    pub bias: Option<Var>,
    weight_gain: f64,
    act: Activation,
    down: bool,
}

impl Conv2dLayer {
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        w: &Weights,
        name: &str,
        out: usize,
        input: usize,
        kernel: usize,
        bias: bool,
        act: Activation,
        down: bool,
    ) -> Result<Self> {
        Ok(Conv2dLayer {
            weight: w.param(&format!("{name}.weight"), &[out, input, kernel, kernel])?,
            bias: if bias {
                Some(w.param(&format!("{name}.bias"), &[out])?)
            } else {
                None
            },
            weight_gain: 1.0 / ((input * kernel * kernel) as f64).sqrt(),
            act,
            down,
        })
    }

    /// The layer with an extra output gain (the resnet blocks' √0.5); outputs are clamped to
    /// ±`clamp · gain` when a clamp is given.
    pub fn forward(&self, x: &Tensor, gain: f64, clamp: Option<f64>) -> Result<Tensor> {
        let w = (self.weight.as_tensor() * gain32(self.weight_gain))?;
        let k = w.dim(3)?;
        let y = match (self.down, k) {
            (false, _) => ops::conv2d(x, &w, k / 2, 1)?,
            (true, 1) => ops::conv1x1_down2(x, &w)?,
            (true, _) => ops::conv2d_down2(x, &w)?,
        };
        let bias = self.bias.as_ref().map(|b| b.as_tensor());
        let clamp = clamp.map(|c| c * gain);
        bias_act(&y, bias, self.act, self.act.default_gain() * gain, clamp)
    }
}
