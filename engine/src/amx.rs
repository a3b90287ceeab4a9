//! int8 models for the CPU provider on CPUs with AMX: their symmetric convolution weights
//! restated so that ONNX Runtime runs them on its AMX GEMM (see
//! [`cxr_onnx::offset_symmetric_conv_weights`]; the outputs are the same).

use std::borrow::Cow;
use std::path::Path;
use std::sync::OnceLock;

/// Whether the CPU has AMX int8 tiles and the kernel lets programs use them: Linux lists
/// `amx_int8` and `amx_tile` in `/proc/cpuinfo` only then.
pub fn amx_int8() -> bool {
    static AMX: OnceLock<bool> = OnceLock::new();
    *AMX.get_or_init(|| {
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags = flags.lines().find(|l| l.starts_with("flags")).unwrap_or_default();
        let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
        has("amx_int8") && has("amx_tile")
    })
}

/// The bytes to give the CPU provider: `model` itself, or where `allowed` (`runtime.amx`)
/// and the CPU has AMX, `model` with its symmetric int8 convolution weights restated. A model that does not decode is passed on
/// as it is, for ONNX Runtime to say what is wrong with it.
pub(crate) fn for_cpu<'a>(model: &'a [u8], origin: &Path, allowed: bool) -> Cow<'a, [u8]> {
    // Every int8 QDQ model names the operator; a float model is not decoded at all.
    if !allowed || !amx_int8() || memchr::memmem::find(model, b"DequantizeLinear").is_none() {
        return Cow::Borrowed(model);
    }
    let Ok(mut proto) = cxr_onnx::decode_model(model, origin) else { return Cow::Borrowed(model) };
    match cxr_onnx::offset_symmetric_conv_weights(&mut proto) {
        0 => Cow::Borrowed(model),
        restated => {
            tracing::debug!(model = %origin.display(), restated, "int8 convolutions run on ONNX Runtime's AMX GEMM");
            Cow::Owned(cxr_onnx::encode_model(&proto))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxr_onnx::{Attr, DataType, Dim, GraphBuilder, tensor};

    fn model(int8: bool) -> Vec<u8> {
        let mut g = GraphBuilder::new("m");
        let x = g.input("x", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(2)]);
        let w = if int8 {
            let q = g.initializer(tensor("w", &[1, 1, 1, 1], &[3i8]));
            let s = g.initializer(tensor("w.scale", &[1], &[0.5f32]));
            let z = g.initializer(tensor("w.zero", &[1], &[0i8]));
            g.op("DequantizeLinear", &[&q, &s, &z], &[("axis", Attr::Int(0))])
        } else {
            g.initializer(tensor("w", &[1, 1, 1, 1], &[1.5f32]))
        };
        let y = g.op("Conv", &[&x, &w], &[]);
        g.output(&y, "y", DataType::Float, &[]);
        cxr_onnx::encode_model(&g.into_model("test"))
    }

    #[test]
    fn int8_models_are_restated_only_with_amx_and_when_allowed() {
        let origin = Path::new("m");
        let (int8, float) = (model(true), model(false));
        assert_eq!(matches!(for_cpu(&int8, origin, true), Cow::Owned(_)), amx_int8());
        assert!(matches!(for_cpu(&int8, origin, false), Cow::Borrowed(_)));
        assert!(matches!(for_cpu(&float, origin, true), Cow::Borrowed(_)));
        assert!(matches!(for_cpu(b"not a model DequantizeLinear", origin, true), Cow::Borrowed(_)));
    }
}
