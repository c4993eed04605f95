//! The official StyleGAN2-ADA network pickles (`network-snapshot-*.pkl`, the released `.pkl`
//! networks): `pickle.dump` of a dict holding `G`, `D`, `G_ema` (objects of the official code's
//! `persistence` classes), `augment_pipe` and `training_set_kwargs`. Each network is rebuilt
//! from its pickled state — `_parameters`, `_buffers` (all but the non-persistent ones) and
//! `_modules`, recursively — into the names of its `state_dict()`; its constructor arguments
//! (`_init_kwargs`) come as JSON. The source code the pickle embeds is never looked at, and
//! nothing is executed (see the pickle machine's allow-list).

use super::unpickle::{unpickle, TensorRef, Value};
use super::{materialise_all, TorchTensor};
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The networks of a pickle, as the official training loop writes them.
pub const NETWORKS: [&str; 3] = ["G", "D", "G_ema"];

/// What an official network pickle holds.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkPickle {
    /// Every network's tensors, `G.…`, `D.…`, `G_ema.…`, as their state dicts name them.
    pub tensors: HashMap<String, TorchTensor>,
    pub arguments: NetworkArguments,
}

/// What a network pickle says of its networks besides their tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkArguments {
    /// Each network's constructor arguments (`_init_kwargs`), by network name.
    pub kwargs: BTreeMap<String, serde_json::Value>,
    /// Each network's class name (`Generator`, `Discriminator`).
    pub classes: BTreeMap<String, String>,
    /// The augmentation probability `augment_pipe.p`, when the pickle holds the pipe.
    pub augment_p: Option<f64>,
}

/// Reads a network pickle.
pub fn read_network_pickle(path: &Path) -> Result<NetworkPickle> {
    let (refs, arguments) = read(path)?;
    let tensors = materialise_all(refs, &HashMap::new()).map_err(|m| Error::in_file(path, m))?;
    Ok(NetworkPickle { tensors, arguments })
}

/// Reads only what a network pickle says of its networks, without converting their tensors.
pub fn read_network_arguments(path: &Path) -> Result<NetworkArguments> {
    Ok(read(path)?.1)
}

fn read(path: &Path) -> Result<(Vec<(String, TensorRef)>, NetworkArguments)> {
    super::super::check_readable_file(path)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes).map_err(|m| Error::in_file(path, m))
}

/// The state-dict tensors of the pickle's networks (not yet read from their storages) and
/// their arguments.
fn parse(
    bytes: &[u8],
) -> std::result::Result<(Vec<(String, TensorRef)>, NetworkArguments), String> {
    let (root, _, _) = unpickle(bytes).map_err(|m| format!("not a network pickle: {m}"))?;
    let Value::Dict(items, _) = root else {
        return Err("not a network pickle: it holds no dict of networks".into());
    };
    let entry = |name: &str| {
        items
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == name))
            .map(|(_, v)| v)
    };
    let mut refs = Vec::new();
    let mut kwargs = BTreeMap::new();
    let mut classes = BTreeMap::new();
    for net in NETWORKS {
        let Some(value) = entry(net) else { continue };
        let Value::Object { class, state, .. } = value else {
            return Err(format!("'{net}' is not a network object"));
        };
        module_tensors(state, net, &mut refs)?;
        kwargs.insert(
            net.to_owned(),
            json(field(state, "_init_kwargs").unwrap_or(&Value::None)),
        );
        classes.insert(net.to_owned(), class.clone());
    }
    if classes.is_empty() {
        return Err("not a network pickle: it holds none of G, D, G_ema".into());
    }
    let augment_p = match entry("augment_pipe") {
        Some(Value::Object { state, .. }) => {
            let mut pipe = Vec::new();
            module_tensors(state, "", &mut pipe)?;
            let found = pipe.into_iter().find(|(name, _)| name == "p");
            match found {
                Some((_, t)) => {
                    let p = materialise_all(vec![("p".into(), t)], &HashMap::new())?;
                    p["p"].data.first().map(|&v| v as f64)
                }
                None => None,
            }
        }
        _ => None,
    };
    let arguments = NetworkArguments {
        kwargs,
        classes,
        augment_p,
    };
    Ok((refs, arguments))
}

/// The value under `key` of a dict.
fn field<'a>(dict: &'a Value, key: &str) -> Option<&'a Value> {
    match dict {
        Value::Dict(items, _) => items
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// The entries of a dict whose keys are strings.
fn named(dict: Option<&Value>) -> Vec<(&str, &Value)> {
    match dict {
        Some(Value::Dict(items, _)) => items
            .iter()
            .filter_map(|(k, v)| match k {
                Value::Str(s) => Some((s.as_str(), v)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A module's state-dict tensors under `prefix`: its parameters, its persistent buffers, and
/// those of its sub-modules, in the order `state_dict()` lists them.
fn module_tensors(
    state: &Value,
    prefix: &str,
    out: &mut Vec<(String, TensorRef)>,
) -> std::result::Result<(), String> {
    let name = |key: &str| match prefix {
        "" => key.to_owned(),
        p => format!("{p}.{key}"),
    };
    let transient: Vec<&str> = match field(state, "_non_persistent_buffers_set") {
        Some(Value::List(items, _)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for (table, skip) in [("_parameters", &[][..]), ("_buffers", &transient[..])] {
        for (key, value) in named(field(state, table)) {
            match value {
                Value::Tensor(t) if !skip.contains(&key) => out.push((name(key), t.clone())),
                Value::Tensor(_) | Value::None => {}
                _ => return Err(format!("{}: not a tensor", name(key))),
            }
        }
    }
    for (key, value) in named(field(state, "_modules")) {
        match value {
            Value::Object { state, .. } => module_tensors(state, &name(key), out)?,
            Value::None => {}
            _ => return Err(format!("{}: not a module", name(key))),
        }
    }
    Ok(())
}

/// A pickled constructor argument as JSON (values JSON cannot hold become null).
fn json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Bool(b) => J::Bool(*b),
        Value::Str(s) => J::String(s.clone()),
        Value::List(items, _) | Value::Tuple(items, _) => {
            J::Array(items.iter().map(json).collect())
        }
        Value::Dict(..) => J::Object(
            named(Some(value))
                .into_iter()
                .map(|(k, v)| (k.to_owned(), json(v)))
                .collect(),
        ),
        _ => J::Null,
    }
}
