//! Restating symmetric int8 convolution weights with a zero point of -1, so that ONNX
//! Runtime runs those convolutions on its quantized GEMM (AMX tiles where the CPU has them).
//!
//! ONNX Runtime's CPU `QLinearConv` has two int8 paths: a direct kernel for symmetric
//! weights (every weight zero point 0; AVX-512 VNNI at best) and im2col + its quantized
//! GEMM for any other weights, which uses AMX on CPUs that have it. With AMX the GEMM path
//! is about 1.5x the direct kernel on VGG16 at 224 px; without it, about 0.8x. The restated
//! weights dequantize to the same values and give the same integer sums, so the outputs do
//! not change; only which kernel computes them.

use std::collections::{HashMap, HashSet};

use crate::DataType;
use crate::proto::{GraphProto, ModelProto, TensorProto};

/// Restates every symmetric int8 convolution weight of `model`'s main graph as `q - 1`
/// with zero point -1, and returns how many were restated.
///
/// A weight qualifies when it is a rank-4 int8 initializer with values in `[-127, 127]`
/// (so `q - 1` fits), read by one `DequantizeLinear` whose zero point is an all-zero int8
/// initializer read by nothing else, and whose output only feeds convolutions as weights.
pub fn offset_symmetric_conv_weights(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_ref() else { return 0 };
    let elsewhere = read_elsewhere(model, graph);
    let targets = symmetric_conv_weights(graph, &elsewhere);
    let Some(graph) = model.graph.as_mut() else { return 0 };
    let mut restated = 0;
    for tensor in &mut graph.initializer {
        match targets.get(tensor.name.as_str()) {
            Some(Role::Weight) => {
                tensor.raw_data = tensor.raw_data.iter().map(|&b| (b as i8 - 1) as u8).collect::<Vec<u8>>().into()
            }
            Some(Role::ZeroPoint) => {
                let count = tensor.element_count();
                tensor.int32_data.clear();
                tensor.raw_data = vec![-1i8 as u8; count].into();
                restated += 1;
            }
            None => {}
        }
    }
    restated
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Weight,
    ZeroPoint,
}

/// Names read other than by the main graph's nodes: its inputs (an initializer listed as an
/// input can be fed another value at run time), and every value read inside a subgraph of
/// its nodes or by a training graph (either may read the main graph's initializers).
fn read_elsewhere(model: &ModelProto, graph: &GraphProto) -> HashSet<String> {
    fn subgraphs(graph: &GraphProto) -> impl Iterator<Item = &GraphProto> {
        graph.node.iter().flat_map(|n| &n.attribute).flat_map(|a| a.g.iter().chain(&a.graphs))
    }
    fn read_by(graph: &GraphProto, names: &mut HashSet<String>) {
        names.extend(graph.node.iter().flat_map(|n| n.input.iter().cloned()));
        subgraphs(graph).for_each(|g| read_by(g, names));
    }
    let mut names: HashSet<String> = graph.input.iter().map(|i| i.name.clone()).collect();
    subgraphs(graph).for_each(|g| read_by(g, &mut names));
    for training in &model.training_info {
        training.initialization.iter().chain(&training.algorithm).for_each(|g| read_by(g, &mut names));
    }
    names
}

