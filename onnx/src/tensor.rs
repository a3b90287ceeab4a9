//! Tensor initialisers: building them from Rust slices and reading them back.

use crate::OnnxError;
use crate::proto::TensorProto;

/// ONNX `TensorProto.DataType` values used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum DataType {
    Float = 1,
    Uint8 = 2,
    Int8 = 3,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Double = 11,
}

/// Element types that can be stored as raw little-endian tensor data.
pub trait RawElement: Copy {
    const DATA_TYPE: DataType;
    fn extend_le(self, out: &mut Vec<u8>);
}

macro_rules! raw_element {
    ($t:ty, $dt:expr) => {
        impl RawElement for $t {
            const DATA_TYPE: DataType = $dt;
            fn extend_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}

raw_element!(f32, DataType::Float);
raw_element!(f64, DataType::Double);
raw_element!(i64, DataType::Int64);
raw_element!(u8, DataType::Uint8);
raw_element!(i8, DataType::Int8);
raw_element!(i32, DataType::Int32);

/// A tensor initialiser stored as raw little-endian bytes (compact for large weights).
pub fn tensor<T: RawElement>(name: &str, dims: &[i64], data: &[T]) -> TensorProto {
    assert_eq!(dims.iter().product::<i64>() as usize, data.len(), "tensor {name}: dims do not match data");
    let mut raw_data = Vec::with_capacity(std::mem::size_of_val(data));
    for &v in data {
        v.extend_le(&mut raw_data);
    }
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: T::DATA_TYPE as i32,
        raw_data: raw_data.into(),
        ..Default::default()
    }
}

/// A float32 tensor.
pub fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    tensor(name, dims, data)
}

/// A float64 tensor.
pub fn tensor_f64(name: &str, dims: &[i64], data: &[f64]) -> TensorProto {
    tensor(name, dims, data)
}

/// An int64 tensor.
pub fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    tensor(name, dims, data)
}

/// A uint8 tensor.
pub fn tensor_u8(name: &str, dims: &[i64], data: &[u8]) -> TensorProto {
    tensor(name, dims, data)
}

impl TensorProto {
    /// Number of elements the dims describe.
    pub fn element_count(&self) -> usize {
        self.dims.iter().product::<i64>() as usize
    }

    /// The values of a float32 tensor, from `raw_data` or `float_data`.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>, OnnxError> {
        let err = |message: String| OnnxError::Tensor { name: self.name.clone(), message };
        if self.data_type != DataType::Float as i32 {
            return Err(err(format!("data type {} is not float32", self.data_type)));
        }
        if self.data_location == 1 {
            return Err(err("stored in an external data file, which is not supported".into()));
        }
        let values: Vec<f32> = if !self.raw_data.is_empty() {
            if !self.raw_data.len().is_multiple_of(4) {
                return Err(err(format!("raw data of {} bytes is not whole float32s", self.raw_data.len())));
            }
            self.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        } else {
            self.float_data.clone()
        };
        if values.len() != self.element_count() {
            return Err(err(format!(
                "holds {} values but its dims {:?} need {}",
                values.len(),
                self.dims,
                self.element_count()
            )));
        }
        Ok(values)
    }
}
