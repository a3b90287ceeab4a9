//! Running an ONNX Runtime session with named inputs and copying named outputs out.

use anyhow::{Context, anyhow};
use cxr_engine::ort::session::Session;
use cxr_engine::ort::value::{DynValue, Tensor};

/// One input tensor: shape and data.
#[derive(Debug, Clone)]
pub enum Input {
    F32(Vec<usize>, Vec<f32>),
    F64(Vec<usize>, Vec<f64>),
    I64(Vec<usize>, Vec<i64>),
    U8(Vec<usize>, Vec<u8>),
}

impl Input {
    fn into_value(self) -> anyhow::Result<DynValue> {
        Ok(match self {
            Input::F32(shape, data) => Tensor::from_array((shape, data))?.into_dyn(),
            Input::F64(shape, data) => Tensor::from_array((shape, data))?.into_dyn(),
            Input::I64(shape, data) => Tensor::from_array((shape, data))?.into_dyn(),
            Input::U8(shape, data) => Tensor::from_array((shape, data))?.into_dyn(),
        })
    }
}

/// Runs `session` and returns the float32 outputs named in `wanted`, in that order.
pub fn run(session: &mut Session, inputs: Vec<(String, Input)>, wanted: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
    run_typed(session, inputs, wanted)
}

/// Like [`run`], for outputs of element type `T` (float64 in gradient checks).
pub fn run_typed<T: cxr_engine::ort::value::PrimitiveTensorElementType + Copy + std::fmt::Debug>(
    session: &mut Session,
    inputs: Vec<(String, Input)>,
    wanted: &[&str],
) -> anyhow::Result<Vec<Vec<T>>> {
    let values: Vec<(String, DynValue)> =
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
