//! A study file checked and resolved: names, datasets, checkpoints, every run's settings and
//! the metrics, before any work. Each error names the file and the key.

use super::file::{DatasetEntry, StudyFile};
use crate::dataset::{ImageDataset, Resize, SynthSpec, MAX_CLASSES};
use crate::features::ExtractorKind;
use crate::run::stylegan2::TrainSettings;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The name of the random-initialisation "source".
pub const SCRATCH: &str = "scratch";

/// Where a study's images come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Data {
    /// A dataset the study makes, in `datasets/<name>.zip` of its folder.
    Made { name: String, spec: SynthSpecEntry },
    /// A dataset on disk.
    File(PathBuf),
}

/// [`SynthSpec`] as a study keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SynthSpecEntry {
    pub images: usize,
    pub classes: usize,
    pub first_class: usize,
    pub resolution: u32,
    pub seed: u64,
}

impl SynthSpecEntry {
    pub fn spec(&self) -> SynthSpec {
        SynthSpec {
            images: self.images,
            classes: self.classes,
            first_class: self.first_class,
            resolution: self.resolution,
            seed: self.seed,
        }
    }
}

impl Data {
    /// The dataset's file, `out` being the study's folder.
    pub fn path(&self, out: &Path) -> PathBuf {
        match self {
            Data::Made { name, .. } => out.join("datasets").join(format!("{name}.zip")),
            Data::File(path) => path.clone(),
        }
    }
}

/// How a source's networks come about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SourceStart {
    Checkpoint(PathBuf),
    Pretrain {
        data: Data,
        settings: Box<TrainSettings>,
        resolution: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub name: String,
    pub start: SourceStart,
    /// Its real images, for selection setting 1.
    pub real: Option<Data>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    pub data: Data,
    pub resolution: usize,
    pub classes: bool,
    pub settings: TrainSettings,
}

/// The feature spaces and sample counts of every score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// `inception` or `pixels`: FID, KID, the class probes (and precision/recall without VGG16).
    pub features: String,
    pub inception: Option<PathBuf>,
    pub vgg16: Option<PathBuf>,
    pub n: usize,
    pub k: usize,
    pub classes_n: usize,
    pub classes_min: usize,
}

impl Metrics {
    pub fn kind(&self) -> ExtractorKind {
        self.features
            .parse()
            .expect("checked when the study was read")
    }
}

/// A checked study: what `study run` runs and `study report` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Study {
    pub sources: Vec<Source>,
    pub targets: Vec<Target>,
    pub scratch: bool,
    pub metrics: Metrics,
    /// Selection setting 1 (real source images) and setting 2's sample count (0: off).
    pub select_real: bool,
    pub select_generated: usize,
    pub broad_source: Option<String>,
}

impl Study {
    /// Reads and checks a study file; relative paths in it are relative to its folder.
    pub fn read(path: &Path) -> Result<Study> {
        let file = StudyFile::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::check(&file, base).map_err(|e| e.located_in(path))
    }

