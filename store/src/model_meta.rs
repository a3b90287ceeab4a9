//! The metadata of an exported `model.onnx`: written by `train`, read by `infer`, defined
//! here only. The model file alone is enough to predict as its experiment does: input
//! contract and preprocessing, classes, temperature (built into the graph, recorded here)
//! and the decision threshold chosen on validation. Nothing in it names the experiment
//! folder, so the same training gives the same bytes wherever it ran.

use cxr_config::{ChannelOrder, Preprocess};

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
/// The temperature dividing the head's logits before the softmax (1 = none).
pub const TEMPERATURE: &str = "cxr.temperature";
/// The decision threshold on the positive class chosen on validation.
pub const THRESHOLD: &str = "cxr.threshold";
/// How and on which images that threshold was chosen.
pub const THRESHOLD_CHOSEN_ON: &str = "cxr.threshold_chosen_on";
pub const THRESHOLD_TARGET: &str = "cxr.threshold_target_sensitivity";
/// The `preprocess` config section (JSON) that made the pixels it was trained on.
pub const PREPROCESS: &str = "cxr.preprocess";
/// The positive prevalence its calibrated probabilities assume: their mean on the val
/// split the temperature was fitted on (`infer.adaptation: prior` starts from it).
pub const PRIOR: &str = "cxr.prior";
/// Where Grad-CAM reads the graph (JSON, [`ExplainMeta`]): the last convolution's
/// activations and each Dense layer of the head.
pub const EXPLAIN: &str = "cxr.explain";
/// The cohort-shift monitor (JSON, [`ShiftMeta`]): the model's second output `shift_score`
/// and the scores of its validation images that a cohort's are compared with.
pub const SHIFT: &str = "cxr.shift";

/// What `model.onnx`'s `shift_score` output means and what it is compared with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftMeta {
    /// What the score is computed from (the head's features, or their channel means).
    pub features: String,
    pub dim: usize,
    /// Ledoit-Wolf shrinkage of the training features' covariance.
    pub shrinkage: f64,
    pub train_images: usize,
    /// The validation images' scores, sorted: the reference a cohort's are tested against.
    pub val_scores: Vec<f32>,
    /// The 95th and 99th percentiles of `val_scores`; above the 99th an image is `shifted`.
    pub p95: f64,
    pub p99: f64,
}

/// The source model an adapted model was refitted from, and with how many local images
/// (JSON, [`AdaptedFrom`]); absent in a model trained from its own data alone.
pub const ADAPTED_FROM: &str = "cxr.adapted_from";

/// What `train --adapt-from` records in the model it writes: which model it adapted and
/// on what local sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptedFrom {
    /// The source model's path as the run found it (`SOURCE_EXP/train/model.onnx`).
    pub source_model: String,
    pub source_sha256: String,
    /// Labelled local images the head was refitted with, and their patients.
    pub local_images: usize,
    pub local_patients: usize,
    /// The weight of one local image relative to one source image.
    pub local_weight: f64,
    /// Cross-fitting folds the weight, temperature and threshold were chosen with.
    pub folds: usize,
}

/// The values of `model.onnx` that a Grad-CAM graph (`cxr-explain`) is built from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainMeta {
    /// The activations Grad-CAM weighs: the last convolution's (the input of the backbone's
    /// final max-pool when it ends with one, else its output).
    pub activations: String,
    /// `nchw` or `nhwc`: the layout of those activations.
    pub layout: String,
    /// How the backbone's output became the head's input.
    pub pooling: cxr_config::Pooling,
    /// The head's Dense layers, input first.
    pub layers: Vec<ExplainLayer>,
}

/// One Dense layer of the head: `output = input x kernel + bias` (before any ReLU).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainLayer {
    /// The initialiser holding the `[inputs, outputs]` kernel.
    pub kernel: String,
    /// The value the layer computes (the last layer's are the logits).
    pub output: String,
}

