//! Training checkpoints: one safetensors file holding G, D, G-EMA, both optimiser states and,
//! in its metadata, the step counters, the RNG position and the run's configuration.
//!
//! Tensor names: `G.<param>`, `G_ema.<param>`, `D.<param>` (names of the reference PyTorch
//! state dict), `opt_G.m.<param>`, `opt_G.v.<param>`, `opt_D.…`.

use crate::io::write_atomic;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Metadata key under which [`CheckpointMeta`] is stored as JSON.
const META_KEY: &str = "whichgan";

/// Everything but the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Which model wrote it (e.g. `toy-mlp`); loading into another model is an error.
    pub model: String,
    pub g_steps: u64,
    pub d_steps: u64,
    pub images_seen: u64,
    pub adam_steps_g: u64,
    pub adam_steps_d: u64,
    pub seed: u64,
    /// Position of the training RNG stream, in 32-bit words.
    pub rng_word_pos: u128,
    /// The run's settings, for the record and for `--resume` checks.
    pub config: serde_json::Value,
    /// State of the augmentation (e.g. ADA's probability), when the run has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<serde_json::Value>,
    /// State of the lazy generator regulariser (e.g. the mean path length), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub g_penalty: Option<serde_json::Value>,
    /// The caller's own state (e.g. what the run trains on, its evaluation history), kept
    /// for `--resume`.
    #[serde(default)]
    pub extra: serde_json::Value,
}

/// A checkpoint in memory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    pub tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    /// Writes the checkpoint atomically (f32 tensors).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut info = HashMap::new();
        info.insert(
            META_KEY.to_owned(),
            serde_json::to_string(&self.meta).expect("metadata serialises"),
        );
        let mut named: Vec<(&String, Tensor)> = Vec::with_capacity(self.tensors.len());
        for (name, t) in &self.tensors {
            named.push((name, t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?));
        }
        named.sort_by(|a, b| a.0.cmp(b.0));
        let bytes = safetensors::serialize(named.iter().map(|(n, t)| (n.as_str(), t)), Some(info))
            .map_err(|e| Error::in_file(path, format!("cannot serialise checkpoint: {e}")))?;
        write_atomic(path, &bytes)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`]; tensors land on `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        crate::io::check_readable_file(path)?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::in_file(path, format!("not a safetensors checkpoint ({e})")))?;
        let meta = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_KEY))
            .ok_or_else(|| {
                Error::in_file(
                    path,
                    "a safetensors file, but not a whichgan training checkpoint",
                )
            })?;
        let meta: CheckpointMeta = serde_json::from_str(meta)
            .map_err(|e| Error::in_file(path, format!("unreadable checkpoint metadata: {e}")))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| Error::in_file(path, format!("corrupt checkpoint tensors: {e}")))?;
        Ok(Checkpoint { meta, tensors })
    }

    /// Only the metadata of a checkpoint written by [`Checkpoint::save`], read from the file's
    /// header without its tensors; `None` for any other file.
    pub fn read_meta(path: &Path) -> Option<CheckpointMeta> {
        serde_json::from_str(crate::io::safetensors_metadata(path)?.get(META_KEY)?).ok()
    }

    /// An error unless the checkpoint holds `model`.
    pub fn expect_model(&self, model: &str) -> Result<()> {
        if self.meta.model != model {
            return Err(Error::invalid(format!(
                "the checkpoint holds a '{}' model, expected '{model}'",
                self.meta.model
            )));
        }
        Ok(())
    }

    /// The tensor `name`, or an error naming the checkpoint's model.
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        self.tensors.get(name).cloned().ok_or_else(|| {
            Error::invalid(format!(
                "checkpoint of model '{}' has no tensor '{name}'",
                self.meta.model
            ))
        })
    }
}
