//! The playground's MLP generator (with BatchNorm) and discriminator.
//!
//! Parameter names follow the reference `nn.Sequential` state dict (`module.<index>.<field>`),
//! and parameters start from PyTorch's default initialisation: U(−1/√fan_in, 1/√fan_in) for
//! linear weights and biases, BatchNorm scale 1, shift 0, running mean 0 and variance 1.

use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use whichgan::train::{DiscriminatorModel, GeneratorModel, Labels, Mode, Network};
use whichgan::{Error, Result};

/// Latent dimension of the playground's generator.
pub const LATENT_DIM: usize = 64;
/// BatchNorm1d defaults.
const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;

/// One pass of a network over a batch. With gradients (`tracked`), per-feature rows [1, C] are
/// spread over the batch as ones[batch, 1] · row and column means are (1/n)·ones[1, batch] · x:
/// matrix products, whose backward passes are matrix products too, several times faster on CPU
/// than candle's broadcasts and reductions over dimension 0 at these sizes. Without gradients,
/// rows are plain broadcasts of detached parameters, so nothing is recorded. Both give the
/// same values: multiplying by ones is exact.
struct Pass {
    tracked: bool,
    column: Tensor,
    average: Tensor,
}

impl Pass {
    fn new(x: &Tensor, tracked: bool) -> Result<Self> {
        let batch = x.dim(0)?;
        Ok(Pass {
            tracked,
            column: Tensor::ones((batch, 1), x.dtype(), x.device())?,
            average: Tensor::full(1.0 / batch as f32, (1, batch), x.device())?
                .to_dtype(x.dtype())?,
        })
    }

    /// A row [1, C] repeated over the batch rows of `like` [batch, C].
    fn spread(&self, row: &Tensor, like: &Tensor) -> Result<Tensor> {
        Ok(if self.tracked {
            self.column.matmul(row)?
        } else {
            row.broadcast_as(like.shape())?
        })
    }

    /// A parameter, recorded for gradients or not.
    fn param(&self, v: &Var) -> Tensor {
        if self.tracked {
            v.as_tensor().clone()
        } else {
            v.as_tensor().detach()
        }
    }
}

/// A linear layer y = x Wᵀ + b.
#[derive(Clone)]
struct Linear {
    weight: Var,
    bias: Var,
}

impl Linear {
    fn new(rng: &mut impl Rng, input: usize, output: usize, device: &Device) -> Result<Self> {
        let bound = 1.0 / (input as f32).sqrt();
        let mut uniform =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
        let weight = Tensor::from_vec(uniform(output * input), (output, input), device)?;
        let bias = Tensor::from_vec(uniform(output), output, device)?;
        Ok(Linear {
            weight: Var::from_tensor(&weight)?,
            bias: Var::from_tensor(&bias)?,
        })
    }

    fn forward(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        let product = x.matmul(&pass.param(&self.weight).t()?)?;
        let bias = pass.param(&self.bias).unsqueeze(0)?;
        Ok((&product + pass.spread(&bias, &product)?)?)
    }

    fn deep_copy(&self) -> Result<Self> {
        Ok(Linear {
            weight: Var::from_tensor(&self.weight.as_tensor().copy()?)?,
            bias: Var::from_tensor(&self.bias.as_tensor().copy()?)?,
        })
    }

    fn named(&self, index: usize, out: &mut Vec<(String, Var)>) {
        out.push((format!("module.{index}.weight"), self.weight.clone()));
        out.push((format!("module.{index}.bias"), self.bias.clone()));
    }
}

/// BatchNorm1d with affine parameters and running statistics. The running statistics are
/// plain vectors: updating them is bookkeeping outside the graph, and tensor operations on
/// such small vectors would cost more than the arithmetic.
struct BatchNorm {
    weight: Var,
    bias: Var,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

impl BatchNorm {
    fn new(width: usize, device: &Device) -> Result<Self> {
        Ok(BatchNorm {
            weight: Var::ones(width, DType::F32, device)?,
            bias: Var::zeros(width, DType::F32, device)?,
            running_mean: vec![0.0; width],
            running_var: vec![1.0; width],
        })
    }

