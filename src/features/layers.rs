//! The building blocks of the feature extractors: convolutions (with batch normalisation
//! folded in), pooling and the bilinear resize, all as candle tensor ops (CPU or CUDA).

use crate::io::Weights;
use crate::Result;
use candle_core::{Device, Tensor, D};

/// A convolution with a per-channel bias, then a ReLU: torchvision's `Conv2d + ReLU`,
/// or Inception's `BasicConv2d` (conv without bias → BatchNorm (eval) → ReLU) with the
/// normalisation folded into the kernel and the bias.
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Tensor,
    /// [1, O, 1, 1]
    bias: Tensor,
    stride: usize,
    /// Zero padding (rows, columns).
    padding: (usize, usize),
}

/// How a convolution pads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// None.
    Valid,
    /// Half the kernel on each side: the output keeps the input's size (stride 1).
    Same,
}

impl Conv {
    /// Inception's `BasicConv2d` at `name` (`name.conv.weight`, `name.bn.{weight, bias,
    /// running_mean, running_var}`; BatchNorm eps 0.001).
    pub fn basic(w: &Weights, name: &str, stride: usize, padding: Padding) -> Result<Self> {
        let weight_name = format!("{name}.conv.weight");
        let shape = w.shape(&weight_name)?;
        let out = shape[0];
        let weight = w.get(&weight_name, &shape)?;
        let bn = |p: &str| w.get(&format!("{name}.bn.{p}"), &[out]);
        let scale = bn("weight")?.div(&(bn("running_var")? + 1e-3)?.sqrt()?)?;
        let bias = (bn("bias")? - bn("running_mean")?.mul(&scale)?)?;
        let weight = weight.broadcast_mul(&scale.reshape((out, 1, 1, 1))?)?;
        Ok(Self::new(weight, &bias, stride, padding)?)
    }

    /// A torchvision `Conv2d` with bias at `name` (`name.weight`, `name.bias`), then ReLU.
    pub fn with_bias_relu(w: &Weights, name: &str, padding: Padding) -> Result<Self> {
        let shape = w.shape(&format!("{name}.weight"))?;
        let weight = w.get(&format!("{name}.weight"), &shape)?;
        let bias = w.get(&format!("{name}.bias"), &shape[..1])?;
        Ok(Self::new(weight, &bias, 1, padding)?)
    }

    fn new(
        weight: Tensor,
        bias: &Tensor,
        stride: usize,
        padding: Padding,
    ) -> candle_core::Result<Self> {
        let (out, _, kh, kw) = weight.dims4()?;
        let padding = match padding {
            Padding::Valid => (0, 0),
            Padding::Same => (kh / 2, kw / 2),
        };
        Ok(Conv {
            weight: weight.contiguous()?,
            bias: bias.reshape((1, out, 1, 1))?,
            stride,
            padding,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = crate::conv::conv2d(x, &self.weight, self.padding, self.stride)?;
        let y = y.broadcast_add(&self.bias)?;
        Ok(y.relu()?)
    }
}

/// Max pooling, 3 × 3 windows, stride 2, no padding.
pub fn max_pool_3x3_s2(x: &Tensor) -> Result<Tensor> {
    Ok(x.max_pool2d_with_stride(3, 2)?)
}

/// Max pooling, 3 × 3 windows, stride 1, padding 1, of a non-negative input: padding with
/// zeros then equals padding with −∞ (every window holds an input value ≥ 0).
pub fn max_pool_3x3_same_nonneg(x: &Tensor) -> Result<Tensor> {
    Ok(x.pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .max_pool2d_with_stride(3, 1)?)
}

/// Average pooling, 3 × 3 windows, stride 1, padding 1, padding not counted
/// (`count_include_pad=False`): each output divides by the number of input pixels it covers.
pub fn avg_pool_3x3_same_exclude_pad(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let covered = |i: usize, n: usize| 3 - usize::from(i == 0) - usize::from(i + 1 == n);
    let mut rescale = Vec::with_capacity(h * w);
    for i in 0..h {
        for j in 0..w {
            rescale.push(9.0 / (covered(i, h) * covered(j, w)) as f32);
        }
    }
    let rescale = Tensor::from_vec(rescale, (1, 1, h, w), x.device())?;
    let mean9 = x
        .pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .avg_pool2d_with_stride(3, 1)?;
    Ok(mean9.broadcast_mul(&rescale)?)
}

/// The spatial mean of each channel: [N, C, H, W] → [N, C].
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    Ok(x.flatten_from(2)?.mean(D::Minus1)?)
}

/// Bilinear resize of [N, C, H, W] images to `size` × `size`, as torch's
/// `F.interpolate(mode='bilinear', align_corners=False, antialias=False)`: two interpolation
/// matrices, applied to the rows and the columns.
pub fn resize_bilinear(x: &Tensor, size: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if h == size && w == size {
        return Ok(x.clone());
    }
    let rows = interpolation_matrix(h, size, x.device())?; // [size, h]
    let cols = interpolation_matrix(w, size, x.device())?.t()?; // [w, size]
    let x = x.broadcast_matmul(&cols)?; // [N, C, h, size]
    Ok(rows.broadcast_matmul(&x)?)
}

/// [out, in] weights of 1-D linear interpolation with half-pixel centres, computed in f32 as
/// torch does: source = (i + 0.5)·in/out − 0.5, clamped at 0.
fn interpolation_matrix(input: usize, output: usize, device: &Device) -> Result<Tensor> {
    let scale = input as f32 / output as f32;
    let mut m = vec![0f32; output * input];
    for i in 0..output {
        let source = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
        let i0 = (source as usize).min(input - 1);
        let i1 = (i0 + 1).min(input - 1);
        let l1 = source - i0 as f32;
        m[i * input + i0] += 1.0 - l1;
        m[i * input + i1] += l1;
    }
    Ok(Tensor::from_vec(m, (output, input), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_rows_sum_to_one_and_match_half_pixel_centres() {
        let m = interpolation_matrix(4, 8, &Device::Cpu).unwrap();
        let m: Vec<Vec<f32>> = m.to_vec2().unwrap();
        for row in &m {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // Output 0 sits at source −0.25 → clamped to pixel 0; output 3 at 1.25.
        assert_eq!(m[0], vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(m[3], vec![0.0, 0.75, 0.25, 0.0]);
        // The last output sits at 3.25 → pixel 3 only.
        assert_eq!(m[7], vec![0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn average_pool_ignores_the_padding() {
        let x = Tensor::arange(0f32, 9.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 3, 3))
            .unwrap();
        let y: Vec<f32> = avg_pool_3x3_same_exclude_pad(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // Corner (0, 0) covers 0, 1, 3, 4; the centre all nine.
        assert!((y[0] - 2.0).abs() < 1e-6);
        assert!((y[4] - 4.0).abs() < 1e-6);
        // Edge (0, 1) covers 0, 1, 2, 3, 4, 5.
        assert!((y[1] - 2.5).abs() < 1e-6);
    }
}
