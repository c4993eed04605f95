//! The layers of StyleGAN2 with equalised learning rate: parameters are stored raw and scaled
//! at run time by a gain (1/√fan_in, times the layer's learning-rate multiplier).

use super::bias_act::{bias_act, Activation};
use super::resample;
use super::weights::Weights;
use crate::Result;
use candle_core::{Tensor, Var};
use std::cell::Cell;

/// A fully connected layer (`FullyConnectedLayer`).
pub struct FullyConnected {
    pub weight: Var,
    pub bias: Var,
    weight_gain: f64,
    bias_gain: f64,
    act: Activation,
}

impl FullyConnected {
    /// Loads `<name>.weight` \[out, in\] and `<name>.bias` \[out\].
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
        self.forward_with(x, Params::Tracked)
    }

    pub fn forward_with(&self, x: &Tensor, params: Params) -> Result<Tensor> {
        let weight = (params.get(&self.weight) * gain32(self.weight_gain))?;
        let bias = if self.bias_gain != 1.0 {
            (params.get(&self.bias) * gain32(self.bias_gain))?
        } else {
            params.get(&self.bias)
        };
        // cuBLAS wants densely stored rows; one w of ws [N, num_ws, w_dim] is a strided view.
        let y = x.contiguous()?.matmul(&weight.t()?)?;
        bias_act(&y, Some(&bias), self.act, self.act.default_gain(), None)
    }
}

/// Whether a pass records a layer's parameters for gradients, or holds them fixed (D judging
/// G's samples in a G step: gradients reach its input, and no work is spent on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    Tracked,
    Fixed,
}

impl Params {
    /// The parameter as this pass reads it: fixed also within [`without_graph`].
    fn get(self, param: &Var) -> Tensor {
        match self {
            Params::Tracked if !NO_GRAPH.with(Cell::get) => param.as_tensor().clone(),
            _ => param.as_tensor().detach(),
        }
    }
}

