//! Convolution as matrix products: the patches of the input times the kernel as a matrix.
//! Forward and backward are then patch copies and matrix products.
//!
//! On the CPU a convolution is one custom operation that works image by image (an image's
//! patches are multiplied while they are in cache). Its backward pass gives plain gradients,
//! only of the operands that need one, unless the gradients will be differentiated again
//! ([`crate::train::gradients_are_differentiable`]); then it is written in differentiable
//! operations: patch extraction (im2col), whose backward is its adjoint (col2im, summing
//! overlapping patches) and vice versa, and matrix products. On other devices (and for other
//! dtypes) candle's own (transposed) convolution does the work, or patches written with strided
//! slices, which candle differentiates itself.
//!
//! A convolution may carry an [`Epilogue`] (bias, activation, gain, clamp): it then runs on each
//! image's outputs right after their product, and its gradient right before the backward
//! products, so neither its outputs nor their gradients make separate passes over memory.

use crate::backend::cpu_kernels;
use crate::Result;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

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

/// The geometry of a patch extraction: input [n, c, h, w], kernel (kh, kw), zero padding
/// (ph, pw), stride; output [n, c·kh·kw, ho·wo].
#[derive(Debug, Clone, Copy)]
struct Patches {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    ph: usize,
    pw: usize,
    stride: usize,
    ho: usize,
    wo: usize,
}

impl Patches {
    /// The patches of an [n, c, h, w] input for a (kh, kw) kernel, padding (ph, pw) and stride.
    fn new(
        (n, c, h, w): (usize, usize, usize, usize),
        (kh, kw): (usize, usize),
        (ph, pw): (usize, usize),
        stride: usize,
    ) -> Self {
        Patches {
            n,
            c,
            h,
            w,
            kh,
            kw,
            ph,
            pw,
            stride,
            ho: (h + 2 * ph - kh) / stride + 1,
            wo: (w + 2 * pw - kw) / stride + 1,
        }
    }

    fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn columns_len(&self) -> usize {
        self.c * self.kh * self.kw * self.ho * self.wo
    }

    /// Visits, for one image, every run of patch values that lie inside the image (values in
    /// the zero padding are skipped): `visit(column start, image start, length)`, the image
    /// index advancing by the stride along a run, the column index by one.
    fn for_each_run(&self, mut visit: impl FnMut(usize, usize, usize)) {
        let s = self.stride;
        // Output columns ox whose input column ox·s + j − pw lies in [0, w).
        let columns_inside = |j: usize| {
            let first = self.pw.saturating_sub(j).div_ceil(s);
            let end = (self.w + self.pw)
                .saturating_sub(j)
                .div_ceil(s)
                .min(self.wo);
            (first, end)
        };
        for c in 0..self.c {
            for i in 0..self.kh {
                for j in 0..self.kw {
                    let (first, end) = columns_inside(j);
                    if first >= end {
                        continue;
                    }
                    let row = ((c * self.kh + i) * self.kw + j) * self.ho * self.wo;
                    for oy in 0..self.ho {
                        let y = oy * s + i;
                        if y < self.ph || y >= self.h + self.ph {
                            continue;
                        }
                        let image_row = (c * self.h + y - self.ph) * self.w;
                        let x = first * s + j - self.pw;
                        visit(row + oy * self.wo + first, image_row + x, end - first);
                    }
                }
            }
        }
    }
}

/// im2col on the CPU: [n, c, h, w] → [n, c·kh·kw, ho·wo].
struct Unfold(Patches);
/// col2im, the adjoint of [`Unfold`]: [n, c·kh·kw, ho·wo] → [n, c, h, w], overlaps summed.
struct Fold(Patches);

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

/// The patches of one image as [c·kh·kw, ho·wo] columns, written over `columns` (without
/// padding every value is written; with it, the zeros too).
fn im2col_image(p: Patches, image: &[f32], columns: &mut [f32]) {
    if p.ph > 0 || p.pw > 0 {
        columns.fill(0.0);
    }
    p.for_each_run(|col, img, len| {
        let out = &mut columns[col..col + len];
        if p.stride == 1 {
            out.copy_from_slice(&image[img..img + len]);
        } else {
            for (o, v) in out.iter_mut().zip(image[img..].iter().step_by(p.stride)) {
                *o = *v;
            }
        }
    });
}

