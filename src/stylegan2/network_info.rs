//! What a checkpoint states about its networks beyond their tensors — the clamp of layer
//! outputs, D's minibatch-std group and architecture, the classes, the augmentation
//! probability — as an official network pickle's constructor arguments say it, or as
//! `whichgan convert` writes it into a safetensors file's metadata.

use crate::io::NetworkArguments;
use crate::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The safetensors metadata key of [`NetworkInfo`].
pub const METADATA_KEY: &str = "whichgan.networks";

/// What a checkpoint says of its networks (each field absent when it does not say).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub resolution: Option<usize>,
    pub z_dim: Option<usize>,
    pub w_dim: Option<usize>,
    /// Classes of a conditional network (0: unconditional).
    pub c_dim: Option<usize>,
    pub mapping_layers: Option<usize>,
    pub channel_base: Option<usize>,
    pub channel_max: Option<usize>,
    pub conv_clamp: Option<f64>,
    pub mbstd_group: Option<usize>,
    /// D's architecture: `resnet`, `orig` or `skip`.
    pub d_architecture: Option<String>,
    pub augment_p: Option<f64>,
}

impl NetworkInfo {
    /// What an official pickle's constructor arguments say.
    pub fn of_pickle(pickle: &NetworkArguments) -> NetworkInfo {
        let g = pickle
            .kwargs
            .get("G")
            .or_else(|| pickle.kwargs.get("G_ema"));
        let d = pickle.kwargs.get("D");
        let of = |v: Option<&serde_json::Value>, path: &[&str]| -> Option<serde_json::Value> {
            let mut v = v?;
            for key in path {
                v = v.get(key)?;
            }
            Some(v.clone())
        };
        let size = |v: Option<serde_json::Value>| v?.as_u64().and_then(|n| usize::try_from(n).ok());
        let either = |path: &[&str], d_path: &[&str]| of(g, path).or_else(|| of(d, d_path));
        NetworkInfo {
            resolution: size(either(&["img_resolution"], &["img_resolution"])),
            z_dim: size(of(g, &["z_dim"])),
            w_dim: size(of(g, &["w_dim"])),
            c_dim: size(either(&["c_dim"], &["c_dim"])),
            mapping_layers: size(of(g, &["mapping_kwargs", "num_layers"])),
            channel_base: size(either(
                &["synthesis_kwargs", "channel_base"],
                &["channel_base"],
            )),
            channel_max: size(either(
                &["synthesis_kwargs", "channel_max"],
                &["channel_max"],
            )),
            conv_clamp: either(&["synthesis_kwargs", "conv_clamp"], &["conv_clamp"])
                .and_then(|v| v.as_f64()),
            mbstd_group: size(of(d, &["epilogue_kwargs", "mbstd_group_size"])),
            d_architecture: of(d, &["architecture"]).and_then(|v| v.as_str().map(String::from)),
            augment_p: pickle.augment_p,
        }
    }

    /// What the checkpoint at `path` says: a network pickle's arguments, a converted
    /// safetensors file's metadata; nothing for other files.
    pub fn read(path: &Path) -> Result<NetworkInfo> {
        match crate::io::extension(path).as_deref() {
            Some("pkl") => Ok(Self::of_pickle(&crate::io::read_network_arguments(path)?)),
            Some("safetensors") => {
                let metadata = crate::io::safetensors_metadata(path).unwrap_or_default();
                let Some(text) = metadata.get(METADATA_KEY) else {
                    return Ok(NetworkInfo::default());
                };
                // Present but unreadable: the networks would be built with other settings.
                serde_json::from_str(text).map_err(|e| {
                    crate::Error::in_file(path, format!("its {METADATA_KEY} metadata: {e}"))
                })
            }
            _ => Ok(NetworkInfo::default()),
        }
    }
}

/// Writes the networks of `input` (`.pkl`, `.pt` or safetensors) as one safetensors file with
/// their state-dict names (`G.…`, `D.…`, `G_ema.…` for a pickle) and what the input states
/// about them as metadata, atomically. Returns the number of tensors.
pub fn convert(input: &Path, output: &Path) -> Result<usize> {
    let tensors = crate::io::read_tensor_file(input, &candle_core::Device::Cpu)?;
    let info = NetworkInfo::read(input)?;
    let mut named: Vec<(&String, candle_core::Tensor)> = Vec::with_capacity(tensors.len());
    for (name, t) in &tensors {
        named.push((name, t.to_dtype(candle_core::DType::F32)?));
    }
    named.sort_by(|a, b| a.0.cmp(b.0));
    let metadata = std::collections::HashMap::from([(
        METADATA_KEY.to_owned(),
        serde_json::to_string(&info).expect("network info serialises"),
    )]);
    let bytes = safetensors::serialize(named.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
        .map_err(|e| crate::Error::in_file(output, format!("cannot serialise: {e}")))?;
    crate::io::write_atomic(output, &bytes)?;
    Ok(named.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_metadata(dir: &Path, metadata: Option<&str>) -> std::path::PathBuf {
        let path = dir.join("networks.safetensors");
        let t = candle_core::Tensor::zeros(2, candle_core::DType::F32, &candle_core::Device::Cpu)
            .unwrap();
        let metadata = metadata
            .map(|m| std::collections::HashMap::from([(METADATA_KEY.to_owned(), m.into())]));
        let bytes = safetensors::serialize([("G.x", &t)], metadata).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn metadata_is_read_absent_means_unstated_and_broken_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let info = NetworkInfo::read(&with_metadata(dir.path(), Some(r#"{"conv_clamp":256.0}"#)));
        assert_eq!(info.unwrap().conv_clamp, Some(256.0));
        let none = NetworkInfo::read(&with_metadata(dir.path(), None)).unwrap();
        assert_eq!(none, NetworkInfo::default());
        let broken = with_metadata(dir.path(), Some(r#"{"conv_clamp":"#));
        let err = NetworkInfo::read(&broken).unwrap_err().to_string();
        assert!(
            err.contains(METADATA_KEY) && err.contains("networks.safetensors"),
            "{err}"
        );
    }
}
