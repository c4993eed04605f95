//! The convolutions as candle operations: forward on CPU data, backward as plain numbers or in
//! differentiable operations.

use super::modulation::{KernelLayout, ModulatedData, Modulation};
use super::passes::{
    conv_backward, conv_forward, transposed_backward, transposed_forward, ConvGrads, GradData,
    Wanted,
};
use super::patches::{Fold, Patches, Unfold};
use super::{f32_input, with_cpu_data, Epilogue};
use crate::Result;
use candle_core::{CpuStorage, Layout, Shape, Tensor};

/// The gradients of an operation on `x` and a kernel as plain numbers: `backward` gets the
/// CPU data of x, the kernel and the output gradient, and which operands are tracked; the
/// input's and kernel's gradients come back as tensors shaped like them, a third operand's (an
/// epilogue's bias, a modulation's scales) as numbers.
fn plain_backward(
    x: &Tensor,
    kernel: &Tensor,
    grad: &Tensor,
    backward: impl FnOnce(GradData, Wanted) -> candle_core::Result<ConvGrads>,
) -> candle_core::Result<PlainGrads> {
    let wanted = Wanted {
        input: x.track_op(),
        kernel: kernel.track_op(),
    };
    let grads = with_cpu_data(x, |xs| {
        with_cpu_data(kernel, |ks| {
            with_cpu_data(grad, |gs| backward((xs, ks, gs), wanted))
        })
    })????;
    let shaped_like = |grad: Option<Vec<f32>>, like: &Tensor| {
        grad.map(|g| Tensor::from_vec(g, like.shape(), like.device()))
            .transpose()
    };
    Ok((
        shaped_like(grads.input, x)?,
        shaped_like(grads.kernel, kernel)?,
        grads.bias.or(grads.scales),
    ))
}

/// The input's and kernel's gradients as tensors, a third operand's as numbers.
type PlainGrads = (Option<Tensor>, Option<Tensor>, Option<Vec<f32>>);

/// Σ over the first axis of a contiguous [n, r, c] tensor as a product with a row of ones
/// (candle's reduction over a leading axis walks memory with a stride).
fn batch_sum(t: &Tensor) -> candle_core::Result<Tensor> {
    let (n, r, c) = t.dims3()?;
    let ones = Tensor::ones((1, n), t.dtype(), t.device())?;
    ones.matmul(&t.reshape((n, r * c))?)?.reshape((r, c))
}

/// A convolution as one operation: on the CPU, patches × kernel without the patches entering
/// the graph (the backward pass of a large patch tensor allocates, zeroes and sums buffers of its
/// size). When [`gradients_are_differentiable`](crate::backend::gradients_are_differentiable),
/// the backward pass is written with differentiable operations — the patch extraction, its
/// adjoint and matrix products — so gradient penalties can differentiate it again; otherwise
/// it computes plain gradients.
#[derive(Clone)]
pub(super) struct PatchConv {
    pub(super) p: Patches,
    pub(super) out_channels: usize,
}

impl PatchConv {
    /// The kernel [o, c, kh, kw] as a matrix [o, c·kh·kw].
    fn kernel_matrix(&self, w: &Tensor) -> candle_core::Result<Tensor> {
        w.reshape((self.out_channels, self.p.c * self.p.kh * self.p.kw))
    }
}

/// A convolution-like operation on (input, kernel matrix) whose CPU passes a per-image
/// modulation of the kernel can join: the convolution and the transposed convolution.
trait KernelOp: candle_core::CustomOp2 + Clone + Send + Sync + 'static {
    /// The kernel's layout and channels, for a modulation.
    fn modulation(&self) -> Modulation;
    fn out_shape(&self) -> Shape;
    fn forward(&self, x: &[f32], kernel: &[f32], modulated: Option<ModulatedData>) -> Vec<f32>;
    fn backward(
        &self,
        data: GradData,
        wanted: Wanted,
        modulated: Option<ModulatedData>,
    ) -> ConvGrads;
    /// The gradients of the input and the kernel written in differentiable operations.
    fn differentiable_backward(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)>;

    fn cpu_forward(
        &self,
        x: (&CpuStorage, &Layout),
        kernel: (&CpuStorage, &Layout),
        modulated: Option<ModulatedData>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_input(x.0, x.1, "convolution")?;
        let kernel = f32_input(kernel.0, kernel.1, "convolution")?;
        let out = self.forward(x, kernel, modulated);
        Ok((CpuStorage::F32(out), self.out_shape()))
    }

    /// The backward pass without modulation: plain numbers unless the gradients will be
    /// differentiated again.
    fn unmodulated_backward(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        if !crate::backend::gradients_are_differentiable() {
            let (grad_x, grad_kernel, _) = plain_backward(x, kernel, grad, |data, wanted| {
                Ok(self.backward(data, wanted, None))
            })?;
            return Ok((grad_x, grad_kernel));
        }
        let (grad_x, grad_kernel) = self.differentiable_backward(x, kernel, grad)?;
        Ok((Some(grad_x), Some(grad_kernel)))
    }
}