/// The patches of `input` (one image after another) as [n, c·kh·kw, ho·wo] columns.
fn im2col(p: Patches, input: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; p.n * p.columns_len()];
    out.par_chunks_mut(p.columns_len())
        .zip(input.par_chunks(p.image_len()))
        .for_each(|(columns, image)| im2col_image(p, image, columns));
    out
}

impl CustomOp1 for Unfold {
    fn name(&self) -> &'static str {
        "unfold"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let p = self.0;
        let out = im2col(p, f32_input(storage, layout, "unfold")?);
        let shape = Shape::from((p.n, p.c * p.kh * p.kw, p.ho * p.wo));
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Fold(self.0))?))
    }
}

/// The adjoint of [`im2col_image`]: one image's columns summed into `image` (zeroed first).
fn col2im_image(p: Patches, columns: &[f32], image: &mut [f32]) {
    image.fill(0.0);
    p.for_each_run(|col, img, len| {
        let columns = &columns[col..col + len];
        if p.stride == 1 {
            let run = &mut image[img..img + len];
            run.iter_mut().zip(columns).for_each(|(o, v)| *o += *v);
        } else {
            let run = image[img..].iter_mut().step_by(p.stride);
            run.zip(columns).for_each(|(o, v)| *o += *v);
        }
    });
}

/// The adjoint of [`im2col`]: columns summed back into [n, c, h, w] images.
fn col2im(p: Patches, columns: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; p.n * p.image_len()];
    out.par_chunks_mut(p.image_len())
        .zip(columns.par_chunks(p.columns_len()))
        .for_each(|(image, cols)| col2im_image(p, cols, image));
    out
}

impl CustomOp1 for Fold {
    fn name(&self) -> &'static str {
        "fold"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let p = self.0;
        let out = col2im(p, f32_input(storage, layout, "fold")?);
        Ok((CpuStorage::F32(out), Shape::from((p.n, p.c, p.h, p.w))))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Unfold(self.0))?))
    }
}

