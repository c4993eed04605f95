//! The study file's schema: TOML read through serde, every table closed to unknown keys, and
//! errors on one line with the line, the column and the key.
//!
//! ```toml
//! scratch = true                        # also fine-tune every target from random networks
//!
//! [datasets.shapes40]                   # datasets the study makes (or `path = "…"`)
//! synth = { images = 2000, classes = 40, resolution = 16, seed = 1 }
//!
//! [sources.imagenet]                    # a source: a checkpoint, or pretrained here
//! pretrain = { data = "shapes40", training = { kimg = 40 } }
//! [sources.ffhq]
//! checkpoint = "ffhq-256.pt"
//! data = "ffhq-1k.zip"                  # its real images (selection setting 1)
//!
//! [targets.flowers]
//! data = "flowers.zip"                  # a dataset name above, or a path
//! classes = true                        # class coverage from its labels
//! training = { kimg = 500 }             # overrides of [training] for this target
//!
//! [training]                            # every fine-tune: `whichgan train`'s settings
//! cfg = "paper256"
//! kimg = 1000
//! snap = 100
//!
//! [pretraining]                         # every pretraining run
//! [metrics]
//! features = "inception"                # or "pixels" (weight-free, for CPU-sized studies)
//! inception = "pt_inception.pth"
//! vgg16 = "vgg16.pth"                   # precision and recall on VGG16 (optional)
//! n = 5000                              # generated images per snapshot
//! k = 3
//! classes_n = 10000
//! classes_min = 10
//! [selection]
//! real = true                           # setting 1: real source images vs the target
//! generated = 5000                      # setting 2: this many samples of each source
//! ```

use crate::run::stylegan2::TrainSettings;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A study file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyFile {
    /// Fine-tune every target from random networks too.
    #[serde(default = "yes")]
    pub scratch: bool,
    #[serde(default)]
    pub datasets: BTreeMap<String, DatasetEntry>,
    pub sources: BTreeMap<String, SourceEntry>,
    pub targets: BTreeMap<String, TargetEntry>,
    #[serde(default)]
    pub training: TrainSettings,
    #[serde(default)]
    pub pretraining: TrainSettings,
    pub metrics: MetricsEntry,
    #[serde(default)]
    pub selection: SelectionEntry,
    #[serde(default)]
    pub report: ReportEntry,
}

fn yes() -> bool {
    true
}

/// A dataset the study makes (`synth`) or finds (`path`): exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    pub synth: Option<SynthEntry>,
    pub path: Option<PathBuf>,
}

/// `whichgan dataset synth`'s options; the labels count from `first_class`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthEntry {
    pub images: usize,
    pub classes: usize,
    #[serde(default)]
    pub first_class: usize,
    pub resolution: u32,
    #[serde(default)]
    pub seed: u64,
}

/// A candidate source: a checkpoint, or networks pretrained here (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    pub checkpoint: Option<PathBuf>,
    pub pretrain: Option<PretrainEntry>,
    /// Real images of the source's domain, for selection setting 1 (a pretrained source's
    /// own data by default).
    pub data: Option<String>,
}

/// Pretraining on one of the study's datasets (a name or a path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainEntry {
    pub data: String,
    #[serde(default)]
    pub training: TrainSettings,
}

/// A target dataset (a name or a path) and its overrides of `[training]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetEntry {
    pub data: String,
    /// Count the classes the fine-tunes cover, with a probe fitted on the target's labels.
    #[serde(default)]
    pub classes: bool,
    #[serde(default)]
    pub training: TrainSettings,
}

/// The feature spaces and sample counts of every score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsEntry {
    /// The embedding of FID and KID (and of precision and recall without `vgg16`) and of the
    /// class probes: `inception` or `pixels`.
    pub features: String,
    pub inception: Option<PathBuf>,
    pub vgg16: Option<PathBuf>,
    #[serde(default = "default_n")]
    pub n: usize,
    #[serde(default = "default_k")]
    pub k: usize,
    #[serde(default = "default_classes_n")]
    pub classes_n: usize,
    #[serde(default = "default_classes_min")]
    pub classes_min: usize,
}

fn default_n() -> usize {
    5000
}
fn default_k() -> usize {
    3
}
fn default_classes_n() -> usize {
    10_000
}
fn default_classes_min() -> usize {
    10
}

/// How the sources are scored against each target before any fine-tune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionEntry {
    #[serde(default = "yes")]
    pub real: bool,
    #[serde(default = "default_n")]
    pub generated: usize,
}

impl Default for SelectionEntry {
    fn default() -> Self {
        SelectionEntry {
            real: true,
            generated: default_n(),
        }
    }
}

/// What the report checks the claims against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportEntry {
    /// The source in the role of the study's ImageNet start (the broadest one), whose class
    /// coverage the report compares with the others'.
    pub broad_source: Option<String>,
}

impl StudyFile {
    /// Parses `text` (read from `path`, which errors name).
    pub fn parse(text: &str, path: &Path) -> Result<StudyFile> {
        toml::from_str(text).map_err(|e| Error::in_file(path, one_line(&e, text)))
    }

    /// Reads and parses a study file.
    pub fn read(path: &Path) -> Result<StudyFile> {
        crate::io::check_readable_file(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }
}

/// A TOML error as `line L, column C: key 'K': message`, the key read from the line it points
/// at.
fn one_line(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        return message;
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or_default();
    let key = line_text
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| !key.is_empty() && !key.starts_with('['));
    match key {
        Some(key) if !message.contains(&format!("`{key}`")) => {
            format!("line {line}, column {column}: key '{key}': {message}")
        }
        _ => format!("line {line}, column {column}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
[sources.a]
checkpoint = 'a.pt'
[targets.t]
data = 't.zip'
[metrics]
features = 'pixels'
";

    #[test]
    fn defaults_fill_what_a_file_leaves_out() {
        let f = StudyFile::parse(MINIMAL, Path::new("s.toml")).unwrap();
        assert!(f.scratch && f.selection.real);
        assert_eq!((f.metrics.n, f.metrics.k), (5000, 3));
        assert_eq!((f.metrics.classes_n, f.metrics.classes_min), (10_000, 10));
        assert_eq!(f.selection.generated, 5000);
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let path = Path::new("s.toml");
        let err = |text: &str| StudyFile::parse(text, path).unwrap_err().to_string();
        let e = err(&format!("{MINIMAL}kimgg = 3\n"));
        assert!(e.starts_with("s.toml: line 8, column 1: "), "{e}");
        assert!(e.contains("kimgg"), "{e}");
        let e = err(&MINIMAL.replace("[metrics]", "[training]\nkimg = 'ten'\n[metrics]"));
        assert!(e.contains("line 7") && e.contains("key 'kimg'"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = err("[sources.a]\ncheckpoint = 'a.pt'\n");
        assert!(e.contains("targets"), "{e}");
    }
}
