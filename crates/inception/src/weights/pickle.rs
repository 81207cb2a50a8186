//! A restricted unpickler for PyTorch checkpoints.
//!
//! `torch.save` writes a pickle program; a general unpickler *executes* it (any importable
//! callable can be invoked), which is why loading an untrusted `.pth` in Python is unsafe. This
//! reader interprets only the opcodes a state dict needs and resolves only the globals that
//! rebuild tensors and ordered dicts; any other global is refused with its name, before anything
//! is called. Every length read from the file is checked against the bytes left, so a hostile
//! file cannot make it allocate more than the file's own size.

use std::collections::HashMap;

use super::DType;
use crate::error::FormatError;

/// A value produced by the unpickler.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// `None`.
    None,
    /// A boolean.
    Bool(bool),
    /// An integer (pickled ints beyond 64 bits are refused).
    Int(i64),
    /// A float.
    Float(f64),
    /// A text string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Object>),
    /// A list.
    List(Vec<Object>),
    /// A dict (or `OrderedDict`), in insertion order.
    Dict(Vec<(Object, Object)>),
    /// One of the allowed globals.
    Global(Global),
    /// A reference to a storage stored beside the pickle (`archive/data/<key>`).
    Storage {
        /// Element type of the storage.
        dtype: DType,
        /// Key of the storage's file in the archive.
        key: String,
        /// Number of elements.
        numel: usize,
    },
    /// A tensor view onto a storage.
    Tensor(TensorRef),
}

/// A tensor as `torch._utils._rebuild_tensor_v2` describes it: a strided view into a storage.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    /// Element type.
    pub dtype: DType,
    /// Key of the storage's file in the archive.
    pub key: String,
    /// Elements in the storage.
    pub storage_numel: usize,
    /// Offset (in elements) of the first element.
    pub offset: usize,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Strides (in elements).
    pub stride: Vec<usize>,
}

