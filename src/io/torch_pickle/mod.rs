//! PyTorch checkpoints (`torch.save`): the tensors of state dicts, read without Python.
//!
//! Two layouts exist. The zip format (PyTorch ≥ 1.6) holds `<name>/data.pkl`, a pickle whose
//! tensors refer to raw little-endian storages `<name>/data/<key>` by persistent id. The legacy
//! format (e.g. pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`) is five pickles in a row
//! — magic number, protocol version, system info, the object, the list of storage keys —
//! followed by each storage as an 8-byte element count and its raw bytes, in that list's order.
//! Only what state dicts use is understood:
//! dicts and `OrderedDict`s (their `_metadata` attribute is skipped), strings, numbers, tuples,
//! lists and `torch._utils._rebuild_tensor_v2`; anything else is an error naming it. Storages
//! shared between tensors (e.g. `G` and `G_ema` saved from one model) are read once per tensor.

use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

mod network;
#[cfg(test)]
mod tests;
mod unpickle;

pub use network::{read_network_arguments, read_network_pickle, NetworkArguments, NetworkPickle};
use unpickle::{unpickle, TensorRef, Value};

/// A float32 tensor read from a checkpoint: shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Every tensor of a `torch.save`d object, keyed by its path of dict keys joined with `.`
/// (`G.mapping.fc0.weight` for `{'G': state_dict}`; the bare key for a plain state dict).
pub fn read_torch_tensors(path: &Path) -> Result<HashMap<String, TorchTensor>> {
    super::check_readable_file(path)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (refs, storages) = if bytes.starts_with(b"PK") {
        read_zip(&bytes)
    } else {
        read_legacy(&bytes)
    }
    .map_err(|m| Error::in_file(path, m))?;
    materialise_all(refs, &storages).map_err(|m| Error::in_file(path, m))
}

/// The values of named tensor views, each from its storage (inline, or by key in `storages`).
fn materialise_all(
    refs: Vec<(String, TensorRef)>,
    storages: &HashMap<String, Vec<u8>>,
) -> std::result::Result<HashMap<String, TorchTensor>, String> {
    let mut out = HashMap::new();
    for (name, t) in refs {
        let raw = match &t.inline {
            Some(data) => data,
            None => storages
                .get(&t.key)
                .ok_or_else(|| format!("tensor '{name}': storage {} is missing", t.key))?
                .as_slice(),
        };
        let tensor = materialise(&t, raw).map_err(|m| format!("tensor '{name}': {m}"))?;
        out.insert(name, tensor);
    }
    Ok(out)
}

/// Named tensor views and the raw storages they refer to, by storage key.
type Parsed = (Vec<(String, TensorRef)>, HashMap<String, Vec<u8>>);

fn read_zip(bytes: &[u8]) -> std::result::Result<Parsed, String> {
    let (root, storages) = zip_parts(bytes)?;
    let mut refs = Vec::new();
    collect_tensors(&root, String::new(), &mut refs);
    Ok((refs, storages))
}

/// The object of a zip checkpoint and the storages its persistent ids name, by key.
fn zip_parts(bytes: &[u8]) -> std::result::Result<(Value, HashMap<String, Vec<u8>>), String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a PyTorch checkpoint ({e})"))?;
    let pkl_name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .ok_or("no data.pkl in the archive")?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_owned();
    let mut read = |entry: &str| super::read_zip_entry(&mut zip, entry, super::ZIP_ENTRY_LIMIT);
    let (root, _, types) = unpickle(&read(&pkl_name)?).map_err(|m| format!("data.pkl: {m}"))?;
    let mut storages = HashMap::new();
    for key in types.keys() {
        storages.insert(key.clone(), read(&format!("{prefix}data/{key}"))?);
    }
    Ok((root, storages))
}

/// The magic number that opens a legacy `torch.save` file.
const LEGACY_MAGIC: i64 = 0x1950a86a20f9469cfc6c_i128 as i64;

fn read_legacy(bytes: &[u8]) -> std::result::Result<Parsed, String> {
    let (root, storages) = legacy_parts(bytes)?;
    let mut refs = Vec::new();
    collect_tensors(&root, String::new(), &mut refs);
    Ok((refs, storages))
}

/// A storage saved on its own in the legacy layout, as network pickles embed each one
/// (`torch.storage._load_from_bytes`): its type and raw bytes.
fn legacy_storage(bytes: &[u8]) -> std::result::Result<(String, Vec<u8>), String> {
    let (root, mut storages) = if bytes.starts_with(b"PK") {
        zip_parts(bytes)?
    } else {
        legacy_parts(bytes)?
    };
    let Value::Storage { dtype, key } = root else {
        return Err("an embedded storage holds something else".into());
    };
    let data = storages
        .remove(&key)
        .ok_or("an embedded storage lacks its data")?;
    Ok((dtype, data))
}

