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
use std::io::Read;
use std::path::Path;

/// A pickled value, as far as state dicts need.
#[derive(Debug, Clone)]
enum Value {
    /// Values state dicts carry but the tensors do not need (None, booleans, floats).
    Other,
    List(Vec<Value>),
    Int(i64),
    Str(String),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    /// A persistent id: (kind, storage type, key, location, numel).
    Storage {
        dtype: String,
        key: String,
    },
    Tensor(TensorRef),
    Mark,
}

/// A tensor: a view of a storage.
#[derive(Debug, Clone)]
struct TensorRef {
    dtype: String,
    key: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

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
    let mut out = HashMap::new();
    for (name, t) in refs {
        let raw = storages.get(&t.key).ok_or_else(|| {
            Error::in_file(
                path,
                format!("tensor '{name}': storage {} is missing", t.key),
            )
        })?;
        let tensor = materialise(&t, raw)
            .map_err(|m| Error::in_file(path, format!("tensor '{name}': {m}")))?;
        out.insert(name, tensor);
    }
    Ok(out)
}

/// Named tensor views and the raw storages they refer to, by storage key.
type Parsed = (Vec<(String, TensorRef)>, HashMap<String, Vec<u8>>);

fn read_zip(bytes: &[u8]) -> std::result::Result<Parsed, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a PyTorch checkpoint ({e})"))?;
    let pkl_name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .ok_or("no data.pkl in the archive")?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_owned();
    let mut read = |entry: &str| -> std::result::Result<Vec<u8>, String> {
        let mut out = Vec::new();
        zip.by_name(entry)
            .and_then(|mut f| f.read_to_end(&mut out).map_err(Into::into))
            .map_err(|e| format!("cannot read {entry}: {e}"))?;
        Ok(out)
    };
    let (root, _, _) = unpickle(&read(&pkl_name)?).map_err(|m| format!("data.pkl: {m}"))?;
    let mut refs = Vec::new();
    collect_tensors(&root, String::new(), &mut refs);
    let mut storages = HashMap::new();
    for (_, t) in &refs {
        if !storages.contains_key(&t.key) {
            storages.insert(t.key.clone(), read(&format!("{prefix}data/{}", t.key))?);
        }
    }
    Ok((refs, storages))
}

/// The magic number that opens a legacy `torch.save` file.
const LEGACY_MAGIC: i64 = 0x1950a86a20f9469cfc6c_i128 as i64;

