//! A `model.safetensors` read before any weight is loaded: its header parsed and checked
//! against the file's size (every tensor where the header says, of the size its type and
//! shape make, the data ending where the file does), and the values of chosen tensors checked
//! finite.
//!
//! The format: 8 bytes, the header's length `N` (little-endian); `N` bytes of JSON mapping
//! each tensor's name to its `dtype`, `shape` and `data_offsets` (from the end of the header);
//! the tensors' bytes, back to back.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::HfError;
use crate::files::open_regular;

/// The largest header read: the safetensors format's own limit.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The element types of the format, with their sizes in bytes.
const DTYPES: &[(&str, u64)] = &[
    ("BOOL", 1),
    ("U8", 1),
    ("I8", 1),
    ("F8_E5M2", 1),
    ("F8_E4M3", 1),
    ("F8_E8M0", 1),
    ("I16", 2),
    ("U16", 2),
    ("F16", 2),
    ("BF16", 2),
    ("I32", 4),
    ("U32", 4),
    ("F32", 4),
    ("I64", 8),
    ("U64", 8),
    ("F64", 8),
];

/// One tensor of the file, as its header describes it.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    /// The element type's name (`F32`, `BF16`, ...).
    pub dtype: &'static str,
    /// The bytes of one element.
    element_bytes: u64,
    /// The shape.
    pub shape: Vec<u64>,
    /// Where its bytes start and end, from the file's start.
    start: u64,
    end: u64,
}

impl TensorEntry {
    /// Whether primer can load it as weights: a float type Burn converts to `f32`.
    pub fn is_float(&self) -> bool {
        exponent_mask(self.dtype).is_some()
    }

