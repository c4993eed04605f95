//! Latents from seeds as the official `generate.py` draws them:
//! `np.random.RandomState(seed).randn(1, z_dim)` — NumPy's legacy generator (MT19937 seeded
//! with the integer, 53-bit doubles, polar Box–Muller normals).

/// NumPy's legacy `RandomState` with an integer seed, enough of it for `randn`.
struct LegacyNumpyRng {
    state: [u32; 624],
    index: usize,
    spare_normal: Option<f64>,
}

impl LegacyNumpyRng {
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        LegacyNumpyRng {
            state,
            index: 624,
            spare_normal: None,
        }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for i in 0..624 {
                let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
                let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
                if y & 1 == 1 {
                    next ^= 0x9908_b0df;
                }
                self.state[i] = next;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A double in [0, 1) from 53 random bits.
    fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// A standard normal value (the polar method; values come in pairs).
    pub fn normal(&mut self) -> f64 {
        if let Some(v) = self.spare_normal.take() {
            return v;
        }
        loop {
            let x1 = 2.0 * self.next_f64() - 1.0;
            let x2 = 2.0 * self.next_f64() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.spare_normal = Some(f * x1);
                return f * x2;
            }
        }
    }
}

/// The latent of `seed` as `generate.py` draws it (as f32).
pub fn latent_for_seed(seed: u32, z_dim: usize) -> Vec<f32> {
    let mut rng = LegacyNumpyRng::new(seed);
    (0..z_dim).map(|_| rng.normal() as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_random_state() {
        // np.random.RandomState(0).randn(4) and RandomState(42).randn(3).
        let want0 = [
            1.764052345967664,
            0.4001572083672233,
            0.9787379841057392,
            2.240893199201458,
        ];
        let mut rng = LegacyNumpyRng::new(0);
        for w in want0 {
            assert!((rng.normal() - w).abs() < 1e-15);
        }
        let want42 = [0.4967141530112327, -0.13826430117118466, 0.6476885381006925];
        let mut rng = LegacyNumpyRng::new(42);
        for w in want42 {
            assert!((rng.normal() - w).abs() < 1e-15);
        }
        // np.random.RandomState(123).randn(1, 5)
        let want = [
            -1.0856306033005612,
            0.9973454465835858,
            0.28297849805199204,
            -1.506294713918092,
            -0.5786002519685364,
        ];
        let got = latent_for_seed(123, 5);
        for (g, w) in got.iter().zip(want) {
            assert_eq!(*g, w as f32);
        }
    }
}
