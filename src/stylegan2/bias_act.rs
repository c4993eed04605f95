//! Bias + activation + gain + clamp (the reference's `bias_act`), also with a per-pixel noise
//! term added first, as a synthesis layer does.
//!
//! The operation exists in ordinary candle tensor operations, which run on any device and
//! differentiate to any order; on the CPU, f32 tensors take one fused operation with the same
//! numbers (see [`crate::backend`]), whose backward is again made of differentiable operations
//! where R1 needs it.

use crate::backend::cpu_kernels;
use crate::conv::{with_cpu_data, Epilogue};
use crate::Result;
use candle_core::Tensor;

/// Slope of the leaky ReLU for negative inputs.
pub const LRELU_ALPHA: f64 = 0.2;

/// The activation after a layer's bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Linear,
    LeakyRelu,
}

impl Activation {
    /// The reference's default gain: √2 for the leaky ReLU, 1 for linear.
    pub fn default_gain(self) -> f64 {
        match self {
            Activation::Linear => 1.0,
            Activation::LeakyRelu => std::f64::consts::SQRT_2,
        }
    }
}

/// `x + bias` (bias along dimension 1), then the activation, then `· gain`, then a clamp to
/// ±`clamp` when given — the reference's order. On the CPU (f32, with a bias) one fused
/// operation whose backward is two tensor operations (so it differentiates again, for R1);
/// elsewhere the same steps as separate tensor operations.
pub fn bias_act(
    x: &Tensor,
    bias: Option<&Tensor>,
    act: Activation,
    gain: f64,
    clamp: Option<f64>,
) -> Result<Tensor> {
    if let Some(b) = bias {
        if cpu_kernels(x) && cpu_kernels(b) {
            let op = FusedBiasAct::new(act, gain, clamp);
            return Ok(x.contiguous()?.apply_op2(&b.contiguous()?, op)?);
        }
    }
    bias_act_by_steps(x, bias, act, gain, clamp)
}

/// [`bias_act`] as separate tensor operations (any device).
pub(super) fn bias_act_by_steps(
    x: &Tensor,
    bias: Option<&Tensor>,
    act: Activation,
    gain: f64,
    clamp: Option<f64>,
) -> Result<Tensor> {
    let mut y = match bias {
        Some(b) => {
            let mut shape = vec![1; x.rank()];
            shape[1] = b.dim(0)?;
            x.broadcast_add(&b.reshape(shape)?)?
        }
        None => x.clone(),
    };
    if act == Activation::LeakyRelu {
        y = y.maximum(&(&y * LRELU_ALPHA)?)?;
    }
    // The reference multiplies by the gain rounded to f32, and skips a gain of exactly 1.
    if gain != 1.0 {
        y = (y * gain as f32 as f64)?;
    }
    if let Some(c) = clamp {
        y = y.clamp(-c, c)?;
    }
    Ok(y)
}

/// [`bias_act`] on the CPU in one pass. The arithmetic is that of the separate operations, in
/// their order (x + b; max(v, 0.2·v); v·gain unless the gain is 1; clamp), so results agree
/// bit for bit.
#[derive(Debug, Clone, Copy)]
pub(super) struct FusedBiasAct {
    leaky: bool,
    gain: f32,
    clamp: Option<f32>,
}

impl FusedBiasAct {
    pub(super) fn new(act: Activation, gain: f64, clamp: Option<f64>) -> Self {
        FusedBiasAct {
            leaky: act == Activation::LeakyRelu,
            gain: gain as f32,
            clamp: clamp.map(|c| c as f32),
        }
    }

    /// The outputs for `x` (`n` samples of [channels, pixels]) with its per-channel `bias` and,
    /// when given, a per-pixel noise term ([n, pixels]) added before the bias: one sample per
    /// task, one channel (one bias) per run.
    fn forward(&self, x: &[f32], n: usize, bias: &[f32], noise: Option<&[f32]>) -> Vec<f32> {
        use rayon::prelude::*;
        let sample = x.len() / n.max(1);
        let inner = sample / bias.len().max(1);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(sample.max(1))
            .zip(x.par_chunks(sample.max(1)))
            .enumerate()
            .for_each(|(i, (out, x))| {
                let noise = noise.map(|all| &all[i * inner..(i + 1) * inner]);
                for ((out, x), &b) in out.chunks_mut(inner).zip(x.chunks(inner)).zip(bias) {
                    match noise {
                        Some(noise) => {
                            for ((o, &v), &nz) in out.iter_mut().zip(x).zip(noise) {
                                *o = self.map(v + nz + b);
                            }
                        }
                        None => {
                            for (o, &v) in out.iter_mut().zip(x) {
                                *o = self.map(v + b);
                            }
                        }
                    }
                }
            });
        out
    }

