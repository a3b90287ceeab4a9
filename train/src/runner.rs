//! Running an ONNX Runtime session with named inputs and copying named outputs out.

use anyhow::{Context, anyhow};
use cxr_engine::ort::session::{Session, SessionInputValue};
use cxr_engine::ort::value::{Tensor, TensorRef};

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
    fn into_value(self) -> anyhow::Result<SessionInputValue<'a>> {
        Ok(match self {
            Input::F32(shape, data) => Tensor::from_array((shape, data))?.into(),
            Input::F32View(shape, data) => TensorRef::from_array_view((shape, data))?.into(),
            Input::F64(shape, data) => Tensor::from_array((shape, data))?.into(),
            Input::I64(shape, data) => Tensor::from_array((shape, data))?.into(),
            Input::U8(shape, data) => Tensor::from_array((shape, data))?.into(),
        })
    }
}

/// Runs `session` and returns the float32 outputs named in `wanted`, in that order.
pub fn run(session: &mut Session, inputs: Vec<(String, Input<'_>)>, wanted: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
    run_typed(session, inputs, wanted)
}

/// Like [`run`], for outputs of element type `T` (float64 in gradient checks).
pub fn run_typed<T: cxr_engine::ort::value::PrimitiveTensorElementType + Copy + std::fmt::Debug>(
    session: &mut Session,
    inputs: Vec<(String, Input<'_>)>,
    wanted: &[&str],
) -> anyhow::Result<Vec<Vec<T>>> {
    let values: Vec<(String, SessionInputValue<'_>)> =
        inputs.into_iter().map(|(name, input)| Ok((name, input.into_value()?))).collect::<anyhow::Result<_>>()?;
    let outputs = session.run(values).context("ONNX Runtime run failed")?;
    wanted
        .iter()
        .map(|name| {
            let value = outputs.get(*name).ok_or_else(|| anyhow!("the model has no output {name:?}"))?;
            let (_, data) = value.try_extract_tensor::<T>().with_context(|| format!("output {name:?}"))?;
            Ok(data.to_vec())
        })
        .collect()
}
