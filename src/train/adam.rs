//! Adam (Kingma & Ba), as PyTorch's `torch.optim.Adam` computes it, with its state exposed so
//! that checkpoints can resume it exactly.

use crate::{Error, Result};
use candle_core::{backprop::GradStore, Tensor, Var};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl AdamConfig {
    /// The settings for a network regularised lazily every `every` steps with separate
    /// updates (StyleGAN2): lr and betas shrink by the ratio every/(every + 1), as the
    /// reference does, so that the extra updates do not speed training up.
    pub fn for_lazy_interval(self, every: usize) -> AdamConfig {
        if every <= 1 {
            return self;
        }
        let ratio = every as f64 / (every as f64 + 1.0);
        AdamConfig {
            lr: self.lr * ratio,
            beta1: self.beta1.powf(ratio),
            beta2: self.beta2.powf(ratio),
            eps: self.eps,
        }
    }

    /// The toy playground's optimiser: lr 2e-4, betas (0.5, 0.999).
    pub fn playground() -> Self {
        AdamConfig {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Adam over a fixed list of named parameters.
pub struct Adam {
    pub config: AdamConfig,
    params: Vec<(String, Var)>,
    /// First and second moment estimates, one per parameter.
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Updates made so far (PyTorch's per-parameter `step`, equal for all parameters here).
    steps: u64,
    /// Replace NaN by 0 and ±∞ by ±1e5 in every gradient before the update, as the StyleGAN2
    /// reference loop does, so that one bad gradient entry does not poison the moments.
    pub clean_gradients: bool,
}

impl Adam {
    pub fn new(params: Vec<(String, Var)>, config: AdamConfig) -> Result<Self> {
        let zeros = |p: &Var| p.as_tensor().zeros_like();
        let m = params
            .iter()
            .map(|(_, p)| zeros(p))
            .collect::<Result<_, _>>()?;
        let v = params
            .iter()
            .map(|(_, p)| zeros(p))
            .collect::<Result<_, _>>()?;
        Ok(Adam {
            config,
            params,
            m,
            v,
            steps: 0,
            clean_gradients: false,
        })
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update from the gradients in `grads`; every parameter must have one.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.update(grads, false)
    }

    /// One update from a regulariser's gradients: parameters it does not reach (e.g. D's
    /// output bias under R1) count a zero gradient, as the reference's `0 · output` term in
    /// its regularisation phases gives them.
    pub fn step_regulariser(&mut self, grads: &GradStore) -> Result<()> {
        self.update(grads, true)
    }

    fn update(&mut self, grads: &GradStore, missing_is_zero: bool) -> Result<()> {
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.config;
        self.steps += 1;
        let t = self.steps as i32;
        let step_size = lr / (1.0 - beta1.powi(t));
        let correction2 = (1.0 - beta2.powi(t)).sqrt();
        for (i, (name, param)) in self.params.iter().enumerate() {
            let p = param.as_tensor();
            let zero;
            let grad = match grads.get(p) {
                Some(grad) => grad,
                None if missing_is_zero => {
                    zero = p.zeros_like()?;
                    &zero
                }
                None => {
                    return Err(Error::invalid(format!(
                        "no gradient for parameter '{name}'"
                    )))
                }
            };
            if crate::backend::cpu_kernels(p) {
                // Small CPU tensors: one fused loop instead of a dozen tensor operations.
                let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
                let (mut w, mut g) = (flat(p)?, flat(grad)?);
                if self.clean_gradients {
                    g.iter_mut().for_each(|x| *x = nan_to_num(*x));
                }
                let (mut m, mut v) = (flat(&self.m[i])?, flat(&self.v[i])?);
                let (b1, b2) = (beta1 as f32, beta2 as f32);
                let (size, c2, e) = (step_size as f32, correction2 as f32, eps as f32);
                for k in 0..w.len() {
                    m[k] = b1 * m[k] + (1.0 - b1) * g[k];
                    v[k] = b2 * v[k] + (1.0 - b2) * g[k] * g[k];
                    w[k] -= size * m[k] / (v[k].sqrt() / c2 + e);
                }
                let shaped = |data: Vec<f32>| Tensor::from_vec(data, p.shape(), p.device());
                self.m[i] = shaped(m)?;
                self.v[i] = shaped(v)?;
                param.set(&shaped(w)?)?;
            } else {
                let cleaned;
                let grad = if self.clean_gradients {
                    cleaned = nan_to_num_tensor(grad)?;
                    &cleaned
                } else {
                    grad
                };
                self.m[i] = ((&self.m[i] * beta1)? + (grad * (1.0 - beta1))?)?;
                self.v[i] = ((&self.v[i] * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
                let denom = ((self.v[i].sqrt()? / correction2)? + eps)?;
                let update = ((&self.m[i] / denom)? * step_size)?;
                param.set(&(p - update)?)?;
            }
        }
        Ok(())
    }

    /// The moment estimates as named tensors (`m.<param>`, `v.<param>`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("m.{name}"), self.m[i].clone()));
            out.push((format!("v.{name}"), self.v[i].clone()));
        }
        out
    }

    /// Restores the state written by [`Adam::state`] and the update count.
    pub fn load_state(
        &mut self,
        mut get: impl FnMut(&str) -> Result<Tensor>,
        steps: u64,
    ) -> Result<()> {
        for (i, (name, param)) in self.params.iter().enumerate() {
            for (slot, key) in [(&mut self.m[i], "m"), (&mut self.v[i], "v")] {
                let t = get(&format!("{key}.{name}"))?;
                if t.dims() != param.as_tensor().dims() {
                    return Err(Error::invalid(format!(
                        "optimiser state '{key}.{name}' has shape {:?}, the parameter {:?}",
                        t.dims(),
                        param.as_tensor().dims()
                    )));
                }
                *slot = t.to_device(param.as_tensor().device())?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// The largest gradient entry that replaces an infinite one (the reference's `posinf`).
const INF_REPLACEMENT: f32 = 1e5;

/// NaN → 0, ±∞ → ±1e5, finite values unchanged (torch's `nan_to_num` as the reference calls it).
fn nan_to_num(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else if x.is_infinite() {
        INF_REPLACEMENT.copysign(x)
    } else {
        x
    }
}

/// [`nan_to_num`] of every entry, in tensor operations.
fn nan_to_num_tensor(g: &Tensor) -> Result<Tensor> {
    let zeros = g.zeros_like()?;
    let without_nan = g.ne(g)?.where_cond(&zeros, g)?;
    let limit = f64::from(INF_REPLACEMENT);
    let infinite = without_nan.abs()?.eq(f64::INFINITY)?;
    Ok(infinite.where_cond(&without_nan.clamp(-limit, limit)?, &without_nan)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Minimises Σ (p − target)² for a few steps; returns the parameters.
    fn run(dtype: DType, steps: usize) -> Vec<f64> {
        let target = Tensor::new(&[1.0f64, -2.0, 0.5], &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let p = Var::from_tensor(&target.zeros_like().unwrap()).unwrap();
        let mut adam = Adam::new(vec![("p".into(), p.clone())], AdamConfig::playground()).unwrap();
        for _ in 0..steps {
            let loss = (p.as_tensor() - &target)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            adam.step(&loss.backward().unwrap()).unwrap();
        }
        p.as_tensor()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn first_step_moves_each_parameter_by_lr_against_its_gradient_sign() {
        // m̂ = g and v̂ = g² after one step: the update is lr·g/(|g| + ε).
        let p = run(DType::F64, 1);
        // Gradients at p = 0 are −2·target: −2, 4, −1.
        for (got, g) in p.iter().zip([-2.0f64, 4.0, -1.0]) {
            let want = -2e-4 * g / (g.abs() + 1e-8);
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    /// The parameters and moments after one cleaning update with `grad` on a parameter of
    /// `dtype` (f32: the fused loop, f64: tensor operations).
    fn after_one_update(dtype: DType, grad: &[f32]) -> Vec<Vec<f64>> {
        let start: Vec<f32> = (0..grad.len()).map(|i| 0.1 * i as f32 - 0.2).collect();
        let tensor = |v: &[f32]| {
            Tensor::new(v, &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
        };
        let p = Var::from_tensor(&tensor(&start)).unwrap();
        let mut adam = Adam::new(vec![("p".into(), p.clone())], AdamConfig::playground()).unwrap();
        adam.clean_gradients = true;
        let mut grads = GradStore::default();
        grads.insert(p.as_tensor(), tensor(grad));
        adam.step(&grads).unwrap();
        std::iter::once(p.as_tensor().clone())
            .chain(adam.state().into_iter().map(|(_, t)| t))
            .map(|t| t.to_dtype(DType::F64).unwrap().to_vec1().unwrap())
            .collect()
    }

    #[test]
    fn cleaning_makes_nan_zero_and_infinities_1e5_on_both_paths() {
        let dirty = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e5, -0.5];
        let clean = [0.0, 1e5, -1e5, 3e5, -0.5];
        for dtype in [DType::F32, DType::F64] {
            let (got, want) = (
                after_one_update(dtype, &dirty),
                after_one_update(dtype, &clean),
            );
            assert_eq!(got, want, "{dtype:?}");
        }
    }

    #[test]
    fn fused_cpu_path_equals_tensor_path() {
        // f32 takes the fused loop, f64 the tensor operations.
        let (fused, tensor) = (run(DType::F32, 50), run(DType::F64, 50));
        for (a, b) in fused.iter().zip(&tensor) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
