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

    /// The tensors of a safetensors file: all of them, or those under `prefix.` (prefix
    /// stripped) — e.g. `G_ema` in a file holding `G.`, `D.` and `G_ema.` keys.
    pub fn from_safetensors(path: &Path, prefix: Option<&str>, device: &Device) -> Result<Self> {
        crate::io::check_readable_file(path)?;
        let all = candle_core::safetensors::load(path, device)
            .map_err(|e| Error::in_file(path, format!("not a readable safetensors file ({e})")))?;
        let tensors: HashMap<String, Tensor> = match prefix {
            None => all,
            Some(p) => {
                let head = format!("{p}.");
                all.into_iter()
                    .filter_map(|(k, v)| k.strip_prefix(&head).map(|k| (k.to_owned(), v)))
                    .collect()
            }
        };
        if tensors.is_empty() {
            return Err(Error::in_file(
                path,
                format!("holds no tensors under '{}.'", prefix.unwrap_or("")),
            ));
        }
        Ok(Weights::new(tensors, path.display().to_string()))
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

/// The tensors of network `net` (`G`, `G_ema` or `D`) in a safetensors checkpoint: those under
/// `net.` when the file holds several networks (`G.`, `D.`, `G_ema.` prefixes), else all of
/// them (a file of one network's state dict).
pub fn load_network(path: &Path, net: &str, device: &Device) -> Result<Weights> {
    if crate::io::extension(path).as_deref() == Some("pt") {
        return Err(Error::in_file(
            path,
            "PyTorch pickle checkpoints are not read yet; save the state dicts as safetensors \
             (flat, or with G./D./G_ema. prefixes)",
        ));
    }
    let all = Weights::from_safetensors(path, None, device)?;
    let prefixed: Vec<&str> = NETWORKS
        .iter()
        .copied()
        .filter(|n| all.names().any(|k| k.starts_with(&format!("{n}."))))
        .collect();
    if prefixed.is_empty() {
        return Ok(all);
    }
    if !prefixed.contains(&net) {
        return Err(Error::in_file(
            path,
            format!(
                "holds no '{net}.' tensors (it holds: {})",
                prefixed.join(", ")
            ),
        ));
    }
    Weights::from_safetensors(path, Some(net), device)
}