    /// The gradients with respect to x and the bias as plain numbers, in one pass over the
    /// outputs `y` and their gradient `g` ([n, c, inner] data): what a backward pass whose
    /// gradients are not differentiated again needs.
    fn plain_gradients(
        &self,
        y: &[f32],
        g: &[f32],
        (n, c): (usize, usize),
    ) -> (Vec<f32>, Vec<f32>) {
        use rayon::prelude::*;
        let sample = (y.len() / n.max(1)).max(1);
        let mut dx = vec![0f32; y.len()];
        let sums: Vec<Vec<f32>> = dx
            .par_chunks_mut(sample)
            .zip(y.par_chunks(sample).zip(g.par_chunks(sample)))
            .map(|(dx, (y, g))| {
                let mut sums = vec![0f32; c];
                self.input_grad(y, g, dx, &mut sums);
                sums
            })
            .collect();
        let mut db = vec![0f32; c];
        for sample in &sums {
            db.iter_mut().zip(sample).for_each(|(b, v)| *b += v);
        }
        (dx, db)
    }
}

impl Epilogue for FusedBiasAct {
    /// The reference's order: max(v, 0.2·v); v·gain unless the gain is 1; clamp.
    fn map(&self, v: f32) -> f32 {
        let mut y = v;
        if self.leaky {
            let scaled = y * LRELU_ALPHA as f32 + 0.0;
            y = if y >= scaled { y } else { scaled };
        }
        if self.gain != 1.0 {
            y = y * self.gain + 0.0;
        }
        if let Some(c) = self.clamp {
            y = y.min(c).max(-c);
        }
        y
    }

    /// ∂y/∂x at the output value `y`: gain · (1 or 0.2 by the sign, which the gain keeps) ·
    /// (inside the clamp).
    fn slope_at(&self, y: f32) -> f32 {
        let act = if self.leaky && y <= 0.0 {
            LRELU_ALPHA as f32
        } else {
            1.0
        };
        if self.clamp.is_none_or(|c| y.abs() < c) {
            act * self.gain
        } else {
            0.0
        }
    }
}

impl candle_core::CustomOp2 for FusedBiasAct {
    fn name(&self) -> &'static str {
        "bias_act"
    }

    fn cpu_fwd(
        &self,
        xs: &candle_core::CpuStorage,
        xl: &candle_core::Layout,
        bs: &candle_core::CpuStorage,
        bl: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = crate::conv::f32_input(xs, xl, "bias_act")?;
        let b = crate::conv::f32_input(bs, bl, "bias_act")?;
        let out = self.forward(x, xl.dims()[0], b, None);
        Ok((candle_core::CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _bias: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, db) = self.gradients(x, y, grad)?;
        Ok((Some(dx), Some(db)))
    }
}

impl FusedBiasAct {
    /// The gradients of the input and the bias from the outputs `y` and their gradient: plain
    /// numbers, or differentiable operations where the backward pass is differentiated again.
    fn gradients(
        &self,
        x: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        if crate::backend::gradients_are_differentiable() {
            return self.differentiable_input_grad(y, grad);
        }
        let (n, c) = (x.dim(0)?, x.dim(1)?);
        let (dx, db) = with_cpu_data(y, |y| {
            with_cpu_data(grad, |g| self.plain_gradients(y, g, (n, c)))
        })??;
        Ok((
            Tensor::from_vec(dx, x.shape(), x.device())?,
            Tensor::from_vec(db, c, x.device())?,
        ))
    }
}

/// [`bias_act`] of `x + noise · strength`: the noise image [N, 1, H, W] times the scalar
/// strength added to every channel before the bias, as a synthesis layer does. On the CPU one
/// operation (the noise scaled at its own size, added in the same pass).
pub fn noisy_bias_act(
    x: &Tensor,
    noise: &Tensor,
    strength: &Tensor,
    bias: &Tensor,
    act: Activation,
    gain: f64,
    clamp: Option<f64>,
) -> Result<Tensor> {
    if cpu_kernels(x) && cpu_kernels(noise) && cpu_kernels(bias) {
        let scaled = noise.broadcast_mul(strength)?.contiguous()?;
        let op = NoisyBiasAct(FusedBiasAct::new(act, gain, clamp));
        return Ok(x
            .contiguous()?
            .apply_op3(&bias.contiguous()?, &scaled, op)?);
    }
    // Broadcast before the product: the strength's gradient is then one sum over contiguous
    // memory, not a reduction over the broadcast (leading) axes, which candle walks with a stride.
    let scaled = noise.broadcast_as(x.shape())?.broadcast_mul(strength)?;
    bias_act(&(x + scaled)?, Some(bias), act, gain, clamp)
}

/// [`FusedBiasAct`] with a per-pixel noise term added first, on (x, bias, scaled noise).
struct NoisyBiasAct(FusedBiasAct);

