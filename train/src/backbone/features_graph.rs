//! The features model: the stored uint8 NHWC images, the preprocessing the backbone expects
//! (so train and infer cannot disagree on it), the backbone and the pooling, in one graph.

use std::sync::Arc;

use cxr_config::{ChannelOrder, Model, Normalization, Pooling, Preprocess, TensorLayout};
use cxr_onnx::{Attr, DataType, Dim, GraphBuilder};

use super::{BackboneError, LoadedBackbone, Spliced, splice};

/// Settings of the features model besides the backbone (serialised into the cache keys of
/// features and int8 ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FeatureSpec {
    pub height: u32,
    pub width: u32,
    /// Channel order of the stored uint8 tensors.
    pub stored_order: ChannelOrder,
    pub normalization: Normalization,
    pub pooling: Pooling,
}

impl FeatureSpec {
    /// The stored tensors' size and channel order (`preprocess`), and the normalization and
    /// pooling `model` names.
    pub fn from_config(preprocess: &Preprocess, model: &Model) -> FeatureSpec {
        FeatureSpec {
            height: preprocess.size[0],
            width: preprocess.size[1],
            stored_order: preprocess.channel_order,
            normalization: model.normalization,
            pooling: model.pooling,
        }
    }
}

/// Appends the input preprocessing nodes: uint8 NHWC `image` -> float in the backbone's layout.
pub(crate) fn preprocessing(g: &mut GraphBuilder, spec: &FeatureSpec, layout: TensorLayout) -> String {
    let image = g.input(
        "image",
        DataType::Uint8,
        &[Dim::named("N"), Dim::Fixed(spec.height as i64), Dim::Fixed(spec.width as i64), Dim::Fixed(3)],
    );
    let wanted = match spec.normalization {
        Normalization::Caffe => ChannelOrder::Bgr,
        Normalization::Torch | Normalization::None => ChannelOrder::Rgb,
    };
    let reorder = wanted != spec.stored_order;
    let reverse = |g: &mut GraphBuilder, x: &str, axis: i64| {
        let indices = g.const_i64(&[3], &[2, 1, 0]);
        g.op("Gather", &[x, &indices], &[("axis", Attr::Int(axis))])
    };
    if layout == TensorLayout::Nchw {
        // On NCHW the uint8 pixels are transposed and reordered (a quarter of the bytes of
        // float), the reorder moves whole planes, and each per-channel constant is one
        // scalar per plane; broadcasting `[3]` over NHWC's last axis instead runs in rows of
        // 3 values (at 224 px, 32 images: 22 ms against 4 ms, 1.6% of an int8 pass).
        let mut x = g.op("Transpose", &[&image], &[("perm", Attr::Ints(vec![0, 3, 1, 2]))]);
        if reorder {
            x = reverse(g, &x, 1);
        }
        x = g.op("Cast", &[&x], &[("to", Attr::Int(DataType::Float as i64))]);
        normalize(g, x, spec.normalization, &[1, 3, 1, 1], wanted)
    } else {
        let x = g.op("Cast", &[&image], &[("to", Attr::Int(DataType::Float as i64))]);
        // The normalisation runs in the stored channel order (its constants put in that order).
        let x = normalize(g, x, spec.normalization, &[3], spec.stored_order);
        if reorder { reverse(g, &x, 3) } else { x }
    }
}

/// Appends `normalization` of float pixels whose channels are in `order`, with its
/// per-channel constants of `shape` (broadcast along the channel axis).
fn normalize(
    g: &mut GraphBuilder,
    x: String,
    normalization: Normalization,
    shape: &[i64],
    order: ChannelOrder,
) -> String {
    // The constants below are in RGB order.
    let per_channel = |rgb: [f32; 3]| if order == ChannelOrder::Bgr { [rgb[2], rgb[1], rgb[0]] } else { rgb };
    match normalization {
        // Keras `preprocess_input(mode="caffe")`: BGR means of ImageNet, no scaling.
        Normalization::Caffe => {
            let mean = g.const_f32(shape, &per_channel([123.68, 116.779, 103.939]));
            g.op("Sub", &[&x, &mean], &[])
        }
        Normalization::Torch => {
            let scale = g.const_f32(&[], &[255.0]);
            let mean = g.const_f32(shape, &per_channel([0.485, 0.456, 0.406]));
            let std = g.const_f32(shape, &per_channel([0.229, 0.224, 0.225]));
            let x = g.op("Div", &[&x, &scale], &[]);
            let x = g.op("Sub", &[&x, &mean], &[]);
            g.op("Div", &[&x, &std], &[])
        }
        Normalization::None => x,
    }
}

