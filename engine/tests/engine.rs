//! The engine really loads ONNX Runtime and runs a model built by `cxr-onnx`;
//! CUDA on a machine without it is an error, never a CPU fallback.

use std::path::{Path, PathBuf};

use cxr_config::{Device, Runtime};
use cxr_engine::{Engine, EngineError, Provider};
use cxr_onnx::{DataType, Dim, GraphBuilder, encode_model, tensor_f32};

fn tiny_model() -> Vec<u8> {
    // y = relu(x * w + b) with w = [2, -1], b = 0.5
    let mut g = GraphBuilder::new("tiny");
    let x = g.input("x", DataType::Float, &[Dim::named("N"), Dim::Fixed(2)]);
    let w = g.initializer(tensor_f32("w", &[2], &[2.0, -1.0]));
    let b = g.const_f32(&[], &[0.5]);
    let m = g.op("Mul", &[&x, &w], &[]);
    let a = g.op("Add", &[&m, &b], &[]);
    let r = g.op("Relu", &[&a], &[]);
    g.output(&r, "y", DataType::Float, &[Dim::named("N"), Dim::Fixed(2)]);
    encode_model(&g.into_model("test"))
}

fn cpu_runtime() -> Runtime {
    Runtime { intra_threads: 1, ..Runtime::default() }
}

#[test]
fn runs_a_model_on_cpu() {
    let engine = Engine::open(&cpu_runtime(), Device::Cpu).expect("run `make setup` first");
    assert!(engine.version().starts_with("1.31"), "{}", engine.version());
    let (mut session, provider) = engine.session_from_bytes(&tiny_model(), Path::new("tiny")).unwrap();
    assert_eq!(provider, Provider::Cpu);
    let x = cxr_engine::Input::F32(vec![2, 2], vec![1.0, 1.0, -1.0, 3.0]);
    let y = session.run(vec![("x".into(), x)], &["y"]).unwrap().remove(0);
    let expected = [2.5f32, 0.0, 0.0, 0.0];
    assert_eq!(y.len(), expected.len());
    for (got, want) in y.iter().zip(expected) {
        assert!((got - want).abs() < 1e-6, "{got} != {want}");
    }
    // A missing output is an error naming the model, not a panic.
    let x = cxr_engine::Input::F32(vec![1, 2], vec![1.0, 1.0]);
    let err = session.run(vec![("x".into(), x)], &["z"]).unwrap_err().to_string();
    assert!(err.contains("tiny") && err.contains("\"z\""), "{err}");
}

