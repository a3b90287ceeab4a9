//! The Grad-CAM graph: `model.onnx` with one more output, `cam`, built from standard
//! `ai.onnx` operators and appended to the model's own bytes, so that ONNX Runtime runs
//! it on CPU or CUDA like any model of this project.
//!
//! Grad-CAM (Selvaraju et al. 2017) weighs each channel `c` of the last convolution's
//! activations `A` by the mean gradient of the class score over its positions,
//! `alpha_kc = 1/(H W) sum_ij d y_k / d A_cij`, and keeps `ReLU(sum_c alpha_kc A_c)`. The
//! score `y_k` is the class's logit before temperature scaling (a positive factor).
//!
//! The gradient needs no backward pass through the backbone: between `A` and the head's
//! input there is at most a final 2x2 max-pool and the pooling into features, and both
//! only route or spread each channel's gradient over its positions. So the per-channel
//! sum is `sum_ij d y / d P_cij` of the pooled map `P`, which is the features' gradient
//! itself for global average or max pooling, and its sum over positions for a flatten.
//! The features' gradient is the head's backward pass: ReLU gates and transposed kernels.

use cxr_config::Pooling;
use cxr_onnx::{Attr, DataType, Dim, GraphBuilder, ModelProto, NodeProto};
use cxr_store::model_meta::ExplainMeta;

use crate::ExplainError;

/// Name of the added output: `[N, classes, H, W]`, one map per class.
pub const CAM: &str = "cam";

/// The Grad-CAM model for a `model.onnx`.
#[derive(Debug, Clone)]
pub struct ExplainModel {
    /// `model.onnx`'s bytes followed by the Grad-CAM part.
    pub bytes: Vec<u8>,
    /// Input pixels per map cell (rows, columns), when the walk from the activations back
    /// to the image found every stride; else the renderer spreads the map over the image.
    pub stride: Option<[u32; 2]>,
}

/// Builds the Grad-CAM model from `model.onnx`'s bytes (`proto` is them decoded).
pub fn explain_model(
    bytes: &[u8],
    proto: &ModelProto,
    meta: &ExplainMeta,
    classes: usize,
) -> Result<ExplainModel, ExplainError> {
    let graph = proto.graph.as_ref().ok_or_else(|| ExplainError::Model("it has no graph".into()))?;
    let known = |name: &str| {
        graph.node.iter().any(|n| n.output.iter().any(|o| o == name))
            || graph.initializer.iter().any(|t| t.name == name)
            || graph.input.iter().any(|i| i.name == name)
    };
    let names = std::iter::once(&meta.activations).chain(meta.layers.iter().flat_map(|l| [&l.kernel, &l.output]));
    if let Some(missing) = names.into_iter().find(|n| !known(n)) {
        return Err(ExplainError::Model(format!("its cxr.explain metadata names {missing:?}, which the graph lacks")));
    }
    let mut g = GraphBuilder::appending_to(proto, "explain/");
    let cam = append_grad_cam(&mut g, meta, classes)?;
    let k = Dim::Fixed(classes as i64);
    g.output(&cam, CAM, DataType::Float, &[Dim::named("N"), k, Dim::named("H"), Dim::named("W")]);
    let opset = g.opset();
    let mut out = bytes.to_vec();
    out.extend(cxr_onnx::encode_model(&g.into_tail_model(opset)));
    Ok(ExplainModel { bytes: out, stride: stride(&graph.node, &meta.activations) })
}

