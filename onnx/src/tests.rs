//! Round-trip tests of the protobuf messages and the builder.

use super::*;

#[test]
fn model_round_trips_through_bytes() {
    let mut g = GraphBuilder::new("g");
    let x = g.input("x", DataType::Float, &[Dim::named("N"), Dim::Fixed(3)]);
    let w = g.initializer(tensor_f32("w", &[3], &[1.0, -2.0, 0.5]));
    let y = g.op("Mul", &[&x, &w], &[]);
    let z = g.op("Transpose", &[&y], &[("perm", Attr::Ints(vec![1, 0]))]);
    g.output(&z, "z", DataType::Float, &[Dim::Fixed(3), Dim::named("N")]);
    g.metadata("classes", "A,B");
    let model = g.into_model("test");
    let bytes = encode_model(&model);
    let back = decode_model(&bytes, Path::new("mem")).unwrap();
    assert_eq!(back, model);
    assert_eq!(metadata(&back, "classes"), Some("A,B"));
    let graph = back.graph.unwrap();
    assert_eq!(graph.node.len(), 3);
    assert_eq!(graph.initializer[0].to_f32_vec().unwrap(), vec![1.0, -2.0, 0.5]);
}

#[test]
fn float_data_and_raw_data_read_the_same() {
    let raw = tensor_f32("a", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let listed = TensorProto {
        name: "a".into(),
        dims: vec![2, 2],
        data_type: DataType::Float as i32,
        float_data: vec![1.0, 2.0, 3.0, 4.0],
        ..Default::default()
    };
    assert_eq!(raw.to_f32_vec().unwrap(), listed.to_f32_vec().unwrap());
}

#[test]
fn wrong_element_count_is_an_error() {
    let mut t = tensor_f32("a", &[2], &[1.0, 2.0]);
    t.dims = vec![3];
    let e = t.to_f32_vec().unwrap_err().to_string();
    assert!(e.contains("holds 2 values"), "{e}");
}

#[test]
fn garbage_is_not_a_model() {
    let e = decode_model(&[0xff, 0xff, 0xff], Path::new("bad.onnx")).unwrap_err().to_string();
    assert!(e.contains("bad.onnx is not a valid ONNX model"), "{e}");
}

#[test]
fn missing_file_names_path() {
    let e = read_model(Path::new("/nope/m.onnx")).unwrap_err().to_string();
    assert!(e.contains("/nope/m.onnx"), "{e}");
}

#[test]
fn a_continuation_appended_as_bytes_parses_as_the_whole_model() {
    let build_first = || {
        let mut g = GraphBuilder::new("g");
        let x = g.input("x", DataType::Float, &[Dim::named("N"), Dim::Fixed(3)]);
        let w = g.const_f32(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let y = g.op("MatMul", &[&x, &w], &[]);
        (g, y)
    };
    let finish = |g: &mut GraphBuilder, y: &str| {
        let b = g.const_f32(&[2], &[0.5, -0.5]);
        let z = g.op("Add", &[y, &b], &[]);
        g.output(&z, "z", DataType::Float, &[Dim::named("N"), Dim::Fixed(2)]);
        g.metadata("k", "v");
    };
    let (mut whole, y) = build_first();
    finish(&mut whole, &y);
    let whole = whole.into_model("test");

    let (first, y) = build_first();
    let mut tail = first.continuation();
    let opset = first.opset();
    let mut bytes = encode_model(&first.into_model("test"));
    finish(&mut tail, &y);
    bytes.extend_from_slice(&encode_model(&tail.into_tail_model(opset)));
    let merged = decode_model(&bytes, Path::new("merged")).unwrap();
    assert_eq!(merged, whole);
}

#[test]
#[should_panic(expected = "cannot raise the opset")]
fn a_continuation_cannot_raise_the_opset() {
    let first = GraphBuilder::new("g");
    let mut tail = first.continuation();
    tail.require_opset(first.opset() + 1);
    tail.into_tail_model(first.opset());
}
