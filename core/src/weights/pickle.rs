//! A small Python pickle interpreter (protocols 0–4, the opcodes torch checkpoints use).
//!
//! Classes are not instantiated: `GLOBAL` yields a [`Pickled::Global`] and `REDUCE` /
//! `NEWOBJ` a [`Pickled::Call`] holding the callable and its arguments, which the caller
//! interprets (`torch._utils._rebuild_tensor_v2`, `collections.OrderedDict`, ...).

use std::collections::HashMap;

/// A value on the pickle machine's stack.
#[derive(Clone, Debug, PartialEq)]
pub enum Pickled {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Pickled>),
    List(Vec<Pickled>),
    Dict(Vec<(Pickled, Pickled)>),
    /// `module.name`.
    Global(String, String),
    /// A call of `callable(args)` (REDUCE / NEWOBJ), with any BUILD state.
    Call {
        callable: Box<Pickled>,
        args: Box<Pickled>,
        state: Option<Box<Pickled>>,
    },
    /// A persistent id (`BINPERSID`), resolved by the caller.
    PersistentId(Box<Pickled>),
    Mark,
}

impl Pickled {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Pickled::Int(i) => Some(*i),
            Pickled::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Pickled::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Tuple or list items.
    pub fn items(&self) -> Option<&[Pickled]> {
        match self {
            Pickled::Tuple(v) | Pickled::List(v) => Some(v),
            _ => None,
        }
    }
}