/// The globals a state dict may refer to; nothing else is ever resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Global {
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2` (and `_rebuild_tensor`).
    RebuildTensor,
    /// `torch._utils._rebuild_parameter`.
    RebuildParameter,
    /// A storage class such as `torch.FloatStorage`, or a dtype such as `torch.float16`.
    StorageType(DType),
}

impl Global {
    fn resolve(module: &str, name: &str) -> Result<Global, FormatError> {
        let g = match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => Global::RebuildTensor,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch", storage) => {
                let dtype = match storage {
                    "FloatStorage" | "float32" | "float" => DType::F32,
                    "DoubleStorage" | "float64" | "double" => DType::F64,
                    "HalfStorage" | "float16" | "half" => DType::F16,
                    "BFloat16Storage" | "bfloat16" => DType::BF16,
                    "LongStorage" | "int64" | "long" => DType::I64,
                    "IntStorage" | "int32" | "int" => DType::I32,
                    "ShortStorage" | "int16" => DType::I16,
                    "CharStorage" | "int8" => DType::I8,
                    "ByteStorage" | "uint8" => DType::U8,
                    "BoolStorage" | "bool" => DType::Bool,
                    _ => return Err(refused(module, name)),
                };
                Global::StorageType(dtype)
            }
            _ => return Err(refused(module, name)),
        };
        Ok(g)
    }
}

fn refused(module: &str, name: &str) -> FormatError {
    FormatError::unsupported(
        format!(
            "the pickle's reference to `{module}.{name}`, which is not a tensor-rebuild global \
             (refusing to execute it)"
        ),
        "only state dicts of tensors can be read — re-save with \
         `torch.save(model.state_dict(), path)` or convert to safetensors",
    )
}

/// Runs the pickle program in `data` and returns the object it builds.
pub fn unpickle(data: &[u8]) -> Result<Object, FormatError> {
    Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        copied: 0,
    }
    .run()
}

/// Stack limit: real state dicts need a few entries.
const MAX_STACK: usize = 1 << 20;

/// Nesting limit: real state dicts are a few levels deep, and a deeper structure could
/// overflow the stack when dropped.
const MAX_DEPTH: usize = 64;

/// How many objects memo reads may copy in total: a pickle that re-reads a memoised structure
/// into itself grows exponentially ("billion laughs"); real checkpoints copy a few per tensor.
const MAX_COPIED: usize = 1_000_000;

/// The nesting depth of `o` if it is at most `limit`.
fn depth_within(o: &Object, limit: usize) -> Option<usize> {
    let children: Box<dyn Iterator<Item = &Object>> = match o {
        Object::Tuple(v) | Object::List(v) => Box::new(v.iter()),
        Object::Dict(d) => Box::new(d.iter().flat_map(|(k, v)| [k, v])),
        _ => return Some(0),
    };
    if limit == 0 {
        return None;
    }
    let mut deepest = 0;
    for c in children {
        deepest = deepest.max(depth_within(c, limit - 1)?);
    }
    Some(deepest + 1)
}

/// The number of objects in `o` if it is at most `budget`.
fn size_within(o: &Object, budget: usize) -> Option<usize> {
    let mut total = 1;
    let children: Box<dyn Iterator<Item = &Object>> = match o {
        Object::Tuple(v) | Object::List(v) => Box::new(v.iter()),
        Object::Dict(d) => Box::new(d.iter().flat_map(|(k, v)| [k, v])),
        _ => return (budget >= 1).then_some(1),
    };
    for c in children {
        total += size_within(c, budget.checked_sub(total)?)?;
    }
    (total <= budget).then_some(total)
}

fn check_depth<'a>(items: impl IntoIterator<Item = &'a Object>) -> Result<(), FormatError> {
    for o in items {
        if depth_within(o, MAX_DEPTH - 1).is_none() {
            return Err(format!("the pickle nests deeper than {MAX_DEPTH} levels").into());
        }
    }
    Ok(())
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Object>,
    marks: Vec<usize>,
    memo: HashMap<u32, Object>,
    copied: usize,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], FormatError> {
        if n > self.data.len() - self.pos {
            return Err(FormatError::Truncated {
                what: "the pickle",
                at: self.pos,
                need: n,
                left: self.data.len() - self.pos,
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FormatError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn line(&mut self) -> Result<String, FormatError> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("the pickle is truncated inside a GLOBAL opcode")?;
        let s =
            String::from_utf8(rest[..end].to_vec()).map_err(|_| "a GLOBAL name is not UTF-8")?;
        self.pos += end + 1;
        Ok(s)
    }

    fn text(&mut self, n: usize) -> Result<Object, FormatError> {
        let b = self.take(n)?;
        let s = String::from_utf8(b.to_vec()).map_err(|_| "a pickled string is not UTF-8")?;
        Ok(Object::Str(s))
    }

    fn push(&mut self, o: Object) -> Result<(), FormatError> {
        if self.stack.len() >= MAX_STACK {
            return Err("the pickle's stack grows without bound".into());
        }
        self.stack.push(o);
        Ok(())
    }

    fn pop(&mut self) -> Result<Object, FormatError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("the pickle pops past a MARK".into());
        }
        self.stack
            .pop()
            .ok_or_else(|| "the pickle pops from an empty stack".into())
    }

    fn pop_mark(&mut self) -> Result<Vec<Object>, FormatError> {
        let m = self.marks.pop().ok_or("the pickle has no MARK to pop to")?;
        if m > self.stack.len() {
            return Err("the pickle's MARK is above the stack".into());
        }
        Ok(self.stack.split_off(m))
    }

    fn top(&mut self) -> Result<&mut Object, FormatError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("the pickle reaches past a MARK".into());
        }
        self.stack
            .last_mut()
            .ok_or_else(|| "the pickle reads an empty stack".into())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), FormatError> {
        let o = self
            .memo
            .get(&key)
            .ok_or_else(|| format!("the pickle reads memo slot {key}, which was never written"))?;
        // Count before copying: the copy is what a bomb makes expensive.
        let n = size_within(o, MAX_COPIED - self.copied)
            .ok_or("the pickle expands beyond any real checkpoint (repeated memo copies)")?;
        let o = o.clone();
        self.copied += n;
        self.push(o)
    }

    fn memo_put(&mut self, key: u32) -> Result<(), FormatError> {
        let o = self.top()?.clone();
        self.memo.insert(key, o);
        Ok(())
    }

    fn run(mut self) -> Result<Object, FormatError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(FormatError::unsupported(
                            format!("pickle protocol {proto}"),
                            "2–5",
                        ));
                    }
                }
                0x95 => {
                    self.u64()?;
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.push(Object::Dict(Vec::new()))?,
                b']' => self.push(Object::List(Vec::new()))?,
                b')' => self.push(Object::Tuple(Vec::new()))?,
                b'N' => self.push(Object::None)?,
                0x88 => self.push(Object::Bool(true))?,
                0x89 => self.push(Object::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Object::Int(v as i64))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Object::Int(v as i64))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Object::Int(v as i64))?
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err("a pickled integer is wider than 64 bits".into());
                    }
                    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    buf[..n].copy_from_slice(b);
                    self.push(Object::Int(i64::from_le_bytes(buf)))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.push(Object::Float(v))?
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.text(n)?;
                    self.push(s)?
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.text(n)?;
                    self.push(s)?
                }
                0x8d => {
                    let n = usize::try_from(self.u64()?).map_err(|_| "string too long")?;
                    let s = self.text(n)?;
                    self.push(s)?
                }
                b'T' | b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Object::Bytes(b))?
                }
                b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Object::Bytes(b))?
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    self.memo_get(k)?
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = Global::resolve(&module, &name)?;
                    self.push(Object::Global(g))?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Object::Str(m), Object::Str(n)) => {
                            let g = Global::resolve(&m, &n)?;
                            self.push(Object::Global(g))?
                        }
                        _ => return Err("STACK_GLOBAL needs two strings".into()),
                    }
                }
                b't' => {
                    let items = self.pop_mark()?;
                    check_depth(&items)?;
                    self.push(Object::Tuple(items))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    check_depth(&items)?;
                    self.push(Object::Tuple(items))?
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    check_depth(&items)?;
                    self.push(Object::List(items))?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    check_depth(&items)?;
                    let dict = pairs(items)?;
                    self.push(Object::Dict(dict))?
                }
                b'a' => {
                    let v = self.pop()?;
                    check_depth([&v])?;
                    match self.top()? {
                        Object::List(l) => l.push(v),
                        _ => return Err("APPEND onto something that is not a list".into()),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    check_depth(&items)?;
                    match self.top()? {
                        Object::List(l) => l.extend(items),
                        _ => return Err("APPENDS onto something that is not a list".into()),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    check_depth([&k, &v])?;
                    match self.top()? {
                        Object::Dict(d) => d.push((k, v)),
                        _ => return Err("SETITEM on something that is not a dict".into()),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    check_depth(&items)?;
                    let new = pairs(items)?;
                    match self.top()? {
                        Object::Dict(d) => d.extend(new),
                        _ => return Err("SETITEMS on something that is not a dict".into()),
                    }
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let o = self.top()?.clone();
                    self.push(o)?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = persistent_storage(pid)?;
                    self.push(storage)?
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let out = reduce(callable, args)?;
                    self.push(out)?
                }
                b'b' => {
                    // BUILD sets an object's state; the only one a state dict has is the
                    // OrderedDict's `_metadata` (module versions), which we do not need.
                    let _state = self.pop()?;
                    if !matches!(self.top()?, Object::Dict(_)) {
                        return Err("BUILD on something that is not a dict".into());
                    }
                }
                _ => {
                    return Err(format!(
                        "unsupported pickle opcode 0x{op:02x} at byte {at} (not a PyTorch state \
                         dict?)"
                    )
                    .into());
                }
            }
        }
    }
}

fn pairs(items: Vec<Object>) -> Result<Vec<(Object, Object)>, FormatError> {
    if !items.len().is_multiple_of(2) {
        return Err("a pickled dict has an odd number of items".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn int(o: &Object, what: &str) -> Result<usize, FormatError> {
    match o {
        Object::Int(v) if *v >= 0 => Ok(*v as usize),
        _ => Err(format!("{what} is not a non-negative integer").into()),
    }
}

fn ints(o: &Object, what: &str) -> Result<Vec<usize>, FormatError> {
    match o {
        Object::Tuple(v) | Object::List(v) => v.iter().map(|x| int(x, what)).collect(),
        _ => Err(format!("{what} is not a tuple").into()),
    }
}

/// `('storage', torch.FloatStorage, '0', 'cpu', numel)`.
fn persistent_storage(pid: Object) -> Result<Object, FormatError> {
    let Object::Tuple(items) = pid else {
        return Err("a persistent id is not a tuple".into());
    };
    match items.as_slice() {
        [
            Object::Str(kind),
            Object::Global(Global::StorageType(dtype)),
            key,
            _location,
            numel,
        ] if kind == "storage" => {
            let key = match key {
                Object::Str(s) => s.clone(),
                Object::Int(i) => i.to_string(),
                _ => return Err("a storage key is neither a string nor an integer".into()),
            };
            Ok(Object::Storage {
                dtype: *dtype,
                key,
                numel: int(numel, "a storage size")?,
            })
        }
        _ => Err("a persistent id is not a ('storage', type, key, location, size) tuple".into()),
    }
}

fn reduce(callable: Object, args: Object) -> Result<Object, FormatError> {
    let Object::Tuple(args) = args else {
        return Err("REDUCE arguments are not a tuple".into());
    };
    match callable {
        Object::Global(Global::OrderedDict) => Ok(Object::Dict(Vec::new())),
        Object::Global(Global::RebuildTensor) => {
            let [storage, offset, shape, stride, ..] = args.as_slice() else {
                return Err("_rebuild_tensor_v2 called with too few arguments".into());
            };
            let Object::Storage { dtype, key, numel } = storage else {
                return Err("_rebuild_tensor_v2's first argument is not a storage".into());
            };
            let shape = ints(shape, "a tensor size")?;
            let stride = ints(stride, "a tensor stride")?;
            if shape.len() != stride.len() {
                return Err("a tensor's size and stride differ in length".into());
            }
            Ok(Object::Tensor(TensorRef {
                dtype: *dtype,
                key: key.clone(),
                storage_numel: *numel,
                offset: int(offset, "a storage offset")?,
                shape,
                stride,
            }))
        }
        Object::Global(Global::RebuildParameter) => match args.into_iter().next() {
            Some(t @ Object::Tensor(_)) => Ok(t),
            _ => Err("_rebuild_parameter's first argument is not a tensor".into()),
        },
        _ => Err("the pickle calls something that is not an allowed global".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_dict_of_ints_and_strings() {
        // pickle.dumps({'a': 1, 'b': 'x'}, protocol=2)
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02X\x01\x00\x00\x00xq\x03u.";
        let o = unpickle(p).unwrap();
        assert_eq!(
            o,
            Object::Dict(vec![
                (Object::Str("a".into()), Object::Int(1)),
                (Object::Str("b".into()), Object::Str("x".into())),
            ])
        );
    }

    #[test]
    fn refuses_os_system() {
        // The classic exploit: cos\nsystem\n(S'echo pwned'\ntR.
        let p = b"cos\nsystem\n(S'echo pwned'\ntR.";
        let e = unpickle(p).unwrap_err();
        assert!(
            matches!(&e, FormatError::Unsupported { what, .. } if what.contains("os.system")),
            "{e}"
        );
        assert!(e.to_string().contains("state_dict"), "{e}");
    }

    #[test]
    fn truncated_and_oversized_lengths_are_errors() {
        assert!(unpickle(b"\x80\x02X\xff\xff\xff\x7f").is_err());
        assert!(matches!(
            unpickle(b"\x80\x02"),
            Err(FormatError::Truncated {
                at: 2,
                need: 1,
                left: 0,
                ..
            })
        ));
        assert!(unpickle(b"").is_err());
        assert!(unpickle(b"h\x05.").is_err());
        assert!(unpickle(b"0.").is_err());
    }

    #[test]
    fn deep_nesting_and_memo_bombs_are_refused() {
        // 100,000 nested one-tuples: refused long before the stack could overflow on drop.
        let mut deep = b"\x80\x02)".to_vec();
        deep.extend(std::iter::repeat_n(0x85u8, 100_000));
        deep.push(b'.');
        let e = unpickle(&deep).unwrap_err();
        assert!(e.to_string().contains("nests deeper"), "{e}");
        // A list of two copies of the previous one, memoised again: doubles every 7 bytes.
        let mut bomb = b"\x80\x02]q\x00".to_vec();
        for _ in 0..60 {
            bomb.extend(b"(h\x00h\x00lq\x00");
        }
        bomb.push(b'.');
        let e = unpickle(&bomb).unwrap_err();
        assert!(e.to_string().contains("expands"), "{e}");
    }
}
