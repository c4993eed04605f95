//! The StyleGAN2 discriminator (`resnet` architecture, or `orig` — no skip paths — as the
//! `cifar` preset trains it; unconditional, or conditional: class labels mapped to a
//! projection of the epilogue's output), with the architecture read from the stored tensors.

use super::bias_act::Activation;
use super::generator::MappingLayers;
use super::layers::{gain32, Conv2dLayer, FullyConnected, Params};
use super::weights::Weights;
use crate::{Error, Result};
use candle_core::{Tensor, Var};

/// Both paths of a resnet block are scaled by √0.5.
const RESNET_GAIN: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// One resolution: (fromrgb,) conv0, conv1 with 2× down-sampling, and a 1 × 1 skip (resnet).
struct Block {
    resolution: usize,
    fromrgb: Option<Conv2dLayer>,
    conv0: Conv2dLayer,
    conv1: Conv2dLayer,
    skip: Option<Conv2dLayer>,
}

impl Block {
    fn forward(&self, x: &Tensor, clamp: Option<f64>, params: Params) -> Result<Tensor> {
        let x = match &self.fromrgb {
            Some(layer) => layer.forward(x, 1.0, clamp, params)?,
            None => x.clone(),
        };
        let Some(skip) = &self.skip else {
            let x = self.conv0.forward(&x, 1.0, clamp, params)?;
            return self.conv1.forward(&x, 1.0, clamp, params);
        };
        // The skip path is never clamped (as in the reference).
        let y = skip.forward(&x, RESNET_GAIN, None, params)?;
        let x = self.conv0.forward(&x, 1.0, clamp, params)?;
        let x = self.conv1.forward(&x, RESNET_GAIN, clamp, params)?;
        Ok((y + x)?)
    }

    /// The block's layers by state-dict name, in the reference's layer order.
    fn layer_names(&self) -> Vec<String> {
        let res = self.resolution;
        let mut names = Vec::new();
        if self.fromrgb.is_some() {
            names.push(format!("b{res}.fromrgb"));
        }
        names.push(format!("b{res}.conv0"));
        names.push(format!("b{res}.conv1"));
        if self.skip.is_some() {
            names.push(format!("b{res}.skip"));
        }
        names
    }
}

/// The 4 × 4 epilogue: minibatch standard deviation, a 3 × 3 convolution, two fully connected
/// layers to one logit.
struct Epilogue {
    conv: Conv2dLayer,
    fc: FullyConnected,
    out: FullyConnected,
}

pub struct Discriminator {
    blocks: Vec<Block>,
    epilogue: Epilogue,
    /// A conditional D's mapping of class labels to the projection its logits are taken
    /// along (`cmap`).
    mapping: Option<MappingLayers>,
    /// Samples per minibatch-standard-deviation group (what the weights cannot tell).
    pub mbstd_group: usize,
    /// Clamp of the convolution outputs (`conv_clamp`; none by default, also not in the weights).
    pub conv_clamp: Option<f64>,
    pub resolution: usize,
    pub img_channels: usize,
    /// Every trainable parameter by its state-dict name.
    params: Vec<(String, Var)>,
    /// Layers held fixed in training (Freeze-D), by state-dict name.
    pub(super) frozen: Vec<String>,
}

impl Discriminator {
    /// The discriminator the tensors describe, with minibatch-std groups of `mbstd_group`
    /// samples, which the weights cannot tell (the official configurations use 4, 8 or 32; the
    /// presets give theirs).
    pub fn load(w: &Weights, mbstd_group: usize) -> Result<Self> {
        let mut resolutions: Vec<usize> = w
            .names()
            .filter_map(|k| k.strip_prefix('b')?.split('.').next()?.parse().ok())
            .filter(|&r| r > 4)
            .collect();
        resolutions.sort_unstable_by(|a, b| b.cmp(a));
        resolutions.dedup();
        let Some(&resolution) = resolutions.first() else {
            return Err(Error::invalid(
                "missing discriminator blocks (tensors 'b<res>.…')",
            ));
        };
        let mut blocks = Vec::new();
        let mut img_channels = 0;
        for &res in &resolutions {
            let name = format!("b{res}");
            let conv0 = w.shape(&format!("{name}.conv0.weight"))?;
            let tmp = conv0[1];
            let out = w.shape(&format!("{name}.conv1.weight"))?[0];
            let fromrgb = if res == resolution {
                img_channels = w.shape(&format!("{name}.fromrgb.weight"))?[1];
                Some(Conv2dLayer::load(
                    w,
                    &format!("{name}.fromrgb"),
                    tmp,
                    img_channels,
                    1,
                    true,
                    Activation::LeakyRelu,
                    false,
                )?)
            } else {
                None
            };
            blocks.push(Block {
                resolution: res,
                fromrgb,
                conv0: Conv2dLayer::load(
                    w,
                    &format!("{name}.conv0"),
                    tmp,
                    tmp,
                    3,
                    true,
                    Activation::LeakyRelu,
                    false,
                )?,
                conv1: Conv2dLayer::load(
                    w,
                    &format!("{name}.conv1"),
                    out,
                    tmp,
                    3,
                    true,
                    Activation::LeakyRelu,
                    true,
                )?,
                skip: if w.contains(&format!("{name}.skip.weight")) {
                    Some(Conv2dLayer::load(
                        w,
                        &format!("{name}.skip"),
                        out,
                        tmp,
                        1,
                        false,
                        Activation::Linear,
                        true,
                    )?)
                } else {
                    None
                },
            });
        }
        let conv = w.shape("b4.conv.weight")?;
        let (c, c_mbstd) = (conv[0], conv[1]);
        let epilogue = Epilogue {
            conv: Conv2dLayer::load(
                w,
                "b4.conv",
                c,
                c_mbstd,
                3,
                true,
                Activation::LeakyRelu,
                false,
            )?,
            fc: FullyConnected::load(w, "b4.fc", c, c * 16, 1.0, Activation::LeakyRelu)?,
            out: FullyConnected::load(
                w,
                "b4.out",
                w.shape("b4.out.weight")?[0],
                c,
                1.0,
                Activation::Linear,
            )?,
        };
        let mapping = match w.contains("mapping.fc0.weight") {
            true => Some(MappingLayers::load(w, "mapping")?),
            false => None,
        };
        let out_dim = epilogue.out.weight.dim(0)?;
        let cmap_dim = mapping.as_ref().map_or(1, |m| m.out_dim);
        if out_dim != cmap_dim {
            return Err(Error::invalid(format!(
                "'b4.out.weight' has {out_dim} outputs, but the label mapping gives {cmap_dim}"
            )));
        }
        Ok(Discriminator {
            blocks,
            epilogue,
            mapping,
            mbstd_group,
            conv_clamp: None,
            resolution,
            img_channels,
            params: w.take_params(),
            frozen: Vec::new(),
        })
    }

