//! The contract read back from real model files: metadata, the threshold a policy resolves
//! to (with and without the model's own), the transform, and the refusals.

use std::path::Path;

use cxr_config::{ChannelOrder, Preprocess, Threshold};
use cxr_onnx::{DataType, Dim, GraphBuilder};
use cxr_store::model_meta::ModelMeta;
use cxr_store::operating_point::OperatingPoint;

use crate::{ModelError, ModelFile};

fn meta(threshold: Option<f64>) -> ModelMeta {
    ModelMeta {
        classes: vec!["NORMAL".into(), "PNEUMONIA".into()],
        size: [64, 48],
        channel_order: ChannelOrder::Bgr,
        positive_class: "PNEUMONIA".into(),
        backbone: "vgg16".into(),
        config_hash: "abc".into(),
        temperature: 1.5,
        threshold,
        threshold_chosen_on: threshold.map(|_| "chosen on its val split (40 images)".into()),
        threshold_target_sensitivity: threshold.map(|_| 0.9),
        preprocess: Some(Preprocess { max_file_bytes: 1, ..Preprocess::default() }),
        prior: None,
        explain: None,
        adapted_from: None,
        shift: None,
    }
}

/// A one-node model carrying `meta`, written to `dir/model.onnx`.
fn write_model(dir: &Path, meta: &ModelMeta) -> std::path::PathBuf {
    let mut g = GraphBuilder::new("tiny");
    let x = g.input("image", DataType::Float, &[Dim::named("N"), Dim::Fixed(2)]);
    let y = g.op("Identity", &[&x], &[]);
    g.output(&y, "probabilities", DataType::Float, &[Dim::named("N"), Dim::Fixed(2)]);
    for (key, value) in meta.to_pairs() {
        g.metadata(key, &value);
    }
    let path = dir.join("model.onnx");
    std::fs::write(&path, cxr_onnx::encode_model(&g.into_model("test"))).unwrap();
    path
}

#[test]
fn a_model_says_its_classes_input_and_preprocessing_and_the_transform_keeps_our_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), &meta(Some(0.8)));
    let model = ModelFile::open(&path).unwrap();
    assert_eq!((model.size, model.channel_order, model.positive), ([64, 48], ChannelOrder::Bgr, 1));
    assert_eq!(model.sha256(), cxr_store::sha256_bytes(&std::fs::read(&path).unwrap()));
    let ours = Preprocess { max_file_bytes: 12345, max_pixels: 678, ..Preprocess::default() };
    let t = model.transform(&ours);
    assert_eq!((t.height, t.width, t.channel_order), (64, 48, ChannelOrder::Bgr));
    assert_eq!((t.max_file_bytes, t.max_pixels), (12345, 678), "limits are this config's, not the model's");
    assert!(model.check_tensors([64, 48], "bgr", Path::new("t")).is_ok());
    let wrong = model.check_tensors([64, 48], "rgb", Path::new("t")).unwrap_err().to_string();
    assert!(wrong.contains("preprocess.size [64, 48] and channel_order bgr"), "{wrong}");
    let other: Vec<String> = vec!["A".into(), "B".into()];
    assert!(matches!(ModelFile::open_for(&path, &other), Err(ModelError::Classes { .. })));
    assert!(matches!(model.grad_cam(), Err(ModelError::NoExplainMetadata { .. })));
}

#[test]
fn the_threshold_comes_from_the_policy_the_models_metadata_or_its_experiments_operating_point() {
    let dir = tempfile::tempdir().unwrap();
    let op_path = dir.path().join("operating_point.json");
    let with = ModelFile::open(&write_model(dir.path(), &meta(Some(0.8125)))).unwrap();
    let d = with.decision(Threshold::FromValidation, &op_path).unwrap();
    assert_eq!((d.threshold, d.target_sensitivity, d.fallback.is_none()), (0.8125, Some(0.9), true));
    assert!(d.source.contains("metadata: chosen on its val split (40 images)"), "{}", d.source);
    let fixed = with.decision(Threshold::Fixed(0.3), &op_path).unwrap();
    assert_eq!((fixed.threshold, fixed.target_sensitivity), (0.3, None));

    let without = ModelFile::open(&write_model(dir.path(), &meta(None))).unwrap();
    let e = without.decision(Threshold::FromValidation, &op_path).unwrap_err().to_string();
    assert!(e.contains("set infer.threshold to a number"), "{e}");
    let op = OperatingPoint {
        split: "val".into(),
        positive_class: "PNEUMONIA".into(),
        target_sensitivity: 0.95,
        threshold: 0.7,
        sensitivity: Some(0.95),
        specificity: Some(0.9),
        temperature: 1.0,
        images: 40,
    };
    op.write(&op_path).unwrap();
    let d = without.decision(Threshold::FromValidation, &op_path).unwrap();
    assert_eq!((d.threshold, d.target_sensitivity), (0.7, Some(0.95)));
    assert!(d.fallback.is_some_and(|f| f.contains("operating_point.json")));
}
