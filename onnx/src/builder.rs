//! A small builder for ONNX graphs: inputs, initialisers, nodes with attributes, outputs.

use crate::proto::{
    AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, SparseTensorProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_type,
    tensor_shape_proto, type_proto,
};
use crate::{DataType, IR_VERSION, OPSET};

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(i64),
    /// A named dynamic dimension (e.g. the batch `N`).
    Named(String),
}

impl Dim {
    pub fn named(name: &str) -> Dim {
        Dim::Named(name.to_string())
    }
}

/// A node attribute value.
#[derive(Debug, Clone)]
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Str(String),
    /// Boxed: a `TensorProto` is ten times the size of the other values.
    Tensor(Box<TensorProto>),
}

/// An attribute for a node built outside [`GraphBuilder::op`] (or edited after it).
pub fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto { name: name.to_string(), ..Default::default() };
    match value {
        Attr::Int(i) => {
            a.r#type = attribute_type::INT;
            a.i = i;
        }
        Attr::Float(f) => {
            a.r#type = attribute_type::FLOAT;
            a.f = f;
        }
        Attr::Ints(v) => {
            a.r#type = attribute_type::INTS;
            a.ints = v;
        }
        Attr::Floats(v) => {
            a.r#type = attribute_type::FLOATS;
            a.floats = v;
        }
        Attr::Str(s) => {
            a.r#type = attribute_type::STRING;
            a.s = s.into_bytes();
        }
        Attr::Tensor(t) => {
            a.r#type = attribute_type::TENSOR;
            a.t = Some(*t);
        }
    }
    a
}