thread_local! {
    /// Set within [`without_graph`] on this thread.
    static NO_GRAPH: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every parameter read as a constant: the pass records no graph, so each
/// intermediate is freed once the next operation has used it (PyTorch's `no_grad`). For passes
/// whose result is detached anyway, such as G's samples for a D step; the numbers are the same.
pub fn without_graph<T>(f: impl FnOnce() -> T) -> T {
    let before = NO_GRAPH.with(|n| n.replace(true));
    let out = f();
    NO_GRAPH.with(|n| n.set(before));
    out
}

/// A layer's parameter as this pass reads it ([`Params::Tracked`], fixed within
/// [`without_graph`]).
pub(super) fn tracked(param: &Var) -> Tensor {
    Params::Tracked.get(param)
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

/// A modulated convolution (`modulated_conv2d`): the input scaled by the styles, convolved with
/// the shared kernel, the output scaled by the demodulation coefficients 1/√(Σᵢ sᵢ² Σ weight[o,
/// i]² + 1e-8): the reference's non-fused form (one shared kernel makes one large matrix
/// product), except on the CPU in layers whose images outweigh the kernel (O·k² ≤ H·W), where
/// its fused form runs — each image's kernel scaled instead, one operation image by image, with
/// no passes over the images to scale them or their gradients. The two forms give the same
/// numbers up to rounding.
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
    let d = if demodulate {
        let weight_sq = weight.sqr()?.reshape((o, i, k * k))?.sum(2)?;
        let d = (styles.sqr()?.matmul(&weight_sq.t()?)? + 1e-8)?
            .sqrt()?
            .recip()?;
        Some(d)
    } else {
        None
    };
    // Per image the fused form makes a kernel (O·C·k² values) where the other scales the
    // images (C·H·W values each way): it pays where the images are the larger.
    let (h, w) = (x.dim(2)?, x.dim(3)?);
    if crate::backend::cpu_kernels(x) && o * k * k <= h * w {
        let ones = || Tensor::ones((n, o), styles.dtype(), styles.device());
        let scales = Tensor::cat(&[styles.clone(), d.clone().map_or_else(ones, Ok)?], 1)?;
        let fused = if up {
            // The coefficients commute with the (per-channel) FIR filter that follows.
            let y = crate::conv::modulated_conv_transpose2d(x, weight, &scales, 2)?;
            y.map(|y| resample::upfirdn2d(&y, 1, 1, (1, 1), 4.0))
                .transpose()?
        } else {
            crate::conv::modulated_conv2d(x, weight, &scales, k / 2)?
        };
        if let Some(y) = fused {
            return Ok(y);
        }
    }
    let x = x.broadcast_mul(&styles.reshape((n, i, 1, 1))?)?;
    let y = if up {
        resample::conv2d_up2(&x, weight)?
    } else {
        resample::conv2d(&x, weight, k / 2, 1)?
    };
    match d {
        Some(d) => Ok(y.broadcast_mul(&d.reshape((n, o, 1, 1))?)?),
        None => Ok(y),
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
    pub fn forward(
        &self,
        x: &Tensor,
        gain: f64,
        clamp: Option<f64>,
        params: Params,
    ) -> Result<Tensor> {
        let bias = self.bias.as_ref().map(|b| params.get(b));
        if bias.is_none() && self.act == Activation::Linear && clamp.is_none() {
            // Linear all through (the resnet skip): the output gain joins the weight's scale, so
            // it costs no pass over the outputs (a rounding apart from the reference's order).
            let w = (params.get(&self.weight) * (gain32(self.weight_gain) * gain))?;
            return resample::conv2d_bias_act(x, &w, self.down, None, self.act, 1.0, None);
        }
        let w = (params.get(&self.weight) * gain32(self.weight_gain))?;
        let clamp = clamp.map(|c| c * gain);
        let gain = self.act.default_gain() * gain;
        resample::conv2d_bias_act(x, &w, self.down, bias.as_ref(), self.act, gain, clamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::max_diff;
    use candle_core::{Device, Var};

    /// Deterministic values in about [-1, 1].
    fn wave(shape: &[usize], phase: f32) -> Tensor {
        let len = shape.iter().product::<usize>();
        let v = (0..len).map(|i| (i as f32 * 0.37 + phase).sin()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn fused_form_has_the_generic_forms_gradients_to_second_order() {
        use crate::backend::differentiable_backward;
        use crate::backend::with_generic_ops;
        use crate::test_util::relative_diff;
        // Σ y·r's gradients with respect to (x, weight, styles); then, for the first-order
        // gradients with respect to x and to the styles (R1 and path length differentiate
        // those), the gradients of their squared norms with respect to weight and styles.
        let grads = |demodulate: bool, up: bool, k: usize| {
            // 8 × 8 images: large enough for the CPU's fused form (see modulated_conv2d).
            let x = Var::from_tensor(&wave(&[3, 4, 8, 8], 0.1)).unwrap();
            let weight = Var::from_tensor(&wave(&[6, 4, k, k], 0.2)).unwrap();
            let styles = Var::from_tensor(&(wave(&[3, 4], 0.3) + 1.5).unwrap()).unwrap();
            let y = modulated_conv2d(&x, &weight, &styles, demodulate, up).unwrap();
            let loss = (&y * wave(y.dims(), 0.4)).unwrap().sum_all().unwrap();
            let first = loss.backward().unwrap();
            let mut all: Vec<Tensor> = [&x, &weight, &styles]
                .map(|v| first.get(v).unwrap().clone())
                .to_vec();
            let differentiable = differentiable_backward(&loss).unwrap();
            for wrt in [&x, &styles] {
                let g = differentiable.get(wrt).unwrap();
                let second = g.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                // (Without demodulation the styles' gradient does not depend on the styles.)
                let or_zero = |v: &Var| second.get(v).cloned().unwrap_or(v.zeros_like().unwrap());
                all.extend([&weight, &styles].map(or_zero));
            }
            (y, all)
        };
        for (demodulate, up, k) in [(true, false, 3), (true, true, 3), (false, false, 1)] {
            let (fused, fused_grads) = grads(demodulate, up, k);
            let (generic, generic_grads) = with_generic_ops(|| grads(demodulate, up, k));
            let case = format!("demodulate {demodulate} up {up} k {k}");
            assert!(relative_diff(&fused, &generic) < 1e-5, "output, {case}");
            for (i, (a, e)) in fused_grads.iter().zip(&generic_grads).enumerate() {
                let error = if max_diff(e, &e.zeros_like().unwrap()) == 0.0 {
                    max_diff(a, e)
                } else {
                    relative_diff(a, e)
                };
                assert!(error < 1e-4, "gradient {i}, {case}: {error}");
            }
        }
    }

    #[test]
    fn equals_one_modulated_kernel_per_sample() {
        for (demodulate, up) in [(true, false), (true, true), (false, false)] {
            let x = wave(&[2, 3, 6, 6], 0.1);
            let weight = wave(&[4, 3, 3, 3], 0.2);
            let styles = (wave(&[2, 3], 0.3) + 1.5).unwrap();
            let y = modulated_conv2d(&x, &weight, &styles, demodulate, up).unwrap();
            for n in 0..2 {
                // The fused form's kernel for sample n: weight · style, rescaled to unit norm
                // per output channel.
                let s = styles.get(n).unwrap().reshape((1, 3, 1, 1)).unwrap();
                let mut w = weight.broadcast_mul(&s).unwrap();
                if demodulate {
                    let norm = (w.sqr().unwrap().sum_keepdim((1, 2, 3)).unwrap() + 1e-8)
                        .unwrap()
                        .sqrt()
                        .unwrap();
                    w = w.broadcast_div(&norm).unwrap();
                }
                let xn = x.narrow(0, n, 1).unwrap();
                let want = if up {
                    resample::conv2d_up2(&xn, &w).unwrap()
                } else {
                    resample::conv2d(&xn, &w, 1, 1).unwrap()
                };
                let got = y.narrow(0, n, 1).unwrap();
                assert!(max_diff(&got, &want) < 1e-5, "{demodulate} {up}");
            }
        }
    }
}
