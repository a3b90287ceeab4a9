//! `model`: the backbone, its input normalisation and precision, and the head.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The network: backbone, its input normalisation, and the trained head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    /// `imagenet`, `random`, or a path to an ONNX backbone.
    pub backbone: Backbone,
    /// Input layout of a user-supplied backbone; `auto` reads it from the input shape.
    pub backbone_layout: TensorLayout,
    pub normalization: Normalization,
    /// How the backbone's feature map becomes the head's input vector.
    pub pooling: Pooling,
    pub head: Head,
    /// Arithmetic of the frozen backbone: `fp32`, or `int8` (static post-training
    /// quantization calibrated on training images; `model.quantization`).
    pub precision: Precision,
    pub quantization: Quantization,
}

/// Arithmetic of the frozen backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    /// int8 weights (per output channel) and uint8 activations, ranges calibrated on a
    /// seeded sample of training images.
    Int8,
}

/// How `model.precision: int8` finds each activation's range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quantization {
    pub calibration: RangeCalibration,
    /// Training images the ranges are measured on (a seeded sample; all if fewer).
    pub images: usize,
    /// With `calibration: percentile`, the percentile of each activation's values kept
    /// (the rest saturate).
    pub percentile: f64,
}

impl Default for Quantization {
    fn default() -> Self {
        Self { calibration: RangeCalibration::Minmax, images: 64, percentile: 99.999 }
    }
}

/// Range of an activation for int8: its min and max, or a percentile of its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RangeCalibration {
    Minmax,
    Percentile,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            backbone: Backbone::Imagenet,
            backbone_layout: TensorLayout::Auto,
            normalization: Normalization::Caffe,
            pooling: Pooling::Flatten,
            head: Head::default(),
            precision: Precision::Fp32,
            quantization: Quantization::default(),
        }
    }
}

/// Backbone source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backbone {
    Imagenet,
    Random,
    Path(PathBuf),
}

impl Serialize for Backbone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Backbone::Imagenet => s.serialize_str("imagenet"),
            Backbone::Random => s.serialize_str("random"),
            Backbone::Path(p) => s.serialize_str(&p.to_string_lossy()),
        }
    }
}

impl<'de> Deserialize<'de> for Backbone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "imagenet" => Backbone::Imagenet,
            "random" => Backbone::Random,
            _ if s.ends_with(".onnx") => Backbone::Path(PathBuf::from(s)),
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown value {s:?}, expected one of: imagenet, random, or a path ending in .onnx"
                )));
            }
        })
    }
}

/// How a backbone's image tensor is laid out (`model.backbone_layout`): not to be confused
/// with `cxr_store::layout::Layout`, where an experiment's files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorLayout {
    Auto,
    Nhwc,
    Nchw,
}

/// Input normalisation baked into the model graph (so train and infer cannot disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// What Keras VGG16 expects: BGR, ImageNet channel means subtracted, 0-255 scale.
    Caffe,
    /// RGB / 255, then ImageNet mean/std.
    Torch,
    /// Raw 0-255 RGB (the tutorial's mistake, kept to reproduce it).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Keras `Flatten()`: the head's input size grows with the image size.
    Flatten,
    /// Global average pooling: 512 features at any image size.
    Avg,
    /// Global max pooling.
    Max,
}

/// The trained head: Dense layers with ReLU and dropout, then Dense(classes) + softmax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Head {
    /// Hidden layer widths; `[]` is a logistic regression on the features.
    pub hidden: Vec<usize>,
    pub dropout: f64,
}

impl Default for Head {
    fn default() -> Self {
        Self { hidden: vec![256], dropout: 0.5 }
    }
}
