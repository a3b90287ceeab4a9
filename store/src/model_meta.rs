//! Metadata keys of the exported `EXP/train/model.onnx`: written by `train`, checked by `infer`.

/// Class names, comma-separated, in label-id order.
pub const CLASSES: &str = "cxr.classes";
/// Input image size `H,W`.
pub const SIZE: &str = "cxr.size";
/// Channel order of the uint8 input (`rgb` or `bgr`).
pub const CHANNEL_ORDER: &str = "cxr.channel_order";
/// The class sensitivity is measured on.
pub const POSITIVE_CLASS: &str = "cxr.positive_class";
/// Which backbone the model carries.
pub const BACKBONE: &str = "cxr.backbone";
/// Hash of the config sections the model was trained under.
pub const CONFIG_HASH: &str = "cxr.config_hash";