/// A matrix view of f32 data for [`matmul_into`]: row-major, or transposed by its strides.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    /// The row-major [rows, cols] matrix at the start of `data`.
    fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix data too short");
        Mat {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `dst` (row-major [lhs rows, rhs cols]) = lhs · rhs, or += with `accumulate`; the product
/// split over `threads`.
fn matmul_into(dst: &mut [f32], lhs: Mat, rhs: Mat, accumulate: bool, threads: usize) {
    assert!(lhs.cols == rhs.rows && dst.len() == lhs.rows * rhs.cols);
    let parallelism = match threads {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    };
    // SAFETY: every view lies inside its slice (checked when it was made; a transposed view
    // covers the same elements), and `dst`, borrowed mutably, overlaps neither operand.
    unsafe {
        gemm::gemm(
            lhs.rows,
            rhs.cols,
            lhs.cols,
            dst.as_mut_ptr(),
            1,
            rhs.cols as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// `src` [rows, cols] transposed into `dst` [cols, rows].
fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    for (r, row) in src.chunks(cols).take(rows).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
}

/// Runs `f(state, image index, output chunk, product threads)` for each image of a batch, with
/// one `state` per task (from `init`); `outs` holds each image's output chunk (empty when the
/// pass writes none). Whole images per task, their products on one thread, when there are at
/// least as many images as threads (an image's patches then stay in cache for its product);
/// else one image after another with the products split over the threads. Returns the tasks'
/// states.
fn over_images<S: Send>(
    outs: Vec<&mut [f32]>,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [f32], usize) + Sync + Send,
) -> Vec<S> {
    let (images, threads) = (outs.len(), rayon::current_num_threads());
    if images < threads {
        let mut state = init();
        for (i, chunk) in outs.into_iter().enumerate() {
            f(&mut state, i, chunk, threads);
        }
        return vec![state];
    }
    // At most one task (one state) per thread.
    outs.into_par_iter()
        .enumerate()
        .with_min_len(images.div_ceil(threads))
        .fold(&init, |mut state, (i, chunk)| {
            f(&mut state, i, chunk, 1);
            state
        })
        .collect()
}

/// `buffer` cut into `images` chunks, or as many empty chunks when there is no buffer.
fn image_chunks(buffer: Option<&mut Vec<f32>>, images: usize) -> Vec<&mut [f32]> {
    match buffer {
        Some(buffer) => {
            let len = buffer.len() / images.max(1);
            buffer.chunks_mut(len.max(1)).collect()
        }
        None => (0..images).map(|_| <&mut [f32]>::default()).collect(),
    }
}

/// The sum of the tasks' matrices.
fn sum_all(mut parts: Vec<Vec<f32>>) -> Vec<f32> {
    let mut total = parts.pop().unwrap_or_default();
    for part in parts {
        total.iter_mut().zip(&part).for_each(|(t, v)| *t += v);
    }
    total
}

/// How a kernel matrix stores weight[o, c, j] (output channel, input channel, tap).
#[derive(Debug, Clone, Copy)]
enum KernelLayout {
    /// A convolution's [O, C·taps].
    Conv,
    /// A transposed convolution's [O·taps, C].
    Transposed,
}

/// A per-image modulation of the kernel — StyleGAN2's modulated convolution in its fused form:
/// image n is convolved with weight[o, c, j] · s[n, c] · d[n, o], its scales [C + O] holding s
/// (the styles) and then d (the demodulation coefficients).
#[derive(Debug, Clone, Copy)]
struct Modulation {
    layout: KernelLayout,
    c: usize,
    o: usize,
    taps: usize,
}

impl Modulation {
    fn scales_len(&self) -> usize {
        self.c + self.o
    }

    /// Image `i`'s scales out of every image's.
    fn image_scales<'a>(&self, all: &'a [f32], i: usize) -> &'a [f32] {
        &all[i * self.scales_len()..(i + 1) * self.scales_len()]
    }

    /// The kernel matrix's columns and, for an image's scales, each row's d and each column's
    /// s (so that every pass below runs along contiguous rows).
    fn row_and_column_scales(&self, scales: &[f32]) -> (usize, Vec<f32>, Vec<f32>) {
        let (s, d) = scales.split_at(self.c);
        let repeat = |v: &[f32], times: usize| -> Vec<f32> {
            v.iter()
                .flat_map(|&x| std::iter::repeat_n(x, times))
                .collect()
        };
        match self.layout {
            KernelLayout::Conv => (self.c * self.taps, d.to_vec(), repeat(s, self.taps)),
            KernelLayout::Transposed => (self.c, repeat(d, self.taps), s.to_vec()),
        }
    }

    /// One image's kernel: (weight · s) · d, the reference's order.
    fn modulate(&self, kernel: &[f32], scales: &[f32], dst: &mut Vec<f32>) {
        let (cols, row_d, col_s) = self.row_and_column_scales(scales);
        dst.resize(kernel.len(), 0.0);
        let rows = dst.chunks_exact_mut(cols).zip(kernel.chunks_exact(cols));
        for ((dst, w), &d) in rows.zip(&row_d) {
            for ((v, &w), &s) in dst.iter_mut().zip(w).zip(&col_s) {
                *v = w * s * d;
            }
        }
    }

    /// Chains one image's kernel gradient `grad` (the kernel's layout) to the shared kernel's
    /// gradient (added to `grad_kernel`) and to the image's scales (`grad_scales`, [C + O]).
    fn chain(
        &self,
        kernel: &[f32],
        scales: &[f32],
        grad: &[f32],
        grad_kernel: Option<&mut Vec<f32>>,
        grad_scales: &mut [f32],
    ) {
        let (cols, row_d, col_s) = self.row_and_column_scales(scales);
        let mut grad_row = vec![0f32; row_d.len()];
        let mut grad_col = vec![0f32; cols];
        let rows = grad.chunks_exact(cols).zip(kernel.chunks_exact(cols));
        for (r, (g, w)) in rows.enumerate() {
            let d = row_d[r];
            let mut row_total = 0f32;
            for (((&g, &w), &s), col_total) in g.iter().zip(w).zip(&col_s).zip(&mut grad_col) {
                let through_weight = g * w;
                *col_total += through_weight * d;
                row_total += through_weight * s;
            }
            grad_row[r] = row_total;
        }
        if let Some(total) = grad_kernel {
            let rows = total.chunks_exact_mut(cols).zip(grad.chunks_exact(cols));
            for ((total, g), &d) in rows.zip(&row_d) {
                for ((t, &g), &s) in total.iter_mut().zip(g).zip(&col_s) {
                    *t += g * s * d;
                }
            }
        }
        // Back from rows and columns to the channels (summed over the taps).
        let (grad_s, grad_d) = grad_scales.split_at_mut(self.c);
        let (per_s, per_d) = match self.layout {
            KernelLayout::Conv => (self.taps, 1),
            KernelLayout::Transposed => (1, self.taps),
        };
        for (s, taps) in grad_s.iter_mut().zip(grad_col.chunks_exact(per_s)) {
            *s += taps.iter().sum::<f32>();
        }
        for (d, taps) in grad_d.iter_mut().zip(grad_row.chunks_exact(per_d)) {
            *d += taps.iter().sum::<f32>();
        }
    }
}

