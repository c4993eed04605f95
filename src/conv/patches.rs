//! Patch extraction (im2col) and its adjoint (col2im) on CPU data, and as operations whose
//! backward passes are each other.

use super::f32_input;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// The geometry of a patch extraction: input [n, c, h, w], kernel (kh, kw), zero padding
/// (ph, pw), stride; output [n, c·kh·kw, ho·wo].
#[derive(Debug, Clone, Copy)]
pub(super) struct Patches {
    pub(super) n: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) ph: usize,
    pub(super) pw: usize,
    pub(super) stride: usize,
    pub(super) ho: usize,
    pub(super) wo: usize,
    /// Distance between the starts of two rows of the columns (ho·wo unless aligned).
    pub(super) row_stride: usize,
}

impl Patches {
    /// The patches of an [n, c, h, w] input for a (kh, kw) kernel, padding (ph, pw) and stride.
    pub(super) fn new(
        (n, c, h, w): (usize, usize, usize, usize),
        (kh, kw): (usize, usize),
        (ph, pw): (usize, usize),
        stride: usize,
    ) -> Self {
        let (ho, wo) = (
            (h + 2 * ph - kh) / stride + 1,
            (w + 2 * pw - kw) / stride + 1,
        );
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
            ho,
            wo,
            row_stride: ho * wo,
        }
    }

    /// The same patches with the rows of the columns 16 values apart from a multiple of 1024:
    /// rows 4 KiB apart map to the same cache sets, which slowed the products reading or
    /// writing them by about a sixth.
    pub(super) fn with_aligned_rows(self) -> Self {
        let pixels = self.ho * self.wo;
        let row_stride = if pixels.is_multiple_of(1024) {
            pixels + 16
        } else {
            pixels
        };
        Patches { row_stride, ..self }
    }

    pub(super) fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    pub(super) fn columns_len(&self) -> usize {
        self.c * self.kh * self.kw * self.row_stride
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
                    let row = ((c * self.kh + i) * self.kw + j) * self.row_stride;
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
pub(super) struct Unfold(pub(super) Patches);

/// col2im, the adjoint of [`Unfold`]: [n, c·kh·kw, ho·wo] → [n, c, h, w], overlaps summed.
pub(super) struct Fold(pub(super) Patches);

/// The patches of one image as [c·kh·kw, ho·wo] columns, written over `columns` except where
/// they fall in the zero padding: those values must be zero already (a zeroed buffer, or one
/// that only this function has written for the same geometry).
pub(super) fn im2col_image(p: Patches, image: &[f32], columns: &mut [f32]) {
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

/// The adjoint of [`im2col_image`]: one image's columns added into `image` (zeroed by the
/// caller).
pub(super) fn col2im_image(p: Patches, columns: &[f32], image: &mut [f32]) {
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
