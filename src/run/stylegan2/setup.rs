//! A StyleGAN2 trainer as a run's spec asks for it: from scratch or from a pretrained
//! checkpoint, with the preset's settings, Freeze-D, ADA and path-length regularisation.

use super::spec::{AugMode, RunSpec};
use super::StyleGan2Trainer;
use crate::stylegan2::augment::{Ada, AugmentPipe, AugmentSpec};
use crate::stylegan2::trainable::PathLength;
use crate::stylegan2::weights::network_in;
use crate::stylegan2::{Architecture, Discriminator, Generator};
use crate::train::{Network, Trainer};
use crate::{Error, Result};
use candle_core::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// A fresh trainer for `spec` on images of `resolution` in `classes` classes (0: an
/// unconditional run), from scratch or from the networks of the pretrained checkpoint
/// `spec.start`, with ADA and path length set as the spec says.
pub fn new_trainer(
    spec: &RunSpec,
    resolution: usize,
    classes: usize,
    device: &Device,
) -> Result<StyleGan2Trainer> {
    let preset = &spec.preset;
    let (mut g, mut g_ema, mut d) = match &spec.start {
        None => {
            // The initialisation draws from its own stream, not the training stream.
            let mut init = ChaCha8Rng::seed_from_u64(spec.seed);
            init.set_stream(1);
            let arch = Architecture {
                c_dim: classes,
                ..preset.architecture(resolution, 3)
            };
            let g = arch.generator(&mut init, device)?;
            let d = arch.discriminator(&mut init, preset.mbstd_group, device)?;
            (g, None, d)
        }
        Some(path) => load_pretrained(Path::new(path), preset.mbstd_group, device)?,
    };
    if g.synthesis.resolution() != resolution || d.resolution != resolution {
        return Err(Error::invalid(format!(
            "G makes {0}×{0} images and D judges {1}×{1} ones; the dataset has {resolution}×{resolution}",
            g.synthesis.resolution(),
            d.resolution
        )));
    }
    if g.mapping.c_dim != classes || d.c_dim() != classes {
        let what = |k: usize| match k {
            0 => "unconditional".to_owned(),
            k => format!("conditional on {k} classes"),
        };
        return Err(Error::setting(
            "cond",
            None,
            format!(
                "the networks are {} (G) and {} (D), the run is {}: a conditional start \
                 needs `cond` and a labelled dataset of as many classes, an unconditional one \
                 neither",
                what(g.mapping.c_dim),
                what(d.c_dim()),
                what(classes)
            ),
        ));
    }
    for net in std::iter::once(&mut g).chain(g_ema.as_mut()) {
        net.synthesis.conv_clamp = preset.conv_clamp;
        net.style_mixing = preset.style_mixing;
    }
    d.conv_clamp = preset.conv_clamp;
    d.freeze(spec.freezed)?;
    // Without a G_ema of its own (from scratch), the trainer starts it as a copy of G.
    let mut trainer = Trainer::with_average(g, g_ema, d, preset.train_config(), spec.seed, device)?;
    trainer.clean_gradients();
    if preset.pl_weight > 0.0 {
        trainer.set_generator_penalty(Box::new(PathLength::official(preset.pl_weight)));
    }
    // Like the reference, no pipeline at a fixed p of 0: it would only draw random numbers.
    let augments = match spec.aug.mode {
        AugMode::NoAug => false,
        AugMode::Fixed => spec.aug.p > 0.0,
        AugMode::Ada { .. } => true,
    };
    if augments {
        let pipe = AugmentPipe::new(AugmentSpec::preset(&spec.aug.pipe)?, spec.aug.p as f32);
        let mut ada = Ada::new(pipe, matches!(spec.aug.mode, AugMode::Ada { .. }));
        if let AugMode::Ada { target, speed_kimg } = spec.aug.mode {
            ada.target = target;
            ada.speed_kimg = speed_kimg;
        }
        trainer.set_augment(Box::new(ada));
    }
    Ok(trainer)
}

/// G, G_ema (when the file has one) and D of a pretrained checkpoint; every tensor of the
/// file must find its place (the official fixed resampling filters aside).
fn load_pretrained(
    path: &Path,
    mbstd_group: usize,
    device: &Device,
) -> Result<(Generator, Option<Generator>, Discriminator)> {
    let all = crate::io::read_tensor_file(path, device)?;
    let g_weights = network_in(&all, path, "G")?;
    let g = Generator::load(&g_weights)?;
    let g_ema = match network_in(&all, path, "G_ema") {
        Ok(w) => {
            let g_ema = Generator::load(&w)?;
            check_all_used(path, "G_ema", w.names(), &g_ema)?;
            Some(g_ema)
        }
        Err(_) => None,
    };
    let d_weights = network_in(&all, path, "D")?;
    let d = Discriminator::load(&d_weights, mbstd_group)?;
    check_all_used(path, "G", g_weights.names(), &g)?;
    check_all_used(path, "D", d_weights.names(), &d)?;
    Ok((g, g_ema, d))
}

fn check_all_used<'a>(
    path: &Path,
    net: &str,
    names: impl Iterator<Item = &'a str>,
    model: &impl Network,
) -> Result<()> {
    let known: std::collections::HashSet<String> = model
        .parameters()
        .into_iter()
        .map(|(n, _)| n)
        .chain(model.buffers().into_iter().map(|(n, _)| n))
        .collect();
    let mut unused: Vec<&str> = names
        .filter(|n| !known.contains(*n) && !n.ends_with("resample_filter"))
        .collect();
    unused.sort_unstable();
    match unused.first() {
        None => Ok(()),
        Some(first) => Err(Error::in_file(
            path,
            format!(
                "{net} has {} tensor(s) this architecture does not use, e.g. '{first}' \
                 (a conditional or non-skip/resnet network?)",
                unused.len()
            ),
        )),
    }
}