/// A modulation and the scales of every image ([N, C + O]).
type ModulatedData<'a> = (Modulation, &'a [f32]);

/// The convolution's forward pass on CPU data: for each image, its patches times the kernel
/// matrix, then the epilogue with its per-channel bias when there is one (while the image's
/// outputs are in cache).
fn conv_forward(
    p: Patches,
    out_channels: usize,
    input: &[f32],
    kernel: &[f32],
    epilogue: Option<(&dyn Epilogue, &[f32])>,
    modulated: Option<ModulatedData>,
) -> Vec<f32> {
    let (rows, pixels) = (p.c * p.kh * p.kw, p.ho * p.wo);
    let mut out = vec![0f32; p.n * out_channels * pixels];
    let outs = image_chunks(Some(&mut out), p.n);
    let init = || (Vec::new(), Vec::new());
    over_images(outs, init, |(columns, own_kernel), i, y, threads| {
        columns.resize(p.columns_len(), 0.0);
        im2col_image(p, &input[i * p.image_len()..], columns);
        let kernel = match modulated {
            Some((m, scales)) => {
                m.modulate(kernel, m.image_scales(scales, i), own_kernel);
                Mat::new(own_kernel, out_channels, rows)
            }
            None => Mat::new(kernel, out_channels, rows),
        };
        matmul_into(y, kernel, Mat::new(columns, rows, pixels), false, threads);
        if let Some((epilogue, bias)) = epilogue {
            epilogue.apply(y, bias);
        }
    });
    out
}

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
            let mut total = 0f32;
            for (d, (&yv, &gv)) in dst.iter_mut().zip(y.iter().zip(g)) {
                *d = gv * self.slope_at(yv);
                total += *d;
            }
            *sum += total;
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

/// One task's buffers in the backward passes below.
struct Scratch {
    columns: Vec<f32>,
    transposed: Vec<f32>,
    /// The task's share of the kernel gradient (a sum over its images), when it is wanted.
    kernel_grad: Option<Vec<f32>>,
    /// Through an epilogue: one image's gradient at the product, and the task's share of the
    /// bias gradient.
    product_grad: Vec<f32>,
    bias_grad: Vec<f32>,
    /// Modulated: one image's kernel and its gradient, and the scales' gradients of the task's
    /// images (image index, [C + O]).
    own_kernel: Vec<f32>,
    own_kernel_grad: Vec<f32>,
    scales_grads: Vec<(usize, Vec<f32>)>,
}

impl Scratch {
    fn new(columns: usize, transposed: usize, kernel: Option<usize>) -> Self {
        Scratch {
            columns: vec![0f32; columns],
            transposed: vec![0f32; transposed],
            kernel_grad: kernel.map(|len| vec![0f32; len]),
            product_grad: Vec::new(),
            bias_grad: Vec::new(),
            own_kernel: Vec::new(),
            own_kernel_grad: Vec::new(),
            scales_grads: Vec::new(),
        }
    }
}

/// The tasks' kernel-gradient shares summed, when they were computed.
fn kernel_grad(tasks: Vec<Scratch>) -> Option<Vec<f32>> {
    let parts: Option<Vec<Vec<f32>>> = tasks.into_iter().map(|s| s.kernel_grad).collect();
    parts.map(sum_all)
}

/// The gradients a backward pass asks for: of the input, of the kernel.
#[derive(Clone, Copy)]
struct Wanted {
    input: bool,
    kernel: bool,
}

/// A fused convolution's epilogue and its outputs, which its gradient is read from.
type Through<'a> = (&'a dyn Epilogue, &'a [f32]);