#[test]
fn cuda_without_cuda_is_an_error_not_a_fallback() {
    let engine = Engine::open(&cpu_runtime(), Device::Cuda).expect("run `make setup` first");
    if engine.library().to_string_lossy().contains("/cuda/") {
        // A machine with the GPU build installed: this test is about CPU-only machines.
        return;
    }
    let err = engine
        .session_from_bytes(&tiny_model(), Path::new("tiny"))
        .expect_err("CUDA must not silently fall back to CPU");
    assert!(matches!(err, EngineError::Cuda { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("--device cuda"), "{message}");
    assert!(message.contains("make setup-cuda"), "{message}");
}

#[test]
fn auto_falls_back_to_cpu_and_says_so() {
    let engine = Engine::open(&cpu_runtime(), Device::Auto).expect("run `make setup` first");
    let (_, provider) = engine.session_from_bytes(&tiny_model(), Path::new("tiny")).unwrap();
    if !engine.library().to_string_lossy().contains("/cuda/") {
        assert_eq!(provider, Provider::Cpu);
    }
}

#[test]
fn missing_library_lists_paths_and_fix() {
    let runtime = Runtime { onnxruntime: Some(PathBuf::from("/nonexistent/libonnxruntime.so")), ..Runtime::default() };
    let err = Engine::open(&runtime, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/libonnxruntime.so"), "{err}");
    assert!(err.contains("make setup"), "{err}");
}

#[test]
fn default_candidates_include_project_folder() {
    let c = cxr_engine::library_candidates(&Runtime::default(), Device::Cpu);
    if std::env::var_os(cxr_engine::DYLIB_ENV).is_none() {
        assert!(c.iter().all(|p| p.ends_with(cxr_engine::CPU_LIBRARY)), "{c:?}");
    }
    let c = cxr_engine::library_candidates(&Runtime::default(), Device::Cuda);
    if std::env::var_os(cxr_engine::DYLIB_ENV).is_none() {
        assert!(c[0].ends_with(cxr_engine::CUDA_LIBRARY), "{c:?}");
    }
}

#[test]
fn bad_model_names_origin() {
    let engine = Engine::open(&cpu_runtime(), Device::Cpu).expect("run `make setup` first");
    let err = engine.session_from_bytes(b"not a model", Path::new("garbage.onnx")).unwrap_err().to_string();
    assert!(err.contains("garbage.onnx"), "{err}");
}

#[test]
fn other_runtime_version_is_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so.1.17.0");
    std::fs::write(&fake, b"not a library").unwrap();
    let runtime = Runtime { onnxruntime: Some(fake), ..Runtime::default() };
    let err = Engine::open(&runtime, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("version mismatch: this is ONNX Runtime 1.17.0"), "{err}");
    assert!(err.contains("1.31.1"), "{err}");
}

/// A quantized 3x3 convolution (8 -> 16 channels, padded, on a 12x12 input) in QDQ form, with
/// symmetric per-channel int8 weights: ONNX Runtime fuses it into one `QLinearConv`.
fn int8_conv_model() -> cxr_onnx::ModelProto {
    use cxr_onnx::{Attr, tensor};
    let mut g = GraphBuilder::new("int8");
    let x = g.input("x", DataType::Float, &[Dim::named("N"), Dim::Fixed(8), Dim::Fixed(12), Dim::Fixed(12)]);
    let weights: Vec<i8> = (0..16 * 8 * 9).map(|i| (i * 37 % 255 - 127) as i8).collect();
    let w = g.initializer(tensor("w", &[16, 8, 3, 3], &weights));
    let w_scale = g.initializer(tensor_f32("w.scale", &[16], &(1..=16).map(|c| 0.001 * c as f32).collect::<Vec<_>>()));
    let w_zero = g.initializer(tensor("w.zero", &[16], &[0i8; 16]));
    let (x_scale, x_zero) = (g.const_f32(&[], &[0.02]), g.initializer(tensor("x.zero", &[], &[128u8])));
    let (y_scale, y_zero) = (g.const_f32(&[], &[0.05]), g.initializer(tensor("y.zero", &[], &[100u8])));
    let xq = g.op("QuantizeLinear", &[&x, &x_scale, &x_zero], &[]);
    let xd = g.op("DequantizeLinear", &[&xq, &x_scale, &x_zero], &[]);
    let wd = g.op("DequantizeLinear", &[&w, &w_scale, &w_zero], &[("axis", Attr::Int(0))]);
    let conv = g.op("Conv", &[&xd, &wd], &[("pads", Attr::Ints(vec![1, 1, 1, 1]))]);
    let yq = g.op("QuantizeLinear", &[&conv, &y_scale, &y_zero], &[]);
    let y = g.op("DequantizeLinear", &[&yq, &y_scale, &y_zero], &[]);
    g.output(&y, "y", DataType::Float, &[Dim::named("N"), Dim::Fixed(16), Dim::Fixed(12), Dim::Fixed(12)]);
    g.into_model("test")
}

/// ONNX Runtime runs symmetric int8 weights on its direct kernel and the restated ones on
/// its GEMM (on AMX where the CPU has it): both give exactly the same outputs. The engine is
/// opened with `runtime.amx: false` so that it gives the symmetric model to ONNX Runtime as it
/// is; one opened with the default (on a CPU with AMX, it restates the model itself) agrees.
#[test]
fn int8_convolutions_restated_for_the_gemm_path_compute_the_same_outputs() {
    let as_is = Engine::open(&Runtime { amx: false, ..cpu_runtime() }, Device::Cpu).unwrap();
    let default = Engine::open(&cpu_runtime(), Device::Cpu).unwrap();
    let symmetric = int8_conv_model();
    let mut restated = symmetric.clone();
    assert_eq!(cxr_onnx::offset_symmetric_conv_weights(&mut restated), 1);
    let x: Vec<f32> = (0..2 * 8 * 12 * 12).map(|i| ((i * 7919) % 1000) as f32 / 200.0 - 2.5).collect();
    let run = |engine: &Engine, model: &cxr_onnx::ModelProto| {
        let (mut session, _) = engine.session_from_bytes(&encode_model(model), Path::new("int8")).unwrap();
        session
            .run(vec![("x".into(), cxr_engine::Input::F32(vec![2, 8, 12, 12], x.clone()))], &["y"])
            .unwrap()
            .remove(0)
    };
    let direct = run(&as_is, &symmetric);
    assert!(direct.iter().any(|&v| v != direct[0]), "the output varies");
    assert_eq!(direct, run(&as_is, &restated));
    assert_eq!(direct, run(&default, &symmetric));
}
