//! The keys under which TensorFlow stores a slice of a partitioned variable
//! (`checkpoint::EncodeTensorNameSlice`, in `OrderedCode`'s order-preserving encoding).

use super::proto::TensorSliceProto;

/// `OrderedCode::WriteNumIncreasing`: a length byte, then the value big-endian without leading
/// zero bytes.
fn num_increasing(out: &mut Vec<u8>, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.push((8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// `OrderedCode::WriteString`: 0x00 and 0xff escaped, then the terminator 0x00 0x01.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            0x00 => out.extend_from_slice(&[0x00, 0xff]),
            0xff => out.extend_from_slice(&[0xff, 0x00]),
            b => out.push(b),
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// `OrderedCode::WriteSignedNumIncreasing`: the length in the first byte's leading bits, then the
/// two's-complement value big-endian.
fn signed_increasing(out: &mut Vec<u8>, v: i64) {
    const HEADER: [[u8; 2]; 11] = [
        [0, 0],
        [0x80, 0],
        [0xc0, 0],
        [0xe0, 0],
        [0xf0, 0],
        [0xf8, 0],
        [0xfc, 0],
        [0xfe, 0],
        [0xff, 0],
        [0xff, 0x80],
        [0xff, 0xc0],
    ];
    let x = if v < 0 { !(v as u64) } else { v as u64 };
    if x < 64 {
        out.push(HEADER[1][0] ^ (v as u8));
        return;
    }
    let bits = 64 - x.leading_zeros() as usize;
    let len = (bits + 7) / 7;
    let sign = if v < 0 { 0xff } else { 0x00 };
    let mut buf = [sign; 10];
    buf[2..].copy_from_slice(&v.to_be_bytes());
    let begin = 10 - len;
    buf[begin] ^= HEADER[len][0];
    buf[begin + 1] ^= HEADER[len][1];
    out.extend_from_slice(&buf[begin..]);
}

/// The key of slice `slice` of variable `name` (a missing length is the whole dimension, -1).
pub fn slice_key(name: &str, slice: &TensorSliceProto) -> Vec<u8> {
    let mut out = Vec::new();
    num_increasing(&mut out, 0);
    string(&mut out, name.as_bytes());
    num_increasing(&mut out, slice.extent.len() as u64);
    for e in &slice.extent {
        signed_increasing(&mut out, e.start);
        signed_increasing(&mut out, e.length.unwrap_or(-1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_follow_ordered_code() {
        let enc = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut v = Vec::new();
            f(&mut v);
            v
        };
        assert_eq!(enc(&|o| num_increasing(o, 0)), [0]);
        assert_eq!(enc(&|o| num_increasing(o, 2)), [1, 2]);
        assert_eq!(enc(&|o| num_increasing(o, 0x1234)), [2, 0x12, 0x34]);
        assert_eq!(
            enc(&|o| string(o, b"a\x00\xff")),
            [b'a', 0, 0xff, 0xff, 0, 0, 1]
        );
        assert_eq!(enc(&|o| signed_increasing(o, 0)), [0x80]);
        assert_eq!(enc(&|o| signed_increasing(o, 4)), [0x84]);
        assert_eq!(enc(&|o| signed_increasing(o, -1)), [0x7f]);
        // 64 needs two bytes: header 0xc0 over 0x0040.
        assert_eq!(enc(&|o| signed_increasing(o, 64)), [0xc0, 0x40]);
        assert_eq!(enc(&|o| signed_increasing(o, -65)), [0x3f, 0xbf]);
        // Order is preserved across lengths and signs.
        let mut keys: Vec<(i64, Vec<u8>)> = [-70_000i64, -65, -1, 0, 5, 63, 64, 1000, 1 << 40]
            .iter()
            .map(|&v| (v, enc(&|o| signed_increasing(o, v))))
            .collect();
        keys.sort_by(|a, b| a.1.cmp(&b.1));
        let sorted: Vec<i64> = keys.iter().map(|k| k.0).collect();
        assert_eq!(sorted, [-70_000, -65, -1, 0, 5, 63, 64, 1000, 1 << 40]);
    }
}