    /// Checks a parsed study file, its relative paths taken from `base`.
    pub fn check(file: &StudyFile, base: &Path) -> Result<Study> {
        let resolve = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        for (name, entry) in &file.datasets {
            let key = format!("datasets.{name}");
            check_name(&key, name)?;
            match (&entry.synth, &entry.path) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => return Err(at(&key, "needs exactly one of `synth` and `path`")),
            }
        }
        // A data reference: a dataset named above, or a path.
        let data = |key: &str, name: &str| -> Result<(Data, usize, bool)> {
            match file.datasets.get(name) {
                Some(DatasetEntry { synth: Some(s), .. }) => {
                    let spec = check_synth(&format!("datasets.{name}.synth"), s)?;
                    let made = Data::Made {
                        name: name.to_owned(),
                        spec,
                    };
                    Ok((made, spec.resolution as usize, true))
                }
                Some(DatasetEntry {
                    path: Some(path), ..
                }) => dataset_file(&format!("datasets.{name}.path"), &resolve(path)),
                _ => dataset_file(key, &resolve(Path::new(name))),
            }
        };
        if file.sources.is_empty() {
            return Err(at("sources", "the study needs at least one source"));
        }
        if file.targets.is_empty() {
            return Err(at("targets", "the study needs at least one target"));
        }
        let mut targets = Vec::new();
        for (name, entry) in &file.targets {
            let key = format!("targets.{name}");
            check_name(&key, name)?;
            let (data, resolution, labelled) = data(&format!("{key}.data"), &entry.data)?;
            if entry.classes && !labelled {
                return Err(at(
                    &format!("{key}.classes"),
                    format!("the dataset '{}' has no class labels", entry.data),
                ));
            }
            let settings = file.training.overridden_by(&entry.training);
            check_settings(&format!("{key}.training"), &settings, resolution)?;
            targets.push(Target {
                name: name.clone(),
                data,
                resolution,
                classes: entry.classes,
                settings,
            });
        }
        let mut sources = Vec::new();
        for (name, entry) in &file.sources {
            let key = format!("sources.{name}");
            check_name(&key, name)?;
            if name == SCRATCH {
                return Err(at(
                    &key,
                    "'scratch' is the name of the runs from random networks (`scratch = true`)",
                ));
            }
            let (start, own_data) = match (&entry.checkpoint, &entry.pretrain) {
                (Some(ckpt), None) => {
                    let path = resolve(ckpt);
                    crate::io::check_readable_file(&path)
                        .map_err(|e| at(&format!("{key}.checkpoint"), e.to_string()))?;
                    (SourceStart::Checkpoint(path), None)
                }
                (None, Some(pretrain)) => {
                    let k = format!("{key}.pretrain");
                    let (d, resolution, _) = data(&format!("{k}.data"), &pretrain.data)?;
                    let settings = file.pretraining.overridden_by(&pretrain.training);
                    check_settings(&format!("{k}.training"), &settings, resolution)?;
                    let start = SourceStart::Pretrain {
                        data: d.clone(),
                        settings: Box::new(settings),
                        resolution,
                    };
                    (start, Some(d))
                }
                _ => return Err(at(&key, "needs exactly one of `checkpoint` and `pretrain`")),
            };
            if let (SourceStart::Pretrain { resolution, .. }, Some(t)) = (&start, targets.first()) {
                if *resolution != t.resolution {
                    return Err(at(
                        &format!("{key}.pretrain.data"),
                        format!(
                            "{resolution}×{resolution} images, but target '{}' has {}×{}: a \
                             source's networks fine-tune on images of their own size",
                            t.name, t.resolution, t.resolution
                        ),
                    ));
                }
            }
            let real = match &entry.data {
                Some(d) => Some(data(&format!("{key}.data"), d)?.0),
                None => own_data,
            };
            sources.push(Source {
                name: name.clone(),
                start,
                real,
            });
        }
        if let Some(t) = targets
            .iter()
            .find(|t| t.resolution != targets[0].resolution)
        {
            return Err(at(
                &format!("targets.{}.data", t.name),
                format!(
                    "{0}×{0} images, but target '{1}' has {2}×{2}: one study fine-tunes at one \
                     resolution",
                    t.resolution, targets[0].name, targets[0].resolution
                ),
            ));
        }
        let metrics = check_metrics(file, &resolve)?;
        if let Some(broad) = &file.report.broad_source {
            if !file.sources.contains_key(broad) {
                return Err(at(
                    "report.broad_source",
                    format!("no source is named '{broad}'"),
                ));
            }
        }
        Ok(Study {
            sources,
            targets,
            scratch: file.scratch,
            metrics,
            select_real: file.selection.real,
            select_generated: file.selection.generated,
            broad_source: file.report.broad_source.clone(),
        })
    }

    /// The names of the fine-tunes' starts: the sources, then scratch when asked for.
    pub fn starts(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
        if self.scratch {
            names.push(SCRATCH);
        }
        names
    }

    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// An error about `key` of the study file.
fn at(key: &str, message: impl std::fmt::Display) -> Error {
    Error::invalid(format!("`{key}`: {message}"))
}

