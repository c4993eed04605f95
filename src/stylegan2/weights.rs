//! Loading a StyleGAN2 network (G, G_ema or D) from a training checkpoint.

use crate::io::read_tensor_file;
pub use crate::io::Weights;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Names of the networks a training checkpoint may hold.
const NETWORKS: [&str; 3] = ["G", "G_ema", "D"];

/// The tensors of network `net` (`G`, `G_ema` or `D`) in a checkpoint — safetensors, or a
/// PyTorch zip checkpoint of state dicts (`.pt`, e.g. the study's `imagenet-256-state.pt`):
/// those under `net.` when the file holds several networks (`G.`, `D.`, `G_ema.` prefixes),
/// else all of them (a file of one network's state dict).
pub fn load_network(path: &Path, net: &str, device: &Device) -> Result<Weights> {
    network_in(&read_tensor_file(path, device)?, path, net)
}

/// The tensors of network `net` among `all`, the tensors of the file `path`, chosen as
/// [`load_network`] does (for reading several networks from one reading of a file).
pub fn network_in(all: &HashMap<String, Tensor>, path: &Path, net: &str) -> Result<Weights> {
    let prefixed: Vec<&str> = NETWORKS
        .iter()
        .copied()
        .filter(|n| all.keys().any(|k| k.starts_with(&format!("{n}."))))
        .collect();
    if !prefixed.is_empty() && !prefixed.contains(&net) {
        return Err(Error::in_file(
            path,
            format!(
                "holds no '{net}.' tensors (it holds: {})",
                prefixed.join(", ")
            ),
        ));
    }
    let head = format!("{net}.");
    let tensors: HashMap<String, Tensor> = if prefixed.is_empty() {
        all.clone()
    } else {
        all.iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&head)?.to_owned(), v.clone())))
            .collect()
    };
    if tensors.is_empty() {
        return Err(Error::in_file(path, "holds no tensors"));
    }
    Ok(Weights::new(tensors, path.display().to_string()))
}
