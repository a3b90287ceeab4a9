//! Copying a backbone's nodes, weights, functions and operator sets into a graph under a
//! prefix, fed by that graph's preprocessed image.

use std::path::PathBuf;

use cxr_onnx::{GraphBuilder, ModelProto, NodeProto};

use super::BackboneError;

/// The values a spliced backbone computes that later parts of a graph read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spliced {
    /// The backbone's output feature map.
    pub output: String,
    /// The last convolution's activations: the input of a final max-pool, else the output.
    pub activations: String,
}

/// Copies the backbone's nodes and weights into `g` under a prefix, fed by `input`; returns its
/// output. With `nchw_size`, convolutions whose edge a max-pool discards skip it (`pool_trim`).
pub(crate) fn splice(
    g: &mut GraphBuilder,
    backbone: &ModelProto,
    input: &str,
    nchw_size: Option<(u32, u32)>,
) -> Result<Spliced, BackboneError> {
    import_operators(g, backbone)?;
    let graph = cxr_onnx::graph(backbone);
    let init: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let real_inputs: Vec<&str> =
        graph.input.iter().map(|i| i.name.as_str()).filter(|n| !init.iter().any(|i| i == n)).collect();
    let (Some(bb_input), Some(bb_output)) = (real_inputs.first(), graph.output.first()) else {
        return Err(BackboneError::Invalid {
            path: PathBuf::from("backbone"),
            message: "the graph has no input or no output".into(),
        });
    };
    let rename = |name: &str| -> String {
        if name.is_empty() {
            String::new()
        } else if name == *bb_input {
            input.to_string()
        } else {
            format!("backbone/{name}")
        }
    };
    for t in &graph.initializer {
        let mut t = t.clone();
        t.name = rename(&t.name);
        g.initializer(t);
    }
    for t in &graph.sparse_initializer {
        let mut t = t.clone();
        if let Some(values) = &mut t.values {
            values.name = rename(&values.name);
        }
        g.sparse_initializer(t);
    }
    let trimmed = nchw_size.map(|(h, w)| crate::pool_trim::trimmed_pads(graph, bb_input, h, w)).unwrap_or_default();
    for (index, node) in graph.node.iter().enumerate() {
        let mut node = node.clone();
        if let Some(pads) = trimmed.get(&index) {
            crate::pool_trim::set_pads(&mut node, pads);
        }
        // Its inputs and outputs, and the values of its subgraphs (If, Loop, Scan).
        cxr_onnx::rename_node_values(&mut node, &rename);
        node.name = format!("backbone/{}", node.name);
        g.push_node(node);
    }
    // Grad-CAM reads the finest map whose channels the head weighs: a final max-pool only
    // routes each channel's gradient, so its input is that map at twice the resolution.
    let producer = |value: &str| graph.node.iter().find(|n| n.output.first().is_some_and(|o| o == value));
    let mut last = producer(&bb_output.name);
    // Through what only renames or (de)quantizes the output: an int8 backbone's final
    // max-pool is followed by its output's QuantizeLinear/DequantizeLinear.
    let passes = |n: &&NodeProto| matches!(n.op_type.as_str(), "Identity" | "QuantizeLinear" | "DequantizeLinear");
    while let Some(node) = last.filter(|n| passes(n) && !n.input.is_empty()) {
        last = producer(&node.input[0]);
    }
    let activations = match last {
        Some(node) if node.op_type == "MaxPool" && !node.input.is_empty() => rename(&node.input[0]),
        _ => rename(&bb_output.name),
    };
    Ok(Spliced { output: rename(&bb_output.name), activations })
}

/// Gives `g` the operators the backbone's nodes call: its `ai.onnx` opset (13 or newer),
/// its other operator sets and its model-local functions.
pub(crate) fn import_operators(g: &mut GraphBuilder, backbone: &ModelProto) -> Result<(), BackboneError> {
    let is_default = |domain: &str| domain.is_empty() || domain == "ai.onnx";
    let opset = backbone.opset_import.iter().find(|o| is_default(&o.domain)).map_or(cxr_onnx::OPSET, |o| o.version);
    if opset < 13 {
        return Err(BackboneError::Invalid {
            path: PathBuf::from("backbone"),
            message: format!("it uses ONNX opset {opset}; re-export it with opset 13 or newer"),
        });
    }
    g.require_opset(opset);
    for other in backbone.opset_import.iter().filter(|o| !is_default(&o.domain)) {
        g.import_domain(&other.domain, other.version);
    }
    for function in &backbone.functions {
        g.function(function.clone());
    }
    Ok(())
}