    fn forward(&mut self, x: &Tensor, mode: Mode, pass: &Pass) -> Result<Tensor> {
        let (centred, var) = match mode {
            Mode::Train => {
                let n = x.dim(0)? as f32;
                let mean = pass.average.matmul(x)?;
                let centred = (x - pass.spread(&mean, x)?)?;
                let var = pass.average.matmul(&centred.sqr()?)?;
                // Running statistics use the unbiased variance, as PyTorch does.
                let m = BN_MOMENTUM as f32;
                let batch_mean = mean.flatten_all()?.to_vec1::<f32>()?;
                let batch_var = var.flatten_all()?.to_vec1::<f32>()?;
                for (r, b) in self.running_mean.iter_mut().zip(batch_mean) {
                    *r = (1.0 - m) * *r + m * b;
                }
                for (r, b) in self.running_var.iter_mut().zip(batch_var) {
                    *r = (1.0 - m) * *r + m * n / (n - 1.0) * b;
                }
                (centred, var)
            }
            Mode::Eval => {
                let row = |v: &[f32]| Tensor::from_slice(v, (1, v.len()), x.device());
                let mean = row(&self.running_mean)?;
                ((x - pass.spread(&mean, x)?)?, row(&self.running_var)?)
            }
        };
        let gain = (var + BN_EPS)?
            .sqrt()?
            .recip()?
            .mul(&pass.param(&self.weight).unsqueeze(0)?)?;
        let shift = pass.param(&self.bias).unsqueeze(0)?;
        Ok(((&centred * pass.spread(&gain, &centred)?)? + pass.spread(&shift, &centred)?)?)
    }

    fn deep_copy(&self) -> Result<Self> {
        Ok(BatchNorm {
            weight: Var::from_tensor(&self.weight.as_tensor().copy()?)?,
            bias: Var::from_tensor(&self.bias.as_tensor().copy()?)?,
            running_mean: self.running_mean.clone(),
            running_var: self.running_var.clone(),
        })
    }
}

/// Hidden widths of the generator for width w: w, 2w, 2w, 2w, w.
fn generator_widths(width: usize) -> Vec<usize> {
    vec![width, 2 * width, 2 * width, 2 * width, width]
}

/// Hidden widths of the discriminator for width w: w, 2w, 2w, w.
fn discriminator_widths(width: usize) -> Vec<usize> {
    vec![width, 2 * width, 2 * width, width]
}

/// Linear → BatchNorm → ReLU blocks, then a linear layer to 2-D.
pub struct MlpGenerator {
    blocks: Vec<(Linear, BatchNorm)>,
    output: Linear,
}

impl MlpGenerator {
    pub fn new(rng: &mut impl Rng, width: usize, device: &Device) -> Result<Self> {
        let mut blocks = Vec::new();
        let mut input = LATENT_DIM;
        for w in generator_widths(width) {
            blocks.push((
                Linear::new(rng, input, w, device)?,
                BatchNorm::new(w, device)?,
            ));
            input = w;
        }
        let output = Linear::new(rng, input, 2, device)?;
        Ok(MlpGenerator { blocks, output })
    }
}

impl Network for MlpGenerator {
    fn parameters(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (i, (linear, bn)) in self.blocks.iter().enumerate() {
            linear.named(3 * i, &mut out);
            out.push((format!("module.{}.weight", 3 * i + 1), bn.weight.clone()));
            out.push((format!("module.{}.bias", 3 * i + 1), bn.bias.clone()));
        }
        self.output.named(3 * self.blocks.len(), &mut out);
        out
    }

    fn buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, (_, bn)) in self.blocks.iter().enumerate() {
            let device = bn.weight.device();
            let tensor = |v: &[f32]| Tensor::from_slice(v, v.len(), device).expect("1-D tensor");
            out.push((
                format!("module.{}.running_mean", 3 * i + 1),
                tensor(&bn.running_mean),
            ));
            out.push((
                format!("module.{}.running_var", 3 * i + 1),
                tensor(&bn.running_var),
            ));
        }
        out
    }

    fn set_buffer(&mut self, name: &str, value: Tensor) -> Result<()> {
        for (i, (_, bn)) in self.blocks.iter_mut().enumerate() {
            let slot = if name == format!("module.{}.running_mean", 3 * i + 1) {
                &mut bn.running_mean
            } else if name == format!("module.{}.running_var", 3 * i + 1) {
                &mut bn.running_var
            } else {
                continue;
            };
            *slot = value.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
            return Ok(());
        }
        Err(Error::invalid(format!(
            "the generator has no buffer '{name}'"
        )))
    }
}

impl GeneratorModel for MlpGenerator {
    fn latent_dim(&self) -> usize {
        LATENT_DIM
    }

    fn deep_copy(&self) -> Result<Self> {
        let blocks = self
            .blocks
            .iter()
            .map(|(l, bn)| Ok((l.deep_copy()?, bn.deep_copy()?)))
            .collect::<Result<_>>()?;
        Ok(MlpGenerator {
            blocks,
            output: self.output.deep_copy()?,
        })
    }

    /// Unconditional: labels are ignored.
    fn forward(
        &mut self,
        z: &Tensor,
        _c: Labels,
        mode: Mode,
        _rng: &mut ChaCha8Rng,
    ) -> Result<Tensor> {
        self.run(z, mode, true)
    }

