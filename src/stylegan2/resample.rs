//! FIR up/down-sampling with the [1, 3, 3, 1] filter (the reference's `upfirdn2d`) and the
//! resampling convolutions built from it (its `conv2d_resample`).
//!
//! Every operation exists in ordinary candle tensor operations (slices, padding, sums,
//! convolutions), which run on any device and differentiate to any order; on the CPU, f32
//! tensors take fused operations with the same numbers (see [`crate::backend`]). The FIR filter
//! is applied per axis (the reference's 4 × 4 filter is the outer product of a 1-D filter with
//! itself); the order of filtering and convolving follows the reference, since the two orders
//! round differently.

use super::bias_act::{bias_act, Activation, FusedBiasAct};
use super::fir::Fir2d;
use crate::backend::cpu_kernels;
pub use crate::conv::conv2d_square as conv2d;
use crate::conv::every_nth;
use crate::Result;
use candle_core::Tensor;

/// The 1-D resampling filter [1, 3, 3, 1] / 8; the reference's 2-D filter is its outer product
/// with itself.
pub const FILTER_TAPS: [f64; 4] = [0.125, 0.375, 0.375, 0.125];

/// One axis's resampling as the reference's `upfirdn2d` defines it: the taps in the order they
/// are applied (flipped unless `flip_filter`), times `gain`, and the filtered length before
/// decimation. A negative padding crops.
fn resampling(
    len: usize,
    taps: &[f64],
    flip_filter: bool,
    up: usize,
    pad: (isize, isize),
    gain: f64,
) -> Result<(Vec<f64>, usize)> {
    let ordered: Vec<f64> = if flip_filter {
        taps.iter().map(|t| t * gain).collect()
    } else {
        taps.iter().rev().map(|t| t * gain).collect()
    };
    let filtered_len = (len * up) as isize + pad.0 + pad.1 + 1 - taps.len() as isize;
    if filtered_len < 1 {
        return Err(crate::Error::invalid(format!(
            "upfirdn: {len} samples padded by {pad:?} are fewer than the {} taps",
            taps.len()
        )));
    }
    Ok((ordered, filtered_len as usize))
}

/// Up-sample (zero insertion), pad, filter and down-sample axis `dim` (2 or 3) of an NCHW
/// tensor with generic operations (any device and dtype), as the reference's `upfirdn2d` does
/// along each axis. `gain` multiplies this axis's taps (a 2-D gain g is √g per axis). The taps
/// are flipped first (a true convolution), as the reference does by default; `flip_filter` (the
/// reference's name) keeps them as given (a correlation). A negative padding crops.
///
/// The filter is one convolution over the planes stacked as images of one channel: its graph
/// keeps the padded input alone, where a tensor per tap would keep one product and one partial
/// sum per tap.
pub fn upfirdn_axis(
    x: &Tensor,
    dim: usize,
    taps: &[f64],
    flip_filter: bool,
    (up, down): (usize, usize),
    pad: (isize, isize),
    gain: f64,
) -> Result<Tensor> {
    let (ordered, out_len) = resampling(x.dim(dim)?, taps, flip_filter, up, pad, gain)?;
    let mut y = zero_insert(x, dim, up)?;
    let crop = |y: Tensor, before: usize, after: usize| -> Result<Tensor> {
        let len = y.dim(dim)? - before - after;
        Ok(y.narrow(dim, before, len)?)
    };
    y = y.pad_with_zeros(dim, pad.0.max(0) as usize, pad.1.max(0) as usize)?;
    y = crop(y, (-pad.0).max(0) as usize, (-pad.1).max(0) as usize)?;
    let (n, c, h, w) = y.dims4()?;
    let kernel_shape = match dim {
        2 => (1, 1, ordered.len(), 1),
        3 => (1, 1, 1, ordered.len()),
        _ => {
            return Err(crate::Error::invalid(format!(
                "upfirdn: axis {dim} of NCHW"
            )))
        }
    };
    let kernel = Tensor::new(ordered.as_slice(), y.device())?
        .to_dtype(y.dtype())?
        .reshape(kernel_shape)?;
    let planes = y.contiguous()?.reshape((n * c, 1, h, w))?;
    let filtered = planes.conv2d(&kernel, 0, 1, 1, 1)?;
    let (_, _, fh, fw) = filtered.dims4()?;
    debug_assert_eq!(if dim == 2 { fh } else { fw }, out_len);
    every_nth(&filtered.reshape((n, c, fh, fw))?, dim, down)
}