impl candle_core::CustomOp3 for NoisyBiasAct {
    fn name(&self) -> &'static str {
        "noisy_bias_act"
    }

    fn cpu_fwd(
        &self,
        xs: &candle_core::CpuStorage,
        xl: &candle_core::Layout,
        bs: &candle_core::CpuStorage,
        bl: &candle_core::Layout,
        ns: &candle_core::CpuStorage,
        nl: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = crate::conv::f32_input(xs, xl, "noisy_bias_act")?;
        let b = crate::conv::f32_input(bs, bl, "noisy_bias_act")?;
        let noise = crate::conv::f32_input(ns, nl, "noisy_bias_act")?;
        let out = self.0.forward(x, xl.dims()[0], b, Some(noise));
        Ok((candle_core::CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _bias: &Tensor,
        noise: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, db) = self.0.gradients(x, y, grad)?;
        // The noise reaches every channel: its gradient is the sum over them.
        if crate::backend::gradients_are_differentiable() {
            let dnoise = dx.sum_keepdim(1)?.reshape(noise.shape())?;
            return Ok((Some(dx), Some(db), Some(dnoise)));
        }
        // Summed one channel's row after another (candle's reduction over axis 1 would walk
        // memory with a stride).
        let (n, c) = (x.dim(0)?, x.dim(1)?);
        let inner = noise.elem_count() / n.max(1);
        let dnoise = with_cpu_data(&dx, |dx| {
            let mut dnoise = vec![0f32; noise.elem_count()];
            for (sum, sample) in dnoise.chunks_mut(inner).zip(dx.chunks(c * inner)) {
                for channel in sample.chunks(inner) {
                    sum.iter_mut().zip(channel).for_each(|(s, v)| *s += v);
                }
            }
            dnoise
        })?;
        let dnoise = Tensor::from_vec(dnoise, noise.shape(), noise.device())?;
        Ok((Some(dx), Some(db), Some(dnoise)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{max_diff, ramp, relative_diff};
    use candle_core::Device;

    #[test]
    fn fused_bias_act_equals_the_separate_steps_and_their_gradients() {
        use candle_core::{Device, Var};
        let x: Vec<f32> = (0..2 * 3 * 4 * 5)
            .map(|i| ((i * 37) % 29) as f32 / 4.0 - 3.5)
            .collect();
        let x = Var::from_vec(x, (2, 3, 4, 5), &Device::Cpu).unwrap();
        let b = Var::from_vec(vec![0.3f32, -0.7, 1.1], 3, &Device::Cpu).unwrap();
        let r = Tensor::arange(0f32, 120.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3, 4, 5))
            .unwrap();
        for (act, gain, clamp) in [
            (Activation::LeakyRelu, 2f64.sqrt(), None),
            (Activation::LeakyRelu, 2f64.sqrt(), Some(2.0)),
            (Activation::Linear, 1.0, Some(1.5)),
        ] {
            let fused = bias_act(&x, Some(&b), act, gain, clamp).unwrap();
            let steps = bias_act_by_steps(&x, Some(&b), act, gain, clamp).unwrap();
            let diff = max_diff(&fused, &steps);
            assert_eq!(diff, 0.0, "{act:?} {clamp:?}");
            let g1 = (fused * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (steps * &r).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &b] {
                let (a, e) = (g1.get(v).unwrap(), g2.get(v).unwrap());
                let d = relative_diff(a, e);
                assert!(d < 1e-6, "{act:?} {clamp:?}: gradient differs by {d:e}");
            }
        }
    }
    #[test]
    fn noisy_bias_act_equals_the_generic_steps_and_their_gradients() {
        use crate::backend::differentiable_backward;
        use crate::backend::with_generic_ops;
        use candle_core::Var;
        // Σ y·r's gradients with respect to (x, noise, strength, bias), then those of the squared
        // norm of its (differentiable) gradient with respect to x.
        let grads = || {
            let x = Var::from_tensor(&ramp((2, 3, 4, 5))).unwrap();
            let noise = Var::from_tensor(&(ramp((2, 1, 4, 5)) * 0.7).unwrap()).unwrap();
            let strength = Var::from_vec(vec![0.4f32], (), &Device::Cpu).unwrap();
            let b = Var::from_vec(vec![0.3f32, -0.7, 1.1], 3, &Device::Cpu).unwrap();
            let (act, gain) = (Activation::LeakyRelu, 2f64.sqrt());
            let y = noisy_bias_act(&x, &noise, &strength, &b, act, gain, Some(1.5)).unwrap();
            let weights = ramp((2, 3, 4, 5)).affine(0.5, 2.0).unwrap();
            let loss = (&y * weights).unwrap();
            let loss = loss.sum_all().unwrap();
            let first = loss.backward().unwrap();
            let vars = [&x, &noise, &strength, &b];
            let mut all = vars.map(|v| first.get(v).unwrap().clone()).to_vec();
            let grad_x = differentiable_backward(&loss)
                .unwrap()
                .get(&x)
                .unwrap()
                .clone();
            let second = grad_x.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            all.push(
                second
                    .get(&noise)
                    .cloned()
                    .unwrap_or(noise.zeros_like().unwrap()),
            );
            (y, all)
        };
        let (fused, fused_grads) = grads();
        let (steps, step_grads) = with_generic_ops(grads);
        assert_eq!(max_diff(&fused, &steps), 0.0);
        for (i, (a, e)) in fused_grads.iter().zip(&step_grads).enumerate() {
            assert!(
                max_diff(a, e) <= 1e-5 * (1.0 + max_diff(e, &e.zeros_like().unwrap())),
                "{i}"
            );
        }
    }
}