/// A value's type: element type and shape.
pub fn value_info(name: &str, elem: DataType, shape: &[Dim]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Dim::Named(p) => tensor_shape_proto::dimension::Value::DimParam(p.clone()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds one graph; node output names are generated unless given.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: GraphProto,
    counter: usize,
    metadata: Vec<(String, String)>,
    opset: i64,
    /// Operator sets of domains other than `ai.onnx` (a spliced backbone's own).
    domains: Vec<OperatorSetIdProto>,
    /// Model-local functions (a spliced backbone's).
    functions: Vec<FunctionProto>,
    /// Prepended to generated names (empty for graphs built from scratch).
    namespace: String,
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        Self { graph: GraphProto { name: name.to_string(), ..Default::default() }, opset: OPSET, ..Default::default() }
    }

    /// Raises the model's opset to at least `version` (for spliced graphs of newer opsets).
    pub fn require_opset(&mut self, version: i64) {
        self.opset = self.opset.max(version);
    }

    /// Imports the operator set `version` of `domain`, other than `ai.onnx` (for a spliced
    /// graph's custom operators or functions); the highest version asked for is imported.
    pub fn import_domain(&mut self, domain: &str, version: i64) {
        assert!(!domain.is_empty() && domain != "ai.onnx", "ai.onnx's version is set by require_opset");
        match self.domains.iter_mut().find(|d| d.domain == domain) {
            Some(d) => d.version = d.version.max(version),
            None => self.domains.push(OperatorSetIdProto { domain: domain.to_string(), version }),
        }
    }

    /// Adds a model-local function as it is (a spliced model's), callable by its domain and name.
    pub fn function(&mut self, function: FunctionProto) {
        self.functions.push(function);
    }

    /// Adds a node as it is (used to splice another model's graph in).
    pub fn push_node(&mut self, node: NodeProto) {
        self.graph.node.push(node);
    }

    /// Declares a graph input and returns its name.
    pub fn input(&mut self, name: &str, elem: DataType, shape: &[Dim]) -> String {
        self.graph.input.push(value_info(name, elem, shape));
        name.to_string()
    }

    /// Declares a graph output (an existing value, renamed with Identity when needed).
    pub fn output(&mut self, value: &str, name: &str, elem: DataType, shape: &[Dim]) {
        if value != name {
            self.op_named("Identity", &[value], &[], &[name]);
        }
        self.graph.output.push(value_info(name, elem, shape));
    }

    /// Adds an initialiser (a constant or a parameter) and returns its name.
    pub fn initializer(&mut self, tensor: TensorProto) -> String {
        let name = tensor.name.clone();
        self.graph.initializer.push(tensor);
        name
    }

    /// Adds a sparse initialiser (a spliced model's) and returns its name.
    pub fn sparse_initializer(&mut self, tensor: SparseTensorProto) -> String {
        let name = tensor.values.as_ref().map(|v| v.name.clone()).unwrap_or_default();
        self.graph.sparse_initializer.push(tensor);
        name
    }

    /// A float32 scalar-or-tensor constant with a generated name.
    pub fn const_f32(&mut self, dims: &[i64], data: &[f32]) -> String {
        let name = self.fresh("const");
        self.initializer(crate::tensor_f32(&name, dims, data))
    }

    /// An int64 constant with a generated name.
    pub fn const_i64(&mut self, dims: &[i64], data: &[i64]) -> String {
        let name = self.fresh("const");
        self.initializer(crate::tensor_i64(&name, dims, data))
    }

    /// Adds a node with one output and returns the output's generated name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        let out = self.fresh(&op_type.to_lowercase());
        self.op_named(op_type, inputs, attrs, &[&out]);
        out
    }

    /// Adds a node with `n` outputs and returns their generated names.
    pub fn op_multi(&mut self, op_type: &str, inputs: &[&str], attrs: &[(&str, Attr)], n: usize) -> Vec<String> {
        let outs: Vec<String> = (0..n).map(|_| self.fresh(&op_type.to_lowercase())).collect();
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        self.op_named(op_type, inputs, attrs, &refs);
        outs
    }

    /// Adds a node with the given output names.
    pub fn op_named(&mut self, op_type: &str, inputs: &[&str], attrs: &[(&str, Attr)], outputs: &[&str]) {
        let name = self.fresh(&format!("{}_node", op_type.to_lowercase()));
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name,
            op_type: op_type.to_string(),
            attribute: attrs.iter().map(|(n, v)| attribute(n, v.clone())).collect(),
            ..Default::default()
        });
    }

    /// Records a metadata property of the model.
    pub fn metadata(&mut self, key: &str, value: &str) {
        self.metadata.push((key.to_string(), value.to_string()));
    }

    /// A unique value name with a readable prefix.
    pub fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{}{prefix}_{}", self.namespace, self.counter)
    }

    /// An empty builder for a part to append to an existing, encoded model (see
    /// [`GraphBuilder::continuation`]) that this builder did not make: generated names start
    /// with `namespace`, which must be a prefix no value of `model` has.
    pub fn appending_to(model: &ModelProto, namespace: &str) -> GraphBuilder {
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(OPSET, |o| o.version);
        GraphBuilder { opset, namespace: namespace.to_string(), ..Default::default() }
    }

    /// An empty builder that goes on where this one stops: same name counter (no
    /// clashing names) and opset. Its [`GraphBuilder::into_tail_model`] encodes to bytes
    /// that, appended to this builder's encoded model, parse as one model: protobuf merges
    /// an embedded message that appears twice, concatenating its repeated fields
    /// (nodes, initializers, inputs, outputs). So a large, fixed part of a model can be
    /// encoded once and written early, and a small part appended later.
    pub fn continuation(&self) -> GraphBuilder {
        GraphBuilder {
            graph: GraphProto::default(),
            counter: self.counter,
            metadata: Vec::new(),
            opset: self.opset,
            domains: Vec::new(),
            functions: Vec::new(),
            namespace: self.namespace.clone(),
        }
    }

    /// The continuation's part of the model: its graph additions and metadata only, so
    /// that no field of the first part (IR version, opsets, names) is repeated or overridden.
    /// Panics if the continuation raised the opset, imported a domain or added a function: the
    /// first part has already fixed those.
    pub fn into_tail_model(self, first_part_opset: i64) -> ModelProto {
        assert!(self.opset <= first_part_opset, "a continuation cannot raise the opset of the encoded first part");
        assert!(
            self.domains.is_empty() && self.functions.is_empty(),
            "a continuation cannot import domains or add functions to the encoded first part"
        );
        ModelProto { graph: Some(self.graph), metadata_props: metadata_props(self.metadata), ..Default::default() }
    }

    /// The opset the model will declare.
    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// Finishes the graph as a model of this project's opset.
    pub fn into_model(self, producer: &str) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: std::iter::once(OperatorSetIdProto { domain: String::new(), version: self.opset })
                .chain(self.domains)
                .collect(),
            producer_name: producer.to_string(),
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            graph: Some(self.graph),
            metadata_props: metadata_props(self.metadata),
            functions: self.functions,
            ..Default::default()
        }
    }
}

fn metadata_props(metadata: Vec<(String, String)>) -> Vec<StringStringEntryProto> {
    metadata.into_iter().map(|(key, value)| StringStringEntryProto { key, value }).collect()
}
