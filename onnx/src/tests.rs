//! Round-trip tests of the protobuf messages and the builder.

use super::*;
use std::path::PathBuf;

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
fn a_model_decoded_from_shared_bytes_holds_slices_of_them_as_weights() {
    let mut g = GraphBuilder::new("g");
    let x = g.input("x", DataType::Float, &[Dim::Fixed(256)]);
    let w = g.initializer(tensor_f32("w", &[256], &[0.25; 256]));
    let y = g.op("Mul", &[&x, &w], &[]);
    g.output(&y, "y", DataType::Float, &[Dim::Fixed(256)]);
    let bytes = Bytes::from(encode_model(&g.into_model("test")));
    let shared = decode_shared(bytes.clone(), Path::new("mem")).unwrap();
    assert_eq!(shared, decode_model(&bytes, Path::new("mem")).unwrap());
    let weights = &shared.graph.as_ref().unwrap().initializer[0].raw_data;
    assert_eq!(weights.len(), 256 * 4);
    let within = bytes.as_ptr_range();
    assert!(within.contains(&weights.as_ptr()), "the weights were copied out of the model's bytes");
    // A clone of the model shares them too.
    let copy = shared.clone();
    assert_eq!(copy.graph.unwrap().initializer[0].raw_data.as_ptr(), weights.as_ptr());
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

/// A model written by `onnx/tests/fixtures/make_fixtures.py`.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn models_using_every_field_of_the_schema_round_trip_byte_for_byte() {
    for name in ["backbone", "every_field"] {
        // Protobuf's own proto3 encoding of the model: what re-encoding it must give back.
        let proto3 = std::fs::read(fixture(&format!("{name}.onnx"))).unwrap();
        let model = read_model(&fixture(&format!("{name}.onnx"))).unwrap();
        assert!(encode_model(&model) == proto3, "{name}.onnx changed when read and written again");
        // What `onnx.save` wrote (proto2: set defaults written, numbers unpacked): the same model.
        let proto2 = read_model(&fixture(&format!("{name}.proto2.onnx"))).unwrap();
        assert_eq!(proto2, model, "{name}");
    }
}

#[test]
fn what_the_hand_written_messages_dropped_is_read() {
    use proto::attribute_proto::AttributeType;
    let model = read_model(&fixture("every_field.onnx")).unwrap();
    assert_eq!(metadata(&model, "source"), Some("onnx/tests/fixtures/make_fixtures.py"));
    let function = &model.functions[0];
    assert_eq!((function.domain.as_str(), function.name.as_str()), ("local.fn", "ScaleRelu"));
    assert_eq!(function.node[0].attribute[0].ref_attr_name, "alpha");
    assert_eq!(model.training_info.len(), 1);
    let graph = model.graph.as_ref().unwrap();
    let sparse = &graph.sparse_initializer[0];
    assert_eq!((sparse.values.as_ref().unwrap().name.as_str(), sparse.dims.as_slice()), ("kernel", &[4, 3, 1, 1][..]));
    let branch =
        |node: &NodeProto, name: &str| node.attribute.iter().find(|a| a.name == name).and_then(|a| a.g.clone());
    let if_node = graph.node.iter().find(|n| n.op_type == "If").unwrap();
    assert_eq!(branch(if_node, "then_branch").unwrap().node[1].input, ["act", "two"]);
    assert_eq!(branch(if_node, "else_branch").unwrap().node[0].op_type, "Identity");
    let exotic = graph.node.iter().find(|n| n.op_type == "Exotic").unwrap();
    let kinds: Vec<AttributeType> = exotic.attribute.iter().map(|a| a.r#type()).collect();
    for kind in [
        AttributeType::Tensors,
        AttributeType::Graphs,
        AttributeType::SparseTensor,
        AttributeType::SparseTensors,
        AttributeType::TypeProto,
        AttributeType::TypeProtos,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} not in {kinds:?}");
    }
    assert_eq!(exotic.device_configurations[0].sharding_spec[0].tensor_name, "act");
    assert!(graph.initializer.iter().any(|t| t.name == "external" && t.external_data.len() == 3));
}

#[test]
fn metadata_alone_reads_as_the_whole_models_and_a_cut_file_is_an_error() {
    let mut g = GraphBuilder::new("g");
    let x = g.input("x", DataType::Float, &[Dim::Fixed(3)]);
    let w = g.initializer(tensor_f32("w", &[3], &[1.0, -2.0, 0.5]));
    let y = g.op("Mul", &[&x, &w], &[]);
    g.output(&y, "y", DataType::Float, &[Dim::Fixed(3)]);
    g.metadata("classes", "A,B");
    g.metadata("size", "50,50");
    let bytes = encode_model(&g.into_model("test"));
    let pairs = decode_metadata(&bytes, Path::new("m.onnx")).unwrap();
    assert_eq!(pairs, [("classes".to_string(), "A,B".to_string()), ("size".to_string(), "50,50".to_string())]);
    let e = decode_metadata(&bytes[..bytes.len() / 2], Path::new("cut.onnx")).unwrap_err().to_string();
    assert!(e.contains("cut.onnx is not a valid ONNX model"), "{e}");
}

#[test]
fn a_model_without_a_graph_reads_as_an_empty_graph() {
    let model = crate::ModelProto::default();
    let graph = crate::graph(&model);
    assert!(graph.node.is_empty() && graph.initializer.is_empty() && graph.input.is_empty());
    let mut g = GraphBuilder::new("one");
    let x = g.input("x", DataType::Float, &[Dim::Fixed(1)]);
    let y = g.op("Relu", &[&x], &[]);
    g.output(&y, "y", DataType::Float, &[Dim::Fixed(1)]);
    let model = g.into_model("test");
    assert!(crate::graph(&model).node.iter().any(|n| n.op_type == "Relu"));
}
