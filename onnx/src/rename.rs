//! Renaming values in a node, through the graphs nested in its attributes.

use crate::proto::{GraphProto, NodeProto};

/// Renames the values `node` reads and writes, with `rename`, and every value of the graphs
/// nested in its attributes (If branches, Loop and Scan bodies): those read the enclosing
/// graph's values by name, so a node moved into another graph under new value names needs
/// them renamed alike. ONNX forbids a nested graph to reuse a name of the graphs around it,
/// so one renaming serves every level. Model-local functions have their own names: calls to
/// them are renamed, their bodies are not.
pub fn rename_node_values(node: &mut NodeProto, rename: &dyn Fn(&str) -> String) {
    for name in node.input.iter_mut().chain(&mut node.output) {
        *name = rename(name);
    }
    for attribute in &mut node.attribute {
        for graph in attribute.g.iter_mut().chain(&mut attribute.graphs) {
            rename_graph_values(graph, rename);
        }
    }
}

fn rename_graph_values(graph: &mut GraphProto, rename: &dyn Fn(&str) -> String) {
    for info in graph.input.iter_mut().chain(&mut graph.output).chain(&mut graph.value_info) {
        info.name = rename(&info.name);
    }
    for tensor in graph.initializer.iter_mut().chain(graph.sparse_initializer.iter_mut().flat_map(|s| &mut s.values)) {
        tensor.name = rename(&tensor.name);
    }
    for annotation in &mut graph.quantization_annotation {
        annotation.tensor_name = rename(&annotation.tensor_name);
        for parameter in &mut annotation.quant_parameter_tensor_names {
            parameter.value = rename(&parameter.value);
        }
    }
    for node in &mut graph.node {
        rename_node_values(node, rename);
    }
}