/// Everything `model.onnx` says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMeta {
    pub classes: Vec<String>,
    pub size: [u32; 2],
    pub channel_order: ChannelOrder,
    pub positive_class: String,
    pub backbone: String,
    pub config_hash: String,
    pub temperature: f64,
    pub threshold: Option<f64>,
    pub threshold_chosen_on: Option<String>,
    /// The sensitivity the threshold was chosen to reach (absent in older models).
    pub threshold_target_sensitivity: Option<f64>,
    /// How its training images were decoded and resized (absent in older models).
    pub preprocess: Option<Preprocess>,
    /// The positive prevalence its probabilities assume (absent in older models and
    /// with more than two classes).
    pub prior: Option<f64>,
    /// Where Grad-CAM reads the graph (absent in older models).
    pub explain: Option<ExplainMeta>,
    /// Set in a model refitted from another by `train --adapt-from`.
    pub adapted_from: Option<AdaptedFrom>,
    /// The cohort-shift monitor, when the model has a `shift_score` output.
    pub shift: Option<ShiftMeta>,
}

/// The text of a channel order in model metadata and `tensors/meta.json`.
pub fn channel_order_name(order: ChannelOrder) -> &'static str {
    match order {
        ChannelOrder::Rgb => "rgb",
        ChannelOrder::Bgr => "bgr",
    }
}

