//! The subset of the pickle machine that `torch.save` of state dicts and the official
//! StyleGAN2-ADA network pickles emit (protocols 2 to 4), with bounded nesting and memo copies:
//! no pickle can exhaust the stack or the memory. Nothing is ever executed: a pickle may name
//! only the globals in [`ALLOWED`], each rebuilt here by what it means; any other is refused
//! when it is named, before the object it would build exists.

use std::collections::HashMap;
use std::rc::Rc;

/// The globals a pickle may name: what state dicts and network pickles are made of.
const ALLOWED: [&str; 16] = [
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.storage._load_from_bytes",
    "torch_utils.persistence._reconstruct_persistent_obj",
    "dnnlib.util.EasyDict",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
];

/// Refuses a global outside [`ALLOWED`], naming it.
fn check_global(name: &str) -> std::result::Result<(), String> {
    if ALLOWED.contains(&name) {
        return Ok(());
    }
    if name.starts_with("dnnlib.tflib") {
        return Err(format!(
            "names {name}: a TensorFlow-era StyleGAN pickle, which this reader does not read \
             (convert it to a PyTorch one with the official code's legacy.py first)"
        ));
    }
    Err(format!(
        "names {name}, which a checkpoint has no reason to: refused without running anything"
    ))
}

/// A pickled value, as far as state dicts and network pickles need. Containers carry their
/// [`Nesting`].
#[derive(Debug, Clone)]
pub(super) enum Value {
    /// Values no reader needs (sets, numpy scalars and dtypes).
    Other,
    None,
    Bool(bool),
    Float(f64),
    Bytes(Rc<[u8]>),
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
    /// A storage saved inside the pickle (`torch.storage._load_from_bytes`).
    LoadedStorage {
        dtype: String,
        data: Rc<[u8]>,
    },
    Tensor(TensorRef),
    /// An object of the official code's `persistence` classes: its class name and its state
    /// (`__dict__`).
    Object {
        class: String,
        state: Box<Value>,
        nesting: Nesting,
    },
    Mark,
}

/// How deeply a value nests containers, and how many values it holds in all (itself
/// included): kept with each container so that the limits are checked without walking it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Nesting {
    depth: usize,
    values: usize,
}

/// The deepest nesting of containers read. Deeper values would overflow the stack when they
/// are walked or dropped; state dicts nest a handful of levels.
pub(super) const MAX_DEPTH: usize = 1000;

/// Values that memo look-ups may copy, per byte of pickle: a few copies of small values are
/// what pickles of state dicts hold, while crafted ones copy a large value again and again to
/// fill memory.
pub(super) const COPIES_PER_BYTE: usize = 64;

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
            Value::Object { nesting, .. } => *nesting,
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

/// A tensor: a view of a storage (one stored beside the pickle by key, or inside it).
#[derive(Debug, Clone)]
pub(super) struct TensorRef {
    pub(super) dtype: String,
    pub(super) key: String,
    pub(super) inline: Option<Rc<[u8]>>,
    pub(super) offset: usize,
    pub(super) shape: Vec<usize>,
    pub(super) stride: Vec<usize>,
}

/// The subset of the pickle machine that `torch.save` of state dicts emits (protocols 2 to 4).
/// The value a pickle builds, the bytes it used, and the element type of every storage its
/// persistent ids name (key → storage type), wherever in the value they end up.
pub(super) type Unpickled = (Value, usize, HashMap<String, String>);

