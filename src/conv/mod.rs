//! Convolution as matrix products: the patches of the input times the kernel as a matrix.
//! Forward and backward are then patch copies and matrix products.
//!
//! On the CPU a convolution is one custom operation that works image by image (an image's
//! patches are multiplied while they are in cache). Its backward pass gives plain gradients,
//! only of the operands that need one, unless the gradients will be differentiated again
//! ([`crate::backend::gradients_are_differentiable`]); then it is written in differentiable
//! operations: patch extraction (im2col), whose backward is its adjoint (col2im, summing
//! overlapping patches) and vice versa, and matrix products. On other devices (and for other
//! dtypes) candle's own (transposed) convolution does the work, or patches written with strided
//! slices, which candle differentiates itself.
//!
//! A convolution may carry an `Epilogue` (bias, activation, gain, clamp): it then runs on each
//! image's outputs right after their product, and its gradient right before the backward
//! products, so neither its outputs nor their gradients make separate passes over memory. A
//! modulated convolution (StyleGAN2's, in its fused form) scales each image's kernel inside the
//! same passes.
//!
//! Here the public functions; in `patches` im2col and col2im, in `passes` the CPU forward and
//! backward passes, in `epilogue` and `modulation` what those passes can carry, in `ops` the
//! candle operations and their differentiable backward formulations.

use crate::backend::cpu_kernels;
use crate::Result;
use candle_core::{CpuStorage, Layout, Tensor};

mod epilogue;
mod modulation;
mod ops;
mod passes;
mod patches;

pub(crate) use epilogue::Epilogue;
use ops::{ColumnsToImage, Modulated, PatchConv, PatchConvThen};
use patches::Patches;

/// Every `stride`-th entry of axis `dim`, from the first.
pub fn every_nth(x: &Tensor, dim: usize, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return Ok(x.clone());
    }
    let len = x.dim(dim)?;
    let keep = len.div_ceil(stride);
    let padded = x.pad_with_zeros(dim, 0, keep * stride - len)?;
    let mut shape = padded.dims().to_vec();
    shape[dim] = keep;
    shape.insert(dim + 1, stride);
    Ok(padded
        .reshape(shape)?
        .narrow(dim + 1, 0, 1)?
        .squeeze(dim + 1)?)
}

/// The data of a contiguous f32 CPU tensor; `op` names the caller in the error.
pub(crate) fn f32_input<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let (CpuStorage::F32(data), Some((start, end))) = (storage, layout.contiguous_offsets()) else {
        candle_core::bail!("{op}: expects a contiguous f32 tensor");
    };
    Ok(&data[start..end])
}

/// Runs `f` on the f32 data of a CPU tensor (made contiguous).
pub(crate) fn with_cpu_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("expects a CPU tensor");
    };
    Ok(f(f32_input(cpu, layout, "a CPU operation")?))
}

/// The kh × kw patches of `x` [N, C, H, W] (zero padding (rows, columns), stride) as columns
/// [N, C·kh·kw, H'·W'], ordered like a [O, C, kh, kw] kernel flattened to [O, C·kh·kw], written
/// with padding and strided slices (any device, differentiated by candle): the general path of
/// [`conv2d`], and the reference the CPU patch operation is tested against.
fn unfold_by_slices(
    x: &Tensor,
    (kh, kw): (usize, usize),
    (ph, pw): (usize, usize),
    stride: usize,
) -> Result<(Tensor, usize, usize)> {
    let Patches { n, c, ho, wo, .. } = Patches::new(x.dims4()?, (kh, kw), (ph, pw), stride);
    let x = x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?;
    if kh == 1 && kw == 1 {
        let x = every_nth(&every_nth(&x, 2, stride)?, 3, stride)?;
        return Ok((x.reshape((n, c, ho * wo))?, ho, wo));
    }
    let mut patches = Vec::with_capacity(kh * kw);
    for i in 0..kh {
        for j in 0..kw {
            let p = x
                .narrow(2, i, (ho - 1) * stride + 1)?
                .narrow(3, j, (wo - 1) * stride + 1)?;
            patches.push(every_nth(&every_nth(&p, 2, stride)?, 3, stride)?);
        }
    }
    let columns = Tensor::stack(&patches, 2)?.reshape((n, c * kh * kw, ho * wo))?;
    Ok((columns, ho, wo))
}

