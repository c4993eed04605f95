//! The StyleGAN2 generator: the mapping network (z → w) and the synthesis network (`skip`
//! architecture: w → image), with the architecture read from the stored tensors.

use super::bias_act::{bias_act, noisy_bias_act, Activation};
use super::layers::{gain32, modulated_conv2d, tracked, FullyConnected, NoiseMode, Params};
use super::resample::upsample2d;
use super::weights::Weights;
use crate::{Error, Result};
use candle_core::{Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Learning-rate multiplier of the mapping network (the official default).
const MAPPING_LR: f64 = 0.01;

/// The fully connected part of a mapping network: the latents z and, in a conditional
/// network, the embedded class labels c, each 2nd-moment normalised and then concatenated, through
/// the layers. G's mapping and a conditional D's (`mapping.` in both) are this.
pub struct MappingLayers {
    embed: Option<FullyConnected>,
    layers: Vec<FullyConnected>,
    pub z_dim: usize,
    /// Classes of a conditional network (0: unconditional).
    pub c_dim: usize,
    pub out_dim: usize,
}

/// `x · rsqrt(mean(x²) + 1e-8)` per row (`normalize_2nd_moment`).
fn normalize_2nd_moment(x: &Tensor) -> Result<Tensor> {
    let norm = (x.sqr()?.mean_keepdim(1)? + 1e-8)?.sqrt()?.recip()?;
    Ok(x.broadcast_mul(&norm)?)
}

impl MappingLayers {
    /// `<prefix>.embed` (when conditional) and `<prefix>.fc0`, `<prefix>.fc1`, ….
    pub fn load(w: &Weights, prefix: &str) -> Result<Self> {
        let embed = match w.contains(&format!("{prefix}.embed.weight")) {
            true => {
                let name = format!("{prefix}.embed");
                let shape = w.shape(&format!("{name}.weight"))?;
                Some(FullyConnected::load(
                    w,
                    &name,
                    shape[0],
                    shape[1],
                    1.0,
                    Activation::Linear,
                )?)
            }
            false => None,
        };
        let mut layers = Vec::new();
        while w.contains(&format!("{prefix}.fc{}.weight", layers.len())) {
            let name = format!("{prefix}.fc{}", layers.len());
            let shape = w.shape(&format!("{name}.weight"))?;
            layers.push(FullyConnected::load(
                w,
                &name,
                shape[0],
                shape[1],
                MAPPING_LR,
                Activation::LeakyRelu,
            )?);
        }
        let (Some(first), Some(last)) = (layers.first(), layers.last()) else {
            return Err(Error::invalid(format!(
                "missing tensor '{prefix}.fc0.weight'"
            )));
        };
        let (embedded, c_dim) = match &embed {
            Some(e) => (e.weight.dim(0)?, e.weight.dim(1)?),
            None => (0, 0),
        };
        let z_dim = first.weight.dim(1)?.checked_sub(embedded).ok_or_else(|| {
            Error::invalid(format!(
                "'{prefix}.fc0.weight' is narrower than the label embedding"
            ))
        })?;
        Ok(MappingLayers {
            z_dim,
            c_dim,
            out_dim: last.weight.dim(0)?,
            embed,
            layers,
        })
    }

    /// [N, out_dim] for latents z [N, z_dim] (none when z_dim is 0) and one-hot labels c
    /// [N, c_dim] (conditional networks only).
    pub fn forward_with(
        &self,
        z: Option<&Tensor>,
        c: Option<&Tensor>,
        params: Params,
    ) -> Result<Tensor> {
        let mut parts = Vec::new();
        if self.z_dim > 0 {
            let z = z.ok_or_else(|| Error::invalid("the mapping network needs latents"))?;
            parts.push(normalize_2nd_moment(z)?);
        }
        match (&self.embed, c) {
            (Some(embed), Some(c)) => {
                if c.dim(1)? != self.c_dim {
                    return Err(Error::invalid(format!(
                        "labels of {} classes for a network of {} classes",
                        c.dim(1)?,
                        self.c_dim
                    )));
                }
                parts.push(normalize_2nd_moment(&embed.forward_with(c, params)?)?);
            }
            (Some(_), None) => {
                return Err(Error::invalid(format!(
                    "the network is conditional ({} classes): give class labels",
                    self.c_dim
                )))
            }
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "class labels given, but the network is not conditional",
                ))
            }
            (None, None) => {}
        }
        let mut x = Tensor::cat(&parts, 1)?;
        for layer in &self.layers {
            x = layer.forward_with(&x, params)?;
        }
        Ok(x)
    }
}