/// The convolution's plain gradients: of the input, the kernel, (through an epilogue) the bias
/// and (modulated) the scales, the first two only when wanted.
struct ConvGrads {
    input: Option<Vec<f32>>,
    kernel: Option<Vec<f32>>,
    bias: Option<Vec<f32>>,
    /// Modulated: the scales' gradients, [N, C + O].
    scales: Option<Vec<f32>>,
}

/// The convolution's backward pass on CPU data, as plain numbers (not differentiable again):
/// per image, the gradient at the product (through the epilogue, if any, whose channel sums
/// give the bias gradient), then the input gradient (kernelᵀ · that gradient, summed back into
/// the image) and the kernel gradient's share (patches · gradientᵀ, transposed at the end),
/// each only when wanted.
fn conv_backward(
    p: Patches,
    out_channels: usize,
    (input, kernel, grad): GradData,
    wanted: Wanted,
    through: Option<Through>,
    modulated: Option<ModulatedData>,
) -> ConvGrads {
    let (o, rows, pixels) = (out_channels, p.c * p.kh * p.kw, p.ho * p.wo);
    let mut grad_x = wanted.input.then(|| vec![0f32; p.n * p.image_len()]);
    // Modulated, each image's kernel gradient also gives its scales' gradients.
    let kernel_products = wanted.kernel || modulated.is_some();
    let transposed = if kernel_products { pixels * o } else { 0 };
    let init = || {
        let mut s = Scratch::new(
            p.columns_len(),
            transposed,
            wanted.kernel.then_some(rows * o),
        );
        if through.is_some() {
            (s.product_grad, s.bias_grad) = (vec![0f32; o * pixels], vec![0f32; o]);
        }
        s
    };
    let outs = image_chunks(grad_x.as_mut(), p.n);
    let tasks = over_images(outs, init, |s, i, grad_x, threads| {
        let image = i * o * pixels..(i + 1) * o * pixels;
        let g = match through {
            Some((epilogue, outputs)) => {
                let (y, g) = (&outputs[image.clone()], &grad[image]);
                epilogue.input_grad(y, g, &mut s.product_grad, &mut s.bias_grad);
                &s.product_grad
            }
            None => &grad[image],
        };
        let own_kernel = match modulated {
            Some((m, scales)) => {
                m.modulate(kernel, m.image_scales(scales, i), &mut s.own_kernel);
                &s.own_kernel
            }
            None => kernel,
        };
        if wanted.input {
            let kernel_t = Mat::new(own_kernel, o, rows).t();
            matmul_into(
                &mut s.columns,
                kernel_t,
                Mat::new(g, o, pixels),
                false,
                threads,
            );
            col2im_image(p, &s.columns, grad_x);
        }
        if kernel_products {
            im2col_image(p, &input[i * p.image_len()..], &mut s.columns);
            // A transposed (strided) operand would slow the product more than this copy costs.
            transpose_into(g, o, pixels, &mut s.transposed);
            let columns = Mat::new(&s.columns, rows, pixels);
            let g_t = Mat::new(&s.transposed, pixels, o);
            match modulated {
                Some((m, scales)) => {
                    // Computed transposed ([C·taps, O]; over the image's kernel, no longer
                    // needed), chained in the kernel's layout.
                    s.own_kernel.resize(rows * o, 0.0);
                    matmul_into(&mut s.own_kernel, columns, g_t, false, threads);
                    s.own_kernel_grad.resize(rows * o, 0.0);
                    transpose_into(&s.own_kernel, rows, o, &mut s.own_kernel_grad);
                    let mut grad_scales = vec![0f32; m.scales_len()];
                    let image_scales = m.image_scales(scales, i);
                    let total = s.kernel_grad.as_mut();
                    m.chain(
                        kernel,
                        image_scales,
                        &s.own_kernel_grad,
                        total,
                        &mut grad_scales,
                    );
                    s.scales_grads.push((i, grad_scales));
                }
                None => {
                    let total = s
                        .kernel_grad
                        .as_mut()
                        .expect("the kernel gradient is wanted");
                    matmul_into(total, columns, g_t, true, threads);
                }
            }
        }
    });
    let bias = through.map(|_| sum_all(tasks.iter().map(|s| s.bias_grad.clone()).collect()));
    let scales = modulated.map(|(m, _)| scales_grads(m, p.n, &tasks));
    let kernel = kernel_grad(tasks).map(|sum| {
        if modulated.is_some() {
            return sum;
        }
        let mut sum_t = vec![0f32; o * rows];
        transpose_into(&sum, rows, o, &mut sum_t);
        sum_t
    });
    ConvGrads {
        input: grad_x,
        kernel,
        bias,
        scales,
    }
}