/// The initializers to restate: each qualifying weight and its zero point, none of them
/// read `elsewhere`.
fn symmetric_conv_weights(graph: &GraphProto, elsewhere: &HashSet<String>) -> HashMap<String, Role> {
    let initializers: HashMap<&str, &TensorProto> = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for node in &graph.node {
        for input in node.input.iter().collect::<HashSet<_>>() {
            *readers.entry(input.as_str()).or_default() += 1;
        }
    }
    for output in &graph.output {
        *readers.entry(output.name.as_str()).or_default() += 1;
    }
    let only_conv_weight = |value: &str| {
        let consumers: Vec<_> = graph.node.iter().filter(|n| n.input.iter().any(|i| i == value)).collect();
        !consumers.is_empty()
            && readers.get(value) == Some(&consumers.len())
            && consumers.iter().all(|n| {
                n.op_type == "Conv" && n.domain.is_empty() && n.input.iter().position(|i| i == value) == Some(1)
            })
    };
    let mut targets = HashMap::new();
    for node in graph.node.iter().filter(|n| n.op_type == "DequantizeLinear" && n.domain.is_empty()) {
        let (Some(weight), Some(zero), Some(output)) = (node.input.first(), node.input.get(2), node.output.first())
        else {
            continue;
        };
        let (Some(w), Some(z)) = (initializers.get(weight.as_str()), initializers.get(zero.as_str())) else { continue };
        let qualifies = is_int8_raw(w)
            && w.dims.len() == 4
            && w.raw_data.iter().all(|&b| b as i8 != i8::MIN)
            && z.data_type == DataType::Int8 as i32
            && z.data_location != 1
            && all_zero(z)
            && readers.get(weight.as_str()) == Some(&1)
            && readers.get(zero.as_str()) == Some(&1)
            && ![weight, zero, output].iter().any(|name| elsewhere.contains(name.as_str()))
            && only_conv_weight(output);
        if qualifies {
            targets.insert(weight.clone(), Role::Weight);
            targets.insert(zero.clone(), Role::ZeroPoint);
        }
    }
    targets
}

/// An int8 tensor whose values are all in `raw_data`.
fn is_int8_raw(t: &TensorProto) -> bool {
    t.data_type == DataType::Int8 as i32
        && t.data_location != 1
        && t.raw_data.len() == t.element_count()
        && !t.raw_data.is_empty()
}