/// Names become folder and file names: letters, digits, `-` and `_`.
fn check_name(key: &str, name: &str) -> Result<()> {
    let fine = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !fine {
        return Err(at(
            key,
            "a name may hold only letters, digits, '-' and '_' (it names folders)",
        ));
    }
    Ok(())
}

fn check_synth(key: &str, s: &super::file::SynthEntry) -> Result<SynthSpecEntry> {
    if s.images == 0 {
        return Err(at(&format!("{key}.images"), "must be at least 1"));
    }
    if s.classes == 0 || s.first_class + s.classes > MAX_CLASSES {
        return Err(at(
            &format!("{key}.classes"),
            format!(
                "classes {}…{} do not exist: there are {MAX_CLASSES} (0…{})",
                s.first_class,
                s.first_class + s.classes.max(1) - 1,
                MAX_CLASSES - 1
            ),
        ));
    }
    if s.resolution < 8 || !s.resolution.is_power_of_two() {
        return Err(at(
            &format!("{key}.resolution"),
            format!(
                "{} is not a power of two of at least 8, as training needs",
                s.resolution
            ),
        ));
    }
    Ok(SynthSpecEntry {
        images: s.images,
        classes: s.classes,
        first_class: s.first_class,
        resolution: s.resolution,
        seed: s.seed,
    })
}

/// A dataset on disk: its side and whether it has labels.
fn dataset_file(key: &str, path: &Path) -> Result<(Data, usize, bool)> {
    let check = || -> Result<(usize, bool)> {
        let d = ImageDataset::open(path)?;
        let (w, h) = d.image_size(Resize::None, false)?;
        if w != h || !w.is_power_of_two() {
            return Err(Error::in_file(
                path,
                format!("{w}×{h} images: training needs square power-of-two images"),
            ));
        }
        Ok((w as usize, d.labels()?.is_some()))
    };
    let (side, labelled) = check().map_err(|e| at(key, e))?;
    Ok((Data::File(path.to_owned()), side, labelled))
}

/// The settings as `train` checks them, errors named by the study's keys.
fn check_settings(key: &str, settings: &TrainSettings, resolution: usize) -> Result<()> {
    let out = std::env::temp_dir().join("whichgan-study-check");
    match settings.options(Path::new("data"), resolution, &out, None) {
        Ok(_) => Ok(()),
        Err(Error::Setting {
            setting,
            value,
            message,
        }) => {
            let name = |s: &str| {
                let s = s.trim_end_matches("_kimg");
                format!("{key}.{s}")
            };
            let named =
                Error::setting_name(setting, value.as_deref(), |s| format!("`{}`", name(s)));
            // Other settings the message mentions, `tick_kimg` say, by their keys too.
            let parts: Vec<&str> = message.split('`').collect();
            let message: String = parts
                .iter()
                .enumerate()
                .map(|(i, part)| match i % 2 == 1 && i + 1 < parts.len() {
                    true => format!("`{}`", name(part)),
                    false => part.to_string(),
                })
                .collect();
            Err(Error::invalid(format!("{named}: {message}")))
        }
        Err(e) => Err(at(key, e)),
    }
}