impl ModelMeta {
    /// The `(key, value)` pairs to store in the model's `metadata_props`.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            (CLASSES, self.classes.join(",")),
            (SIZE, format!("{},{}", self.size[0], self.size[1])),
            (CHANNEL_ORDER, channel_order_name(self.channel_order).to_string()),
            (POSITIVE_CLASS, self.positive_class.clone()),
            (BACKBONE, self.backbone.clone()),
            (CONFIG_HASH, self.config_hash.clone()),
            (TEMPERATURE, format!("{:?}", self.temperature)),
        ];
        if let Some(t) = self.threshold {
            pairs.push((THRESHOLD, format!("{t:?}")));
        }
        if let Some(on) = &self.threshold_chosen_on {
            pairs.push((THRESHOLD_CHOSEN_ON, on.clone()));
        }
        if let Some(t) = self.threshold_target_sensitivity {
            pairs.push((THRESHOLD_TARGET, format!("{t:?}")));
        }
        if let Some(p) = &self.preprocess {
            pairs.push((PREPROCESS, serde_json::to_string(p).expect("serialisable")));
        }
        if let Some(p) = self.prior {
            pairs.push((PRIOR, format!("{p:?}")));
        }
        if let Some(e) = &self.explain {
            pairs.push((EXPLAIN, serde_json::to_string(e).expect("serialisable")));
        }
        if let Some(a) = &self.adapted_from {
            pairs.push((ADAPTED_FROM, serde_json::to_string(a).expect("serialisable")));
        }
        if let Some(s) = &self.shift {
            pairs.push((SHIFT, serde_json::to_string(s).expect("serialisable")));
        }
        pairs
    }

    /// Reads the metadata through `get` (key -> value); the error names the bad key.
    pub fn from_lookup<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<ModelMeta, String> {
        let required = |key: &str| get(key).ok_or_else(|| format!("no {key:?} metadata; was it exported by `train`?"));
        let number = |key: &str| -> Result<Option<f64>, String> {
            get(key)
                .map(|v| {
                    v.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| format!("bad {key} metadata {v:?}"))
                })
                .transpose()
        };
        let classes: Vec<String> = required(CLASSES)?.split(',').map(str::to_string).collect();
        let size: Vec<u32> = required(SIZE)?.split(',').filter_map(|v| v.parse().ok()).collect();
        let [h, w] = size[..] else {
            return Err(format!("bad {SIZE} metadata"));
        };
        let channel_order = match required(CHANNEL_ORDER)? {
            "rgb" => ChannelOrder::Rgb,
            "bgr" => ChannelOrder::Bgr,
            other => return Err(format!("bad {CHANNEL_ORDER} metadata {other:?}, expected rgb or bgr")),
        };
        let positive_class = required(POSITIVE_CLASS)?.to_string();
        if !classes.contains(&positive_class) {
            return Err(format!("{POSITIVE_CLASS} {positive_class:?} is not one of its classes"));
        }
        let threshold = number(THRESHOLD)?;
        if threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return Err(format!("bad {THRESHOLD} metadata {threshold:?}"));
        }
        let prior = number(PRIOR)?;
        if prior.is_some_and(|p| !(p > 0.0 && p < 1.0)) {
            return Err(format!("bad {PRIOR} metadata {prior:?}, expected a number strictly between 0 and 1"));
        }
        Ok(ModelMeta {
            classes,
            size: [h, w],
            channel_order,
            positive_class,
            backbone: get(BACKBONE).unwrap_or("unknown").to_string(),
            config_hash: get(CONFIG_HASH).unwrap_or_default().to_string(),
            temperature: number(TEMPERATURE)?.unwrap_or(1.0),
            threshold,
            threshold_chosen_on: get(THRESHOLD_CHOSEN_ON).map(str::to_string),
            threshold_target_sensitivity: number(THRESHOLD_TARGET)?,
            preprocess: get(PREPROCESS)
                .map(|v| serde_json::from_str(v).map_err(|e| format!("bad {PREPROCESS} metadata: {e}")))
                .transpose()?,
            prior,
            explain: get(EXPLAIN)
                .map(|v| serde_json::from_str(v).map_err(|e| format!("bad {EXPLAIN} metadata: {e}")))
                .transpose()?,
            adapted_from: get(ADAPTED_FROM)
                .map(|v| serde_json::from_str(v).map_err(|e| format!("bad {ADAPTED_FROM} metadata: {e}")))
                .transpose()?,
            shift: get(SHIFT)
                .map(|v| serde_json::from_str(v).map_err(|e| format!("bad {SHIFT} metadata: {e}")))
                .transpose()?,
        })
    }

    /// Label id of the positive class.
    pub fn positive(&self) -> usize {
        self.classes.iter().position(|c| *c == self.positive_class).expect("checked when read")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ModelMeta {
        ModelMeta {
            classes: vec!["NORMAL".into(), "PNEUMONIA".into()],
            size: [224, 224],
            channel_order: ChannelOrder::Bgr,
            positive_class: "PNEUMONIA".into(),
            backbone: "vgg16".into(),
            config_hash: "abc".into(),
            temperature: 1.7,
            threshold: Some(0.8125),
            threshold_chosen_on: Some("val".into()),
            threshold_target_sensitivity: Some(0.95),
            preprocess: Some(Preprocess::default()),
            prior: Some(0.74),
            explain: Some(ExplainMeta {
                activations: "backbone/relu_13".into(),
                layout: "nchw".into(),
                pooling: cxr_config::Pooling::Avg,
                layers: vec![ExplainLayer { kernel: "head/dense0.kernel".into(), output: "gemm_9".into() }],
            }),
            adapted_from: Some(AdaptedFrom {
                source_model: "runs/kermany/train/model.onnx".into(),
                source_sha256: "0f".repeat(32),
                local_images: 200,
                local_patients: 150,
                local_weight: 16.0,
                folds: 5,
            }),
            shift: Some(ShiftMeta {
                features: "the head's input features".into(),
                dim: 512,
                shrinkage: 0.25,
                train_images: 4000,
                val_scores: vec![0.5, 0.75, 1.0, 1.25],
                p95: 1.2,
                p99: 1.24,
            }),
        }
    }

    #[test]
    fn metadata_round_trips_and_bad_values_name_their_key() {
        let pairs = meta().to_pairs();
        let get = |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
        assert_eq!(ModelMeta::from_lookup(get).unwrap(), meta());
        let bad_order = |k: &str| if k == CHANNEL_ORDER { Some("gbr") } else { get(k) };
        assert!(ModelMeta::from_lookup(bad_order).unwrap_err().contains("cxr.channel_order"));
        let bad_threshold = |k: &str| if k == THRESHOLD { Some("NaN") } else { get(k) };
        assert!(ModelMeta::from_lookup(bad_threshold).unwrap_err().contains("cxr.threshold"));
        let bad_prior = |k: &str| if k == PRIOR { Some("1") } else { get(k) };
        assert!(ModelMeta::from_lookup(bad_prior).unwrap_err().contains("cxr.prior"));
        let bad_explain = |k: &str| if k == EXPLAIN { Some("{\"activations\": 3}") } else { get(k) };
        assert!(ModelMeta::from_lookup(bad_explain).unwrap_err().contains("cxr.explain"));
        let bad_adapted = |k: &str| if k == ADAPTED_FROM { Some("{}") } else { get(k) };
        assert!(ModelMeta::from_lookup(bad_adapted).unwrap_err().contains("cxr.adapted_from"));
    }
}
