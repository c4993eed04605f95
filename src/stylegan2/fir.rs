//! FIR resampling of both image axes (zero insertion, padding, filtering, decimation) as one
//! CPU operation: along each axis out[o] = Σₖ c[k] · x↑[o·down + k − p₀], with x↑ the input
//! after zero insertion. The rows are filtered first, then the columns, each plane while it is
//! in cache. Its gradient is the same operation with up and down swapped and the taps reversed,
//! so it differentiates to any order (R1 and path length back-propagate through gradients).

use crate::conv::f32_input;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// The same 1-D resampling applied along the last two axes of an [N, C, H, W] tensor: taps `c`
/// (ordered and scaled), `up`, `down`, `p0` zeros before the zero-inserted input, and the output
/// plane (rows, columns).
#[derive(Debug, Clone)]
pub struct Fir2d {
    pub taps: Vec<f32>,
    pub up: usize,
    pub down: usize,
    pub p0: isize,
    pub out: (usize, usize),
}

/// Per-task buffers: the padded rows, their phases (every `down`-th sample from each offset),
/// and the plane after the row pass.
#[derive(Default)]
struct Scratch {
    padded: Vec<f32>,
    phases: Vec<f32>,
    rows: Vec<f32>,
}

impl Fir2d {
    /// The input index i and tap reaching output `o` along an axis of `len` inputs, in tap order.
    fn contributions(&self, o: usize, len: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        self.taps.iter().enumerate().filter_map(move |(k, &c)| {
            let j = (o * self.down) as isize + k as isize - self.p0;
            let i = j as usize / self.up;
            (j >= 0 && (j as usize).is_multiple_of(self.up) && i < len).then_some((i, c))
        })
    }

    /// The adjoint map back to an (h, w) input plane: the gradient.
    fn adjoint(&self, (h, w): (usize, usize)) -> Fir2d {
        Fir2d {
            taps: self.taps.iter().rev().copied().collect(),
            up: self.down,
            down: self.up,
            p0: self.taps.len() as isize - 1 - self.p0,
            out: (h, w),
        }
    }

    pub fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.contiguous()?.apply_op1(self.clone())
    }

    /// One [h, w] plane into its [ho, wo] output: the rows, then the columns (each output row a
    /// sum of whole filtered rows). The rows are zero-inserted and padded to `row_len` samples
    /// and split into `down` phases, one after another, so that every tap is one vectorised pass
    /// over the whole plane (a row's last outputs then read the next row: they are dropped).
    fn resample_plane(
        &self,
        src: &[f32],
        (h, w): (usize, usize),
        dst: &mut [f32],
        s: &mut Scratch,
    ) {
        let (down, taps, wo) = (self.down, self.taps.len(), self.out.1);
        // Per row and phase: the outputs, then the samples the last of them reaches.
        let phase_len = wo + taps.div_ceil(down);
        let row_len = phase_len * down;
        s.padded.clear();
        s.padded.resize(h * row_len, 0.0);
        // Input i lands at i·up + p0: the inputs [first, end) land inside the padded row.
        let (up, p0) = (self.up, self.p0);
        let first = ((-p0).max(0) as usize).div_ceil(up);
        let end = ((row_len as isize - p0).max(0) as usize)
            .div_ceil(up)
            .min(w);
        if first < end {
            let at = ((first * up) as isize + p0) as usize;
            for (row, padded) in src.chunks_exact(w).zip(s.padded.chunks_exact_mut(row_len)) {
                let inputs = &row[first..end];
                if up == 1 {
                    padded[at..at + inputs.len()].copy_from_slice(inputs);
                } else {
                    let slots = padded[at..].iter_mut().step_by(up);
                    slots.zip(inputs).for_each(|(d, &v)| *d = v);
                }
            }
        }
        let plane = h * phase_len;
        let phases: &[f32] = if down == 1 {
            &s.padded
        } else {
            s.phases.clear();
            s.phases.resize(down * plane, 0.0);
            for (m, samples) in s.padded.chunks_exact(down).enumerate() {
                for (r, &v) in samples.iter().enumerate() {
                    s.phases[r * plane + m] = v;
                }
            }
            &s.phases
        };
        let mut rows = std::mem::take(&mut s.rows);
        rows.clear();
        rows.resize(plane, 0.0);
        for (k, &c) in self.taps.iter().enumerate() {
            // The last row's final outputs would read past its phase: they are dropped anyway.
            let len = plane - k / down;
            let from = &phases[(k % down) * plane + k / down..][..len];
            rows[..len]
                .iter_mut()
                .zip(from)
                .for_each(|(d, x)| *d += c * x);
        }
        for (o, out) in dst.chunks_exact_mut(wo).enumerate() {
            out.fill(0.0);
            for (i, c) in self.contributions(o, h) {
                let from = &rows[i * phase_len..][..wo];
                out.iter_mut().zip(from).for_each(|(d, x)| *d += c * x);
            }
        }
        s.rows = rows;
    }
}