/// Appends pooling of a feature map in `layout` into `[N, F]`.
pub(crate) fn pool(g: &mut GraphBuilder, fmap: &str, layout: TensorLayout, pooling: Pooling) -> String {
    let nchw = |g: &mut GraphBuilder, x: &str| match layout {
        TensorLayout::Nhwc => g.op("Transpose", &[x], &[("perm", Attr::Ints(vec![0, 3, 1, 2]))]),
        _ => x.to_string(),
    };
    match pooling {
        // Keras Flatten after a channels-last feature map: flatten in NHWC order.
        Pooling::Flatten => {
            let nhwc = match layout {
                TensorLayout::Nhwc => fmap.to_string(),
                _ => g.op("Transpose", &[fmap], &[("perm", Attr::Ints(vec![0, 2, 3, 1]))]),
            };
            g.op("Flatten", &[&nhwc], &[("axis", Attr::Int(1))])
        }
        Pooling::Avg => {
            let x = nchw(g, fmap);
            let p = g.op("GlobalAveragePool", &[&x], &[]);
            g.op("Flatten", &[&p], &[("axis", Attr::Int(1))])
        }
        Pooling::Max => {
            let x = nchw(g, fmap);
            let p = g.op("GlobalMaxPool", &[&x], &[]);
            g.op("Flatten", &[&p], &[("axis", Attr::Int(1))])
        }
    }
}

/// Builds the graph body shared by the features model and the exported model:
/// `image` (uint8 NHWC) -> preprocessing -> backbone -> pooling. Returns the builder, the
/// features value and the backbone's values.
pub(crate) fn features_graph(
    backbone: &LoadedBackbone,
    spec: &FeatureSpec,
) -> Result<(GraphBuilder, String, Spliced), BackboneError> {
    let mut g = GraphBuilder::new("features");
    let x = preprocessing(&mut g, spec, backbone.layout);
    let nchw_size = (backbone.layout == TensorLayout::Nchw).then_some((spec.height, spec.width));
    let spliced = splice(&mut g, &backbone.model, &x, nchw_size)?;
    let features = pool(&mut g, &spliced.output, backbone.layout, spec.pooling);
    Ok((g, features, spliced))
}

/// The features graph (preprocessing, backbone, pooling) encoded once and shared: the
/// features model that ONNX Runtime runs and the exported `model.onnx` both start with
/// these bytes, and differ only in the small part appended to them (see
/// [`GraphBuilder::continuation`]).
#[derive(Debug)]
pub struct EncodedFeatures {
    /// The encoded first part: nearly all of either model's bytes.
    pub prefix: Arc<Vec<u8>>,
    continuation: GraphBuilder,
    opset: i64,
    features: String,
    /// The last convolution's activations and their layout, for Grad-CAM.
    pub activations: (String, &'static str),
}

impl EncodedFeatures {
    pub fn build(backbone: &LoadedBackbone, spec: &FeatureSpec) -> Result<EncodedFeatures, BackboneError> {
        let (g, features, spliced) = features_graph(backbone, spec)?;
        let continuation = g.continuation();
        let opset = g.opset();
        let prefix = Arc::new(cxr_onnx::encode_model(&g.into_model("cxr-train")));
        let layout = if backbone.layout == TensorLayout::Nhwc { "nhwc" } else { "nchw" };
        Ok(EncodedFeatures { prefix, continuation, opset, features, activations: (spliced.activations, layout) })
    }

    /// A builder for the rest of a model, and the features value it starts from.
    pub fn tail(&self) -> (GraphBuilder, &str) {
        (self.continuation.continuation(), &self.features)
    }

    /// Encodes `tail` (from [`EncodedFeatures::tail`]) as the bytes to append to the prefix.
    pub fn encode_tail(&self, tail: GraphBuilder) -> Vec<u8> {
        cxr_onnx::encode_model(&tail.into_tail_model(self.opset))
    }

    /// The features model: uint8 `image` `[N,H,W,3]` -> `features` `[N,F]`.
    pub fn features_model(&self) -> Vec<u8> {
        let (mut tail, features) = self.tail();
        tail.output(features, "features", DataType::Float, &[Dim::named("N"), Dim::named("F")]);
        let tail = self.encode_tail(tail);
        let mut bytes = Vec::with_capacity(self.prefix.len() + tail.len());
        bytes.extend_from_slice(&self.prefix);
        bytes.extend_from_slice(&tail);
        bytes
    }
}