/// z (and c) → w: the mapping layers, broadcast to every layer's w, truncation towards the
/// tracked average `w_avg`.
pub struct Mapping {
    layers: MappingLayers,
    pub w_avg: Tensor,
    pub z_dim: usize,
    pub w_dim: usize,
    /// Classes of a conditional generator (0: unconditional).
    pub c_dim: usize,
}

impl Mapping {
    pub fn load(w: &Weights) -> Result<Self> {
        let layers = MappingLayers::load(w, "mapping")?;
        Ok(Mapping {
            w_avg: w.get("mapping.w_avg", &[layers.out_dim])?,
            z_dim: layers.z_dim,
            w_dim: layers.out_dim,
            c_dim: layers.c_dim,
            layers,
        })
    }

    /// ws [N, num_ws, w_dim] for latents z [N, z_dim], truncated with ψ (1: none).
    pub fn forward(&self, z: &Tensor, num_ws: usize, psi: f64) -> Result<Tensor> {
        self.forward_labelled(z, None, num_ws, psi)
    }

    /// [`Mapping::forward`] with one-hot class labels c [N, c_dim] for a conditional generator.
    pub fn forward_labelled(
        &self,
        z: &Tensor,
        c: Option<&Tensor>,
        num_ws: usize,
        psi: f64,
    ) -> Result<Tensor> {
        let x = self.layers.forward_with(Some(z), c, Params::Tracked)?;
        let (n, d) = x.dims2()?;
        let ws = x.unsqueeze(1)?.broadcast_as((n, num_ws, d))?.contiguous()?;
        if psi == 1.0 {
            return Ok(ws);
        }
        truncate(&ws, &self.w_avg, psi)
    }
}

/// `w_avg.lerp(ws, ψ)` as torch computes it (two branches by the weight, ψ in f32).
pub fn truncate(ws: &Tensor, w_avg: &Tensor, psi: f64) -> Result<Tensor> {
    let psi = gain32(psi);
    let start = w_avg
        .reshape((1, 1, w_avg.dim(0)?))?
        .broadcast_as(ws.shape())?;
    let diff = (ws - &start)?;
    Ok(if psi.abs() < 0.5 {
        (start + (diff * psi)?)?
    } else {
        (ws - (diff * gain32(1.0 - psi))?)?
    })
}

/// The affine layer of a modulated convolution: w → one style per input channel (its bias
/// starts at 1 in the reference, so styles start near 1).
fn affine(w: &Weights, layer: &str, input: usize, w_dim: usize) -> Result<FullyConnected> {
    let name = format!("{layer}.affine");
    FullyConnected::load(w, &name, input, w_dim, 1.0, Activation::Linear)
}

/// A 3 × 3 modulated convolution with noise, bias and leaky ReLU (`SynthesisLayer`).
struct SynthesisLayer {
    affine: FullyConnected,
    weight: Var,
    bias: Var,
    noise_strength: Var,
    noise_const: Tensor,
    up: bool,
    /// Which random stream this layer's noise comes from.
    noise_stream: u64,
}