/// [`upfirdn_axis`] along the columns, then the rows, of an NCHW tensor with the same taps and
/// settings: on the CPU one operation over each plane in cache.
pub fn upfirdn2d_taps(
    x: &Tensor,
    taps: &[f64],
    flip_filter: bool,
    (up, down): (usize, usize),
    pad: (isize, isize),
    gain: f64,
) -> Result<Tensor> {
    if cpu_kernels(x) {
        let (_, _, h, w) = x.dims4()?;
        let (ordered, rows) = resampling(h, taps, flip_filter, up, pad, gain)?;
        let (_, columns) = resampling(w, taps, flip_filter, up, pad, gain)?;
        let fir = Fir2d {
            taps: ordered.iter().map(|&t| t as f32).collect(),
            up,
            down,
            p0: pad.0,
            out: (rows.div_ceil(down), columns.div_ceil(down)),
        };
        return Ok(fir.apply(x)?);
    }
    let y = upfirdn_axis(x, 3, taps, flip_filter, (up, down), pad, gain)?;
    upfirdn_axis(&y, 2, taps, flip_filter, (up, down), pad, gain)
}

/// Zero insertion along axis `dim`: sample i lands at index i·up, `up − 1` zeros follow it.
fn zero_insert(x: &Tensor, dim: usize, up: usize) -> Result<Tensor> {
    if up == 1 {
        return Ok(x.clone());
    }
    let mut shape = x.dims().to_vec();
    shape[dim] *= up;
    Ok(x.unsqueeze(dim + 1)?
        .pad_with_zeros(dim + 1, 0, up - 1)?
        .reshape(shape)?)
}

/// `upfirdn2d` with the [1, 3, 3, 1] filter on the last two axes of an NCHW tensor: the same
/// up-sampling, padding (`pad` = before, after on both axes), 2-D `gain` and down-sampling.
pub fn upfirdn2d(
    x: &Tensor,
    up: usize,
    down: usize,
    pad: (usize, usize),
    gain: f64,
) -> Result<Tensor> {
    let pad = (pad.0 as isize, pad.1 as isize);
    upfirdn2d_taps(x, &FILTER_TAPS, false, (up, down), pad, gain.sqrt())
}

/// 2× up-sampling of an image (`upsample2d`): padding (2, 1), gain 4.
pub fn upsample2d(x: &Tensor) -> Result<Tensor> {
    upfirdn2d(x, 2, 1, (2, 1), 4.0)
}

/// A k × k convolution followed by 2× up-sampling, as the reference's `conv2d_resample` with
/// `up = 2`: a stride-2 transposed convolution (output 2H + 1), then the FIR filter with padding
/// 1 and gain 4 (output 2H). `w` [O, I, k, k].
pub fn conv2d_up2(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let y = crate::conv::conv_transpose2d(x, w, 2)?;
    upfirdn2d(&y, 1, 1, (1, 1), 4.0)
}

/// A convolution layer's convolution and [`bias_act`]: a k × k convolution with padding k / 2,
/// or with `down` the reference's 2× down-sampling forms — for k > 1 the FIR filter with
/// padding 2 first (H + 1), then a stride-2 convolution without padding (H / 2); for k = 1 the
/// FIR filter with padding 1 keeping every second sample (H / 2), then the 1 × 1 convolution.
/// On the CPU the convolution and bias_act are one operation where the convolution is a patch
/// operation.
pub fn conv2d_bias_act(
    x: &Tensor,
    w: &Tensor,
    down: bool,
    bias: Option<&Tensor>,
    act: Activation,
    gain: f64,
    clamp: Option<f64>,
) -> Result<Tensor> {
    let k = w.dim(3)?;
    let (x, padding, stride) = match (down, k) {
        (false, _) => (x.clone(), k / 2, 1),
        (true, 1) => (upfirdn2d(x, 1, 2, (1, 1), 1.0)?, 0, 1),
        (true, _) => (upfirdn2d(x, 1, 1, (2, 2), 1.0)?, 0, 2),
    };
    if let Some(b) = bias {
        let epilogue = FusedBiasAct::new(act, gain, clamp);
        let padding = (padding, padding);
        if let Some(y) = crate::conv::conv2d_then(&x, w, b, padding, stride, epilogue)? {
            return Ok(y);
        }
    }
    bias_act(&conv2d(&x, w, padding, stride)?, bias, act, gain, clamp)
}

#[cfg(test)]
mod tests {
    use super::super::bias_act::bias_act_by_steps;
    use super::*;
    use crate::test_util::{max_diff, ramp, relative_diff};
    use candle_core::Device;