/// The scales' gradients of every image ([N, C + O]), gathered from the tasks.
fn scales_grads(m: Modulation, images: usize, tasks: &[Scratch]) -> Vec<f32> {
    let len = m.scales_len();
    let mut all = vec![0f32; images * len];
    for (i, grad) in tasks.iter().flat_map(|s| &s.scales_grads) {
        all[i * len..(i + 1) * len].copy_from_slice(grad);
    }
    all
}

/// The transposed convolution's forward pass on CPU data: per image, the kernel rows (each
/// image's own when modulated) times the input pixels, summed into the output image (col2im).
fn transposed_forward(
    p: Patches,
    in_channels: usize,
    input: &[f32],
    matrix: &[f32],
    modulated: Option<ModulatedData>,
) -> Vec<f32> {
    let (rows, pixels) = (p.c * p.kh * p.kw, p.ho * p.wo);
    let mut out = vec![0f32; p.n * p.image_len()];
    let outs = image_chunks(Some(&mut out), p.n);
    let init = || (Vec::new(), Vec::new());
    over_images(outs, init, |(columns, own_matrix), i, image, threads| {
        columns.resize(p.columns_len(), 0.0);
        let matrix = match modulated {
            Some((m, scales)) => {
                m.modulate(matrix, m.image_scales(scales, i), own_matrix);
                Mat::new(own_matrix, rows, in_channels)
            }
            None => Mat::new(matrix, rows, in_channels),
        };
        let x = Mat::new(&input[i * in_channels * pixels..], in_channels, pixels);
        matmul_into(columns, matrix, x, false, threads);
        col2im_image(p, columns, image);
    });
    out
}

/// Its backward pass, as plain numbers: per image, the output gradient's patches give the input
/// gradient (matrixᵀ · patches) and the matrix gradient's share (patches · inputᵀ), each only
/// when wanted (modulated, the latter also gives the scales' gradients).
fn transposed_backward(
    p: Patches,
    in_channels: usize,
    (input, matrix, grad): GradData,
    wanted: Wanted,
    modulated: Option<ModulatedData>,
) -> ConvGrads {
    let (c, rows, pixels) = (in_channels, p.c * p.kh * p.kw, p.ho * p.wo);
    let mut grad_x = wanted.input.then(|| vec![0f32; p.n * c * pixels]);
    let matrix_products = wanted.kernel || modulated.is_some();
    let transposed = if matrix_products { pixels * c } else { 0 };
    let init = || {
        Scratch::new(
            p.columns_len(),
            transposed,
            wanted.kernel.then_some(rows * c),
        )
    };
    let outs = image_chunks(grad_x.as_mut(), p.n);
    let tasks = over_images(outs, init, |s, i, grad_x, threads| {
        im2col_image(p, &grad[i * p.image_len()..], &mut s.columns);
        let columns = Mat::new(&s.columns, rows, pixels);
        if wanted.input {
            let own_matrix = match modulated {
                Some((m, scales)) => {
                    m.modulate(matrix, m.image_scales(scales, i), &mut s.own_kernel);
                    &s.own_kernel
                }
                None => matrix,
            };
            let matrix_t = Mat::new(own_matrix, rows, c).t();
            matmul_into(grad_x, matrix_t, columns, false, threads);
        }
        if matrix_products {
            transpose_into(&input[i * c * pixels..], c, pixels, &mut s.transposed);
            let x_t = Mat::new(&s.transposed, pixels, c);
            match modulated {
                Some((m, scales)) => {
                    s.own_kernel_grad.resize(rows * c, 0.0);
                    matmul_into(&mut s.own_kernel_grad, columns, x_t, false, threads);
                    let mut grad_scales = vec![0f32; m.scales_len()];
                    let image_scales = m.image_scales(scales, i);
                    let total = s.kernel_grad.as_mut();
                    m.chain(
                        matrix,
                        image_scales,
                        &s.own_kernel_grad,
                        total,
                        &mut grad_scales,
                    );
                    s.scales_grads.push((i, grad_scales));
                }
                None => {
                    let total = s
                        .kernel_grad
                        .as_mut()
                        .expect("the matrix gradient is wanted");
                    matmul_into(total, columns, x_t, true, threads);
                }
            }
        }
    });
    let scales = modulated.map(|(m, _)| scales_grads(m, p.n, &tasks));
    ConvGrads {
        input: grad_x,
        kernel: kernel_grad(tasks),
        bias: None,
        scales,
    }
}

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

