//! A per-image modulation of a convolution's kernel (StyleGAN2's modulated convolution in its
//! fused form) and its gradients.

/// How a kernel matrix stores weight[o, c, j] (output channel, input channel, tap).
#[derive(Debug, Clone, Copy)]
pub(super) enum KernelLayout {
    /// A convolution's [O, C·taps].
    Conv,
    /// A transposed convolution's [O·taps, C].
    Transposed,
}

/// A per-image modulation of the kernel — StyleGAN2's modulated convolution in its fused form:
/// image n is convolved with weight[o, c, j] · s[n, c] · d[n, o], its scales [C + O] holding s
/// (the styles) and then d (the demodulation coefficients).
#[derive(Debug, Clone, Copy)]
pub(super) struct Modulation {
    pub(super) layout: KernelLayout,
    pub(super) c: usize,
    pub(super) o: usize,
    pub(super) taps: usize,
}

impl Modulation {
    pub(super) fn scales_len(&self) -> usize {
        self.c + self.o
    }

    /// Image `i`'s scales out of every image's.
    pub(super) fn image_scales<'a>(&self, all: &'a [f32], i: usize) -> &'a [f32] {
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
    pub(super) fn modulate(&self, kernel: &[f32], scales: &[f32], dst: &mut Vec<f32>) {
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
    pub(super) fn chain(
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
pub(super) type ModulatedData<'a> = (Modulation, &'a [f32]);