    fn forward_detached(
        &mut self,
        z: &Tensor,
        _c: Labels,
        mode: Mode,
        _rng: &mut ChaCha8Rng,
    ) -> Result<Tensor> {
        self.run(z, mode, false)
    }
}

impl MlpGenerator {
    fn run(&mut self, z: &Tensor, mode: Mode, tracked: bool) -> Result<Tensor> {
        let pass = Pass::new(z, tracked)?;
        let mut h = z.clone();
        for (linear, bn) in &mut self.blocks {
            h = bn
                .forward(&linear.forward(&h, &pass)?, mode, &pass)?
                .relu()?;
        }
        self.output.forward(&h, &pass)
    }
}

/// Linear → ReLU layers, then a linear layer to one logit (the playground's sigmoid is folded
/// into the losses).
pub struct MlpDiscriminator {
    hidden: Vec<Linear>,
    output: Linear,
}

impl MlpDiscriminator {
    pub fn new(rng: &mut impl Rng, width: usize, device: &Device) -> Result<Self> {
        let mut hidden = Vec::new();
        let mut input = 2;
        for w in discriminator_widths(width) {
            hidden.push(Linear::new(rng, input, w, device)?);
            input = w;
        }
        let output = Linear::new(rng, input, 1, device)?;
        Ok(MlpDiscriminator { hidden, output })
    }
}

impl MlpDiscriminator {
    /// A copy with parameters converted to `dtype` (f64 for finite-difference checks).
    pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
        let convert = |l: &Linear| -> Result<Linear> {
            Ok(Linear {
                weight: Var::from_tensor(&l.weight.as_tensor().to_dtype(dtype)?)?,
                bias: Var::from_tensor(&l.bias.as_tensor().to_dtype(dtype)?)?,
            })
        };
        Ok(MlpDiscriminator {
            hidden: self.hidden.iter().map(convert).collect::<Result<_>>()?,
            output: convert(&self.output)?,
        })
    }
}

impl Network for MlpDiscriminator {
    fn parameters(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (i, linear) in self.hidden.iter().enumerate() {
            linear.named(2 * i, &mut out);
        }
        self.output.named(2 * self.hidden.len(), &mut out);
        out
    }

    fn buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    fn set_buffer(&mut self, name: &str, _: Tensor) -> Result<()> {
        Err(Error::invalid(format!(
            "the discriminator has no buffer '{name}'"
        )))
    }
}

impl MlpDiscriminator {
    /// Logits; `tracked` records the parameters for gradients (see [`Pass`]).
    fn run(&self, x: &Tensor, tracked: bool) -> Result<Tensor> {
        let pass = Pass::new(x, tracked)?;
        let mut h = x.clone();
        for linear in &self.hidden {
            h = linear.forward(&h, &pass)?.relu()?;
        }
        Ok(self.output.forward(&h, &pass)?.squeeze(1)?)
    }
}

impl DiscriminatorModel for MlpDiscriminator {
    fn judges_samples_independently(&self) -> bool {
        true
    }

    /// Unconditional: labels are ignored.
    fn forward(&self, x: &Tensor, _c: Labels) -> Result<Tensor> {
        self.run(x, true)
    }

    fn forward_frozen(&self, x: &Tensor, _c: Labels) -> Result<Tensor> {
        self.run(x, false)
    }

    /// ∇ₓ logit = (w_out ⊙ 1\[z_L > 0\]) W_L ⊙ … ⊙ 1\[z_1 > 0\]) W_1, written with ordinary tensor
    /// operations: back-propagating a penalty on it reaches every weight (candle detaches
    /// gradients inside `backward`, so autograd's own input gradient would not).
    fn forward_with_input_grad(&self, x: &Tensor, _c: Labels) -> Result<(Tensor, Tensor)> {
        let pass = Pass::new(x, true)?;
        let mut h = x.clone();
        let mut masks = Vec::with_capacity(self.hidden.len());
        for linear in &self.hidden {
            let z = linear.forward(&h, &pass)?;
            masks.push(z.gt(0.0)?.to_dtype(z.dtype())?);
            h = z.relu()?;
        }
        let logits = self.output.forward(&h, &pass)?.squeeze(1)?;
        let batch = x.dim(0)?;
        let w_out = self.output.weight.as_tensor();
        let mut grad = w_out.broadcast_as((batch, w_out.dim(1)?))?;
        for (linear, mask) in self.hidden.iter().zip(&masks).rev() {
            grad = (grad * mask)?.matmul(linear.weight.as_tensor())?;
        }
        Ok((logits, grad))
    }
}
