//! NumPy `.npy` (format 1.0) tensors: streamed writing and chunked reading.
//!
//! The writer reserves a fixed-size header, streams rows, then rewrites the
//! header with the final row count, so peak memory does not grow with the data.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array, ArrayD, IxDyn};

use crate::StoreError;
use crate::atomic::AtomicFile;

const MAGIC: &[u8] = b"\x93NUMPY";
/// Header size reserved by the streaming writer (magic + version + length + dict), 64-aligned.
const HEADER_LEN: usize = 128;

/// Element types stored in this project's tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    U8,
    I64,
    F32,
}

impl DType {
    fn descr(self) -> &'static str {
        match self {
            DType::U8 => "|u1",
            DType::I64 => "<i8",
            DType::F32 => "<f4",
        }
    }

    fn from_descr(d: &str) -> Option<DType> {
        match d {
            "|u1" | "<u1" => Some(DType::U8),
            "<i8" => Some(DType::I64),
            "<f4" => Some(DType::F32),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::I64 => 8,
            DType::F32 => 4,
        }
    }
}

fn header_bytes(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let dims = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let dict = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}", dtype.descr());
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    let body_len = HEADER_LEN - 10;
    assert!(dict.len() < body_len, "npy header too long for shape {shape:?}");
    out.extend_from_slice(&(body_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(HEADER_LEN - 1, b' ');
    out.push(b'\n');
    out
}

/// Streams rows of shape `row_shape` into an `.npy` file, committed atomically by [`NpyWriter::finish`].
#[derive(Debug)]
pub struct NpyWriter {
    file: AtomicFile,
    dtype: DType,
    row_shape: Vec<usize>,
    row_bytes: usize,
    rows: usize,
}

impl NpyWriter {
    pub fn create(path: &Path, dtype: DType, row_shape: &[usize]) -> Result<NpyWriter, StoreError> {
        let mut file = AtomicFile::create(path)?;
        let mut shape = vec![0];
        shape.extend_from_slice(row_shape);
        file.writer().write_all(&header_bytes(dtype, &shape)).map_err(|e| StoreError::io(path, e))?;
        Ok(NpyWriter {
            file,
            dtype,
            row_shape: row_shape.to_vec(),
            row_bytes: row_shape.iter().product::<usize>() * dtype.size(),
            rows: 0,
        })
    }

    /// Appends whole rows given as little-endian bytes.
    pub fn write_rows_bytes(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if self.row_bytes == 0 || !bytes.len().is_multiple_of(self.row_bytes) {
            return Err(StoreError::Format {
                path: self.file.final_path().to_path_buf(),
                message: format!("{} bytes are not whole rows of {} bytes", bytes.len(), self.row_bytes),
            });
        }
        let path = self.file.final_path().to_path_buf();
        self.file.writer().write_all(bytes).map_err(|e| StoreError::io(&path, e))?;
        self.rows += bytes.len() / self.row_bytes;
        Ok(())
    }

    /// Appends float32 rows.
    pub fn write_f32(&mut self, values: &[f32]) -> Result<(), StoreError> {
        assert_eq!(self.dtype, DType::F32);
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write_rows_bytes(&bytes)
    }

    /// Appends int64 rows.
    pub fn write_i64(&mut self, values: &[i64]) -> Result<(), StoreError> {
        assert_eq!(self.dtype, DType::I64);
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write_rows_bytes(&bytes)
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Writes the final header and renames the file into place.
    pub fn finish(mut self) -> Result<PathBuf, StoreError> {
        let mut shape = vec![self.rows];
        shape.extend_from_slice(&self.row_shape);
        let header = header_bytes(self.dtype, &shape);
        self.file.overwrite_at(0, &header)?;
        self.file.commit()
    }
}

/// Writes a whole array as `.npy`, atomically.
pub fn write_array_f32(path: &Path, array: &ArrayD<f32>) -> Result<(), StoreError> {
    let shape = array.shape();
    let mut w = NpyWriter::create(path, DType::F32, &shape[1..])?;
    let data: Vec<f32> = array.iter().copied().collect();
    w.write_f32(&data)?;
    w.finish()?;
    Ok(())
}

/// Writes int64 values as a 1-D `.npy`, atomically.
pub fn write_i64(path: &Path, values: &[i64]) -> Result<(), StoreError> {
    let mut w = NpyWriter::create(path, DType::I64, &[])?;
    w.write_i64(values)?;
    w.finish()?;
    Ok(())
}

/// Reads an `.npy` file row by row without loading all of it.
#[derive(Debug)]
pub struct NpyReader {
    path: PathBuf,
    reader: BufReader<File>,
    dtype: DType,
    shape: Vec<usize>,
    data_offset: u64,
}

impl NpyReader {
    pub fn open(path: &Path) -> Result<NpyReader, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let bad = |message: &str| StoreError::Format { path: path.to_path_buf(), message: message.to_string() };
        let mut pre = [0u8; 10];
        reader.read_exact(&mut pre).map_err(|_| bad("too short to be an .npy file"))?;
        if &pre[..6] != MAGIC {
            return Err(bad("not an .npy file (bad magic)"));
        }
        let (header_len, prefix) = match pre[6] {
            1 => (u16::from_le_bytes([pre[8], pre[9]]) as usize, 10),
            2 | 3 => {
                let mut more = [0u8; 2];
                reader.read_exact(&mut more).map_err(|_| bad("truncated header"))?;
                (u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize, 12)
            }
            v => return Err(bad(&format!("unsupported .npy version {v}"))),
        };
        let mut header = vec![0u8; header_len];
        reader.read_exact(&mut header).map_err(|_| bad("truncated header"))?;
        let header = String::from_utf8_lossy(&header);
        let descr = dict_value(&header, "descr").ok_or_else(|| bad("header has no descr"))?;
        let descr = descr.trim_matches(|c| c == '\'' || c == '"');
        let dtype = DType::from_descr(descr).ok_or_else(|| bad(&format!("unsupported dtype {descr}")))?;
        if dict_value(&header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
            return Err(bad("Fortran-order arrays are not supported"));
        }
        let shape_text = dict_value(&header, "shape").ok_or_else(|| bad("header has no shape"))?;
        let shape: Vec<usize> = shape_text
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad(&format!("bad shape {shape_text}")))?;
        let data_offset = (prefix + header_len) as u64;
        let expected = data_offset + (shape.iter().product::<usize>() * dtype.size()) as u64;
        let actual = std::fs::metadata(path).map_err(|e| StoreError::io(path, e))?.len();
        if actual != expected {
            return Err(bad(&format!(
                "file is {actual} bytes but its header {shape:?} needs {expected}: truncated or corrupt"
            )));
        }
        Ok(NpyReader { path: path.to_path_buf(), reader, dtype, shape, data_offset })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Full shape, rows first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    fn row_bytes(&self) -> usize {
        self.shape[1..].iter().product::<usize>() * self.dtype.size()
    }

    /// Reads rows `start..start+count` as raw bytes.
    pub fn read_rows_bytes(&mut self, start: usize, count: usize) -> Result<Vec<u8>, StoreError> {
        let row = self.row_bytes();
        let count = count.min(self.rows().saturating_sub(start));
        let mut buf = vec![0u8; row * count];
        self.reader
            .seek(SeekFrom::Start(self.data_offset + (start * row) as u64))
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.reader.read_exact(&mut buf).map_err(|e| StoreError::io(&self.path, e))?;
        Ok(buf)
    }

    /// Reads rows `start..start+count` as an array of the stored element type `T`.
    pub fn read_rows<T: Element>(&mut self, start: usize, count: usize) -> Result<ArrayD<T>, StoreError> {
        if T::DTYPE != self.dtype {
            return Err(StoreError::Format {
                path: self.path.clone(),
                message: format!("holds {:?}, not {:?}", self.dtype, T::DTYPE),
            });
        }
        let bytes = self.read_rows_bytes(start, count)?;
        let n = bytes.len() / self.row_bytes().max(1);
        let mut shape = vec![n];
        shape.extend_from_slice(&self.shape[1..]);
        let values: Vec<T> = bytes.chunks_exact(T::DTYPE.size()).map(T::from_le).collect();
        Ok(Array::from_shape_vec(IxDyn(&shape), values).expect("sizes match"))
    }

    /// Reads the whole array.
    pub fn read_all<T: Element>(&mut self) -> Result<ArrayD<T>, StoreError> {
        let rows = self.rows();
        self.read_rows(0, rows)
    }
}

/// Element types `.npy` files hold here.
pub trait Element: Copy {
    const DTYPE: DType;
    fn from_le(bytes: &[u8]) -> Self;
}

impl Element for u8 {
    const DTYPE: DType = DType::U8;
    fn from_le(b: &[u8]) -> Self {
        b[0]
    }
}

impl Element for i64 {
    const DTYPE: DType = DType::I64;
    fn from_le(b: &[u8]) -> Self {
        i64::from_le_bytes(b.try_into().expect("8 bytes"))
    }
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes(b.try_into().expect("4 bytes"))
    }
}