/// A zero-point tensor holding only zeros, whichever field stores it.
fn all_zero(z: &TensorProto) -> bool {
    let count = z.element_count();
    if !z.raw_data.is_empty() {
        z.raw_data.len() == count && z.raw_data.iter().all(|&b| b == 0)
    } else {
        z.int32_data.len() == count && z.int32_data.iter().all(|&v| v == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attr, Dim, GraphBuilder, tensor};

    /// A float input quantized, and convolved with int8 weights `q` `[2, 1, 2, 2]`
    /// dequantized per output channel; `consumer` reads the dequantized weights.
    fn qdq_conv(q: &[i8], consumer: &str) -> ModelProto {
        let mut g = GraphBuilder::new("g");
        let x = g.input("x", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(3)]);
        let w = g.initializer(tensor("w", &[2, 1, 2, 2], q));
        let scale = g.initializer(tensor("w.scale", &[2], &[0.5f32, 0.25]));
        let zero = g.initializer(tensor("w.zero", &[2], &[0i8, 0]));
        let weights = g.op("DequantizeLinear", &[&w, &scale, &zero], &[("axis", Attr::Int(0))]);
        let y = g.op(consumer, &[&x, &weights], &[]);
        g.output(&y, "y", DataType::Float, &[]);
        g.into_model("test")
    }

    fn initializer<'a>(model: &'a ModelProto, name: &str) -> &'a TensorProto {
        model.graph.as_ref().unwrap().initializer.iter().find(|t| t.name == name).unwrap()
    }

    fn dequantized(model: &ModelProto) -> Vec<i16> {
        let (w, z) = (initializer(model, "w"), initializer(model, "w.zero"));
        let per_channel = w.raw_data.len() / z.raw_data.len();
        w.raw_data.iter().enumerate().map(|(i, &q)| q as i8 as i16 - z.raw_data[i / per_channel] as i8 as i16).collect()
    }

    #[test]
    fn symmetric_conv_weights_keep_their_values_with_zero_point_minus_one() {
        let q = [-127i8, -1, 0, 1, 127, 5, -5, 64];
        let mut model = qdq_conv(&q, "Conv");
        let before = dequantized(&model);
        assert_eq!(offset_symmetric_conv_weights(&mut model), 1);
        assert_eq!(dequantized(&model), before);
        assert_eq!(initializer(&model, "w.zero").raw_data, vec![0xFF, 0xFF]);
        assert_eq!(initializer(&model, "w").raw_data[0] as i8, -128);
        assert_eq!(offset_symmetric_conv_weights(&mut model), 0, "a zero point of -1 is not symmetric any more");
    }

    #[test]
    fn weights_that_would_not_fit_or_feed_something_else_are_left_alone() {
        let mut with_min = qdq_conv(&[i8::MIN, 0, 0, 0, 0, 0, 0, 0], "Conv");
        assert_eq!(offset_symmetric_conv_weights(&mut with_min), 0);
        let mut matmul = qdq_conv(&[1; 8], "MatMul");
        assert_eq!(offset_symmetric_conv_weights(&mut matmul), 0);
        // A second DequantizeLinear with the first's scale and zero point, reading `first`.
        let read_again = |first: &str| {
            let mut model = qdq_conv(&[1; 8], "Conv");
            let graph = model.graph.as_mut().unwrap();
            let mut second = graph.node[0].clone();
            second.input[0] = first.into();
            second.output = vec!["other".into()];
            graph.node.push(second);
            model
        };
        assert_eq!(offset_symmetric_conv_weights(&mut read_again("w")), 0, "a weight read twice is left alone");
        let mut shared_zero = read_again("w.scale");
        assert_eq!(offset_symmetric_conv_weights(&mut shared_zero), 0, "a zero point read twice is left alone");
        let mut fed = qdq_conv(&[1; 8], "Conv");
        let graph = fed.graph.as_mut().unwrap();
        let mut input = graph.input[0].clone();
        input.name = "w".into();
        graph.input.push(input);
        assert_eq!(offset_symmetric_conv_weights(&mut fed), 0, "a weight that can be fed is left alone");
        let mut in_subgraph = qdq_conv(&[1; 8], "Conv");
        let graph = in_subgraph.graph.as_mut().unwrap();
        let mut body = GraphProto::default();
        body.node.push(crate::proto::NodeProto {
            op_type: "Identity".into(),
            input: vec!["w.zero".into()],
            ..Default::default()
        });
        graph.node[1].attribute.push(crate::proto::AttributeProto {
            name: "body".into(),
            g: Some(body),
            ..Default::default()
        });
        assert_eq!(offset_symmetric_conv_weights(&mut in_subgraph), 0, "a zero point a subgraph reads is left alone");
        let mut uint8 = qdq_conv(&[1; 8], "Conv");
        let graph = uint8.graph.as_mut().unwrap();
        graph.initializer.iter_mut().find(|t| t.name == "w.zero").unwrap().data_type = DataType::Uint8 as i32;
        assert_eq!(offset_symmetric_conv_weights(&mut uint8), 0, "a uint8 zero point is left alone");
    }

    #[test]
    fn a_scalar_zero_point_listed_as_int32_values_is_restated_too() {
        let mut model = qdq_conv(&[3, -3, 0, 1, 2, 4, 5, 6], "Conv");
        let graph = model.graph.as_mut().unwrap();
        let zero = graph.initializer.iter_mut().find(|t| t.name == "w.zero").unwrap();
        *zero = TensorProto {
            name: "w.zero".into(),
            data_type: DataType::Int8 as i32,
            int32_data: vec![0],
            ..Default::default()
        };
        graph.node[0].attribute.clear();
        let scale = graph.initializer.iter_mut().find(|t| t.name == "w.scale").unwrap();
        *scale = tensor("w.scale", &[], &[0.5f32]);
        assert_eq!(offset_symmetric_conv_weights(&mut model), 1);
        let zero = initializer(&model, "w.zero");
        assert_eq!((zero.raw_data.to_vec(), zero.int32_data.len()), (vec![0xFF], 0));
        let weights: Vec<i8> = initializer(&model, "w").raw_data.iter().map(|&b| b as i8).collect();
        assert_eq!(weights, [2, -4, -1, 0, 1, 3, 4, 5]);
    }
}
