//! int8 models for the CPU provider on CPUs with AMX: their symmetric convolution weights
//! restated so that ONNX Runtime runs them on its AMX GEMM (see
//! [`cxr_onnx::offset_symmetric_conv_weights`]; the outputs are the same).

use std::borrow::Cow;
use std::path::Path;
use std::sync::OnceLock;

/// Whether the CPU has AMX int8 tiles and the kernel supports them: Linux lists `amx_int8`
/// and `amx_tile` in `/proc/cpuinfo` then. (A sandbox may still refuse a process the tiles;
/// ONNX Runtime then runs the restated weights on its VNNI GEMM, with the same outputs, about
/// 0.8x as fast: `runtime.amx: false` is the remedy.)
pub(crate) fn amx_int8() -> bool {
    static AMX: OnceLock<bool> = OnceLock::new();
    *AMX.get_or_init(|| {
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags = flags.lines().find(|l| l.starts_with("flags")).unwrap_or_default();
        let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
        has("amx_int8") && has("amx_tile")
    })
}

/// Whether `model` (encoded) is an int8 QDQ model: every one names the operator. (A float
/// model whose names happen to hold the word is taken for one, at no harm: it is decoded,
/// and found to have no int8 weights, or run on lanes.)
pub(crate) fn quantized(model: &[u8]) -> bool {
    memchr::memmem::find(model, b"DequantizeLinear").is_some()
}

/// The bytes to give the CPU provider: `model` itself, or where `allowed` (`runtime.amx`)
/// and the CPU has AMX, `model` restated by [`restate`].
pub(crate) fn for_cpu<'a>(model: &'a [u8], origin: &Path, allowed: bool) -> Cow<'a, [u8]> {
    if allowed && amx_int8() { restate(model, origin) } else { Cow::Borrowed(model) }
}

/// `model` with its symmetric int8 convolution weights restated, or itself when it has none.
/// A model that does not decode is passed on as it is, for ONNX Runtime to say what is wrong.
fn restate<'a>(model: &'a [u8], origin: &Path) -> Cow<'a, [u8]> {
    // A float model is not decoded at all.
    if !quantized(model) {
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
    fn int8_models_are_restated_and_others_passed_on() {
        let origin = Path::new("m");
        let (int8, float) = (model(true), model(false));
        let Cow::Owned(restated) = restate(&int8, origin) else { panic!("the int8 model is restated") };
        let proto = cxr_onnx::decode_model(&restated, origin).unwrap();
        let zero = proto.graph.unwrap().initializer.into_iter().find(|t| t.name == "w.zero").unwrap();
        assert_eq!(zero.raw_data[..], [0xFF]);
        assert!(matches!(restate(&float, origin), Cow::Borrowed(_)));
        assert!(matches!(restate(b"not a model DequantizeLinear", origin), Cow::Borrowed(_)));
    }

    #[test]
    fn the_cpu_gets_the_restated_model_only_with_amx_and_when_allowed() {
        let (int8, origin) = (model(true), Path::new("m"));
        assert_eq!(matches!(for_cpu(&int8, origin, true), Cow::Owned(_)), amx_int8());
        assert!(matches!(for_cpu(&int8, origin, false), Cow::Borrowed(_)));
    }
}
