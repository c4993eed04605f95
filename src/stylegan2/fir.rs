//! FIR resampling along one axis (zero insertion, padding, filtering, decimation) as one CPU
//! operation: out[o] = Σᵢ x[i] · c[i·up + p₀ − o·down]. Its gradient is the same operation
//! with up and down swapped and the taps reversed, so it differentiates to any order (R1 and
//! path length back-propagate through gradients) without the per-tap slices and additions
//! that made such passes allocate and zero memory for every tap.

use crate::conv::f32_input;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// The resampling of axis `dim`: taps `c` (ordered and scaled), `up`, `down`, `p0` zeros before
/// the zero-inserted input, `out_len` outputs.
#[derive(Debug, Clone)]
pub struct Fir {
    pub dim: usize,
    pub taps: Vec<f32>,
    pub up: usize,
    pub down: usize,
    pub p0: isize,
    pub out_len: usize,
}

impl Fir {
    /// For each output, the (input index, tap) pairs that reach it, in tap order.
    fn contributions(&self, in_len: usize) -> Vec<Vec<(usize, f32)>> {
        (0..self.out_len)
            .map(|o| {
                let mut pairs = Vec::new();
                for (k, &c) in self.taps.iter().enumerate() {
                    let j = (o * self.down) as isize + k as isize - self.p0;
                    if j >= 0
                        && (j as usize).is_multiple_of(self.up)
                        && (j as usize / self.up) < in_len
                    {
                        pairs.push((j as usize / self.up, c));
                    }
                }
                pairs
            })
            .collect()
    }

    /// The adjoint map (in_len outputs for this map's outputs): the gradient.
    fn adjoint(&self, in_len: usize) -> Fir {
        Fir {
            dim: self.dim,
            taps: self.taps.iter().rev().copied().collect(),
            up: self.down,
            down: self.up,
            p0: self.taps.len() as isize - 1 - self.p0,
            out_len: in_len,
        }
    }

    pub fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.contiguous()?.apply_op1(self.clone())
    }
}

/// The contributions as flat arrays: input indices, taps, and how many belong to each output.
fn flatten(contributions: &[Vec<(usize, f32)>]) -> (Vec<usize>, Vec<f32>, Vec<usize>) {
    let index = contributions.iter().flatten().map(|&(i, _)| i).collect();
    let taps = contributions.iter().flatten().map(|&(_, c)| c).collect();
    let counts = contributions.iter().map(Vec::len).collect();
    (index, taps, counts)
}