    /// The number of elements.
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A weights file whose header agrees with its size.
#[derive(Debug)]
pub struct WeightsFile {
    /// The file.
    pub path: PathBuf,
    /// Its tensors by name.
    pub tensors: BTreeMap<String, TensorEntry>,
}

impl WeightsFile {
    /// Reads and checks the header of `path`; reads no tensor.
    pub fn open(path: &Path) -> Result<Self, HfError> {
        let (mut file, size) = open_regular(path, "model.safetensors", u64::MAX)?;
        let mut length = [0u8; 8];
        file.read_exact(&mut length)
            .map_err(|_| malformed(path, format!("{size} bytes is shorter than a header")))?;
        let header_bytes = u64::from_le_bytes(length);
        if header_bytes > MAX_HEADER_BYTES.min(size - 8) {
            return Err(malformed(
                path,
                format!("its header claims {header_bytes} bytes, but the file holds {size}"),
            ));
        }
        let mut header = vec![0u8; header_bytes as usize];
        file.read_exact(&mut header)
            .map_err(|e| HfError::read(path, format!("{e} while reading the header")))?;
        let header: Map<String, Value> = serde_json::from_slice(&header)
            .map_err(|e| malformed(path, format!("its header is not a JSON object ({e})")))?;
        let data_start = 8 + header_bytes;
        let mut tensors = BTreeMap::new();
        for (name, value) in header.iter().filter(|(name, _)| name.as_str() != "__metadata__") {
            let entry = parse_entry(value, data_start)
                .ok_or_else(|| malformed(path, format!("tensor `{name}` is described wrongly")))?;
            tensors.insert(name.clone(), entry);
        }
        check_layout(path, &tensors, data_start, size)?;
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// Fails naming the first of `names` that holds a NaN or an infinity. Reads those tensors
    /// a piece at a time.
    pub fn check_finite<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<(), HfError> {
        let (file, _) = open_regular(&self.path, "model.safetensors", u64::MAX)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        for name in names {
            let Some(entry) = self.tensors.get(name) else {
                continue;
            };
            if !finite(&mut reader, entry)
                .map_err(|e| HfError::read(&self.path, format!("{e} while reading `{name}`")))?
            {
                return Err(HfError::read(
                    &self.path,
                    format!(
                        "weight `{name}` holds NaN or infinite values: the checkpoint is corrupt or diverged; give one with finite weights"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// An entry's `dtype`, `shape` and `data_offsets`, or `None` when one is missing or wrong.
fn parse_entry(value: &Value, data_start: u64) -> Option<TensorEntry> {
    let name = value.get("dtype")?.as_str()?;
    let &(dtype, element) = DTYPES.iter().find(|(known, _)| *known == name)?;
    let shape = value
        .get("shape")?
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect::<Option<Vec<u64>>>()?;
    let bytes = shape.iter().try_fold(element, |total, &dim| total.checked_mul(dim))?;
    let offsets = value.get("data_offsets")?.as_array()?;
    let [begin, end] = offsets.as_slice() else {
        return None;
    };
    let (begin, end) = (begin.as_u64()?, end.as_u64()?);
    (end.checked_sub(begin)? == bytes).then_some(())?;
    Some(TensorEntry {
        dtype,
        element_bytes: element,
        shape,
        start: data_start.checked_add(begin)?,
        end: data_start.checked_add(end)?,
    })
}

/// Checks that the tensors lie back to back from `data_start` to the file's end.
fn check_layout(
    path: &Path,
    tensors: &BTreeMap<String, TensorEntry>,
    data_start: u64,
    size: u64,
) -> Result<(), HfError> {
    let mut spans: Vec<(u64, u64, &str)> = tensors
        .iter()
        .map(|(name, entry)| (entry.start, entry.end, name.as_str()))
        .collect();
    spans.sort_unstable();
    let mut at = data_start;
    for (start, end, name) in spans {
        if start != at {
            return Err(malformed(
                path,
                format!("tensor `{name}` starts at byte {start}, not where the one before ends ({at})"),
            ));
        }
        at = end;
    }
    if at != size {
        return Err(malformed(
            path,
            format!("its header describes {at} bytes, but the file holds {size} (truncated or appended to)"),
        ));
    }
    Ok(())
}

/// The bits of an element of float type `dtype` that are all set in a NaN or an infinity;
/// `None` for other types.
fn exponent_mask(dtype: &str) -> Option<u64> {
    match dtype {
        "F64" => Some(0x7FF0_0000_0000_0000),
        "F32" => Some(0x7F80_0000),
        "F16" => Some(0x7C00),
        "BF16" => Some(0x7F80),
        _ => None,
    }
}

/// Whether every element of `entry` is finite (true for non-float types).
fn finite(reader: &mut BufReader<File>, entry: &TensorEntry) -> std::io::Result<bool> {
    let Some(mask) = exponent_mask(entry.dtype) else {
        return Ok(true);
    };
    let element = entry.element_bytes as usize;
    reader.seek(SeekFrom::Start(entry.start))?;
    let mut left = entry.end - entry.start;
    let mut piece = vec![0u8; (1 << 20) / element * element];
    while left > 0 {
        let length = piece.len().min(left as usize);
        reader.read_exact(&mut piece[..length])?;
        let non_finite = piece[..length].chunks_exact(element).any(|bytes| {
            let mut value = [0u8; 8];
            value[..element].copy_from_slice(bytes);
            u64::from_le_bytes(value) & mask == mask
        });
        if non_finite {
            return Ok(false);
        }
        left -= length as u64;
    }
    Ok(true)
}

fn malformed(path: &Path, what: String) -> HfError {
    HfError::read(
        path,
        format!(
            "not a valid safetensors file: {what}: save the weights again with `save_pretrained` or download them again"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `tensors` (name, dtype, shape, bytes) in the format's layout.
    fn write(dir: &Path, tensors: &[(&str, &str, Vec<u64>, Vec<u8>)]) -> PathBuf {
        let mut header = Map::new();
        let mut data = Vec::new();
        for (name, dtype, shape, bytes) in tensors {
            let begin = data.len();
            data.extend_from_slice(bytes);
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()]}),
            );
        }
        let header = serde_json::to_vec(&header).unwrap();
        let path = dir.join("model.safetensors");
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend(header);
        file.extend(data);
        std::fs::write(&path, file).unwrap();
        path
    }

    fn f32s(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn headers_must_agree_with_the_file_and_values_must_be_finite() {
        let dir = tempfile::tempdir().unwrap();
        let good = [
            ("a", "F32", vec![2, 2], f32s(&[1.0, -2.0, 0.0, 1e30])),
            ("b", "BF16", vec![2], vec![0x80, 0x7F, 0x00, 0x3F]),
            ("c", "I64", vec![1], (-1i64).to_le_bytes().to_vec()),
        ];
        let path = write(dir.path(), &good);
        let file = WeightsFile::open(&path).unwrap();
        assert_eq!(file.tensors["a"].shape, [2, 2]);
        // `b` holds bfloat16's infinity (0x7F80), `c` an integer whose bits would be a NaN's.
        file.check_finite(["a", "c"]).unwrap();
        let err = file.check_finite(["a", "b"]).unwrap_err().to_string();
        assert!(err.contains("weight `b` holds NaN or infinite values"), "{err}");
        let nan = write(dir.path(), &[("w", "F32", vec![3], f32s(&[0.0, f32::NAN, 1.0]))]);
        assert!(WeightsFile::open(&nan).unwrap().check_finite(["w"]).is_err());

        // The header and the size disagree: a tensor cut short, the file truncated or padded.
        let short = write(dir.path(), &[("a", "F32", vec![3], f32s(&[1.0, 2.0]))]);
        let err = WeightsFile::open(&short).unwrap_err().to_string();
        assert!(err.contains("tensor `a` is described wrongly"), "{err}");
        let path = write(dir.path(), &good);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let err = WeightsFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        std::fs::write(&path, &bytes[..4]).unwrap();
        let err = WeightsFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("shorter than a header"), "{err}");
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend(&bytes[8..]);
        std::fs::write(&path, huge).unwrap();
        let err = WeightsFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("its header claims"), "{err}");
    }
}