impl CustomOp1 for Fir2d {
    fn name(&self) -> &'static str {
        "fir2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = f32_input(storage, layout, "fir2d")?;
        let (n, c, h, w) = layout.shape().dims4()?;
        let (ho, wo) = self.out;
        let mut out = vec![0f32; n * c * ho * wo];
        if h * w > 0 && ho * wo > 0 {
            out.par_chunks_mut(ho * wo)
                .zip(input.par_chunks(h * w))
                .for_each_init(Scratch::default, |s, (dst, src)| {
                    self.resample_plane(src, (h, w), dst, s)
                });
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (_, _, h, w) = arg.dims4()?;
        Ok(Some(self.adjoint((h, w)).apply(grad)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::resample::{upfirdn2d_taps, upfirdn_axis};
    use crate::test_util::relative_diff;
    use candle_core::{DType, Device, Tensor, Var};

    /// Resampling settings the networks and the augmentation use: 2× up and down with the
    /// [1, 3, 3, 1] filter, crops (negative padding), a 12-tap filter, no resampling.
    /// Taps, flip_filter, (up, down), padding.
    type Case = (&'static [f64], bool, (usize, usize), (isize, isize));
    const TWELVE: [f64; 12] = [
        0.1, -0.2, 0.3, 0.9, 0.5, -0.4, 0.2, 0.1, -0.1, 0.05, 0.3, 0.2,
    ];
    const CASES: [Case; 6] = [
        (&[1.0, 3.0, 3.0, 1.0], false, (2, 1), (2, 1)),
        (&[1.0, 3.0, 3.0, 1.0], false, (1, 2), (1, 1)),
        (&[1.0, 3.0, 3.0, 1.0], false, (1, 1), (-1, 2)),
        (&[1.0, 3.0, 3.0, 1.0], false, (1, 1), (2, 2)),
        (&TWELVE, true, (2, 1), (6, 5)),
        (&TWELVE, true, (1, 2), (-2, -3)),
    ];

    /// max |a − b| / max |b| against an f64 reference.
    fn relative_error(a: &Tensor, reference: &Tensor) -> f32 {
        relative_diff(a, &reference.to_dtype(DType::F32).unwrap())
    }

    /// The columns, then the rows, resampled with tensor slices (f64 tensors take that path).
    fn sliced(x: &Tensor, (taps, flip, updown, pad): Case) -> Tensor {
        let y = upfirdn_axis(x, 3, taps, flip, updown, pad, 1.5).unwrap();
        upfirdn_axis(&y, 2, taps, flip, updown, pad, 1.5).unwrap()
    }

    /// ⟨f(x), y⟩ and its gradient with respect to `x`.
    fn dot_and_grad(x: &Tensor, y: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> (Tensor, Tensor) {
        let var = Var::from_tensor(x).unwrap();
        let dot = (f(var.as_tensor()) * y).unwrap().sum_all().unwrap();
        let grad = dot
            .backward()
            .unwrap()
            .get(var.as_tensor())
            .unwrap()
            .clone();
        (dot, grad)
    }

    #[test]
    fn equals_the_sliced_version_and_its_gradient_is_the_adjoint() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 20, 19), &dev).unwrap();
        let x64 = x.to_dtype(DType::F64).unwrap();
        for case @ (taps, flip, updown, pad) in CASES {
            let plane = |x: &Tensor| upfirdn2d_taps(x, taps, flip, updown, pad, 1.5).unwrap();
            let fast = plane(&x);
            let want = sliced(&x64, case);
            assert_eq!(fast.dims(), want.dims());
            let err = relative_error(&fast, &want);
            assert!(err < 1e-5, "{taps:?} {updown:?} {pad:?}: {err}");
            // ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ with Aᵀ y the gradient of ⟨A x, y⟩.
            let y = Tensor::randn(0f32, 1.0, fast.shape(), &dev).unwrap();
            let (dot, grad) = dot_and_grad(&x, &y, plane);
            let lhs = dot.to_scalar::<f32>().unwrap();
            let rhs = (&x * &grad).unwrap().sum_all().unwrap();
            let rhs = rhs.to_scalar::<f32>().unwrap();
            assert!(
                (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
                "{lhs} vs {rhs}"
            );
            let y64 = y.to_dtype(DType::F64).unwrap();
            let (_, want_grad) = dot_and_grad(&x64, &y64, |x| sliced(x, case));
            let err = relative_error(&grad, &want_grad);
            assert!(err < 1e-5, "gradient {taps:?} {updown:?} {pad:?}: {err}");
        }
    }
}
