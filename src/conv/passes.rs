//! The CPU passes of the convolution and the transposed convolution: image by image, patches
//! and matrix products, with an optional epilogue or per-image modulation of the kernel.

use super::modulation::{ModulatedData, Modulation};
use super::patches::{col2im_image, im2col_image, Patches};
use super::Epilogue;
use rayon::prelude::*;

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
        Mat::with_row_stride(data, rows, cols, cols)
    }

    /// The [rows, cols] matrix whose rows start `row_stride` values apart in `data`.
    fn with_row_stride(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(
            rows == 0 || data.len() >= (rows - 1) * row_stride + cols,
            "matrix data too short"
        );
        Mat {
            data,
            rows,
            cols,
            row_stride,
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
    assert_eq!(dst.len(), lhs.rows * rhs.cols);
    matmul_into_rows(dst, rhs.cols, lhs, rhs, accumulate, threads);
}

/// [`matmul_into`] with the rows of `dst` `row_stride` values apart (the values between rows
/// are left as they are).
fn matmul_into_rows(
    dst: &mut [f32],
    row_stride: usize,
    lhs: Mat,
    rhs: Mat,
    accumulate: bool,
    threads: usize,
) {
    assert!(lhs.cols == rhs.rows && row_stride >= rhs.cols);
    assert!(lhs.rows == 0 || dst.len() >= (lhs.rows - 1) * row_stride + rhs.cols);
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
            row_stride as isize,
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

/// The convolution's forward pass on CPU data: for each image, its patches times the kernel
/// matrix, then the epilogue with its per-channel bias when there is one (while the image's
/// outputs are in cache).
pub(super) fn conv_forward(
    p: Patches,
    out_channels: usize,
    input: &[f32],
    kernel: &[f32],
    epilogue: Option<(&dyn Epilogue, &[f32])>,
    modulated: Option<ModulatedData>,
) -> Vec<f32> {
    let p = p.with_aligned_rows();
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
        let columns = Mat::with_row_stride(columns, rows, pixels, p.row_stride);
        matmul_into(y, kernel, columns, false, threads);
        if let Some((epilogue, bias)) = epilogue {
            epilogue.apply(y, bias);
        }
    });
    out
}

/// One task's buffers in the backward passes below.
struct Scratch {
    /// Patches (written by im2col only, so their padding stays zero) and, separately, the
    /// product that col2im sums back into an image.
    patches: Vec<f32>,
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
    /// Chains image `i`'s kernel gradient (in `own_kernel_grad`, the kernel's layout) through
    /// its modulation: into the task's kernel gradient and the image's scales' gradients.
    fn chain_modulation(&mut self, m: Modulation, kernel: &[f32], scales: &[f32], i: usize) {
        let mut grad_scales = vec![0f32; m.scales_len()];
        let total = self.kernel_grad.as_mut();
        let image_scales = m.image_scales(scales, i);
        m.chain(
            kernel,
            image_scales,
            &self.own_kernel_grad,
            total,
            &mut grad_scales,
        );
        self.scales_grads.push((i, grad_scales));
    }

