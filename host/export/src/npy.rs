//! Minimal `.npy` (NumPy format 1.0) reading and writing of little-endian f32 arrays, so
//! Python tools (scripts/onnx_check.py) get exactly the tensors Rust preprocessed.

use crate::ExportError;
use crate::runtime::F32Tensor;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Serializes a tensor as `.npy` bytes (`<f4`, C order).
pub fn to_npy(t: &F32Tensor) -> Vec<u8> {
    let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * t.data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in &t.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Parses `.npy` bytes written by [`to_npy`] or NumPy (`<f4`, C order, format 1.x).
pub fn from_npy(bytes: &[u8]) -> Result<F32Tensor, ExportError> {
    let bad = |m: &str| ExportError::Shape(format!("not a little-endian f32 .npy file: {m}"));
    if bytes.len() < 10 || &bytes[..6] != MAGIC || bytes[6] != 1 {
        return Err(bad("bad magic or version"));
    }
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(
        bytes
            .get(10..10 + hlen)
            .ok_or_else(|| bad("truncated header"))?,
    )
    .map_err(|_| bad("header is not UTF-8"))?;
    if !header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") {
        return Err(bad("only '<f4' C-order arrays are supported"));
    }
    let shape_txt = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("bad shape")))
        .collect::<Result<Vec<_>, _>>()?;
    let data: Vec<f32> = bytes[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    F32Tensor::new(shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_alignment() {
        let t = F32Tensor::new(vec![1, 2, 3], vec![0.5, -1.0, 2.0, 3.25, 1e-8, f32::MAX]).unwrap();
        let b = to_npy(&t);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0, "data is 64-byte aligned");
        assert_eq!(b[10 + hlen - 1], b'\n');
        assert!(
            std::str::from_utf8(&b[10..10 + hlen])
                .unwrap()
                .contains("'shape': (1, 2, 3)")
        );
        assert_eq!(from_npy(&b).unwrap(), t);
        let v = F32Tensor::new(vec![4], vec![1.0; 4]).unwrap();
        assert!(
            to_npy(&v).windows(13).any(|w| w == b"'shape': (4,)"),
            "1-D tuple syntax"
        );
        assert_eq!(from_npy(&to_npy(&v)).unwrap(), v);
        assert!(from_npy(b"garbage").is_err());
    }
}
