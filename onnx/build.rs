//! Generates the ONNX message types (`$OUT_DIR/onnx.rs`, included by `src/proto.rs`) from the
//! vendored `proto/onnx.proto3`: protox parses it (a protobuf compiler written in Rust, so
//! no `protoc` is needed), prost-build writes the Rust, with tensors' `raw_data` as `bytes::Bytes`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=proto/onnx.proto3");
    let descriptors = protox::compile(["onnx.proto3"], ["proto"])?;
    // Weights as `bytes::Bytes`: decoding from a `Bytes` buffer slices it instead of copying,
    // and cloning a tensor (splicing a backbone into a graph) shares its weights.
    prost_build::Config::new().bytes([".onnx.TensorProto.raw_data"]).compile_fds(descriptors)?;
    Ok(())
}