/// Appends the Grad-CAM nodes; returns the `[N, K, H, W]` maps (before normalisation).
pub fn append_grad_cam(g: &mut GraphBuilder, meta: &ExplainMeta, classes: usize) -> Result<String, ExplainError> {
    let (last, hidden) =
        meta.layers.split_last().ok_or_else(|| ExplainError::Model("its head has no Dense layer".into()))?;
    let transposed =
        |g: &mut GraphBuilder, kernel: &str| g.op("Transpose", &[kernel], &[("perm", Attr::Ints(vec![1, 0]))]);
    // d logits / d (last layer's input): one row per class, the same for every image.
    let mut grad = transposed(g, &last.kernel);
    let axis1 = g.const_i64(&[1], &[1]);
    let zero = g.const_f32(&[], &[0.0]);
    for layer in hidden.iter().rev() {
        // Back through the ReLU after this layer (per image), then through its kernel.
        let positive = g.op("Greater", &[&layer.output, &zero], &[]);
        let gate = g.op("Cast", &[&positive], &[("to", Attr::Int(DataType::Float as i64))]);
        let gate = g.op("Unsqueeze", &[&gate, &axis1], &[]);
        grad = g.op("Mul", &[&grad, &gate], &[]);
        let kernel = transposed(g, &layer.kernel);
        grad = g.op("MatMul", &[&grad, &kernel], &[]);
    }
    // grad: d logit_k / d features, [N, K, F] ([K, F] for a linear head).
    let activations = match meta.layout.as_str() {
        "nchw" => meta.activations.clone(),
        "nhwc" => g.op("Transpose", &[&meta.activations], &[("perm", Attr::Ints(vec![0, 3, 1, 2]))]),
        other => return Err(ExplainError::Model(format!("unknown activations layout {other:?} in cxr.explain"))),
    };
    let shape = g.op("Shape", &[&activations], &[]);
    let dim = |g: &mut GraphBuilder, i: i64| {
        let (start, end) = (g.const_i64(&[1], &[i]), g.const_i64(&[1], &[i + 1]));
        g.op("Slice", &[&shape, &start, &end], &[])
    };
    let (n, c, h, w) = (dim(g, 0), dim(g, 1), dim(g, 2), dim(g, 3));
    let per_channel = match meta.pooling {
        // One feature per channel: its gradient is spread over (average) or routed to (max)
        // the channel's positions, so it is their sum.
        Pooling::Avg | Pooling::Max => grad,
        // Features in NHWC order: sum each channel's gradient over the positions.
        Pooling::Flatten => {
            // `0` keeps a dimension: [K, F] -> [K, -1, C] or [N, K, F] -> [N, K, -1, C].
            let kept: &[i64] = if hidden.is_empty() { &[0] } else { &[0, 0] };
            let keep = g.const_i64(&[kept.len() as i64], kept);
            let rest = g.const_i64(&[1], &[-1]);
            let target = g.op("Concat", &[&keep, &rest, &c], &[("axis", Attr::Int(0))]);
            let by_position = g.op("Reshape", &[&grad, &target], &[]);
            let axis = g.const_i64(&[1], &[-2]);
            g.op("ReduceSum", &[&by_position, &axis], &[("keepdims", Attr::Int(0))])
        }
    };
    let positions = g.op("Mul", &[&h, &w], &[]);
    let positions = g.op("Cast", &[&positions], &[("to", Attr::Int(DataType::Float as i64))]);
    let alpha = g.op("Div", &[&per_channel, &positions], &[]);
    let rest = g.const_i64(&[1], &[-1]);
    let flat_shape = g.op("Concat", &[&n, &c, &rest], &[("axis", Attr::Int(0))]);
    let flat = g.op("Reshape", &[&activations, &flat_shape], &[]);
    let weighted = g.op("MatMul", &[&alpha, &flat], &[]);
    let cam = g.op("Relu", &[&weighted], &[]);
    let k = g.const_i64(&[1], &[classes as i64]);
    let map_shape = g.op("Concat", &[&n, &k, &h, &w], &[("axis", Attr::Int(0))]);
    Ok(g.op("Reshape", &[&cam, &map_shape], &[]))
}

/// Input pixels per cell of `value`'s map: the product of the strides of the convolutions
/// and poolings on the path from the graph's input (each node's first input) to it.
fn stride(nodes: &[NodeProto], value: &str) -> Option<[u32; 2]> {
    let mut stride = [1u32, 1];
    let mut value = value.to_string();
    for _ in 0..nodes.len() {
        let Some(node) = nodes.iter().find(|n| n.output.first() == Some(&value)) else {
            return Some(stride); // reached a graph input
        };
        if matches!(node.op_type.as_str(), "Conv" | "MaxPool" | "AveragePool") {
            match node.attribute.iter().find(|a| a.name == "strides").map(|a| a.ints.as_slice()) {
                Some(&[sh, sw]) => {
                    stride[0] *= u32::try_from(sh).ok()?;
                    stride[1] *= u32::try_from(sw).ok()?;
                }
                Some(_) => return None,
                None => {}
            }
        }
        value = node.input.first()?.clone();
    }
    None
}