pub(super) fn unpickle(bytes: &[u8]) -> std::result::Result<Unpickled, String> {
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
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            // EMPTY_SET; sets read as lists (a module's `_non_persistent_buffers_set`).
            0x8f => stack.push(Value::List(Vec::new(), Nesting::EMPTY)),
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
                let b = take(&mut at, 8)?.try_into().expect("8 bytes");
                stack.push(Value::Float(f64::from_be_bytes(b)));
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
            // SHORT_BINBYTES, BINBYTES, BINBYTES8.
            b'C' | b'B' | 0x8e => {
                let width = match op {
                    b'C' => 1,
                    b'B' => 4,
                    _ => 8,
                };
                let n = length(take(&mut at, width)?);
                stack.push(Value::Bytes(take(&mut at, n)?.into()));
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
                let global = format!("{module}.{name}");
                check_global(&global)?;
                stack.push(Value::Global(global));
            }
            0x93 => {
                // STACK_GLOBAL: protocol 4's GLOBAL, module and name from the stack.
                let (Value::Str(name), Value::Str(module)) = (pop(&mut stack)?, pop(&mut stack)?)
                else {
                    return Err("STACK_GLOBAL of non-strings".into());
                };
                let global = format!("{module}.{name}");
                check_global(&global)?;
                stack.push(Value::Global(global));
            }
            0x81 => {
                // NEWOBJ: cls.__new__(cls, *args); only EasyDict (a dict) is ever made so.
                pop(&mut stack)?;
                match pop(&mut stack)? {
                    Value::Global(g) if g == "dnnlib.util.EasyDict" => {
                        stack.push(Value::Dict(Vec::new(), Nesting::EMPTY))
                    }
                    _ => return Err("NEWOBJ of a class other than EasyDict".into()),
                }
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
                // ADDITEMS to a set.
                let items = pop_mark(&mut stack)?;
                if let Some(Value::List(list, nesting)) = stack.last_mut() {
                    for item in items {
                        *nesting = nesting.with(&item)?;
                        list.push(item);
                    }
                }
            }
            0x91 => {
                let items = pop_mark(&mut stack)?; // FROZENSET
                let nesting = items.iter().try_fold(Nesting::EMPTY, Nesting::with)?;
                stack.push(Value::List(items, nesting));
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
                // BUILD: the state of an OrderedDict (`_metadata`), an EasyDict (its empty
                // `__dict__`) or a numpy dtype, which no reader needs.
                pop(&mut stack)?;
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
        "torch._utils._rebuild_parameter" => match args.into_iter().next() {
            Some(t @ Value::Tensor(_)) => Ok(t),
            _ => Err("_rebuild_parameter of a non-tensor".into()),
        },
        "torch.storage._load_from_bytes" => match args.as_slice() {
            [Value::Bytes(b)] => {
                let (dtype, data) = super::legacy_storage(b)?;
                Ok(Value::LoadedStorage {
                    dtype,
                    data: data.into(),
                })
            }
            _ => Err("_load_from_bytes of a non-bytes value".into()),
        },
        "torch_utils.persistence._reconstruct_persistent_obj" => {
            let Some(Value::Dict(meta, _)) = args.into_iter().next() else {
                return Err("a persistent object without its description".into());
            };
            let field = |key: &str| {
                meta.iter()
                    .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                    .map(|(_, v)| v.clone())
            };
            let Some(Value::Str(class)) = field("class_name") else {
                return Err("a persistent object without a class name".into());
            };
            let state = field("state").unwrap_or(Value::None);
            let nesting = Nesting::EMPTY.with(&state)?;
            Ok(Value::Object {
                class,
                state: Box::new(state),
                nesting,
            })
        }
        "numpy.core.multiarray.scalar" | "numpy._core.multiarray.scalar" | "numpy.dtype" => {
            Ok(Value::Other)
        }
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
            let (dtype, key, inline, offset, size, stride) = match args.as_slice() {
                [Value::Storage { dtype, key }, Value::Int(offset), size, stride, ..] => {
                    (dtype, key.clone(), None, offset, size, stride)
                }
                [Value::LoadedStorage { dtype, data }, Value::Int(offset), size, stride, ..] => (
                    dtype,
                    String::from("(in the pickle)"),
                    Some(data.clone()),
                    offset,
                    size,
                    stride,
                ),
                _ => return Err("unexpected arguments of _rebuild_tensor_v2".into()),
            };
            Ok(Value::Tensor(TensorRef {
                dtype: dtype.clone(),
                key,
                inline,
                offset: usize::try_from(*offset).map_err(|_| "negative storage offset")?,
                shape: usizes(size)?,
                stride: usizes(stride)?,
            }))
        }
        other => Err(format!("unsupported object {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globals_outside_the_list_are_refused_by_name() {
        for global in [
            "os.system",
            "posix.system",
            "builtins.eval",
            "subprocess.Popen",
        ] {
            let e = check_global(global).unwrap_err();
            assert!(e.contains(global) && e.contains("refused"), "{e}");
        }
        let e = check_global("dnnlib.tflib.network.Network").unwrap_err();
        assert!(e.contains("TensorFlow-era"), "{e}");
        assert!(check_global("torch._utils._rebuild_parameter").is_ok());
    }
}
