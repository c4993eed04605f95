//! A network's stored tensors, keyed by the official state-dict names, with errors that name
//! the missing key or the mismatching shape.

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;
use std::path::Path;

/// The tensors of one network (G or D), names without the network prefix.
#[derive(Debug, Clone)]
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    /// Where they came from, for error messages.
    origin: String,
}

impl Weights {
    pub fn new(tensors: HashMap<String, Tensor>, origin: impl Into<String>) -> Self {
        Weights {
            tensors,
            origin: origin.into(),
        }
    }

    /// Whether a tensor of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Names of every tensor.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The f32 tensor `name`, which must have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::invalid(format!("{}: missing tensor '{name}'", self.origin)))?;
        if t.dims() != shape {
            return Err(Error::invalid(format!(
                "{}: tensor '{name}' has shape {:?}, expected {shape:?}",
                self.origin,
                t.dims()
            )));
        }
        Ok(t.to_dtype(DType::F32)?)
    }

    /// The shape of tensor `name`.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        self.tensors
            .get(name)
            .map(|t| t.dims().to_vec())
            .ok_or_else(|| Error::invalid(format!("{}: missing tensor '{name}'", self.origin)))
    }

    /// A trainable parameter initialised from tensor `name`.
    pub fn param(&self, name: &str, shape: &[usize]) -> Result<Var> {
        Ok(Var::from_tensor(&self.get(name, shape)?)?)
    }
}

/// Names of the networks a training checkpoint may hold.
const NETWORKS: [&str; 3] = ["G", "G_ema", "D"];

/// The tensors of network `net` (`G`, `G_ema` or `D`) in a checkpoint — safetensors, or a
/// PyTorch zip checkpoint of state dicts (`.pt`, e.g. the study's `imagenet-256-state.pt`):
/// those under `net.` when the file holds several networks (`G.`, `D.`, `G_ema.` prefixes),
/// else all of them (a file of one network's state dict).
pub fn load_network(path: &Path, net: &str, device: &Device) -> Result<Weights> {
    let mut all: HashMap<String, Tensor> = if crate::io::extension(path).as_deref() == Some("pt") {
        let mut out = HashMap::new();
        for (name, t) in crate::io::read_torch_tensors(path)? {
            out.insert(name, Tensor::from_vec(t.data, t.shape, device)?);
        }
        out
    } else {
        crate::io::check_readable_file(path)?;
        candle_core::safetensors::load(path, device)
            .map_err(|e| Error::in_file(path, format!("not a readable safetensors file ({e})")))?
    };
    let prefixed: Vec<&str> = NETWORKS
        .iter()
        .copied()
        .filter(|n| all.keys().any(|k| k.starts_with(&format!("{n}."))))
        .collect();
    if !prefixed.is_empty() {
        if !prefixed.contains(&net) {
            return Err(Error::in_file(
                path,
                format!(
                    "holds no '{net}.' tensors (it holds: {})",
                    prefixed.join(", ")
                ),
            ));
        }
        let head = format!("{net}.");
        all = all
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix(&head).map(|k| (k.to_owned(), v)))
            .collect();
    }
    if all.is_empty() {
        return Err(Error::in_file(path, "holds no tensors"));
    }
    Ok(Weights::new(all, path.display().to_string()))
}