impl KernelOp for PatchConv {
    fn modulation(&self) -> Modulation {
        Modulation {
            layout: KernelLayout::Conv,
            c: self.p.c,
            o: self.out_channels,
            taps: self.p.kh * self.p.kw,
        }
    }

    fn out_shape(&self) -> Shape {
        Shape::from((self.p.n, self.out_channels, self.p.ho, self.p.wo))
    }

    fn forward(&self, x: &[f32], kernel: &[f32], modulated: Option<ModulatedData>) -> Vec<f32> {
        conv_forward(self.p, self.out_channels, x, kernel, None, modulated)
    }

    fn backward(
        &self,
        data: GradData,
        wanted: Wanted,
        modulated: Option<ModulatedData>,
    ) -> ConvGrads {
        conv_backward(self.p, self.out_channels, data, wanted, None, modulated)
    }

    fn differentiable_backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let p = self.p;
        let g = grad.reshape((p.n, self.out_channels, p.ho * p.wo))?;
        let kernel = self.kernel_matrix(w)?;
        // Transposed kernels are small: made contiguous, the products need not repack them.
        let grad_columns = kernel.t()?.contiguous()?.broadcast_matmul(&g)?;
        let grad_x = grad_columns.contiguous()?.apply_op1(Fold(p))?;
        let columns = x.contiguous()?.apply_op1(Unfold(p))?;
        // (columns · gᵀ)ᵀ: the large columns stay the contiguous operand of the product, and
        // the batch sum runs over contiguous memory before the (small) transposition.
        let grad_kernel = columns.matmul(&g.transpose(1, 2)?)?;
        let grad_w = batch_sum(&grad_kernel)?
            .t()?
            .contiguous()?
            .reshape(w.shape())?;
        Ok((grad_x, grad_w))
    }
}

impl candle_core::CustomOp2 for PatchConv {
    fn name(&self) -> &'static str {
        "patch-conv"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.cpu_forward((x, x_layout), (w, w_layout), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        self.unmodulated_backward(x, w, grad)
    }
}

/// A [`KernelOp`] whose kernel is modulated per image, as one operation on (input, kernel,
/// scales [N, C + O]): StyleGAN2's modulated convolution with styles and demodulation
/// coefficients folded into each image's kernel.
pub(super) struct Modulated<K>(pub(super) K);

impl<K: KernelOp> candle_core::CustomOp3 for Modulated<K> {
    fn name(&self) -> &'static str {
        "modulated-convolution"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        k: &CpuStorage,
        k_layout: &Layout,
        scales: &CpuStorage,
        scales_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let scales = f32_input(scales, scales_layout, "modulated convolution")?;
        let modulated = Some((self.0.modulation(), scales));
        self.0.cpu_forward((x, x_layout), (k, k_layout), modulated)
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        scales: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let m = self.0.modulation();
        if !crate::backend::gradients_are_differentiable() {
            let (grad_x, grad_kernel, grad_scales) =
                plain_backward(x, kernel, grad, |data, wanted| {
                    with_cpu_data(scales, |sc| self.0.backward(data, wanted, Some((m, sc))))
                })?;
            let grad_scales = grad_scales
                .map(|g| Tensor::from_vec(g, scales.shape(), scales.device()))
                .transpose()?;
            return Ok((grad_x, grad_kernel, grad_scales));
        }
        // The unfused form's gradients: y = d · op(x · s, kernel).
        let per_channel = |t: Tensor| t.unsqueeze(2)?.unsqueeze(3);
        let s = per_channel(scales.narrow(1, 0, m.c)?)?;
        let d = per_channel(scales.narrow(1, m.c, m.o)?)?;
        let styled = x.broadcast_mul(&s)?;
        let (grad_styled, grad_kernel) =
            self.0
                .differentiable_backward(&styled, kernel, &grad.broadcast_mul(&d)?)?;
        let grad_x = grad_styled.broadcast_mul(&s)?;
        let grad_s = (&grad_styled * x)?.sum((2, 3))?;
        let unscaled = styled
            .contiguous()?
            .apply_op2(&kernel.contiguous()?, self.0.clone())?;
        let grad_d = (grad * unscaled)?.sum((2, 3))?;
        let grad_scales = Tensor::cat(&[grad_s, grad_d], 1)?;
        Ok((Some(grad_x), Some(grad_kernel), Some(grad_scales)))
    }
}