/// A convolution (cross-correlation, as torch's `conv2d`) of `x` [N, C, H, W] with the kernel
/// `w` [O, C, kh, kw] and zero padding (rows, columns).
pub fn conv2d(x: &Tensor, w: &Tensor, padding: (usize, usize), stride: usize) -> Result<Tensor> {
    let (n, c, h, width) = x.dims4()?;
    let (o, _, kh, kw) = w.dims4()?;
    let fused = cpu_kernels(x) && cpu_kernels(w) && (kh, kw, stride) != (1, 1, 1);
    // candle's own convolution (on CUDA one patch kernel and one GEMM), differentiable to any
    // order; its backward assumes square inputs when strided.
    if !cpu_kernels(x) && padding.0 == padding.1 && (stride == 1 || h == width) {
        return Ok(x.conv2d(w, padding.0, stride, 1, 1)?);
    }
    if fused {
        let p = Patches::new((n, c, h, width), (kh, kw), padding, stride);
        let op = PatchConv { p, out_channels: o };
        return Ok(x.contiguous()?.apply_op2(&w.contiguous()?, op)?);
    }
    let (columns, ho, wo) = unfold_by_slices(x, (kh, kw), padding, stride)?;
    let y = w.reshape((o, c * kh * kw))?.broadcast_matmul(&columns)?;
    Ok(y.reshape((n, o, ho, wo))?)
}

/// [`conv2d`] followed by `epilogue` with the per-channel `bias`, as one CPU operation (the
/// epilogue runs on each image's outputs while they are in cache, and the graph holds one node
/// instead of two); `None` off the CPU's f32 kernels, for the caller to apply the two steps.
pub(crate) fn conv2d_then<E: Epilogue + 'static>(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    padding: (usize, usize),
    stride: usize,
    epilogue: E,
) -> Result<Option<Tensor>> {
    // Unlike [`conv2d`], 1 × 1 kernels too: their patches are a copy of the input, cheaper
    // than the separate epilogue's passes over the output (D's fromRGB layer).
    let (o, _, kh, kw) = w.dims4()?;
    if !(cpu_kernels(x) && cpu_kernels(w) && cpu_kernels(bias)) {
        return Ok(None);
    }
    let p = Patches::new(x.dims4()?, (kh, kw), padding, stride);
    let op = PatchConvThen {
        conv: PatchConv { p, out_channels: o },
        epilogue,
    };
    let (x, w, bias) = (x.contiguous()?, w.contiguous()?, bias.contiguous()?);
    Ok(Some(x.apply_op3(&w, &bias, op)?))
}

/// A transposed convolution with `stride` and no padding: y[o, s·i + u, s·j + v] +=
/// w[o, c, u, v] · x[c, i, j], output [N, O, (H − 1)·s + k, (W − 1)·s + k] for `w` [O, C, k, k].
/// On the CPU one operation (kernel × input, then the patches' adjoint) whose backward is
/// written in differentiable operations when gradients must be differentiable
/// ([`crate::backend::gradients_are_differentiable`]); elsewhere candle's own transposed
/// convolution.
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
    if !(cpu_kernels(x) && cpu_kernels(w)) {
        // candle's kernel layout is [in, out, k, k].
        let w = w.transpose(0, 1)?.contiguous()?;
        return Ok(x.conv_transpose2d(&w, 0, 0, stride, 1)?);
    }
    let (op, matrix) = ColumnsToImage::new(x, w, stride)?;
    Ok(x.contiguous()?.apply_op2(&matrix, op)?)
}