impl SynthesisLayer {
    #[allow(clippy::too_many_arguments)]
    fn load(
        w: &Weights,
        name: &str,
        input: usize,
        out: usize,
        w_dim: usize,
        res: usize,
        up: bool,
        noise_stream: u64,
    ) -> Result<Self> {
        Ok(SynthesisLayer {
            affine: affine(w, name, input, w_dim)?,
            weight: w.param(&format!("{name}.weight"), &[out, input, 3, 3])?,
            bias: w.param(&format!("{name}.bias"), &[out])?,
            noise_strength: w.param(&format!("{name}.noise_strength"), &[])?,
            noise_const: w.get(&format!("{name}.noise_const"), &[res, res])?,
            up,
            noise_stream,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        w: &Tensor,
        noise: NoiseMode,
        clamp: Option<f64>,
    ) -> Result<Tensor> {
        let styles = self.affine.forward(w)?;
        let y = modulated_conv2d(x, &tracked(&self.weight), &styles, true, self.up)?;
        let (n, _, h, w) = y.dims4()?;
        let noise = match noise {
            NoiseMode::Const => Some(
                self.noise_const
                    .reshape((1, 1, h, w))?
                    .repeat((n, 1, 1, 1))?,
            ),
            NoiseMode::Random { seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(self.noise_stream);
                Some(crate::train::standard_normal(
                    &mut rng,
                    &[n, 1, h, w],
                    y.device(),
                )?)
            }
            NoiseMode::None => None,
        };
        let (bias, act) = (&tracked(&self.bias), Activation::LeakyRelu);
        match noise {
            Some(noise) => {
                let strength = &tracked(&self.noise_strength);
                noisy_bias_act(&y, &noise, strength, bias, act, act.default_gain(), clamp)
            }
            None => bias_act(&y, Some(bias), act, act.default_gain(), clamp),
        }
    }
}

/// A 1 × 1 modulated convolution to the image channels, without demodulation (`ToRGBLayer`).
struct ToRgb {
    affine: FullyConnected,
    weight: Var,
    bias: Var,
}

impl ToRgb {
    fn load(w: &Weights, name: &str, input: usize, channels: usize, w_dim: usize) -> Result<Self> {
        Ok(ToRgb {
            affine: affine(w, name, input, w_dim)?,
            weight: w.param(&format!("{name}.weight"), &[channels, input, 1, 1])?,
            bias: w.param(&format!("{name}.bias"), &[channels])?,
        })
    }

    fn forward(&self, x: &Tensor, w: &Tensor, clamp: Option<f64>) -> Result<Tensor> {
        let input = self.weight.dim(1)?;
        let styles = (self.affine.forward(w)? * gain32(1.0 / (input as f64).sqrt()))?;
        let y = modulated_conv2d(x, &tracked(&self.weight), &styles, false, false)?;
        bias_act(
            &y,
            Some(&tracked(&self.bias)),
            Activation::Linear,
            1.0,
            clamp,
        )
    }
}

/// One resolution of the synthesis network (`SynthesisBlock`, `skip` architecture).
struct Block {
    resolution: usize,
    constant: Option<Var>,
    conv0: Option<SynthesisLayer>,
    conv1: SynthesisLayer,
    torgb: ToRgb,
}

impl Block {
    /// w's this block consumes before its ToRGB (which shares the next block's first w).
    fn num_conv(&self) -> usize {
        if self.conv0.is_some() {
            2
        } else {
            1
        }
    }
}

/// ws → image, resolutions 4, 8, …, with a skip connection of up-sampled images.
pub struct Synthesis {
    blocks: Vec<Block>,
    pub num_ws: usize,
    pub img_channels: usize,
    /// Clamp of the layer outputs (`conv_clamp`; none by default, also not in the weights).
    pub conv_clamp: Option<f64>,
}

impl Synthesis {
    pub fn load(w: &Weights, w_dim: usize) -> Result<Self> {
        let mut blocks = Vec::new();
        let mut res = 4;
        let mut input = 0;
        while w.contains(&format!("synthesis.b{res}.conv1.weight")) {
            let name = format!("synthesis.b{res}");
            let out = w.shape(&format!("{name}.conv1.weight"))?[0];
            let channels = w.shape(&format!("{name}.torgb.weight"))?[0];
            let (constant, conv0) = if res == 4 {
                (Some(w.param(&format!("{name}.const"), &[out, 4, 4])?), None)
            } else {
                let layer = SynthesisLayer::load(
                    w,
                    &format!("{name}.conv0"),
                    input,
                    out,
                    w_dim,
                    res,
                    true,
                    2 * blocks.len() as u64,
                )?;
                (None, Some(layer))
            };
            blocks.push(Block {
                resolution: res,
                constant,
                conv0,
                conv1: SynthesisLayer::load(
                    w,
                    &format!("{name}.conv1"),
                    out,
                    out,
                    w_dim,
                    res,
                    false,
                    2 * blocks.len() as u64 + 1,
                )?,
                torgb: ToRgb::load(w, &format!("{name}.torgb"), out, channels, w_dim)?,
            });
            input = out;
            res *= 2;
        }
        let Some(last) = blocks.last() else {
            return Err(Error::invalid("missing tensor 'synthesis.b4.conv1.weight'"));
        };
        let img_channels = last.torgb.weight.dim(0)?;
        let num_ws = blocks.iter().map(Block::num_conv).sum::<usize>() + 1;
        Ok(Synthesis {
            blocks,
            num_ws,
            img_channels,
            conv_clamp: None,
        })
    }

    pub fn resolution(&self) -> usize {
        self.blocks.last().map_or(0, |b| b.resolution)
    }

    /// The stored noise images by state-dict name (`synthesis.b8.conv0.noise_const`, …).
    pub fn noise_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, layer) in self.layers() {
            out.push((format!("{name}.noise_const"), layer.noise_const.clone()));
        }
        out
    }

