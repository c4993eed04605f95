//! A network's stored tensors, keyed by their state-dict names, with errors that name the
//! missing key or the mismatching shape.

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;
use std::path::Path;

/// The tensors of one network (G or D), names without the network prefix.
#[derive(Debug)]
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    /// Where they came from, for error messages.
    origin: String,
    /// The trainable parameters made so far by [`Weights::param`], by name.
    params: std::sync::Mutex<Vec<(String, Var)>>,
}

impl Clone for Weights {
    fn clone(&self) -> Self {
        Weights::new(self.tensors.clone(), self.origin.clone())
    }
}

impl Weights {
    pub fn new(tensors: HashMap<String, Tensor>, origin: impl Into<String>) -> Self {
        Weights {
            tensors,
            origin: origin.into(),
            params: std::sync::Mutex::new(Vec::new()),
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

    /// A trainable parameter initialised from tensor `name` (recorded for
    /// [`Weights::take_params`]).
    pub fn param(&self, name: &str, shape: &[usize]) -> Result<Var> {
        let var = Var::from_tensor(&self.get(name, shape)?)?;
        self.params
            .lock()
            .expect("no panics while recording")
            .push((name.to_owned(), var.clone()));
        Ok(var)
    }

    /// The parameters made since the last call, by their state-dict names, in creation order:
    /// what a network built from these weights trains.
    pub fn take_params(&self) -> Vec<(String, Var)> {
        std::mem::take(&mut *self.params.lock().expect("no panics while recording"))
    }
}

/// Every tensor of a safetensors file, of a PyTorch checkpoint (`.pt`, `.pth`: a state dict
/// or a dict of state dicts, names joined with `.`) or of an official network pickle (`.pkl`:
/// `G.…`, `D.…`, `G_ema.…`), on `device`.
pub fn read_tensor_file(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let torch = match super::extension(path).as_deref() {
        Some("pt" | "pth") => Some(super::read_torch_tensors(path)?),
        Some("pkl") => Some(super::read_network_pickle(path)?.tensors),
        _ => None,
    };
    if let Some(tensors) = torch {
        let mut out = HashMap::new();
        for (name, t) in tensors {
            out.insert(name, Tensor::from_vec(t.data, t.shape, device)?);
        }
        Ok(out)
    } else {
        super::check_readable_file(path)?;
        candle_core::safetensors::load(path, device)
            .map_err(|e| Error::in_file(path, format!("not a readable safetensors file ({e})")))
    }
}