    fn new(patches: usize, columns: usize, transposed: usize, kernel: Option<usize>) -> Self {
        Scratch {
            patches: vec![0f32; patches],
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
pub(super) struct Wanted {
    pub(super) input: bool,
    pub(super) kernel: bool,
}

/// A fused convolution's epilogue and its outputs, which its gradient is read from.
type Through<'a> = (&'a dyn Epilogue, &'a [f32]);

/// The convolution's plain gradients: of the input, the kernel, (through an epilogue) the bias
/// and (modulated) the scales, the first two only when wanted.
pub(super) struct ConvGrads {
    pub(super) input: Option<Vec<f32>>,
    pub(super) kernel: Option<Vec<f32>>,
    pub(super) bias: Option<Vec<f32>>,
    /// Modulated: the scales' gradients, [N, C + O].
    pub(super) scales: Option<Vec<f32>>,
}

/// The convolution's backward pass on CPU data, as plain numbers (not differentiable again):
/// per image, the gradient at the product (through the epilogue, if any, whose channel sums
/// give the bias gradient), then the input gradient (kernelᵀ · that gradient, summed back into
/// the image) and the kernel gradient's share (patches · gradientᵀ, transposed at the end),
/// each only when wanted.
pub(super) fn conv_backward(
    p: Patches,
    out_channels: usize,
    (input, kernel, grad): GradData,
    wanted: Wanted,
    through: Option<Through>,
    modulated: Option<ModulatedData>,
) -> ConvGrads {
    let p = p.with_aligned_rows();
    let (o, rows, pixels) = (out_channels, p.c * p.kh * p.kw, p.ho * p.wo);
    let mut grad_x = wanted.input.then(|| vec![0f32; p.n * p.image_len()]);
    // Modulated, each image's kernel gradient also gives its scales' gradients.
    let kernel_products = wanted.kernel || modulated.is_some();
    let transposed = if kernel_products { pixels * o } else { 0 };
    let init = || {
        let patches = if kernel_products { p.columns_len() } else { 0 };
        let columns = if wanted.input { p.columns_len() } else { 0 };
        let mut s = Scratch::new(
            patches,
            columns,
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
            matmul_into_rows(
                &mut s.columns,
                p.row_stride,
                kernel_t,
                Mat::new(g, o, pixels),
                false,
                threads,
            );
            col2im_image(p, &s.columns, grad_x);
        }
        if kernel_products {
            im2col_image(p, &input[i * p.image_len()..], &mut s.patches);
            // A transposed (strided) operand would slow the product more than this copy costs.
            transpose_into(g, o, pixels, &mut s.transposed);
            let columns = Mat::with_row_stride(&s.patches, rows, pixels, p.row_stride);
            let g_t = Mat::new(&s.transposed, pixels, o);
            match modulated {
                Some((m, scales)) => {
                    // Computed transposed ([C·taps, O]; over the image's kernel, no longer
                    // needed), chained in the kernel's layout.
                    s.own_kernel.resize(rows * o, 0.0);
                    matmul_into(&mut s.own_kernel, columns, g_t, false, threads);
                    s.own_kernel_grad.resize(rows * o, 0.0);
                    transpose_into(&s.own_kernel, rows, o, &mut s.own_kernel_grad);
                    s.chain_modulation(m, kernel, scales, i);
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
pub(super) fn transposed_forward(
    p: Patches,
    in_channels: usize,
    input: &[f32],
    matrix: &[f32],
    modulated: Option<ModulatedData>,
) -> Vec<f32> {
    let p = p.with_aligned_rows();
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
        matmul_into_rows(columns, p.row_stride, matrix, x, false, threads);
        col2im_image(p, columns, image);
    });
    out
}

/// Its backward pass, as plain numbers: per image, the output gradient's patches give the input
/// gradient (matrixᵀ · patches) and the matrix gradient's share (patches · inputᵀ), each only
/// when wanted (modulated, the latter also gives the scales' gradients).
pub(super) fn transposed_backward(
    p: Patches,
    in_channels: usize,
    (input, matrix, grad): GradData,
    wanted: Wanted,
    modulated: Option<ModulatedData>,
) -> ConvGrads {
    let p = p.with_aligned_rows();
    let (c, rows, pixels) = (in_channels, p.c * p.kh * p.kw, p.ho * p.wo);
    let mut grad_x = wanted.input.then(|| vec![0f32; p.n * c * pixels]);
    let matrix_products = wanted.kernel || modulated.is_some();
    let transposed = if matrix_products { pixels * c } else { 0 };
    let init = || {
        Scratch::new(
            p.columns_len(),
            0,
            transposed,
            wanted.kernel.then_some(rows * c),
        )
    };
    let outs = image_chunks(grad_x.as_mut(), p.n);
    let tasks = over_images(outs, init, |s, i, grad_x, threads| {
        im2col_image(p, &grad[i * p.image_len()..], &mut s.patches);
        let columns = Mat::with_row_stride(&s.patches, rows, pixels, p.row_stride);
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
                    s.chain_modulation(m, matrix, scales, i);
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

/// An operation's input, kernel and output gradient as CPU data.
pub(super) type GradData<'a> = (&'a [f32], &'a [f32], &'a [f32]);