fn read_legacy(bytes: &[u8]) -> std::result::Result<Parsed, String> {
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
    let (Value::List(keys), _) = next("storage keys")? else {
        return Err("storage keys: not a list".into());
    };
    let mut refs = Vec::new();
    collect_tensors(&root, String::new(), &mut refs);
    let mut storages = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err("storage keys: not strings".into());
        };
        let count = bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
            .ok_or_else(|| format!("storage {key}: truncated file"))?;
        // Storages follow one another, so one of unknown element width would misplace the rest.
        let dtype = types
            .get(key.as_str())
            .ok_or_else(|| format!("storage {key} is named by no persistent id"))?;
        let width = element_width(dtype)?;
        let raw = bytes
            .get(at + 8..at + 8 + count * width)
            .ok_or_else(|| format!("storage {key}: truncated file"))?;
        at += 8 + count * width;
        storages.insert(key, raw.to_vec());
    }
    Ok((refs, storages))
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
        Value::List(items) | Value::Tuple(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_tensors(v, child(i.to_string()), out);
            }
        }
        Value::Dict(items) => {
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

/// The tensor's values in row-major order, converted to f32.
fn materialise(t: &TensorRef, raw: &[u8]) -> std::result::Result<TorchTensor, String> {
    let width = element_width(&t.dtype)?;
    let read = |index: usize| -> std::result::Result<f32, String> {
        let at = index * width;
        let b = raw
            .get(at..at + width)
            .ok_or_else(|| format!("storage {} is too short", t.key))?;
        Ok(match t.dtype.as_str() {
            "FloatStorage" => f32::from_le_bytes(b.try_into().expect("4 bytes")),
            "DoubleStorage" => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            "LongStorage" => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            _ => half_to_f32(u16::from_le_bytes(b.try_into().expect("2 bytes"))),
        })
    };
    let count: usize = t.shape.iter().product();
    let mut data = Vec::with_capacity(count);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..count {
        let at = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        data.push(read(at)?);
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

/// The subset of the pickle machine that `torch.save` of state dicts emits (protocol 2).
/// The first pickle in `bytes` and the number of bytes it took.
/// The value a pickle builds, the bytes it used, and the element type of every storage its
/// persistent ids name (key → storage type), wherever in the value they end up.
type Unpickled = (Value, usize, HashMap<String, String>);

fn unpickle(bytes: &[u8]) -> std::result::Result<Unpickled, String> {
    let mut storages = HashMap::new();
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
        let s = bytes.get(*at..*at + n).ok_or("truncated pickle")?;
        *at += n;
        Ok(s)
    };
    let pop = |stack: &mut Vec<Value>| stack.pop().ok_or_else(|| "stack underflow".to_string());
    let pop_mark = |stack: &mut Vec<Value>| -> std::result::Result<Vec<Value>, String> {
        let mark = stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or("no mark")?;
        let items = stack.split_off(mark + 1);
        stack.pop();
        Ok(items)
    };
    loop {
        let op = *take(&mut at, 1)?.first().expect("one byte");
        match op {
            0x80 => {
                take(&mut at, 1)?; // PROTO
            }
            b'}' => stack.push(Value::Dict(Vec::new())),
            b')' => stack.push(Value::Tuple(Vec::new())),
            b']' => stack.push(Value::List(Vec::new())),
            b'(' => stack.push(Value::Mark),
            b'N' | 0x88 | 0x89 => stack.push(Value::Other),
            b'J' => {
                let v = i32::from_le_bytes(take(&mut at, 4)?.try_into().expect("4 bytes"));
                stack.push(Value::Int(v as i64));
            }
            b'K' => stack.push(Value::Int(take(&mut at, 1)?[0] as i64)),
            b'M' => {
                let v = u16::from_le_bytes(take(&mut at, 2)?.try_into().expect("2 bytes"));
                stack.push(Value::Int(v as i64));
            }
            0x8a => {
                // LONG1: little-endian two's complement of n bytes.
                let n = take(&mut at, 1)?[0] as usize;
                let b = take(&mut at, n)?;
                let mut v: i64 = 0;
                for (i, byte) in b.iter().enumerate().take(8) {
                    v |= (*byte as i64) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Value::Int(v));
            }
            b'G' => {
                take(&mut at, 8)?;
                stack.push(Value::Other);
            }
            b'X' => {
                let n = u32::from_le_bytes(take(&mut at, 4)?.try_into().expect("4 bytes"));
                let s =
                    std::str::from_utf8(take(&mut at, n as usize)?).map_err(|e| e.to_string())?;
                stack.push(Value::Str(s.to_owned()));
            }
            0x8c => {
                let n = take(&mut at, 1)?[0] as usize;
                let s = std::str::from_utf8(take(&mut at, n)?).map_err(|e| e.to_string())?;
                stack.push(Value::Str(s.to_owned()));
            }
            b'c' => {
                let mut line = || -> std::result::Result<String, String> {
                    let end = bytes[at..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .ok_or("bad GLOBAL")?;
                    let s = String::from_utf8_lossy(&bytes[at..at + end]).into_owned();
                    at += end + 1;
                    Ok(s)
                };
                let module = line()?;
                let name = line()?;
                stack.push(Value::Global(format!("{module}.{name}")));
            }
            b'q' => {
                let i = take(&mut at, 1)?[0] as u32;
                memo.insert(i, stack.last().cloned().ok_or("memo of empty stack")?);
            }
            b'r' => {
                let i = u32::from_le_bytes(take(&mut at, 4)?.try_into().expect("4 bytes"));
                memo.insert(i, stack.last().cloned().ok_or("memo of empty stack")?);
            }
            b'h' => {
                let i = take(&mut at, 1)?[0] as u32;
                stack.push(memo.get(&i).cloned().ok_or("unknown memo")?);
            }
            b'j' => {
                let i = u32::from_le_bytes(take(&mut at, 4)?.try_into().expect("4 bytes"));
                stack.push(memo.get(&i).cloned().ok_or("unknown memo")?);
            }
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let items = stack.split_off(stack.len().checked_sub(n).ok_or("stack underflow")?);
                stack.push(Value::Tuple(items));
            }
            b'Q' => {
                let id = pop(&mut stack)?;
                let Value::Tuple(parts) = id else {
                    return Err("persistent id is not a tuple".into());
                };
                let (Some(Value::Global(dtype)), Some(Value::Str(key))) =
                    (parts.get(1), parts.get(2))
                else {
                    return Err("persistent id is not a storage".into());
                };
                let dtype = dtype.rsplit('.').next().unwrap_or_default().to_owned();
                storages.insert(key.clone(), dtype.clone());
                stack.push(Value::Storage {
                    dtype,
                    key: key.clone(),
                });
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                stack.push(reduce(callable, args)?);
            }
            b'b' => {
                pop(&mut stack)?; // BUILD: the state (e.g. `_metadata`) is not needed
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Dict(items)) => items.push((k, v)),
                    _ => return Err("SETITEM on a non-dict".into()),
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Dict(dict)) => {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            dict.push((k, v));
                        }
                    }
                    _ => return Err("SETITEMS on a non-dict".into()),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                if let Some(Value::List(list)) = stack.last_mut() {
                    list.extend(items);
                }
            }
            b'a' => {
                let item = pop(&mut stack)?;
                if let Some(Value::List(list)) = stack.last_mut() {
                    list.push(item);
                }
            }
            b'.' => return Ok((pop(&mut stack)?, at, storages)),
            other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
        }
    }
}

fn reduce(callable: Value, args: Value) -> std::result::Result<Value, String> {
    let Value::Global(name) = &callable else {
        return Err("REDUCE of a non-global".into());
    };
    let Value::Tuple(args) = args else {
        return Err(format!("{name}: arguments are not a tuple"));
    };
    match name.as_str() {
        "collections.OrderedDict" => Ok(Value::Dict(Vec::new())),
        "torch._utils._rebuild_tensor_v2" => {
            let usizes = |v: &Value| -> std::result::Result<Vec<usize>, String> {
                match v {
                    Value::Tuple(items) => items
                        .iter()
                        .map(|i| match i {
                            Value::Int(n) if *n >= 0 => Ok(*n as usize),
                            _ => Err("bad size or stride".to_string()),
                        })
                        .collect(),
                    _ => Err("size or stride is not a tuple".into()),
                }
            };
            match args.as_slice() {
                [Value::Storage { dtype, key }, Value::Int(offset), size, stride, ..] => {
                    Ok(Value::Tensor(TensorRef {
                        dtype: dtype.clone(),
                        key: key.clone(),
                        offset: *offset as usize,
                        shape: usizes(size)?,
                        stride: usizes(stride)?,
                    }))
                }
                _ => Err("unexpected arguments of _rebuild_tensor_v2".into()),
            }
        }
        other => Err(format!("unsupported object {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
    }
}
