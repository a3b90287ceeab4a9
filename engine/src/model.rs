//! A model opened on the engine, and the one way to run it: named inputs in, named
//! outputs copied out. No ONNX Runtime type crosses this crate's boundary.

use std::path::PathBuf;

use ort::session::{Session, SessionInputValue};
use ort::value::{PrimitiveTensorElementType, Tensor, TensorRef};

use crate::EngineError;

/// One input tensor: shape and data, owned or borrowed.
#[derive(Debug, Clone)]
pub enum Input<'a> {
    F32(Vec<usize>, Vec<f32>),
    /// Borrowed, so that large parameters reach ONNX Runtime without a copy.
    F32View(Vec<usize>, &'a [f32]),
    F64(Vec<usize>, Vec<f64>),
    I64(Vec<usize>, Vec<i64>),
    U8(Vec<usize>, Vec<u8>),
}

impl<'a> Input<'a> {
    fn into_value(self) -> Result<SessionInputValue<'a>, ort::Error> {
        Ok(match self {
            Input::F32(shape, data) => Tensor::from_array((shape, data))?.into(),
            Input::F32View(shape, data) => TensorRef::from_array_view((shape, data))?.into(),
            Input::F64(shape, data) => Tensor::from_array((shape, data))?.into(),
            Input::I64(shape, data) => Tensor::from_array((shape, data))?.into(),
            Input::U8(shape, data) => Tensor::from_array((shape, data))?.into(),
        })
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// Element types a model's outputs can be read as: `f32`, and `f64` (gradient checks).
pub trait Element: sealed::Sealed + PrimitiveTensorElementType + Copy + std::fmt::Debug {}
impl Element for f32 {}
impl Element for f64 {}

/// An output's shape and its elements, row-major.
pub type Shaped<T> = (Vec<usize>, Vec<T>);

/// An ONNX Runtime session and the name of the model it runs (for errors).
pub struct Model {
    session: Session,
    origin: PathBuf,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("origin", &self.origin).finish()
    }
}

impl Model {
    pub(crate) fn new(session: Session, origin: PathBuf) -> Model {
        Model { session, origin }
    }

    /// Runs the model and returns the float32 outputs named in `wanted`, in that order.
    pub fn run(&mut self, inputs: Vec<(String, Input<'_>)>, wanted: &[&str]) -> Result<Vec<Vec<f32>>, EngineError> {
        self.run_typed(inputs, wanted)
    }

    /// Like [`Model::run`], with each output's shape.
    pub fn run_shaped(
        &mut self,
        inputs: Vec<(String, Input<'_>)>,
        wanted: &[&str],
    ) -> Result<Vec<Shaped<f32>>, EngineError> {
        self.run_outputs(inputs, wanted)
    }

    /// Like [`Model::run`], for outputs of element type `T`.
    pub fn run_typed<T: Element>(
        &mut self,
        inputs: Vec<(String, Input<'_>)>,
        wanted: &[&str],
    ) -> Result<Vec<Vec<T>>, EngineError> {
        Ok(self.run_outputs(inputs, wanted)?.into_iter().map(|(_, data)| data).collect())
    }

    fn run_outputs<T: Element>(
        &mut self,
        inputs: Vec<(String, Input<'_>)>,
        wanted: &[&str],
    ) -> Result<Vec<Shaped<T>>, EngineError> {
        let failed = |message: String| EngineError::Run { path: self.origin.clone(), message };
        let values: Vec<(String, SessionInputValue<'_>)> = inputs
            .into_iter()
            .map(|(name, input)| Ok((name, input.into_value()?)))
            .collect::<Result<_, ort::Error>>()
            .map_err(|e| failed(e.to_string()))?;
        let outputs = self.session.run(values).map_err(|e| failed(e.to_string()))?;
        wanted
            .iter()
            .map(|name| {
                let value = outputs.get(*name).ok_or_else(|| failed(format!("the model has no output {name:?}")))?;
                let (shape, data) =
                    value.try_extract_tensor::<T>().map_err(|e| failed(format!("output {name:?}: {e}")))?;
                Ok((shape.iter().map(|&d| d.max(0) as usize).collect(), data.to_vec()))
            })
            .collect()
    }
}
