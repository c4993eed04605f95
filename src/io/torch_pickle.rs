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

/// A pickled value, as far as state dicts need. Containers carry their [`Nesting`].
#[derive(Debug, Clone)]
enum Value {
    /// Values state dicts carry but the tensors do not need (None, booleans, floats, bytes,
    /// sets).
    Other,
    List(Vec<Value>, Nesting),
    Int(i64),
    Str(String),
    Tuple(Vec<Value>, Nesting),
    Dict(Vec<(Value, Value)>, Nesting),
    Global(String),
    /// A persistent id: (kind, storage type, key, location, numel).
    Storage {
        dtype: String,
        key: String,
    },
    Tensor(TensorRef),
    Mark,
}

/// How deeply a value nests containers, and how many values it holds in all (itself
/// included): kept with each container so that the limits are checked without walking it.
#[derive(Debug, Clone, Copy)]
struct Nesting {
    depth: usize,
    values: usize,
}

/// The deepest nesting of containers read. Deeper values would overflow the stack when they
/// are walked or dropped; state dicts nest a handful of levels.
const MAX_DEPTH: usize = 1000;

/// Values that memo look-ups may copy, per byte of pickle: a few copies of small values are
/// what pickles of state dicts hold, while crafted ones copy a large value again and again to
/// fill memory.
const COPIES_PER_BYTE: usize = 64;

impl Nesting {
    const EMPTY: Nesting = Nesting {
        depth: 1,
        values: 1,
    };

    /// This container's nesting once `item` is inside it; an error beyond [`MAX_DEPTH`].
    fn with(self, item: &Value) -> std::result::Result<Nesting, String> {
        let inner = item.nesting();
        let depth = self.depth.max(inner.depth + 1);
        if depth > MAX_DEPTH {
            return Err(format!("containers nest deeper than {MAX_DEPTH} levels"));
        }
        Ok(Nesting {
            depth,
            values: self.values + inner.values,
        })
    }
}

impl Value {
    fn nesting(&self) -> Nesting {
        match self {
            Value::List(_, n) | Value::Tuple(_, n) | Value::Dict(_, n) => *n,
            _ => Nesting {
                depth: 0,
                values: 1,
            },
        }
    }

