//! A run's own state in its checkpoints (what it trains on, its schedule, its history): a
//! typed struct with a format number, stored beside the trainer's state
//! ([`CheckpointMeta::extra`](crate::train::CheckpointMeta)).

use crate::io::versioned;
use crate::train::Checkpoint;
use crate::{Error, Result};
use candle_core::Device;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// The state a kind of run keeps in its checkpoints.
pub trait RunState: Serialize + DeserializeOwned {
    /// The model its checkpoints hold (checked on every read).
    const MODEL: &'static str;
    /// The number of the stored layout ([`crate::io::versioned`]): raised when the struct
    /// changes. Checkpoints written before states had numbers read as format 1.
    const FORMAT: u32;
}

/// Puts `state` into `ckpt`.
pub fn store<S: RunState>(ckpt: &mut Checkpoint, state: &S) {
    ckpt.meta.extra = versioned::to_json(state, S::FORMAT);
}

/// The run state of `ckpt`, read from the file `path`: its model and format checked.
pub fn read<S: RunState>(ckpt: &Checkpoint, path: &Path) -> Result<S> {
    ckpt.expect_model(S::MODEL)
        .map_err(|e| Error::in_file(path, e.to_string()))?;
    parse(&ckpt.meta.extra).map_err(|message| Error::in_file(path, message))
}

/// A checkpoint of a run of kind `S` and its state.
pub fn load<S: RunState>(path: &Path) -> Result<(Checkpoint, S)> {
    let ckpt = Checkpoint::load(path, &Device::Cpu)?;
    let state = read(&ckpt, path)?;
    Ok((ckpt, state))
}

/// The state of `path` when it is a checkpoint of a run of kind `S` (read from the file's
/// header only); `None` for any other file.
pub fn peek<S: RunState>(path: &Path) -> Option<S> {
    let meta = Checkpoint::read_meta(path)?;
    if meta.model != S::MODEL {
        return None;
    }
    parse(&meta.extra).ok()
}

fn parse<S: RunState>(extra: &serde_json::Value) -> Result<S, String> {
    versioned::from_json(extra, S::FORMAT, "run state")
}

/// The settings in which `was` and `now` differ, by dotted name: a value changed, or a setting
/// one of them has and the other lacks (e.g. a mode's parameters when the mode changes).
/// Empty when they are equal.
pub fn differences(was: &impl Serialize, now: &impl Serialize) -> String {
    let (was, now) = (leaves(was), leaves(now));
    let find = |list: &[(String, String)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    for (k, v) in &was {
        match find(&now, k) {
            Some(v2) if v2 == *v => {}
            Some(v2) => out.push(format!("{k} {v2} (the run used {v})")),
            None => out.push(format!("{k} unset (the run used {v})")),
        }
    }
    for (k, v) in &now {
        if find(&was, k).is_none() {
            out.push(format!("{k} {v} (the run had none)"));
        }
    }
    out.join(", ")
}

/// A value's leaves as (dotted path, value).
fn leaves(value: &impl Serialize) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            leaf => out.push((prefix.to_owned(), leaf.to_string())),
        }
    }
    let mut out = Vec::new();
    walk(
        "",
        &serde_json::to_value(value).expect("serialises"),
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::CheckpointMeta;
    use serde::Deserialize;
    use std::collections::HashMap;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Toy {
        data: String,
        width: usize,
    }

    impl RunState for Toy {
        const MODEL: &'static str = "toy";
        const FORMAT: u32 = 2;
    }

    fn checkpoint(model: &str, extra: serde_json::Value) -> Checkpoint {
        Checkpoint {
            meta: CheckpointMeta {
                model: model.into(),
                g_steps: 0,
                d_steps: 0,
                images_seen: 0,
                adam_steps_g: 0,
                adam_steps_d: 0,
                seed: 0,
                rng_word_pos: 0,
                config: serde_json::Value::Null,
                augment: None,
                g_penalty: None,
                extra,
            },
            tensors: HashMap::new(),
        }
    }

    #[test]
    fn states_round_trip_and_other_models_or_formats_are_refused() {
        let state = Toy {
            data: "ring".into(),
            width: 8,
        };
        let mut ckpt = checkpoint("toy", serde_json::Value::Null);
        store(&mut ckpt, &state);
        assert_eq!(ckpt.meta.extra["format"], 2);
        let path = Path::new("ck.safetensors");
        assert_eq!(read::<Toy>(&ckpt, path).unwrap(), state);

        let other = checkpoint("stylegan2", ckpt.meta.extra.clone());
        let err = read::<Toy>(&other, path).unwrap_err().to_string();
        assert!(err.contains("'stylegan2' model, expected 'toy'"), "{err}");

        let mut newer = ckpt.clone();
        newer.meta.extra["format"] = 3.into();
        let err = read::<Toy>(&newer, path).unwrap_err().to_string();
        assert!(
            err.contains("run state of format 3") && err.contains("reads format 2"),
            "{err}"
        );

        // Written before states had numbers: format 1, refused by a state at format 2.
        let old = checkpoint("toy", serde_json::json!({ "data": "ring", "width": 8 }));
        let err = read::<Toy>(&old, path).unwrap_err().to_string();
        assert!(err.contains("format 1"), "{err}");
    }

    #[test]
    fn differences_name_changed_values_and_one_sided_settings() {
        let was = serde_json::json!({ "seed": 0, "aug": { "mode": { "Ada": { "target": 0.6 } } } });
        let now = serde_json::json!({ "seed": 3, "aug": { "mode": "Fixed" } });
        assert_eq!(
            differences(&was, &now),
            "seed 3 (the run used 0), aug.mode.Ada.target unset (the run used 0.6), aug.mode \
             \"Fixed\" (the run had none)"
        );
        assert_eq!(differences(&was, &was), "");
    }
}
