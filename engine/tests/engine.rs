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