    /// Every trainable parameter by its state-dict name (`b32.conv0.weight`, …).
    pub fn named_params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// The layers of the blocks by state-dict name (`b32.fromrgb`, `b32.conv0`, …) in the
    /// reference's order, which Freeze-D counts: its first N are frozen.
    pub fn layer_names(&self) -> Vec<String> {
        self.blocks.iter().flat_map(Block::layer_names).collect()
    }

    /// Classes of a conditional discriminator (0: unconditional).
    pub fn c_dim(&self) -> usize {
        self.mapping.as_ref().map_or(0, |m| m.c_dim)
    }

    /// Logits [N, 1] for images [N, C, R, R] in [−1, 1].
    pub fn forward(&self, img: &Tensor) -> Result<Tensor> {
        self.forward_with(img, Params::Tracked)
    }

    /// Logits of a conditional discriminator for images and their one-hot labels c [N, c_dim]:
    /// the epilogue's output projected on the labels' mapping, over √cmap_dim.
    pub fn forward_labelled(
        &self,
        img: &Tensor,
        c: Option<&Tensor>,
        params: Params,
    ) -> Result<Tensor> {
        let x = self.features(img, params)?;
        match &self.mapping {
            None if c.is_some() => Err(Error::invalid(
                "class labels given, but the discriminator is not conditional",
            )),
            None => Ok(x),
            Some(mapping) => {
                let cmap = mapping.forward_with(None, c, params)?;
                let scale = gain32(1.0 / (mapping.out_dim as f64).sqrt());
                Ok(((x * cmap)?.sum_keepdim(1)? * scale)?)
            }
        }
    }

    /// [`Discriminator::forward`] with the parameters tracked for gradients or held fixed.
    pub fn forward_with(&self, img: &Tensor, params: Params) -> Result<Tensor> {
        self.forward_labelled(img, None, params)
    }

    /// The epilogue's output: the logits of an unconditional D, what a conditional one
    /// projects.
    fn features(&self, img: &Tensor, params: Params) -> Result<Tensor> {
        let mut x = img.clone();
        for block in &self.blocks {
            x = block.forward(&x, self.conv_clamp, params)?;
        }
        let x = minibatch_std(&x, self.mbstd_group)?;
        let x = self
            .epilogue
            .conv
            .forward(&x, 1.0, self.conv_clamp, params)?;
        let x = self.epilogue.fc.forward_with(&x.flatten_from(1)?, params)?;
        self.epilogue.out.forward_with(&x, params)
    }

    /// Logits and ∂(Σ logits)/∂img: for each sample the gradient of its own logit (and, through
    /// the minibatch-std statistic, of its group's logits) — the official R1 gradient.
    pub fn forward_with_input_grad(
        &self,
        img: &Tensor,
        labels: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let x = Var::from_tensor(img)?;
        let logits = self.forward_labelled(x.as_tensor(), labels, Params::Tracked)?;
        let grad = crate::train::logit_input_gradient(&logits, &x)?;
        Ok((logits.detach(), grad))
    }
}

/// Appends one channel: the mean over features of the standard deviation within groups of
/// `group` samples (`min(group, N)`); groups interleave — sample s is in group s mod (N / G).
fn minibatch_std(x: &Tensor, group: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let g = group.min(n);
    if n % g != 0 {
        return Err(Error::invalid(format!(
            "a batch of {n} does not split into minibatch-std groups of {g}"
        )));
    }
    let groups = n / g;
    let y = x.reshape((g, groups, c, h, w))?;
    let centred = y.broadcast_sub(&y.mean_keepdim(0)?)?;
    let std = (centred.sqr()?.mean_keepdim(0)? + 1e-8)?.sqrt()?; // [1, groups, c, h, w]
    let stat = std.flatten_from(2)?.mean_keepdim(2)?; // [1, groups, 1]
    let stat = stat
        .reshape((1, groups, 1, 1, 1))?
        .broadcast_as((g, groups, 1, h, w))?
        .reshape((n, 1, h, w))?;
    Ok(Tensor::cat(&[x, &stat], 1)?)
}