impl CustomOp1 for Fir {
    fn name(&self) -> &'static str {
        "fir"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = f32_input(storage, layout, "fir")?;
        let dims = layout.dims();
        let in_len = dims[self.dim];
        let inner: usize = dims[self.dim + 1..].iter().product();
        let (in_block, out_block) = (in_len * inner, self.out_len * inner);
        let outer = input.len() / in_block.max(1);
        let contributions = self.contributions(in_len);
        let mut out = vec![0f32; outer * out_block];
        if inner == 1 && self.up == 1 {
            // The last axis without zero insertion: out[o] = Σₖ c[k]·x[o·down + k − p₀], the
            // taps read in place where they all fall inside the row.
            let taps = &self.taps;
            let reach = |o: usize| (o * self.down) as isize - self.p0;
            let inside = |o: usize| reach(o) >= 0 && reach(o) as usize + taps.len() <= in_len;
            // Outputs [lo, hi) have every tap inside; without decimation they take one
            // vectorised pass per tap.
            let lo = (0..self.out_len)
                .find(|&o| inside(o))
                .unwrap_or(self.out_len);
            let hi = (lo..self.out_len)
                .find(|&o| !inside(o))
                .unwrap_or(self.out_len);
            out.par_chunks_mut(out_block)
                .zip(input.par_chunks(in_block))
                .for_each(|(dst, src)| {
                    for o in (0..lo).chain(hi..self.out_len) {
                        dst[o] = contributions[o].iter().map(|&(i, c)| c * src[i]).sum();
                    }
                    if self.down == 1 && lo < hi {
                        let start = reach(lo) as usize;
                        let interior = &mut dst[lo..hi];
                        interior.fill(0.0);
                        for (k, &c) in taps.iter().enumerate() {
                            let from = &src[start + k..start + k + interior.len()];
                            interior.iter_mut().zip(from).for_each(|(d, x)| *d += c * x);
                        }
                        return;
                    }
                    for (o, d) in dst.iter_mut().enumerate().take(hi).skip(lo) {
                        let window = &src[reach(o) as usize..][..taps.len()];
                        *d = window.iter().zip(taps).map(|(x, c)| c * x).sum();
                    }
                });
        } else if inner == 1 {
            // The last axis: one short row per task, its taps gathered by precomputed indices.
            let (index, taps, counts) = flatten(&contributions);
            out.par_chunks_mut(out_block)
                .zip(input.par_chunks(in_block))
                .for_each(|(dst, src)| {
                    let mut at = 0;
                    for (d, &count) in dst.iter_mut().zip(&counts) {
                        let mut acc = 0f32;
                        for t in at..at + count {
                            acc += taps[t] * src[index[t]];
                        }
                        *d = acc;
                        at += count;
                    }
                });
        } else {
            out.par_chunks_mut(out_block)
                .zip(input.par_chunks(in_block))
                .for_each(|(dst, src)| {
                    for (o, pairs) in contributions.iter().enumerate() {
                        let row = &mut dst[o * inner..(o + 1) * inner];
                        for &(i, c) in pairs {
                            let from = &src[i * inner..(i + 1) * inner];
                            for (d, s) in row.iter_mut().zip(from) {
                                *d += c * *s;
                            }
                        }
                    }
                });
        }
        let mut shape = dims.to_vec();
        shape[self.dim] = self.out_len;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let adjoint = self.adjoint(arg.dim(self.dim)?);
        Ok(Some(adjoint.apply(grad)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::ops::upfirdn_axis;
    use candle_core::{DType, Device, Tensor, Var};

    /// Resampling settings the networks and the augmentation use: 2× up and down with the
    /// [1, 3, 3, 1] filter, crops (negative padding), a 12-tap filter, no resampling.
    /// Taps, flip_filter, (up, down), padding.
    type Case = (&'static [f64], bool, (usize, usize), (isize, isize));
    const CASES: [Case; 5] = [
        (&[1.0, 3.0, 3.0, 1.0], false, (2, 1), (2, 1)),
        (&[1.0, 3.0, 3.0, 1.0], false, (1, 2), (1, 1)),
        (&[1.0, 3.0, 3.0, 1.0], false, (1, 1), (-1, 2)),
        (
            &[
                0.1, -0.2, 0.3, 0.9, 0.5, -0.4, 0.2, 0.1, -0.1, 0.05, 0.3, 0.2,
            ],
            true,
            (2, 1),
            (6, 5),
        ),
        (
            &[
                0.1, -0.2, 0.3, 0.9, 0.5, -0.4, 0.2, 0.1, -0.1, 0.05, 0.3, 0.2,
            ],
            true,
            (1, 2),
            (-2, -3),
        ),
    ];

    /// max |a − b| in f64.
    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        let to64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let diff = (to64(a) - to64(b)).unwrap().abs().unwrap();
        diff.max_all().unwrap().to_scalar::<f64>().unwrap()
    }

    #[test]
    fn equals_the_sliced_version_and_its_gradient_is_the_adjoint() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 20, 19), &dev).unwrap();
        for (taps, flip, updown, pad) in CASES {
            for dim in [2, 3] {
                let fast = upfirdn_axis(&x, dim, taps, flip, updown, pad, 1.5).unwrap();
                // Non-f32 tensors take the sliced path.
                let x64 = x.to_dtype(DType::F64).unwrap();
                let sliced = upfirdn_axis(&x64, dim, taps, flip, updown, pad, 1.5).unwrap();
                assert_eq!(fast.dims(), sliced.dims());
                let err = max_abs_diff(&fast, &sliced);
                assert!(err < 1e-5, "{taps:?} {updown:?} {pad:?} dim {dim}: {err}");
                // ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ with Aᵀ y the gradient of ⟨A x, y⟩.
                let var = Var::from_tensor(&x).unwrap();
                let out = upfirdn_axis(var.as_tensor(), dim, taps, flip, updown, pad, 1.5).unwrap();
                let y = Tensor::randn(0f32, 1.0, out.shape(), &dev).unwrap();
                let dot = (&out * &y).unwrap().sum_all().unwrap();
                let grad = dot
                    .backward()
                    .unwrap()
                    .get(var.as_tensor())
                    .unwrap()
                    .clone();
                let lhs = dot.to_scalar::<f32>().unwrap();
                let rhs = (&x * &grad)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(
                    (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
                    "{lhs} vs {rhs}"
                );
                let sliced_grad = {
                    let var = Var::from_tensor(&x64).unwrap();
                    let out =
                        upfirdn_axis(var.as_tensor(), dim, taps, flip, updown, pad, 1.5).unwrap();
                    let y = y.to_dtype(DType::F64).unwrap();
                    let dot = (&out * &y).unwrap().sum_all().unwrap();
                    dot.backward()
                        .unwrap()
                        .get(var.as_tensor())
                        .unwrap()
                        .clone()
                };
                let err = max_abs_diff(&grad, &sliced_grad);
                assert!(
                    err < 1e-5,
                    "gradient {taps:?} {updown:?} {pad:?} dim {dim}: {err}"
                );
            }
        }
    }
}