/// [`PatchConv`] followed by an [`Epilogue`] with a per-channel bias, as one operation on
/// (input, kernel, bias).
pub(super) struct PatchConvThen<E> {
    pub(super) conv: PatchConv,
    pub(super) epilogue: E,
}

impl<E: Epilogue> candle_core::CustomOp3 for PatchConvThen<E> {
    fn name(&self) -> &'static str {
        "patch-conv-epilogue"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
        b: &CpuStorage,
        b_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let p = self.conv.p;
        let o = self.conv.out_channels;
        let bias = f32_input(b, b_layout, "patch-conv-epilogue")?;
        let out = conv_forward(
            p,
            o,
            f32_input(x, x_layout, "patch-conv-epilogue")?,
            f32_input(w, w_layout, "patch-conv-epilogue")?,
            Some((&self.epilogue, bias)),
            None,
        );
        Ok((CpuStorage::F32(out), Shape::from((p.n, o, p.ho, p.wo))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (p, o) = (self.conv.p, self.conv.out_channels);
        let grad_b = |sums: Vec<f32>| -> candle_core::Result<Option<Tensor>> {
            let tracked = b.track_op();
            tracked
                .then(|| Tensor::from_vec(sums, o, b.device()))
                .transpose()
        };
        if !crate::backend::gradients_are_differentiable() {
            let (grad_x, grad_w, sums) = plain_backward(x, w, grad, |data, wanted| {
                with_cpu_data(y, |y| {
                    conv_backward(p, o, data, wanted, Some((&self.epilogue, y)), None)
                })
            })?;
            return Ok((grad_x, grad_w, grad_b(sums.unwrap_or_default())?));
        }
        let (product_grad, grad_b) = self.epilogue.differentiable_input_grad(y, grad)?;
        let (grad_x, grad_w) = self.conv.differentiable_backward(x, w, &product_grad)?;
        Ok((Some(grad_x), Some(grad_w), Some(grad_b)))
    }
}

/// Kernel rows × input pixels, then the patches' adjoint (col2im): a transposed convolution.
#[derive(Clone)]
pub(super) struct ColumnsToImage {
    /// The geometry of the output image's patches (one patch per input pixel).
    p: Patches,
    in_channels: usize,
}

impl ColumnsToImage {
    /// The operation for `x` [N, C, H, W], kernel `w` [O, C, k, k] and `stride`, with the
    /// kernel as its matrix [O·k·k, C] (the rows of the columns the kernel makes).
    pub(super) fn new(x: &Tensor, w: &Tensor, stride: usize) -> Result<(Self, Tensor)> {
        let (n, c, h, width) = x.dims4()?;
        let (o, _, kh, kw) = w.dims4()?;
        let matrix = w.permute((0, 2, 3, 1))?.reshape((o * kh * kw, c))?;
        let output = (n, o, (h - 1) * stride + kh, (width - 1) * stride + kw);
        let p = Patches::new(output, (kh, kw), (0, 0), stride);
        let op = ColumnsToImage { p, in_channels: c };
        Ok((op, matrix.contiguous()?))
    }
}

impl KernelOp for ColumnsToImage {
    fn modulation(&self) -> Modulation {
        Modulation {
            layout: KernelLayout::Transposed,
            c: self.in_channels,
            o: self.p.c,
            taps: self.p.kh * self.p.kw,
        }
    }

    fn out_shape(&self) -> Shape {
        Shape::from((self.p.n, self.p.c, self.p.h, self.p.w))
    }

    fn forward(&self, x: &[f32], matrix: &[f32], modulated: Option<ModulatedData>) -> Vec<f32> {
        transposed_forward(self.p, self.in_channels, x, matrix, modulated)
    }

    fn backward(
        &self,
        data: GradData,
        wanted: Wanted,
        modulated: Option<ModulatedData>,
    ) -> ConvGrads {
        transposed_backward(self.p, self.in_channels, data, wanted, modulated)
    }

    fn differentiable_backward(
        &self,
        x: &Tensor,
        matrix: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let p = self.p;
        let grad_columns = grad.contiguous()?.apply_op1(Unfold(p))?;
        let pixels = x.reshape((p.n, self.in_channels, p.ho * p.wo))?;
        let grad_x = matrix.t()?.contiguous()?.broadcast_matmul(&grad_columns)?;
        let grad_matrix = batch_sum(&grad_columns.matmul(&pixels.transpose(1, 2)?)?)?;
        Ok((grad_x.reshape(x.shape())?, grad_matrix))
    }
}

impl candle_core::CustomOp2 for ColumnsToImage {
    fn name(&self) -> &'static str {
        "columns-to-image"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        m: &CpuStorage,
        m_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.cpu_forward((x, x_layout), (m, m_layout), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        matrix: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        self.unmodulated_backward(x, matrix, grad)
    }
}