fn check_metrics(file: &StudyFile, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<Metrics> {
    let m = &file.metrics;
    let kind: ExtractorKind = m
        .features
        .parse()
        .map_err(|e: Error| at("metrics.features", e))?;
    let inception = m.inception.as_deref().map(resolve);
    let vgg16 = m.vgg16.as_deref().map(resolve);
    match (kind, &inception) {
        (ExtractorKind::Inception, None) => {
            return Err(at(
                "metrics.inception",
                "`features = \"inception\"` needs the Inception weights",
            ))
        }
        (ExtractorKind::Vgg16, _) => {
            return Err(at(
                "metrics.features",
                "expected inception or pixels (VGG16 serves precision and recall: `vgg16`)",
            ))
        }
        _ => {}
    }
    for (key, path) in [("metrics.inception", &inception), ("metrics.vgg16", &vgg16)] {
        if let Some(p) = path {
            crate::io::check_readable_file(p).map_err(|e| at(key, e))?;
        }
    }
    if m.n < 2 {
        return Err(at("metrics.n", "needs at least 2 images"));
    }
    if m.k == 0 || m.k >= m.n {
        return Err(at(
            "metrics.k",
            format!("must lie in 1…{} (below `metrics.n`)", m.n - 1),
        ));
    }
    if m.classes_n == 0 || m.classes_min == 0 {
        return Err(at(
            "metrics.classes_n",
            "`classes_n` and `classes_min` must be at least 1",
        ));
    }
    if file.selection.generated == 1 {
        return Err(at(
            "selection.generated",
            "needs at least 2 samples (or 0 to leave setting 2 out)",
        ));
    }
    Ok(Metrics {
        features: m.features.clone(),
        inception,
        vgg16,
        n: m.n,
        k: m.k,
        classes_n: m.classes_n,
        classes_min: m.classes_min,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
[datasets.many]
synth = { images = 10, classes = 40, resolution = 16 }
[datasets.few]
synth = { images = 10, classes = 4, first_class = 8, resolution = 16 }
[sources.broad]
pretrain = { data = 'many', training = { kimg = 1 } }
[targets.t]
data = 'few'
classes = true
[training]
kimg = 2
snap = 1
tick = 1
[metrics]
features = 'pixels'
n = 10
";

    fn check(text: &str) -> Result<Study> {
        Study::check(
            &StudyFile::parse(text, Path::new("s.toml"))?,
            Path::new("."),
        )
    }

    #[test]
    fn a_good_study_resolves() {
        let s = check(GOOD).unwrap();
        assert_eq!(s.starts(), vec!["broad", SCRATCH]);
        let t = &s.targets[0];
        assert_eq!((t.resolution, t.classes), (16, true));
        assert_eq!(t.settings.kimg, Some(2.0));
        let SourceStart::Pretrain { settings, data, .. } = &s.sources[0].start else {
            panic!("pretrained")
        };
        assert_eq!(settings.kimg, Some(1.0));
        assert_eq!(
            data.path(Path::new("out")),
            Path::new("out/datasets/many.zip")
        );
        assert_eq!(s.sources[0].real.as_ref(), Some(data));
    }

    #[test]
    fn each_mistake_names_its_key() {
        for (from, to, expected) in [
            ("data = 'few'", "data = 'nowhere.zip'", "`targets.t.data`: "),
            ("kimg = 2", "kimg = -2", "`targets.t.training.kimg` -2: must be positive"),
            ("snap = 1", "snap = 1.5", "`targets.t.training.snap` 1.5: not a multiple of"),
            ("[targets.t]", "[targets.'t 1']", "`targets.t 1`: a name may hold only"),
            ("[sources.broad]", "[sources.scratch]", "`sources.scratch`: 'scratch' is"),
            ("first_class = 8", "first_class = 38", "`datasets.few.synth.classes`: classes 38…41"),
            ("resolution = 16 }\n[sources", "resolution = 12 }\n[sources", "`datasets.few.synth.resolution`: 12 is not"),
            ("features = 'pixels'", "features = 'inception'", "`metrics.inception`: "),
            ("features = 'pixels'", "features = 'pixels'\nk = 10", "`metrics.k`: must lie in 1…9"),
            (
                "pretrain = { data = 'many', training = { kimg = 1 } }",
                "pretrain = { data = 'many' }\ncheckpoint = 'x.pt'",
                "`sources.broad`: needs exactly one of",
            ),
            (
                "[datasets.few]\nsynth = { images = 10, classes = 4, first_class = 8, resolution = 16 }",
                "[datasets.few]\nsynth = { images = 10, classes = 4, first_class = 8, resolution = 32 }",
                "`sources.broad.pretrain.data`: 16×16 images, but target 't' has 32×32",
            ),
        ] {
            assert!(GOOD.contains(from), "{from}");
            let e = check(&GOOD.replacen(from, to, 1)).unwrap_err().to_string();
            assert!(e.contains(expected), "{to}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