    fn tuple(items: Vec<Value>) -> std::result::Result<Value, String> {
        let nesting = items.iter().try_fold(Nesting::EMPTY, Nesting::with)?;
        Ok(Value::Tuple(items, nesting))
    }
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
    let mut read = |entry: &str| super::read_zip_entry(&mut zip, entry, super::ZIP_ENTRY_LIMIT);
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
    let (Value::List(keys, _), _) = next("storage keys")? else {
        return Err("storage keys: not a list".into());
    };
    let mut refs = Vec::new();
    collect_tensors(&root, String::new(), &mut refs);
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

/// The subset of the pickle machine that `torch.save` of state dicts emits (protocols 2 to 4).
/// The value a pickle builds, the bytes it used, and the element type of every storage its
/// persistent ids name (key → storage type), wherever in the value they end up.
type Unpickled = (Value, usize, HashMap<String, String>);

fn unpickle(bytes: &[u8]) -> std::result::Result<Unpickled, String> {
    let mut storages = HashMap::new();
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let mut copies = Copies {
        made: 0,
        budget: COPIES_PER_BYTE * bytes.len(),
    };
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
        let s = at
            .checked_add(n)
            .and_then(|end| bytes.get(*at..end))
            .ok_or("truncated pickle")?;
        *at += n;
        Ok(s)
    };
    let length = |b: &[u8]| -> usize {
        let mut le = [0u8; 8];
        le[..b.len()].copy_from_slice(b);
        usize::try_from(u64::from_le_bytes(le)).unwrap_or(usize::MAX)
    };
    let text = |b: &[u8]| -> std::result::Result<Value, String> {
        let s = std::str::from_utf8(b).map_err(|e| e.to_string())?;
        Ok(Value::Str(s.to_owned()))
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
            0x95 => {
                take(&mut at, 8)?; // FRAME: a length that only helps buffered readers
            }
            b'}' => stack.push(Value::Dict(Vec::new(), Nesting::EMPTY)),
            b')' => stack.push(Value::Tuple(Vec::new(), Nesting::EMPTY)),
            b']' => stack.push(Value::List(Vec::new(), Nesting::EMPTY)),
            b'(' => stack.push(Value::Mark),
            b'N' | 0x88 | 0x89 | 0x8f => stack.push(Value::Other),
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
            // SHORT_BINUNICODE, BINUNICODE, BINUNICODE8: the length takes 1, 4 or 8 bytes.
            0x8c => {
                let n = length(take(&mut at, 1)?);
                stack.push(text(take(&mut at, n)?)?);
            }
            b'X' => {
                let n = length(take(&mut at, 4)?);
                stack.push(text(take(&mut at, n)?)?);
            }
            0x8d => {
                let n = length(take(&mut at, 8)?);
                stack.push(text(take(&mut at, n)?)?);
            }
            // SHORT_BINBYTES, BINBYTES, BINBYTES8: bytes, which no tensor needs.
            b'C' | b'B' | 0x8e => {
                let width = match op {
                    b'C' => 1,
                    b'B' => 4,
                    _ => 8,
                };
                let n = length(take(&mut at, width)?);
                take(&mut at, n)?;
                stack.push(Value::Other);
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
            0x93 => {
                // STACK_GLOBAL: protocol 4's GLOBAL, module and name from the stack.
                let (Value::Str(name), Value::Str(module)) = (pop(&mut stack)?, pop(&mut stack)?)
                else {
                    return Err("STACK_GLOBAL of non-strings".into());
                };
                stack.push(Value::Global(format!("{module}.{name}")));
            }
            b'q' | b'r' | 0x94 => {
                let i = match op {
                    b'q' => take(&mut at, 1)?[0] as u32,
                    b'r' => u32::from_le_bytes(take(&mut at, 4)?.try_into().expect("4 bytes")),
                    _ => memo.len() as u32, // MEMOIZE: the next free index
                };
                let top = stack.last().ok_or("memo of empty stack")?;
                memo.insert(i, copies.copy(top)?);
            }
            b'h' | b'j' => {
                let i = match op {
                    b'h' => take(&mut at, 1)?[0] as u32,
                    _ => u32::from_le_bytes(take(&mut at, 4)?.try_into().expect("4 bytes")),
                };
                stack.push(copies.copy(memo.get(&i).ok_or("unknown memo")?)?);
            }
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::tuple(items)?);
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let items = stack.split_off(stack.len().checked_sub(n).ok_or("stack underflow")?);
                stack.push(Value::tuple(items)?);
            }
            0x90 => {
                pop_mark(&mut stack)?; // ADDITEMS to a set, which no tensor needs
            }
            0x91 => {
                pop_mark(&mut stack)?; // FROZENSET
                stack.push(Value::Other);
            }
            b'Q' => {
                let id = pop(&mut stack)?;
                let Value::Tuple(parts, _) = id else {
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
                    Some(Value::Dict(items, nesting)) => {
                        *nesting = nesting.with(&k)?.with(&v)?;
                        items.push((k, v));
                    }
                    _ => return Err("SETITEM on a non-dict".into()),
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Dict(dict, nesting)) => {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            *nesting = nesting.with(&k)?.with(&v)?;
                            dict.push((k, v));
                        }
                    }
                    _ => return Err("SETITEMS on a non-dict".into()),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                if let Some(Value::List(list, nesting)) = stack.last_mut() {
                    for item in items {
                        *nesting = nesting.with(&item)?;
                        list.push(item);
                    }
                }
            }
            b'a' => {
                let item = pop(&mut stack)?;
                if let Some(Value::List(list, nesting)) = stack.last_mut() {
                    *nesting = nesting.with(&item)?;
                    list.push(item);
                }
            }
            b'.' => return Ok((pop(&mut stack)?, at, storages)),
            other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
        }
    }
}