/// Reads one pickle from `data` starting at `*pos`; `*pos` ends after its STOP opcode.
pub fn load(data: &[u8], pos: &mut usize) -> Result<Pickled, String> {
    let mut stack: Vec<Pickled> = Vec::new();
    let mut memo: HashMap<u64, Pickled> = HashMap::new();
    let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
        let end = pos
            .checked_add(n)
            .filter(|&e| e <= data.len())
            .ok_or("truncated pickle")?;
        let s = &data[*pos..end];
        *pos = end;
        Ok(s)
    };
    let line = |pos: &mut usize| -> Result<String, String> {
        let rest = &data[*pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated pickle")?;
        *pos += n + 1;
        Ok(String::from_utf8_lossy(&rest[..n]).into_owned())
    };
    fn pop_mark(stack: &mut Vec<Pickled>) -> Result<Vec<Pickled>, String> {
        let at = stack
            .iter()
            .rposition(|v| *v == Pickled::Mark)
            .ok_or("MARK missing")?;
        let items = stack.split_off(at + 1);
        stack.pop();
        Ok(items)
    }
    fn pop(stack: &mut Vec<Pickled>) -> Result<Pickled, String> {
        stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    }
    fn add_items(target: &mut Pickled, items: Vec<Pickled>, pairs: bool) -> Result<(), String> {
        match target {
            Pickled::List(v) if !pairs => v.extend(items),
            Pickled::Dict(d) if pairs => {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
            }
            // An OrderedDict under construction (REDUCE result) takes items too.
            Pickled::Call { state, .. } if pairs => {
                let mut d = match state.take().map(|b| *b) {
                    Some(Pickled::Dict(d)) => d,
                    _ => Vec::new(),
                };
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                *state = Some(Box::new(Pickled::Dict(d)));
            }
            _ => return Err("SETITEMS/APPENDS on a non-container".into()),
        }
        Ok(())
    }
    loop {
        let op = take(pos, 1)?[0];
        match op {
            0x80 => {
                take(pos, 1)?; // PROTO
            }
            0x95 => {
                take(pos, 8)?; // FRAME
            }
            b'.' => return pop(&mut stack), // STOP
            b'(' => stack.push(Pickled::Mark),
            b'N' => stack.push(Pickled::None),
            0x88 => stack.push(Pickled::Bool(true)),
            0x89 => stack.push(Pickled::Bool(false)),
            b'K' => stack.push(Pickled::Int(i64::from(take(pos, 1)?[0]))),
            b'M' => {
                let b = take(pos, 2)?;
                stack.push(Pickled::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))));
            }
            b'J' => {
                let b = take(pos, 4)?;
                stack.push(Pickled::Int(i64::from(i32::from_le_bytes([
                    b[0], b[1], b[2], b[3],
                ]))));
            }
            0x8a => {
                // LONG1: little-endian two's complement of n bytes.
                let n = take(pos, 1)?[0] as usize;
                let b = take(pos, n)?;
                if n > 8 {
                    stack.push(Pickled::Bytes(b.to_vec())); // beyond i64: kept raw
                } else {
                    let mut v: i64 = 0;
                    for (i, &byte) in b.iter().enumerate() {
                        v |= i64::from(byte) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    stack.push(Pickled::Int(v));
                }
            }
            b'I' => {
                let l = line(pos)?;
                stack.push(match l.as_str() {
                    "00" => Pickled::Bool(false),
                    "01" => Pickled::Bool(true),
                    s => Pickled::Int(s.parse().map_err(|_| format!("bad INT {s}"))?),
                });
            }
            b'G' => {
                let b = take(pos, 8)?;
                stack.push(Pickled::Float(f64::from_be_bytes(
                    b.try_into().map_err(|_| "float")?,
                )));
            }
            b'X' => {
                let b = take(pos, 4)?;
                let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                stack.push(Pickled::Str(
                    String::from_utf8_lossy(take(pos, n)?).into_owned(),
                ));
            }
            0x8c => {
                let n = take(pos, 1)?[0] as usize;
                stack.push(Pickled::Str(
                    String::from_utf8_lossy(take(pos, n)?).into_owned(),
                ));
            }
            b'U' => {
                let n = take(pos, 1)?[0] as usize;
                stack.push(Pickled::Bytes(take(pos, n)?.to_vec()));
            }
            b'T' => {
                let b = take(pos, 4)?;
                let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                stack.push(Pickled::Bytes(take(pos, n)?.to_vec()));
            }
            b'B' => {
                let b = take(pos, 4)?;
                let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                stack.push(Pickled::Bytes(take(pos, n)?.to_vec()));
            }
            b'C' => {
                let n = take(pos, 1)?[0] as usize;
                stack.push(Pickled::Bytes(take(pos, n)?.to_vec()));
            }
            b')' => stack.push(Pickled::Tuple(Vec::new())),
            b']' => stack.push(Pickled::List(Vec::new())),
            b'}' => stack.push(Pickled::Dict(Vec::new())),
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Pickled::Tuple(items));
            }
            b'l' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Pickled::List(items));
            }
            b'd' => {
                let items = pop_mark(&mut stack)?;
                let mut d = Pickled::Dict(Vec::new());
                add_items(&mut d, items, true)?;
                stack.push(d);
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err("pickle stack underflow".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Pickled::Tuple(items));
            }
            b'q' => {
                let i = u64::from(take(pos, 1)?[0]);
                memo.insert(i, stack.last().cloned().ok_or("empty stack")?);
            }
            b'r' => {
                let b = take(pos, 4)?;
                let i = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                memo.insert(i, stack.last().cloned().ok_or("empty stack")?);
            }
            0x94 => {
                let i = memo.len() as u64;
                memo.insert(i, stack.last().cloned().ok_or("empty stack")?);
            }
            b'h' => {
                let i = u64::from(take(pos, 1)?[0]);
                stack.push(memo.get(&i).cloned().ok_or("bad memo reference")?);
            }
            b'j' => {
                let b = take(pos, 4)?;
                let i = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                stack.push(memo.get(&i).cloned().ok_or("bad memo reference")?);
            }
            b'c' => {
                let module = line(pos)?;
                let name = line(pos)?;
                stack.push(Pickled::Global(module, name));
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                stack.push(Pickled::Global(
                    module.as_str().unwrap_or_default().to_string(),
                    name.as_str().unwrap_or_default().to_string(),
                ));
            }
            b'R' | 0x81 => {
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                stack.push(Pickled::Call {
                    callable: Box::new(callable),
                    args: Box::new(args),
                    state: None,
                });
            }
            b'Q' => {
                let id = pop(&mut stack)?;
                stack.push(Pickled::PersistentId(Box::new(id)));
            }
            b'b' => {
                let new_state = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Pickled::Call { state, .. }) if state.is_none() => {
                        *state = Some(Box::new(new_state));
                    }
                    Some(_) => {} // state of an object already holding items: not needed here
                    None => return Err("BUILD on an empty stack".into()),
                }
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                let target = stack.last_mut().ok_or("SETITEM on an empty stack")?;
                add_items(target, vec![k, v], true)?;
            }
            b'u' => {
                let items = pop_mark(&mut stack)?;
                let target = stack.last_mut().ok_or("SETITEMS on an empty stack")?;
                add_items(target, items, true)?;
            }
            b'a' => {
                let v = pop(&mut stack)?;
                let target = stack.last_mut().ok_or("APPEND on an empty stack")?;
                add_items(target, vec![v], false)?;
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                let target = stack.last_mut().ok_or("APPENDS on an empty stack")?;
                add_items(target, items, false)?;
            }
            b'0' => {
                pop(&mut stack)?;
            }
            other => {
                return Err(format!(
                    "unsupported pickle opcode 0x{other:02x} at byte {}",
                    *pos - 1
                ));
            }
        }
    }
}