    /// Replaces the stored noise image `name` (a name of [`Synthesis::noise_buffers`]).
    pub fn set_noise_buffer(&mut self, name: &str, value: Tensor) -> Result<bool> {
        let Some(layer_name) = name.strip_suffix(".noise_const") else {
            return Ok(false);
        };
        for block in &mut self.blocks {
            let res = block.resolution;
            let layers = [
                ("conv0", block.conv0.as_mut()),
                ("conv1", Some(&mut block.conv1)),
            ];
            for (conv, layer) in layers {
                if let Some(layer) =
                    layer.filter(|_| layer_name == format!("synthesis.b{res}.{conv}"))
                {
                    if value.dims() != layer.noise_const.dims() {
                        return Err(Error::invalid(format!(
                            "buffer '{name}' has shape {:?}, expected {:?}",
                            value.dims(),
                            layer.noise_const.dims()
                        )));
                    }
                    layer.noise_const = value;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The synthesis layers with their state-dict names, in order.
    fn layers(&self) -> Vec<(String, &SynthesisLayer)> {
        let mut out = Vec::new();
        for block in &self.blocks {
            let res = block.resolution;
            if let Some(conv0) = &block.conv0 {
                out.push((format!("synthesis.b{res}.conv0"), conv0));
            }
            out.push((format!("synthesis.b{res}.conv1"), &block.conv1));
        }
        out
    }

    /// Images [N, C, R, R] for ws [N, num_ws, w_dim] (not clamped).
    pub fn forward(&self, ws: &Tensor, noise: NoiseMode) -> Result<Tensor> {
        let n = ws.dim(0)?;
        let clamp = self.conv_clamp;
        let mut w_idx = 0;
        let mut x: Option<Tensor> = None;
        let mut img: Option<Tensor> = None;
        for block in &self.blocks {
            let w_at = |i: usize| -> Result<Tensor> { Ok(ws.narrow(1, i, 1)?.squeeze(1)?) };
            let features = match (&block.constant, &block.conv0, &x) {
                (Some(c), _, _) => {
                    let c = tracked(c).unsqueeze(0)?;
                    let (_, ch, h, wd) = c.dims4()?;
                    let start = c.broadcast_as((n, ch, h, wd))?.contiguous()?;
                    block.conv1.forward(&start, &w_at(w_idx)?, noise, clamp)?
                }
                (None, Some(conv0), Some(prev)) => {
                    let y = conv0.forward(prev, &w_at(w_idx)?, noise, clamp)?;
                    block.conv1.forward(&y, &w_at(w_idx + 1)?, noise, clamp)?
                }
                _ => return Err(Error::invalid("a synthesis block after b4 needs its conv0")),
            };
            let rgb = block
                .torgb
                .forward(&features, &w_at(w_idx + block.num_conv())?, clamp)?;
            img = Some(match img {
                Some(prev) => (upsample2d(&prev)? + rgb)?,
                None => rgb,
            });
            x = Some(features);
            w_idx += block.num_conv();
        }
        img.ok_or_else(|| Error::invalid("the synthesis network has no blocks"))
    }
}

/// Mapping and synthesis together.
pub struct Generator {
    pub mapping: Mapping,
    pub synthesis: Synthesis,
    /// Probability of style mixing in training passes (0 after loading; training sets it).
    pub style_mixing: f64,
    /// Every trainable parameter by its state-dict name.
    params: Vec<(String, Var)>,
}

impl Generator {
    /// The generator whose architecture the tensors describe (official key names).
    pub fn load(w: &Weights) -> Result<Self> {
        let mapping = Mapping::load(w)?;
        let synthesis = Synthesis::load(w, mapping.w_dim)?;
        Ok(Generator {
            mapping,
            synthesis,
            style_mixing: 0.0,
            params: w.take_params(),
        })
    }

    /// Every trainable parameter by its state-dict name (`mapping.fc0.weight`, …).
    pub fn named_params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// The non-trainable tensors by state-dict name: `mapping.w_avg` and the noise images.
    pub fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("mapping.w_avg".to_owned(), self.mapping.w_avg.clone())];
        out.extend(self.synthesis.noise_buffers());
        out
    }

    /// Replaces buffer `name` (a name of [`Generator::named_buffers`]).
    pub fn set_named_buffer(&mut self, name: &str, value: Tensor) -> Result<()> {
        if name == "mapping.w_avg" {
            if value.dims() != self.mapping.w_avg.dims() {
                return Err(Error::invalid(format!(
                    "buffer 'mapping.w_avg' has shape {:?}, expected {:?}",
                    value.dims(),
                    self.mapping.w_avg.dims()
                )));
            }
            self.mapping.w_avg = value;
            return Ok(());
        }
        if self.synthesis.set_noise_buffer(name, value)? {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "the generator has no buffer '{name}'"
        )))
    }

    /// Every tensor (parameters and buffers) by state-dict name, copied: what loading into a
    /// new generator starts from.
    pub fn state_dict(&self) -> Result<std::collections::HashMap<String, Tensor>> {
        let mut out = std::collections::HashMap::new();
        for (name, var) in &self.params {
            out.insert(name.clone(), var.as_tensor().copy()?);
        }
        for (name, t) in self.named_buffers() {
            out.insert(name, t.copy()?);
        }
        Ok(out)
    }

    /// Images for latents z [N, z_dim], truncation ψ.
    pub fn forward(&self, z: &Tensor, psi: f64, noise: NoiseMode) -> Result<Tensor> {
        self.forward_labelled(z, None, psi, noise)
    }

    /// Images for latents z and, for a conditional generator, one-hot labels c [N, c_dim].
    pub fn forward_labelled(
        &self,
        z: &Tensor,
        c: Option<&Tensor>,
        psi: f64,
        noise: NoiseMode,
    ) -> Result<Tensor> {
        let ws = self
            .mapping
            .forward_labelled(z, c, self.synthesis.num_ws, psi)?;
        self.synthesis.forward(&ws, noise)
    }
}