/// A modulated convolution (StyleGAN2's, in its fused form) as one CPU operation: image n of
/// `x` [N, C, H, W] convolved (zero padding `padding`, stride 1) with the kernel w[o, c, …] ·
/// s[n, c] · d[n, o], `scales` [N, C + O] holding the styles s and then the demodulation
/// coefficients d. The same numbers as scaling the input by s and the output by d, up to
/// rounding, without those two passes over the images and their gradients. `None` off the CPU.
pub(crate) fn modulated_conv2d(
    x: &Tensor,
    w: &Tensor,
    scales: &Tensor,
    padding: usize,
) -> Result<Option<Tensor>> {
    if !(cpu_kernels(x) && cpu_kernels(w) && cpu_kernels(scales)) {
        return Ok(None);
    }
    let (o, _, kh, kw) = w.dims4()?;
    let p = Patches::new(x.dims4()?, (kh, kw), (padding, padding), 1);
    let op = Modulated(PatchConv { p, out_channels: o });
    let (x, w, scales) = (x.contiguous()?, w.contiguous()?, scales.contiguous()?);
    Ok(Some(x.apply_op3(&w, &scales, op)?))
}

/// [`conv_transpose2d`] with its kernel modulated per image as in [`modulated_conv2d`]. `None`
/// off the CPU.
pub(crate) fn modulated_conv_transpose2d(
    x: &Tensor,
    w: &Tensor,
    scales: &Tensor,
    stride: usize,
) -> Result<Option<Tensor>> {
    if !(cpu_kernels(x) && cpu_kernels(w) && cpu_kernels(scales)) {
        return Ok(None);
    }
    let (op, matrix) = ColumnsToImage::new(x, w, stride)?;
    let (x, scales) = (x.contiguous()?, scales.contiguous()?);
    Ok(Some(x.apply_op3(&matrix, &scales, Modulated(op))?))
}

/// [`conv2d`] with the same padding on both axes.
pub fn conv2d_square(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    conv2d(x, w, (padding, padding), stride)
}

#[cfg(test)]
mod tests {
    use super::patches::{Fold, Unfold};
    use super::*;
    use crate::test_util::{max_diff, relative_diff};

    /// The kh × kw patches of `x` [N, C, H, W] (zero padding (rows, columns), stride) as columns
    /// [N, C·kh·kw, H'·W'], ordered like a [O, C, kh, kw] kernel flattened to [O, C·kh·kw].
    fn unfold(
        x: &Tensor,
        (kh, kw): (usize, usize),
        (ph, pw): (usize, usize),
        stride: usize,
    ) -> Result<(Tensor, usize, usize)> {
        let geometry = Patches::new(x.dims4()?, (kh, kw), (ph, pw), stride);
        let (ho, wo) = (geometry.ho, geometry.wo);
        if x.device().is_cpu()
            && x.dtype() == candle_core::DType::F32
            && (kh, kw, stride) != (1, 1, 1)
        {
            let columns = x.contiguous()?.apply_op1(Unfold(geometry))?;
            return Ok((columns, ho, wo));
        }
        unfold_by_slices(x, (kh, kw), (ph, pw), stride)
    }

    use candle_core::{Device, Var};