/// The object of a legacy `torch.save` file and its storages, by key.
fn legacy_parts(bytes: &[u8]) -> std::result::Result<(Value, HashMap<String, Vec<u8>>), String> {
    let not_torch = "neither a PyTorch zip checkpoint nor a legacy torch.save file";
    let (magic, mut at, _) = unpickle(bytes).map_err(|_| not_torch.to_string())?;
    if !matches!(magic, Value::Int(m) if m == LEGACY_MAGIC) {
        return Err(not_torch.into());
    }
    let mut next = |what: &str| -> std::result::Result<_, String> {
        let (v, used, types) = unpickle(&bytes[at..]).map_err(|m| format!("{what}: {m}"))?;
        at += used;
        Ok((v, types))
    };
    next("protocol version")?;
    next("system info")?;
    // Every storage's type, also of those in objects this reader does not keep.
    let (root, types) = next("object")?;
    let (Value::List(keys, _), _) = next("storage keys")? else {
        return Err("storage keys: not a list".into());
    };
    let mut storages = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err("storage keys: not strings".into());
        };
        let truncated = || format!("storage {key}: truncated file");
        let count = bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(truncated)?;
        // Storages follow one another, so one of unknown element width would misplace the rest.
        let dtype = types
            .get(key.as_str())
            .ok_or_else(|| format!("storage {key} is named by no persistent id"))?;
        let width = element_width(dtype)?;
        let end = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(width)?.checked_add(at + 8))
            .ok_or_else(truncated)?;
        let raw = bytes.get(at + 8..end).ok_or_else(truncated)?;
        at = end;
        storages.insert(key, raw.to_vec());
    }
    Ok((root, storages))
}

fn collect_tensors(value: &Value, name: String, out: &mut Vec<(String, TensorRef)>) {
    let child = |key: String| {
        if name.is_empty() {
            key
        } else {
            format!("{name}.{key}")
        }
    };
    match value {
        Value::Tensor(t) => out.push((name, t.clone())),
        Value::List(items, _) | Value::Tuple(items, _) => {
            for (i, v) in items.iter().enumerate() {
                collect_tensors(v, child(i.to_string()), out);
            }
        }
        Value::Dict(items, _) => {
            for (k, v) in items {
                let key = match k {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                collect_tensors(v, child(key), out);
            }
        }
        _ => {}
    }
}

/// The tensor's values in row-major order, converted to f32. Its elements must lie in the
/// storage, and it may not hold more of them than the storage does: only broadcast views
/// (stride 0) do, state dicts do not save them, and a crafted one would fill memory.
fn materialise(t: &TensorRef, raw: &[u8]) -> std::result::Result<TorchTensor, String> {
    let width = element_width(&t.dtype)?;
    if t.stride.len() != t.shape.len() {
        return Err(format!(
            "{} strides for {} dimensions",
            t.stride.len(),
            t.shape.len()
        ));
    }
    let too_large = || format!("shape {:?} is too large", t.shape);
    let count = t
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(too_large)?;
    let available = raw.len() / width;
    if count > available {
        return Err(format!(
            "shape {:?} holds {count} elements, more than the {available} of storage {}",
            t.shape, t.key
        ));
    }
    if count > 0 && last_element(t).is_none_or(|last| last >= available) {
        return Err(format!("storage {} is too short", t.key));
    }
    let read = |at: usize| -> f32 {
        let b = &raw[at * width..(at + 1) * width];
        match t.dtype.as_str() {
            "FloatStorage" => f32::from_le_bytes(b.try_into().expect("4 bytes")),
            "DoubleStorage" => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            "LongStorage" => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            _ => half_to_f32(u16::from_le_bytes(b.try_into().expect("2 bytes"))),
        }
    };
    let mut data = Vec::with_capacity(count);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..count {
        let at = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        data.push(read(at));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(TorchTensor {
        shape: t.shape.clone(),
        data,
    })
}

/// The storage index of a non-empty tensor's farthest element; `None` when it overflows.
fn last_element(t: &TensorRef) -> Option<usize> {
    t.shape
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |at, (&n, &s)| {
            at.checked_add((n - 1).checked_mul(s)?)
        })
}

/// Bytes per element of a storage type; integer storages (BatchNorm's `num_batches_tracked`)
/// are read as f32 like the rest.
fn element_width(dtype: &str) -> std::result::Result<usize, String> {
    match dtype {
        "FloatStorage" => Ok(4),
        "DoubleStorage" | "LongStorage" => Ok(8),
        "HalfStorage" => Ok(2),
        other => Err(format!("unsupported storage type {other}")),
    }
}

fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let frac = (h & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e as i32 - 15),
    }
}
