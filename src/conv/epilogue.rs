//! The element-wise map a convolution may carry after its product (bias, activation, gain, clamp).

use super::with_cpu_data;
use candle_core::Tensor;

/// An element-wise map that follows a convolution's product, per output channel with that
/// channel's bias (a StyleGAN2 layer's bias, activation, gain and clamp): fused into the
/// convolution, it runs on each image's outputs while they are in cache, and its gradient is
/// taken there too.
pub(crate) trait Epilogue: Send + Sync {
    /// The output for a product value plus its channel's bias.
    fn map(&self, v: f32) -> f32;

    /// ∂output/∂input, read from the output value.
    fn slope_at(&self, y: f32) -> f32;

    /// `out` ([channels, pixels] products) ← the map of each value plus its channel's bias.
    fn apply(&self, out: &mut [f32], bias: &[f32]) {
        let pixels = out.len() / bias.len().max(1);
        for (row, &b) in out.chunks_mut(pixels.max(1)).zip(bias) {
            row.iter_mut().for_each(|v| *v = self.map(*v + b));
        }
    }

    /// The gradient at the inputs from the outputs `y` and their gradient `g`, into `dst`; the
    /// sum of each channel's ([channels, pixels]) added to `channel_sums`.
    fn input_grad(&self, y: &[f32], g: &[f32], dst: &mut [f32], channel_sums: &mut [f32]) {
        let pixels = dst.len() / channel_sums.len().max(1);
        let rows = dst
            .chunks_mut(pixels.max(1))
            .zip(y.chunks(pixels.max(1)).zip(g.chunks(pixels.max(1))));
        for ((dst, (y, g)), sum) in rows.zip(channel_sums) {
            for (d, (&yv, &gv)) in dst.iter_mut().zip(y.iter().zip(g)) {
                *d = gv * self.slope_at(yv);
            }
            *sum += lane_sum(dst);
        }
    }

    /// [`Epilogue::input_grad`] in differentiable operations, for outputs `y` [N, C, …]: the
    /// gradient at the inputs and its channel sums. The slope is constant almost everywhere, so
    /// a product with it differentiates again.
    fn differentiable_input_grad(
        &self,
        y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let slopes = with_cpu_data(y, |y| y.iter().map(|&v| self.slope_at(v)).collect())?;
        let input_grad = grad.mul(&Tensor::from_vec(slopes, y.shape(), y.device())?)?;
        let (n, c) = (y.dim(0)?, y.dim(1)?);
        // Contiguous last-axis sums: far faster than a broadcast's reduction over N, H, W.
        let inner = y.elem_count() / (n * c).max(1);
        let channel_sums = input_grad.reshape((n, c, inner))?.sum(2)?.sum(0)?;
        Ok((input_grad, channel_sums))
    }
}

/// Σ `values` over 16 running partial sums, which vectorise (one running sum does not).
fn lane_sum(values: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, v)| *l += v);
    }
    lanes.iter().sum::<f32>() + rest
}