    fn ramp(shape: &[usize], seed: usize) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| (((i + seed) * 7919) % 23) as f32 / 7.0 - 1.5)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn matches_candle_convolution_and_the_sliced_patches_gradients() {
        for (k, padding, stride) in [(3, 1, 1), (3, 0, 2), (1, 0, 2), (4, 2, 1), (3, 0, 1)] {
            let case = format!("k {k} padding {padding} stride {stride}");
            let x = Var::from_tensor(&ramp(&[2, 3, 9, 8], 1)).unwrap();
            let w = Var::from_tensor(&ramp(&[4, 3, k, k], 2)).unwrap();
            let ours = conv2d(&x, &w, (padding, padding), stride).unwrap();
            let want = x.conv2d(&w, padding, stride, 1, 1).unwrap();
            assert!(max_diff(&ours, &want) < 1e-4, "{case}");
            // Gradients of both patch extractions through one weighted sum.
            let (sliced, _, _) = unfold_by_slices(&x, (k, k), (padding, padding), stride).unwrap();
            let (custom, _, _) = unfold(&x, (k, k), (padding, padding), stride).unwrap();
            assert!(max_diff(&sliced, &custom) == 0.0, "{case}");
            let r = ramp(custom.dims(), 3);
            let g_custom = (custom * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g_sliced = (sliced * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let (a, b) = (g_custom.get(&x).unwrap(), g_sliced.get(&x).unwrap());
            assert!(max_diff(a, b) < 1e-5, "gradient, {case}");
        }
    }

    #[test]
    fn fused_convolution_gradients_equal_the_unfused_ones_to_second_order() {
        // f64 tensors take the generic path (candle's convolution, or patches by slices).
        for (padding, stride) in [(1, 1), (0, 2)] {
            let run = |dtype: candle_core::DType| {
                let x = Var::from_tensor(&ramp(&[2, 3, 9, 8], 1).to_dtype(dtype).unwrap()).unwrap();
                let w = Var::from_tensor(&ramp(&[4, 3, 3, 3], 2).to_dtype(dtype).unwrap()).unwrap();
                let y = conv2d(&x, &w, (padding, padding), stride).unwrap();
                let r = ramp(y.dims(), 3).to_dtype(dtype).unwrap();
                let loss = (y * &r).unwrap().sum_all().unwrap();
                let grads = crate::backend::differentiable_backward(&loss).unwrap();
                let (gx, gw) = (grads.get(&x).unwrap(), grads.get(&w).unwrap());
                // Second order: ‖∂/∂x‖² differentiated with respect to the kernel.
                let second = gx.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                let f32s = |t: &Tensor| t.to_dtype(candle_core::DType::F32).unwrap();
                (f32s(gx), f32s(gw), f32s(second.get(&w).unwrap()))
            };
            let (fused, unfused) = (run(candle_core::DType::F32), run(candle_core::DType::F64));
            let case = format!("stride {stride}");
            assert!(max_diff(&fused.0, &unfused.0) < 1e-4, "grad x, {case}");
            assert!(max_diff(&fused.1, &unfused.1) < 1e-3, "grad w, {case}");
            assert!(
                max_diff(&fused.2, &unfused.2) < 1e-2,
                "second order, {case}"
            );
        }
    }

    #[test]
    fn transposed_convolution_equals_candles_to_second_order() {
        let run = |ours: bool| {
            let x = Var::from_tensor(&ramp(&[2, 3, 5, 4], 1)).unwrap();
            let w = Var::from_tensor(&ramp(&[4, 3, 3, 3], 2)).unwrap();
            let y = if ours {
                conv_transpose2d(&x, &w, 2).unwrap()
            } else {
                // candle's kernel layout is [in, out, k, k].
                let w = w.transpose(0, 1).unwrap().contiguous().unwrap();
                x.conv_transpose2d(&w, 0, 0, 2, 1).unwrap()
            };
            let r = ramp(y.dims(), 3);
            let loss = (&y * &r).unwrap().sum_all().unwrap();
            let grads = crate::backend::differentiable_backward(&loss).unwrap();
            let (gx, gw) = (grads.get(&x).unwrap(), grads.get(&w).unwrap());
            let second = gx.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let gw2 = second.get(&w).unwrap().clone();
            (y, gx.clone(), gw.clone(), gw2)
        };
        let (a, b) = (run(true), run(false));
        assert_eq!(a.0.dims(), &[2, 4, 11, 9]);
        assert!(max_diff(&a.0, &b.0) < 1e-4, "values");
        assert!(max_diff(&a.1, &b.1) < 1e-3, "grad x");
        assert!(max_diff(&a.2, &b.2) < 1e-3, "grad w");
        assert!(max_diff(&a.3, &b.3) < 1e-2, "second order");
    }

    /// The plain first-order gradients (one image per task, or one image after another with
    /// the products split) against candle's own convolutions'.
    #[test]
    fn plain_gradients_equal_candles() {
        let grads = |y: Tensor, x: &Var, w: &Var| {
            let r = ramp(y.dims(), 3);
            let g = (y * r).unwrap().sum_all().unwrap().backward().unwrap();
            (g.get(x).unwrap().clone(), g.get(w).unwrap().clone())
        };
        // Two threads: a single image takes the split products, five images the tasks.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            for n in [1, 5] {
                for (k, padding, stride) in [(3, 1, 1), (3, 0, 2), (4, 2, 1)] {
                    let case = format!("n {n} k {k} padding {padding} stride {stride}");
                    let x = Var::from_tensor(&ramp(&[n, 3, 8, 8], 1)).unwrap();
                    let w = Var::from_tensor(&ramp(&[4, 3, k, k], 2)).unwrap();
                    let ours = grads(conv2d(&x, &w, (padding, padding), stride).unwrap(), &x, &w);
                    let want = grads(x.conv2d(&w, padding, stride, 1, 1).unwrap(), &x, &w);
                    assert!(relative_diff(&ours.0, &want.0) < 1e-5, "grad x, {case}");
                    assert!(relative_diff(&ours.1, &want.1) < 1e-5, "grad w, {case}");
                }
                let x = Var::from_tensor(&ramp(&[n, 3, 5, 5], 1)).unwrap();
                let w = Var::from_tensor(&ramp(&[4, 3, 3, 3], 2)).unwrap();
                let ours = grads(conv_transpose2d(&x, &w, 2).unwrap(), &x, &w);
                let candle_layout = w.transpose(0, 1).unwrap().contiguous().unwrap();
                let y = x.conv_transpose2d(&candle_layout, 0, 0, 2, 1).unwrap();
                let want = grads(y, &x, &w);
                assert!(
                    relative_diff(&ours.0, &want.0) < 1e-5,
                    "transposed grad x, n {n}"
                );
                assert!(
                    relative_diff(&ours.1, &want.1) < 1e-5,
                    "transposed grad w, n {n}"
                );
            }
        });
    }

    #[test]
    fn rectangular_kernels_and_padding() {
        let x = ramp(&[1, 2, 7, 7], 4);
        let w = ramp(&[3, 2, 1, 5], 5);
        let ours = conv2d(&x, &w, (0, 2), 1).unwrap();
        let want = x
            .pad_with_zeros(3, 2, 2)
            .unwrap()
            .conv2d(&w, 0, 1, 1, 1)
            .unwrap();
        assert_eq!(ours.dims(), &[1, 3, 7, 7]);
        assert!(max_diff(&ours, &want) < 1e-4);
    }

    #[test]
    fn fold_is_the_adjoint_of_unfold() {
        // <unfold(x), y> = <x, fold(y)> for every geometry.
        let x = ramp(&[2, 3, 6, 5], 6);
        for (k, p, s) in [
            ((3, 3), (1, 1), 1),
            ((3, 2), (0, 1), 2),
            ((2, 2), (1, 0), 1),
        ] {
            let (columns, _, _) = unfold(&x, k, p, s).unwrap();
            let y = ramp(columns.dims(), 7);
            let geometry = Patches::new((2, 3, 6, 5), k, p, s);
            let folded = y.apply_op1(Fold(geometry)).unwrap();
            let lhs: f32 = (columns * &y)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar()
                .unwrap();
            let rhs: f32 = (x.clone() * folded)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar()
                .unwrap();
            assert!(
                (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
                "{lhs} vs {rhs}"
            );
        }
    }
}
