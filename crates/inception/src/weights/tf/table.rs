//! The immutable sorted table TensorFlow keeps checkpoint indexes in (LevelDB's format,
//! `tensorflow/core/lib/io/table*`): a 48-byte footer with the index block's handle and the magic
//! number, data blocks of prefix-compressed keys with restart points, each followed by a type
//! byte (0 raw, 1 Snappy) and a masked CRC32C. Every offset, length and varint is checked against
//! the file before it is used.

use crate::error::FormatError;

/// The footer's magic number (`kTableMagicNumber`).
pub(super) const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const FOOTER: usize = 48;
/// Largest block inflated from Snappy (TensorFlow's blocks are a few KiB; index blocks of huge
/// checkpoints a few MiB).
const MAX_BLOCK: usize = 256 << 20;

/// A cursor over bytes that never reads past them.
pub(super) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(super) fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(super) fn varint(&mut self) -> Result<u64, FormatError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(truncated("a varint", self.pos, 1, 0));
            };
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a varint longer than 10 bytes".into())
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let left = self.data.len() - self.pos;
        if n > left {
            return Err(truncated("a record", self.pos, n, left));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

fn truncated(what: &'static str, at: usize, need: usize, left: usize) -> FormatError {
    FormatError::Truncated {
        what,
        at,
        need,
        left,
    }
}

/// `(offset, size)` of a block.
#[derive(Clone, Copy, Debug)]
struct Handle {
    offset: u64,
    size: u64,
}

impl Handle {
    fn read(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        Ok(Self {
            offset: r.varint()?,
            size: r.varint()?,
        })
    }
}

/// LevelDB's masked CRC32C, as stored after each block.
pub(super) fn unmask(masked: u32) -> u32 {
    let rot = masked.wrapping_sub(0xa282_ead8);
    rot.rotate_left(15)
}

/// A table's `(key, value)`.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Every `(key, value)` of the table in `file`, in key order.
pub fn entries(file: &[u8]) -> Result<Vec<Entry>, FormatError> {
    if file.len() < FOOTER {
        return Err(truncated("the table footer", 0, FOOTER, file.len()));
    }
    let footer = &file[file.len() - FOOTER..];
    let magic = u64::from_le_bytes(footer[40..48].try_into().unwrap_or_default());
    if magic != MAGIC {
        return Err("not a TensorFlow table (no magic number at its end)".into());
    }
    let mut r = Reader::new(&footer[..40]);
    let _metaindex = Handle::read(&mut r)?;
    let index = Handle::read(&mut r)?;
    let mut out = Vec::new();
    for (_, handle) in block_entries(&block(file, index)?)? {
        let handle = Handle::read(&mut Reader::new(&handle))?;
        out.extend(block_entries(&block(file, handle)?)?);
    }
    Ok(out)
}

/// The contents of the block at `h`, its checksum verified and Snappy undone.
fn block(file: &[u8], h: Handle) -> Result<Vec<u8>, FormatError> {
    let start = usize::try_from(h.offset).map_err(|_| "a block offset is out of range")?;
    let size = usize::try_from(h.size).map_err(|_| "a block size is out of range")?;
    let end = start
        .checked_add(size)
        .and_then(|e| e.checked_add(5))
        .filter(|&e| e <= file.len())
        .ok_or_else(|| {
            truncated(
                "a table block",
                start,
                size.saturating_add(5),
                file.len().saturating_sub(start),
            )
        })?;
    let contents = &file[start..start + size];
    let kind = file[start + size];
    let stored = u32::from_le_bytes(file[start + size + 1..end].try_into().unwrap_or_default());
    let crc = crc32c::crc32c_append(crc32c::crc32c(contents), &[kind]);
    if crc != unmask(stored) {
        return Err(FormatError::from(format!(
            "the table block at byte {start} fails its CRC32C check (corrupt file)"
        )));
    }
    match kind {
        0 => Ok(contents.to_vec()),
        1 => {
            let n = snap::raw::decompress_len(contents)
                .map_err(|e| format!("a Snappy block at byte {start}: {e}"))?;
            if n > MAX_BLOCK {
                return Err(FormatError::TooLarge {
                    what: "a Snappy block's inflated size".into(),
                    got: n as u64,
                    limit: MAX_BLOCK as u64,
                });
            }
            snap::raw::Decoder::new()
                .decompress_vec(contents)
                .map_err(|e| format!("a Snappy block at byte {start}: {e}").into())
        }
        other => Err(FormatError::unsupported(
            format!("table block compression {other}"),
            "none and Snappy are",
        )),
    }
}

/// The `(key, value)` pairs of one block.
fn block_entries(b: &[u8]) -> Result<Vec<Entry>, FormatError> {
    if b.len() < 4 {
        return Err(truncated("a block's restart count", 0, 4, b.len()));
    }
    let restarts = u32::from_le_bytes(b[b.len() - 4..].try_into().unwrap_or_default()) as usize;
    let data_end = restarts
        .checked_mul(4)
        .and_then(|r| (b.len() - 4).checked_sub(r))
        .ok_or("a block's restart array is longer than the block")?;
    let mut r = Reader::new(&b[..data_end]);
    let mut out: Vec<Entry> = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    while !r.done() {
        let shared = r.varint()? as usize;
        let unshared = r.varint()? as usize;
        let value_len = r.varint()? as usize;
        if shared > key.len() {
            return Err("a key shares more bytes than the previous key has".into());
        }
        key.truncate(shared);
        key.extend_from_slice(r.bytes(unshared)?);
        let value = r.bytes(value_len)?.to_vec();
        out.push((key.clone(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A block of `(key, value)` pairs, keys prefix-compressed, one restart point.
    fn block(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev: &[u8] = &[];
        for (k, v) in entries {
            let shared = prev
                .iter()
                .zip(k.iter())
                .take_while(|(a, b)| a == b)
                .count();
            varint(&mut out, shared as u64);
            varint(&mut out, (k.len() - shared) as u64);
            varint(&mut out, v.len() as u64);
            out.extend_from_slice(&k[shared..]);
            out.extend_from_slice(v);
            prev = k;
        }
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out
    }

    /// Appends `contents` as a block of type `kind` with its masked CRC; returns its handle.
    fn append(file: &mut Vec<u8>, contents: &[u8], kind: u8) -> Vec<u8> {
        let offset = file.len() as u64;
        file.extend_from_slice(contents);
        let crc = crc32c::crc32c_append(crc32c::crc32c(contents), &[kind]);
        let masked = crc.rotate_right(15).wrapping_add(0xa282_ead8);
        file.push(kind);
        file.extend_from_slice(&masked.to_le_bytes());
        let mut handle = Vec::new();
        varint(&mut handle, offset);
        varint(&mut handle, contents.len() as u64);
        handle
    }

    fn table(snappy: bool) -> Vec<u8> {
        let data = block(&[(b"alpha", b"1"), (b"alpine", b"22"), (b"beta", b"333")]);
        let mut file = Vec::new();
        let handle = if snappy {
            let packed = snap::raw::Encoder::new().compress_vec(&data).unwrap();
            append(&mut file, &packed, 1)
        } else {
            append(&mut file, &data, 0)
        };
        let meta = append(&mut file, &block(&[]), 0);
        let index = append(&mut file, &block(&[(b"c", &handle)]), 0);
        let mut footer = Vec::new();
        footer.extend_from_slice(&meta);
        footer.extend_from_slice(&index);
        footer.resize(40, 0);
        footer.extend_from_slice(&MAGIC.to_le_bytes());
        file.extend_from_slice(&footer);
        file
    }

    #[test]
    fn raw_and_snappy_blocks_read_alike() {
        for snappy in [false, true] {
            let got = entries(&table(snappy)).unwrap();
            let want: Vec<Entry> = [("alpha", "1"), ("alpine", "22"), ("beta", "333")]
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect();
            assert_eq!(got, want, "snappy {snappy}");
        }
    }

    #[test]
    fn damaged_tables_are_errors() {
        let good = table(true);
        // Each byte of the Snappy data block flipped in turn: the CRC catches every one.
        for i in 0..20 {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(entries(&bad).is_err(), "byte {i}");
        }
        assert!(entries(&good[..good.len() - 1]).is_err());
        assert!(entries(&good[..40]).is_err());
        assert!(entries(b"").is_err());
    }
}