/// The values memo entries copy, counted against a budget set by the pickle's size.
struct Copies {
    made: usize,
    budget: usize,
}

impl Copies {
    fn copy(&mut self, value: &Value) -> std::result::Result<Value, String> {
        self.made = self.made.saturating_add(value.nesting().values);
        if self.made > self.budget {
            return Err("memo copies more values than a pickle of its size can hold".into());
        }
        Ok(value.clone())
    }
}

fn reduce(callable: Value, args: Value) -> std::result::Result<Value, String> {
    let Value::Global(name) = &callable else {
        return Err("REDUCE of a non-global".into());
    };
    let Value::Tuple(args, _) = args else {
        return Err(format!("{name}: arguments are not a tuple"));
    };
    match name.as_str() {
        "collections.OrderedDict" => Ok(Value::Dict(Vec::new(), Nesting::EMPTY)),
        "torch._utils._rebuild_tensor_v2" => {
            let usizes = |v: &Value| -> std::result::Result<Vec<usize>, String> {
                match v {
                    Value::Tuple(items, _) => items
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
                        offset: usize::try_from(*offset).map_err(|_| "negative storage offset")?,
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
    use std::io::Write;

    /// What `pickle.dump(…, protocol=4)` writes for `{'G': {'layer.weight': 3 floats,
    /// 'layer.bias': the first 2 of them}}`, both viewing storage `0` (from Python, with
    /// stand-ins for torch's classes).
    const PROTOCOL_4: &[u8] = b"\x80\x04\x95\xd8\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01G\x94\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94(\x8c\x0clayer.weight\x94\x8c\x0ctorch._utils\x94\x8c\x12_rebuild_tensor_v2\x94\x93\x94((\x8c\x07storage\x94\x8c\x05torch\x94\x8c\x0cFloatStorage\x94\x93\x94\x8c\x010\x94\x8c\x03cpu\x94K\x03t\x94QK\x00K\x03\x85\x94K\x01\x85\x94\x89h\x04)R\x94t\x94R\x94\x8c\nlayer.bias\x94h\t((h\nh\rh\x0eh\x0fK\x03t\x94QK\x00K\x02\x85\x94h\x12\x89h\x04)R\x94t\x94R\x94us.";

    fn text(s: &str) -> Vec<u8> {
        [&[b'X'][..], &(s.len() as u32).to_le_bytes(), s.as_bytes()].concat()
    }

    fn int(v: i64) -> Vec<u8> {
        [&[0x8a, 8][..], &v.to_le_bytes()].concat()
    }

    fn tuple(items: &[Vec<u8>]) -> Vec<u8> {
        [b"(".to_vec(), items.concat(), b"t".to_vec()].concat()
    }

    /// A protocol-2 pickle of `{'w': tensor}`, the tensor a view of float storage `0`.
    fn state_dict(offset: i64, shape: &[i64], stride: &[i64]) -> Vec<u8> {
        let storage_id = tuple(&[
            text("storage"),
            b"ctorch\nFloatStorage\n".to_vec(),
            text("0"),
            text("cpu"),
            int(4),
        ]);
        let args = tuple(&[
            [storage_id, b"Q".to_vec()].concat(),
            int(offset),
            tuple(&shape.iter().map(|&n| int(n)).collect::<Vec<_>>()),
            tuple(&stride.iter().map(|&n| int(n)).collect::<Vec<_>>()),
            b"\x89".to_vec(),
        ]);
        [
            b"\x80\x02}(".to_vec(),
            text("w"),
            b"ctorch._utils\n_rebuild_tensor_v2\n".to_vec(),
            args,
            b"Ru.".to_vec(),
        ]
        .concat()
    }

    /// A zip checkpoint of `pickle` and storage `0`, stored or deflated; read back.
    fn read_pt(
        pickle: &[u8],
        storage: &[u8],
        method: zip::CompressionMethod,
    ) -> Result<HashMap<String, TorchTensor>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.pt");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in [("archive/data.pkl", pickle), ("archive/data/0", storage)] {
            zip.start_file(name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        read_torch_tensors(&path)
    }

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn error_of(pickle: &[u8], storage: &[u8]) -> String {
        read_pt(pickle, storage, zip::CompressionMethod::Stored)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_views_of_a_storage() {
        let storage = floats(&[1.0, 2.0, 3.0, 4.0]);
        let t = read_pt(&state_dict(1, &[3], &[1]), &storage, Default::default()).unwrap();
        assert_eq!(t["w"].data, vec![2.0, 3.0, 4.0]);
        let t = read_pt(
            &state_dict(0, &[2, 2], &[1, 2]),
            &storage,
            Default::default(),
        )
        .unwrap();
        assert_eq!(t["w"].data, vec![1.0, 3.0, 2.0, 4.0]);
    }

    #[test]
    fn protocol_4_pickles_are_read() {
        let t = read_pt(PROTOCOL_4, &floats(&[1.0, 2.0, 3.0]), Default::default()).unwrap();
        assert_eq!(t["G.layer.weight"].data, vec![1.0, 2.0, 3.0]);
        assert_eq!(t["G.layer.bias"].data, vec![1.0, 2.0]);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let depth = 30_000;
        let pickle = [
            b"\x80\x02".to_vec(),
            vec![b']'; depth],
            vec![b'a'; depth - 1],
            b".".to_vec(),
        ]
        .concat();
        let e = error_of(&pickle, &[]);
        assert!(e.contains("nest deeper than 1000 levels"), "{e}");
    }

    #[test]
    fn memo_copies_that_double_a_value_are_refused() {
        let round = b"](h\x00h\x00eq\x00";
        let pickle = [b"\x80\x02]q\x00".to_vec(), round.repeat(60), b".".to_vec()].concat();
        let e = error_of(&pickle, &[]);
        assert!(e.contains("memo copies more values"), "{e}");
    }

    #[test]
    fn broadcast_views_larger_than_their_storage_are_refused() {
        let e = error_of(
            &state_dict(0, &[100_000, 100_000], &[0, 0]),
            &floats(&[1.0]),
        );
        assert!(
            e.contains("holds 10000000000 elements, more than the 1"),
            "{e}"
        );
        let e = error_of(&state_dict(0, &[1 << 62], &[0]), &floats(&[1.0]));
        assert!(e.contains("more than the 1 of storage 0"), "{e}");
    }

    #[test]
    fn sizes_and_offsets_that_overflow_are_refused() {
        let storage = floats(&[0.0; 16]);
        let e = error_of(&state_dict(0, &[1 << 32, 1 << 32], &[0, 0]), &storage);
        assert!(e.contains("is too large"), "{e}");
        let e = error_of(&state_dict((1 << 62) + 10, &[1], &[1]), &storage);
        assert!(e.contains("storage 0 is too short"), "{e}");
        let e = error_of(&state_dict(1, &[2, 2], &[i64::MAX / 2, 1]), &storage);
        assert!(e.contains("storage 0 is too short"), "{e}");
        let e = error_of(&state_dict(-1, &[1], &[1]), &storage);
        assert!(e.contains("negative storage offset"), "{e}");
    }

    #[test]
    fn a_storage_that_inflates_a_thousandfold_is_refused() {
        let pickle = state_dict(0, &[1 << 20], &[1]);
        let e = read_pt(&pickle, &[0u8; 4 << 20], zip::CompressionMethod::Deflated)
            .unwrap_err()
            .to_string();
        assert!(e.contains("archive/data/0 unpacks from"), "{e}");
    }

    #[test]
    fn half_precision_values() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
    }
}
