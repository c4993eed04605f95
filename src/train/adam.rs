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
                let (mut w, g) = (flat(p)?, flat(grad)?);
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

    #[test]
    fn fused_cpu_path_equals_tensor_path() {
        // f32 takes the fused loop, f64 the tensor operations.
        let (fused, tensor) = (run(DType::F32, 50), run(DType::F64, 50));
        for (a, b) in fused.iter().zip(&tensor) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