/// An operation's input, kernel and output gradient as CPU data.
type GradData<'a> = (&'a [f32], &'a [f32], &'a [f32]);

/// Runs `f` on the f32 data of a CPU tensor (made contiguous).
pub(crate) fn with_cpu_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("expects a CPU tensor");
    };
    Ok(f(f32_input(cpu, layout, "a CPU operation")?))
}

/// Σ over the first axis of a contiguous [n, r, c] tensor as a product with a row of ones
/// (candle's reduction over a leading axis walks memory with a stride).
fn batch_sum(t: &Tensor) -> candle_core::Result<Tensor> {
    let (n, r, c) = t.dims3()?;
    let ones = Tensor::ones((1, n), t.dtype(), t.device())?;
    ones.matmul(&t.reshape((n, r * c))?)?.reshape((r, c))
}

/// A convolution as one operation: on the CPU, patches × kernel without the patches entering
/// the graph (the backward pass of a large patch tensor allocates, zeroes and sums buffers of its
/// size). The backward pass is written with differentiable operations — the patch extraction,
/// its adjoint and matrix products — so gradient penalties can differentiate it again.
#[derive(Clone)]
struct PatchConv {
    p: Patches,
    out_channels: usize,
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
        if !crate::train::gradients_are_differentiable() {
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
struct Modulated<K>(K);

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
        if !crate::train::gradients_are_differentiable() {
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
struct PatchConvThen<E> {
    conv: PatchConv,
    epilogue: E,
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
        if !crate::train::gradients_are_differentiable() {
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
/// instead of two); `None` where [`conv2d`] would not use its patch operation, for the caller
/// to apply the two steps.
pub(crate) fn conv2d_then<E: Epilogue + 'static>(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    padding: (usize, usize),
    stride: usize,
    epilogue: E,
) -> Result<Option<Tensor>> {
    let (o, _, kh, kw) = w.dims4()?;
    let patches = cpu_kernels(x) && cpu_kernels(w) && (kh, kw, stride) != (1, 1, 1);
    if !(patches && cpu_kernels(bias)) {
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
/// On the CPU one operation (kernel × input, then the patches' adjoint) whose backward is again
/// written in differentiable operations; elsewhere candle's own transposed convolution.
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

/// Kernel rows × input pixels, then the patches' adjoint (col2im): a transposed convolution.
#[derive(Clone)]
struct ColumnsToImage {
    /// The geometry of the output image's patches (one patch per input pixel).
    p: Patches,
    in_channels: usize,
}

impl ColumnsToImage {
    /// The operation for `x` [N, C, H, W], kernel `w` [O, C, k, k] and `stride`, with the
    /// kernel as its matrix [O·k·k, C] (the rows of the columns the kernel makes).
    fn new(x: &Tensor, w: &Tensor, stride: usize) -> Result<(Self, Tensor)> {
        let (n, c, h, width) = x.dims4()?;
        let (o, _, kh, kw) = w.dims4()?;
        let matrix = w.permute((0, 2, 3, 1))?.reshape((o * kh * kw, c))?;
        let p = Patches {
            n,
            c: o,
            h: (h - 1) * stride + kh,
            w: (width - 1) * stride + kw,
            kh,
            kw,
            ph: 0,
            pw: 0,
            stride,
            ho: h,
            wo: width,
        };
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

/// [`conv2d`] with the same padding on both axes.
pub fn conv2d_square(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    conv2d(x, w, (padding, padding), stride)
}

#[cfg(test)]
mod tests {
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
                let grads = crate::train::differentiable_backward(&loss).unwrap();
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
            let grads = crate::train::differentiable_backward(&loss).unwrap();
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
