//! Bilinear sampling at fixed points as one CPU operation: each output pixel of sample n is a
//! weighted sum of four pixels of the same channel of input n — a linear map per sample. Its
//! gradient is the adjoint map (each output pixel's weights spread back onto its four input
//! pixels), and the adjoint's gradient is the map again, so it differentiates to any order
//! (R1 back-propagates through the augmentation's gradient).

use crate::conv::f32_input;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// The four sampling taps of every output pixel of every sample: input pixel (row-major index
/// in its plane) and weight, laid out [N, 4, output pixels]; taps outside the input have
/// weight 0.
#[derive(Debug)]
pub struct SamplingTaps {
    pub index: Vec<u32>,
    pub weight: Vec<f32>,
    /// Input and output planes, (rows, columns).
    pub input: (usize, usize),
    pub output: (usize, usize),
}

impl SamplingTaps {
    fn taps_of(&self, sample: usize) -> (&[u32], &[f32]) {
        let len = 4 * self.output.0 * self.output.1;
        let range = sample * len..(sample + 1) * len;
        (&self.index[range.clone()], &self.weight[range])
    }
}

/// The sampling ([N, C, input] → [N, C, output]) or, `adjoint`, its transpose.
#[derive(Debug, Clone)]
pub struct BilinearSample {
    taps: Arc<SamplingTaps>,
    adjoint: bool,
}

impl BilinearSample {
    pub fn new(taps: SamplingTaps) -> Self {
        BilinearSample {
            taps: Arc::new(taps),
            adjoint: false,
        }
    }

    pub fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.contiguous()?.apply_op1(self.clone())
    }

    /// One channel plane of sample `i`: gathered from `src`, or (adjoint) scattered into `dst`
    /// (zeroed).
    fn map_plane(&self, i: usize, src: &[f32], dst: &mut [f32]) {
        let (index, weight) = self.taps.taps_of(i);
        let pixels = self.taps.output.0 * self.taps.output.1;
        let corners = index.chunks_exact(pixels).zip(weight.chunks_exact(pixels));
        for (index, weight) in corners {
            if self.adjoint {
                for ((&at, &w), &g) in index.iter().zip(weight).zip(src) {
                    dst[at as usize] += w * g;
                }
            } else {
                for ((&at, &w), d) in index.iter().zip(weight).zip(dst.iter_mut()) {
                    *d += w * src[at as usize];
                }
            }
        }
    }
}

impl CustomOp1 for BilinearSample {
    fn name(&self) -> &'static str {
        "bilinear-sample"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = f32_input(storage, layout, "bilinear-sample")?;
        let (n, c, h, w) = layout.shape().dims4()?;
        let taps = &self.taps;
        let (from, to) = match self.adjoint {
            false => (taps.input, taps.output),
            true => (taps.output, taps.input),
        };
        if (h, w) != from || taps.index.len() != n * 4 * taps.output.0 * taps.output.1 {
            candle_core::bail!(
                "bilinear-sample: taps for {} samples of {from:?} pixels, input {:?}",
                taps.index.len() / (4 * taps.output.0 * taps.output.1).max(1),
                layout.dims()
            );
        }
        let mut out = vec![0f32; n * c * to.0 * to.1];
        if h * w > 0 && to.0 * to.1 > 0 {
            out.par_chunks_mut(to.0 * to.1)
                .zip(input.par_chunks(h * w))
                .enumerate()
                .for_each(|(plane, (dst, src))| self.map_plane(plane / c, src, dst));
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, to.0, to.1))))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let adjoint = BilinearSample {
            taps: self.taps.clone(),
            adjoint: !self.adjoint,
        };
        Ok(Some(adjoint.apply(grad)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::relative_diff;
    use candle_core::{Device, Var};

    /// Taps of 2 samples from a 5 × 6 plane to a 4 × 3 one: pseudo-random pixels and weights,
    /// some repeated pixels and zero weights (taps outside the input).
    fn taps() -> SamplingTaps {
        let len = 2 * 4 * 12;
        SamplingTaps {
            index: (0..len).map(|i| ((i * 7 + i / 5) % 30) as u32).collect(),
            weight: (0..len)
                .map(|i| {
                    if i % 9 == 4 {
                        0.0
                    } else {
                        (i as f32 * 0.61).sin()
                    }
                })
                .collect(),
            input: (5, 6),
            output: (4, 3),
        }
    }

    /// The same sums written out: out[n, c, o] = Σₖ w[n, k, o] · x[n, c, index[n, k, o]].
    fn by_definition(x: &[f32], t: &SamplingTaps, channels: usize) -> Vec<f32> {
        let (input, output) = (30, 12);
        let mut out = vec![0f32; 2 * channels * output];
        for n in 0..2 {
            for c in 0..channels {
                for k in 0..4 {
                    for o in 0..output {
                        let tap = (n * 4 + k) * output + o;
                        let pixel = x[(n * channels + c) * input + t.index[tap] as usize];
                        out[(n * channels + c) * output + o] += t.weight[tap] * pixel;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn samples_by_definition_and_its_gradients_are_the_adjoint_to_second_order() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (2, 3, 5, 6), &dev).unwrap();
        let op = BilinearSample::new(taps());
        let y = op.apply(&x).unwrap();
        assert_eq!(y.dims(), [2, 3, 4, 3]);
        let want = by_definition(&x.flatten_all().unwrap().to_vec1().unwrap(), &taps(), 3);
        let want = Tensor::from_vec(want, (2, 3, 4, 3), &dev).unwrap();
        assert!(relative_diff(&y, &want) < 1e-6);
        // ⟨A x, r⟩ = ⟨x, Aᵀ r⟩ with Aᵀ r the gradient of ⟨A x, r⟩.
        let r = Tensor::randn(0f32, 1.0, (2, 3, 4, 3), &dev).unwrap();
        let dot = (&y * &r).unwrap().sum_all().unwrap();
        let grads = crate::backend::differentiable_backward(&dot).unwrap();
        let adjoint_r = grads.get(x.as_tensor()).unwrap().clone();
        let back = (x.as_tensor() * &adjoint_r).unwrap().sum_all().unwrap();
        let (lhs, rhs) = (
            dot.to_scalar::<f32>().unwrap(),
            back.to_scalar::<f32>().unwrap(),
        );
        assert!(
            (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
        // The gradient of ½‖Aᵀ r‖² with respect to r is A Aᵀ r (the R1 shape: a penalty on
        // the first gradient, differentiated again).
        let r = Var::from_tensor(&r).unwrap();
        let inner = (&y * r.as_tensor()).unwrap().sum_all().unwrap();
        let g = crate::backend::differentiable_backward(&inner).unwrap();
        let g = g.get(x.as_tensor()).unwrap();
        let penalty = (g.sqr().unwrap().sum_all().unwrap() * 0.5).unwrap();
        let second = penalty.backward().unwrap();
        let got = second.get(r.as_tensor()).unwrap();
        let want = op.apply(&adjoint_r).unwrap();
        assert!(relative_diff(got, &want) < 1e-5);
    }
}