    #[test]
    fn fused_convolution_equals_the_separate_steps_and_their_gradients() {
        use crate::backend::differentiable_backward;
        use candle_core::Var;
        // Gradients of Σ y·r with respect to (x, w, b), and of the R1-like penalty Σ (∂/∂x)²
        // with respect to w.
        let grads = |y: Tensor, x: &Var, w: &Var, b: &Var| {
            let loss = (&y * ramp(y.dims4().unwrap())).unwrap().sum_all().unwrap();
            let g = loss.backward().unwrap();
            let plain = [x, w, b].map(|v| g.get(v).unwrap().clone());
            let grad_x = differentiable_backward(&loss)
                .unwrap()
                .get(x)
                .unwrap()
                .clone();
            let penalty = grad_x.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            (y, plain, penalty.get(w).unwrap().clone())
        };
        // Two threads: a single image takes the split products, five images the tasks.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            let cases = [
                (1, false, None, 3),
                (5, true, Some(0.8), 3),
                (5, false, None, 3),
                (5, false, None, 1),
            ];
            for (n, down, clamp, k) in cases {
                let x = Var::from_tensor(&ramp((n, 3, 8, 8))).unwrap();
                let w = Var::from_tensor(&(ramp((4, 3, k, k)) * 0.3).unwrap()).unwrap();
                let b = Var::from_vec(vec![0.3f32, -0.7, 1.1, 0.1], 4, &Device::Cpu).unwrap();
                let (act, gain) = (Activation::LeakyRelu, 2f64.sqrt());
                let fused = conv2d_bias_act(&x, &w, down, Some(&b), act, gain, clamp).unwrap();
                // candle's convolution, then the steps.
                let (input, stride) = match down {
                    true => (upfirdn2d(&x, 1, 1, (2, 2), 1.0).unwrap(), 2),
                    false => (x.as_tensor().clone(), 1),
                };
                let padding = if down { 0 } else { k / 2 };
                let product = input.conv2d(&w, padding, stride, 1, 1).unwrap();
                let steps = bias_act_by_steps(&product, Some(&b), act, gain, clamp).unwrap();
                let case = format!("n {n} down {down} clamp {clamp:?} k {k}");
                let (ours, want) = (grads(fused, &x, &w, &b), grads(steps, &x, &w, &b));
                assert!(relative_diff(&ours.0, &want.0) < 1e-6, "output, {case}");
                for (name, (a, e)) in ["x", "w", "b"].iter().zip(ours.1.iter().zip(&want.1)) {
                    assert!(relative_diff(a, e) < 1e-5, "gradient of {name}, {case}");
                }
                assert!(
                    relative_diff(&ours.2, &want.2) < 1e-4,
                    "penalty gradient, {case}"
                );
            }
        });
    }

    /// Direct 2-D evaluation of upfirdn2d with the 4 × 4 filter, for comparison.
    fn reference_upfirdn(
        x: &[f32],
        h: usize,
        w: usize,
        up: usize,
        down: usize,
        pad: (usize, usize),
        gain: f64,
    ) -> Vec<f64> {
        let (hu, wu) = (h * up, w * up);
        let (hp, wp) = (hu + pad.0 + pad.1, wu + pad.0 + pad.1);
        let mut xp = vec![0.0f64; hp * wp];
        for i in 0..h {
            for j in 0..w {
                xp[(i * up + pad.0) * wp + j * up + pad.0] = x[i * w + j] as f64;
            }
        }
        let (ho, wo) = (hp - 3, wp - 3);
        let mut out = Vec::new();
        for i in (0..ho).step_by(down) {
            for j in (0..wo).step_by(down) {
                let mut s = 0.0;
                for a in 0..4 {
                    for b in 0..4 {
                        s += xp[(i + a) * wp + j + b]
                            * FILTER_TAPS[3 - a]
                            * FILTER_TAPS[3 - b]
                            * gain;
                    }
                }
                out.push(s);
            }
        }
        out
    }

    #[test]
    fn separable_fir_equals_the_2d_filter() {
        let x = ramp((1, 1, 5, 6));
        let flat: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        for (up, down, pad, gain) in [
            (2, 1, (2, 1), 4.0),
            (1, 2, (1, 1), 1.0),
            (1, 1, (2, 2), 1.0),
            (1, 1, (1, 1), 4.0),
        ] {
            let got: Vec<f32> = upfirdn2d(&x, up, down, pad, gain)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let want = reference_upfirdn(&flat, 5, 6, up, down, pad, gain);
            assert_eq!(got.len(), want.len(), "{up} {down} {pad:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() < 1e-5,
                    "{up} {down} {pad:?}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn matrix_product_convolution_equals_candles() {
        let x = ramp((2, 3, 7, 6));
        for (k, padding, stride) in [(3, 1, 1), (3, 0, 2), (1, 0, 1), (3, 2, 2)] {
            let w = ramp((4, 3, k, k));
            let got = conv2d(&x, &w, padding, stride).unwrap();
            let want = x.conv2d(&w, padding, stride, 1, 1).unwrap();
            assert_eq!(got.dims(), want.dims());
            assert!(max_diff(&got, &want) < 1e-4, "{k} {padding} {stride}");
        }
    }

    #[test]
    fn up_convolution_equals_a_transposed_convolution() {
        let x = ramp((1, 2, 3, 3));
        let w = ramp((3, 2, 3, 3)); // [O, I, k, k]
        let got = conv2d_up2(&x, &w).unwrap();
        // Transposed convolution (stride 2) with weight [I, O, k, k], then the FIR step.
        let t = x
            .conv_transpose2d(
                &w.transpose(0, 1).unwrap().contiguous().unwrap(),
                0,
                0,
                2,
                1,
            )
            .unwrap();
        let want = upfirdn2d(&t, 1, 1, (1, 1), 4.0).unwrap();
        assert_eq!(got.dims(), &[1, 3, 6, 6]);
        let diff = max_diff(&got, &want);
        assert!(diff < 1e-5, "{diff}");
    }
}
