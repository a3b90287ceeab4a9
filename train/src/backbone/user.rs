//! A user's own ONNX backbone (`model.backbone: path.onnx`): its input layout, read from its
//! input shape when `model.backbone_layout` is `auto`.

use std::path::Path;

use cxr_config::TensorLayout;
use cxr_onnx::ModelProto;
use cxr_onnx::proto::{tensor_shape_proto::dimension, type_proto};

use super::BackboneError;

pub(crate) fn input_dims(model: &ModelProto) -> Vec<Option<i64>> {
    let graph = model.graph.as_ref();
    let init: Vec<&str> = graph.map(|g| g.initializer.iter().map(|t| t.name.as_str()).collect()).unwrap_or_default();
    let input = graph.and_then(|g| g.input.iter().find(|i| !init.contains(&i.name.as_str())));
    let Some(type_proto::Value::TensorType(t)) = input.and_then(|i| i.r#type.as_ref()).and_then(|t| t.value.clone())
    else {
        return Vec::new();
    };
    t.shape
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(dimension::Value::DimValue(v)) => Some(v),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn detect_layout(model: &ModelProto, path: &Path) -> Result<TensorLayout, BackboneError> {
    let dims = input_dims(model);
    match dims.as_slice() {
        [_, Some(3), _, _] => Ok(TensorLayout::Nchw),
        [_, _, _, Some(3)] => Ok(TensorLayout::Nhwc),
        _ => Err(BackboneError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "cannot tell its input layout from shape {dims:?}; set model.backbone_layout to nhwc or nchw"
            ),
        }),
    }
}
