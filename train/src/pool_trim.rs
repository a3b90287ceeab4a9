//! Finds the convolutions whose last output row or column the next max-pool throws away,
//! so that the features graph never computes it.
//!
//! A 2x2, stride-2 max-pool over an odd size H keeps floor(H/2) rows: the convolution before
//! it computes row H-1 for nothing. Giving that 3x3 convolution no bottom (right) padding
//! makes it produce rows 0..H-2 only, each from the same inputs and weights as before, so the
//! pooled values are unchanged. On VGG16 at the tutorial's 50x50 that drops 2.6% of the
//! backbone's multiply-adds (block2_conv2 at 25x25, block5_conv3 at 3x3); at even sizes such
//! as 224 nothing changes. Only a plain chain of the ops below is analysed (with an int8
//! backbone's quantize/dequantize pairs); anything else ends the walk, keeping what was
//! found before it.

use std::collections::HashMap;

use cxr_onnx::proto::{AttributeProto, GraphProto, NodeProto};

/// Node index -> the `pads` to give that convolution (`[top, left, bottom, right]`), for
/// `graph` fed an NCHW `input` of `height` x `width`.
pub fn trimmed_pads(graph: &GraphProto, input: &str, height: u32, width: u32) -> HashMap<usize, Vec<i64>> {
    let mut consumers: HashMap<&str, usize> = HashMap::new();
    for node in &graph.node {
        for input in &node.input {
            *consumers.entry(input.as_str()).or_default() += 1;
        }
    }
    for output in &graph.output {
        *consumers.entry(output.name.as_str()).or_default() += 1;
    }
    let only_used_by_next =
        |node: &NodeProto| node.output.len() == 1 && consumers.get(node.output[0].as_str()) == Some(&1);

    let mut found = HashMap::new();
    let (mut h, mut w) = (i64::from(height), i64::from(width));
    // The convolution feeding the current position through elementwise ops only.
    let mut pending: Option<usize> = None;
    let weights: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut previous = input;
    for (index, node) in graph.node.iter().enumerate() {
        // Nodes of weights only (an int8 kernel's DequantizeLinear) are not on the path.
        if node.input.iter().all(|i| weights.contains(i.as_str())) {
            continue;
        }
        if node.input.first().map(String::as_str) != Some(previous) {
            break;
        }
        match node.op_type.as_str() {
            "Conv" if is_same_3x3(node) => pending = only_used_by_next(node).then_some(index),
            // Elementwise: the rows a pool drops stay dropped through them.
            "Relu" | "Identity" | "QuantizeLinear" | "DequantizeLinear" => {
                pending = pending.filter(|_| only_used_by_next(node))
            }
            "MaxPool" if is_2x2_stride_2(node) => {
                if let Some(conv) = pending.filter(|_| h % 2 == 1 || w % 2 == 1) {
                    found.insert(conv, vec![1, 1, 1 - h % 2, 1 - w % 2]);
                }
                (h, w) = (h / 2, w / 2);
                pending = None;
            }
            _ => break,
        }
        match node.output.first() {
            Some(output) => previous = output,
            None => break,
        }
    }
    found
}

/// Replaces (or adds) a node's `pads` attribute.
pub fn set_pads(node: &mut NodeProto, pads: &[i64]) {
    node.attribute.retain(|a| a.name != "pads");
    node.attribute.push(cxr_onnx::attribute("pads", cxr_onnx::Attr::Ints(pads.to_vec())));
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn ints_are(node: &NodeProto, name: &str, wanted: &[i64], default_ok: bool) -> bool {
    match attr(node, name) {
        Some(a) => a.ints == wanted,
        None => default_ok,
    }
}

/// A 3x3 convolution, stride 1, no dilation, one group, padding 1 on every side.
fn is_same_3x3(node: &NodeProto) -> bool {
    node.attribute.iter().all(|a| ["kernel_shape", "pads", "strides", "dilations", "group"].contains(&a.name.as_str()))
        && ints_are(node, "kernel_shape", &[3, 3], false)
        && ints_are(node, "pads", &[1, 1, 1, 1], false)
        && ints_are(node, "strides", &[1, 1], true)
        && ints_are(node, "dilations", &[1, 1], true)
        && attr(node, "group").is_none_or(|a| a.i == 1)
}

/// A 2x2 max-pool, stride 2, no padding, rounding down.
fn is_2x2_stride_2(node: &NodeProto) -> bool {
    node.attribute.iter().all(|a| ["kernel_shape", "strides", "pads", "ceil_mode"].contains(&a.name.as_str()))
        && ints_are(node, "kernel_shape", &[2, 2], false)
        && ints_are(node, "strides", &[2, 2], false)
        && ints_are(node, "pads", &[0, 0, 0, 0], true)
        && attr(node, "ceil_mode").is_none_or(|a| a.i == 0)
        && node.output.len() == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::{random_convs, vgg16_model};

    fn vgg16() -> GraphProto {
        vgg16_model(&random_convs(1), "test").graph.unwrap()
    }

    /// The trimmed convolutions, by weight name, with their new pads.
    fn trimmed_at(graph: &GraphProto, h: u32, w: u32) -> Vec<(String, Vec<i64>)> {
        let input = graph.input[0].name.clone();
        let mut found: Vec<(String, Vec<i64>)> = trimmed_pads(graph, &input, h, w)
            .into_iter()
            .map(|(i, pads)| (graph.node[i].input[1].clone(), pads))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn vgg16_at_50_skips_the_rows_two_pools_drop() {
        let graph = vgg16();
        let names: Vec<String> = trimmed_at(&graph, 50, 50).into_iter().map(|(n, p)| format!("{n} {p:?}")).collect();
        // 50 -> 25 (odd: block2's last conv) -> 12 -> 6 -> 3 (odd: block5's last conv) -> 1.
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names[0].contains("block2_conv2") && names[0].ends_with("[1, 1, 0, 0]"), "{names:?}");
        assert!(names[1].contains("block5_conv3") && names[1].ends_with("[1, 1, 0, 0]"), "{names:?}");
    }

    #[test]
    fn even_sizes_change_nothing_and_odd_widths_trim_only_the_right_edge() {
        let graph = vgg16();
        assert!(trimmed_at(&graph, 224, 224).is_empty());
        assert!(trimmed_at(&graph, 64, 64).is_empty());
        // 224 x 50: only the width is odd at block 2 and block 5.
        let found = trimmed_at(&graph, 224, 50);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|(_, pads)| pads == &vec![1, 1, 1, 0]), "{found:?}");
    }

    #[test]
    fn a_convolution_whose_output_is_used_elsewhere_is_left_alone() {
        let mut graph = vgg16();
        let conv = graph.node.iter().position(|n| n.input.get(1).is_some_and(|w| w.contains("block5_conv3"))).unwrap();
        // A second consumer of block5_conv3's output (a skip connection, say) needs every row.
        let extra = NodeProto {
            op_type: "Identity".into(),
            input: vec![graph.node[conv].output[0].clone()],
            output: vec!["skip".into()],
            ..Default::default()
        };
        graph.node.push(extra);
        let names: Vec<String> = trimmed_at(&graph, 50, 50).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].contains("block2_conv2"), "{names:?}");
    }

    #[test]
    fn an_unknown_op_ends_the_walk() {
        let mut graph = vgg16();
        graph.node[0].op_type = "Transpose".into();
        assert!(trimmed_at(&graph, 50, 50).is_empty());
    }
}