/// Reads a whole `.npy` file.
pub fn read<T: Element>(path: &Path) -> Result<ArrayD<T>, StoreError> {
    NpyReader::open(path)?.read_all()
}

fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find(',').unwrap_or(rest.len()) };
    Some(rest[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_u8_rows_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.npy");
        let mut w = NpyWriter::create(&path, DType::U8, &[2, 3, 3]).unwrap();
        assert!(!path.exists(), "not visible before finish");
        let row: Vec<u8> = (0..18).collect();
        w.write_rows_bytes(&row).unwrap();
        w.write_rows_bytes(&row).unwrap();
        w.finish().unwrap();
        let mut r = NpyReader::open(&path).unwrap();
        assert_eq!(r.shape(), &[2, 2, 3, 3]);
        let a = r.read_all::<u8>().unwrap();
        assert_eq!(a[[1, 1, 2, 2]], 17);
        assert_eq!(std::fs::metadata(&path).unwrap().len() % 64, (128 + 36) % 64);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        {
            let mut w = NpyWriter::create(&path, DType::I64, &[]).unwrap();
            w.write_i64(&[1, 2, 3]).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn i64_and_f32_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.npy");
        write_i64(&p, &[0, 1, -5]).unwrap();
        assert_eq!(read::<i64>(&p).unwrap().into_raw_vec_and_offset().0, vec![0, 1, -5]);
        let f = dir.path().join("f.npy");
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.5f32, -2.0, 0.0, 3.25]).unwrap();
        write_array_f32(&f, &a).unwrap();
        assert_eq!(read::<f32>(&f).unwrap(), a);
        let e = read::<u8>(&f).unwrap_err().to_string();
        assert!(e.contains("holds F32"), "{e}");
    }

    #[test]
    fn truncated_file_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.npy");
        write_i64(&p, &[0, 1, 2, 3]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let e = NpyReader::open(&p).unwrap_err().to_string();
        assert!(e.contains("truncated or corrupt"), "{e}");
    }

    #[test]
    fn header_is_what_numpy_writes() {
        let h = header_bytes(DType::U8, &[5, 50, 50, 3]);
        assert_eq!(h.len(), 128);
        let text = String::from_utf8_lossy(&h[10..]);
        assert!(text.starts_with("{'descr': '|u1', 'fortran_order': False, 'shape': (5, 50, 50, 3), }"));
        assert!(text.ends_with('\n'));
        let h = header_bytes(DType::I64, &[7]);
        assert!(String::from_utf8_lossy(&h).contains("'shape': (7,)"));
    }
}
