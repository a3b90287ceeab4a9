//! The four real binaries in sequence on a small generated dataset: every contract
//! file, determinism, resume after a crash, export equivalence, frozen backbone.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use cxr_config::{Adapter, Backbone, ClassWeights, OptimizerKind, Pooling, Synthetic, ValSource};
use cxr_store::npy::NpyReader;

/// A small synthetic experiment; `backbone` is `Random` or `Imagenet`.
fn setup(dir: &Path, backbone: Backbone, epochs: usize) -> PathBuf {
    TestConfig::new("e", &dir.join("runs"), &dir.join("synthetic"))
        .seed(7)
        .with(|c| {
            c.data.adapter = Adapter::Synthetic;
            c.data.synthetic = Synthetic { train_per_class: 16, val_per_class: 20, test_per_class: 8, size: 160 };
            c.model.head.dropout = 0.3;
            c.train.optimizer.kind = OptimizerKind::Adam;
            c.train.optimizer.lr = 0.001;
            c.infer.batch_size = 16;
        })
        .size(32, 32)
        .backbone(backbone)
        .with(|c| c.model.head.hidden = vec![16])
        .epochs(epochs)
        .batch_size(8)
        .bootstrap(50)
        .write(dir)
}

fn all_stages(config: &Path, sets: &[&str]) {
    for stage in ["preprocess", "train", "infer", "report"] {
        ok(run_stage(stage, config, sets));
    }
}

/// history.csv without the wall-time column, which legitimately differs between runs.
fn history_without_seconds(path: &Path) -> Vec<Vec<String>> {
    let rows = read_csv(path);
    let col = rows[0].iter().position(|h| h == "seconds").unwrap();
    rows.into_iter()
        .map(|mut r| {
            r.remove(col);
            r
        })
        .collect()
}

fn read_f32(path: &Path) -> Vec<f32> {
    cxr_store::npy::read::<f32>(path).unwrap().into_iter().collect()
}

#[test]
fn full_pipeline_writes_every_contract_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), Backbone::Random, 3);
    all_stages(&config, &[]);
    let exp = dir.path().join("runs/e");
    for split in ["train", "val", "test"] {
        let images = NpyReader::open(&exp.join(format!("tensors/{split}/images.npy"))).unwrap();
        assert_eq!(&images.shape()[1..], &[32, 32, 3]);
        assert_eq!(images.dtype(), cxr_store::npy::DType::U8);
        let labels = NpyReader::open(&exp.join(format!("tensors/{split}/labels.npy"))).unwrap();
        assert_eq!(labels.dtype(), cxr_store::npy::DType::I64);
        assert_eq!(labels.rows(), images.rows());
        let manifest = read_csv(&exp.join(format!("tensors/{split}/manifest.csv")));
        assert_eq!(manifest.len() - 1, images.rows());
    }
    assert_eq!(read_csv(&exp.join("tensors/rejects.csv"))[0], ["path", "reason"]);
    for file in [
        "train/training_model.onnx",
        "train/eval_model.onnx",
        "train/optimizer_model.onnx",
        "train/checkpoint/state.json",
        "train/model.onnx",
        "train/history.csv",
        "train/config.resolved.yaml",
        "report/epochs.csv",
        "report/metrics.csv",
        "report/confusion_matrix_test.csv",
        "report/confusion_matrix_val.csv",
        "report/roc_test.csv",
        "report/thresholds_val.csv",
        "report/operating_point.csv",
        "report/calibration_test.csv",
        "report/calibration_val.svg",
        "predictions/model.json",
        "report/accuracy.svg",
        "report/loss.png",
        "report/index.html",
    ] {
        assert!(exp.join(file).is_file(), "{file} missing");
    }
    assert_eq!(read_csv(&exp.join("train/history.csv")).len(), 4);
    for split in ["val", "test"] {
        let preds = read_csv(&exp.join(format!("predictions/{split}.csv")));
        assert_eq!(preds[0], ["path", "label", "predicted", "p_NORMAL", "p_PNEUMONIA", "shift_score", "shifted"]);
        for row in &preds[1..] {
            let p: f64 = row[3].parse::<f64>().unwrap() + row[4].parse::<f64>().unwrap();
            assert!((p - 1.0).abs() < 1e-4, "{row:?}");
            assert!(["NORMAL", "PNEUMONIA"].contains(&row[1].as_str()));
        }
    }
    let confusion = read_csv(&exp.join("report/confusion_matrix_test.csv"));
    assert_eq!(confusion[0], ["actual", "NORMAL", "PNEUMONIA"]);
    let total: usize = confusion[1..].iter().flat_map(|r| r[1..].iter()).map(|v| v.parse::<usize>().unwrap()).sum();
    assert_eq!(total, 16);
    let metrics = read_csv(&exp.join("report/metrics.csv"));
    insta::assert_snapshot!("metrics_columns", metrics[0].join(","));
    insta::assert_snapshot!("epochs_columns", read_csv(&exp.join("report/epochs.csv"))[0].join(","));
    let html = std::fs::read_to_string(exp.join("report/index.html")).unwrap();
    assert!(html.contains("<h2>Metrics</h2>") && html.contains("data:image/svg+xml;base64,"));
    assert!(html.contains("NOT pretrained"), "a random backbone must be visible in the report");

    // The gallery: each split's cases, with thumbnails of the images the model saw.
    assert!(html.contains("Cases behind the numbers: <code>test</code>"), "a gallery per split");
    assert!(html.contains("Confident right calls"));
    assert!(html.matches("data:image/png;base64,").count() >= 2, "thumbnails are embedded");
    let preds = read_csv(&exp.join("predictions/test.csv"));
    let wrong: Vec<&Vec<String>> = preds[1..].iter().filter(|r| r[1] != r[2]).collect();
    if let Some(surest) = wrong.iter().filter(|r| r[2] == "PNEUMONIA").max_by(|a, b| a[4].cmp(&b[4])) {
        assert!(html.contains("Most confident false positives"));
        let name = surest[0].rsplit('/').next().unwrap();
        assert!(html.contains(name), "the surest false positive, {name}, is shown");
    }
    ok(run_stage("report", &config, &["report.gallery=0"]));
    let html = std::fs::read_to_string(exp.join("report/index.html")).unwrap();
    assert!(!html.contains("Cases behind the numbers"), "report.gallery: 0 leaves it out");
}

#[test]
fn same_seed_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), Backbone::Random, 3);
    all_stages(&config, &["experiment.name=a"]);
    all_stages(&config, &["experiment.name=b"]);
    let (a, b) = (dir.path().join("runs/a"), dir.path().join("runs/b"));
    for file in ["tensors/train/images.npy", "tensors/val/labels.npy", "train/model.onnx", "predictions/test.csv"] {
        assert!(std::fs::read(a.join(file)).unwrap() == std::fs::read(b.join(file)).unwrap(), "{file} differs");
    }
    assert_eq!(
        history_without_seconds(&a.join("train/history.csv")),
        history_without_seconds(&b.join("train/history.csv"))
    );
}

/// Trains `whole` uninterrupted and `crashed` stopped after epoch 2's checkpoint then
/// resumed, with `sets`; returns both train folders after checking they end identical.
/// A process killed at any moment after that checkpoint leaves the same files (a
/// checkpoint being replaced is recovered: `store::staging`), so this is the crash case
/// without a fault hook in the binary.
fn crash_resume_and_compare(dir: &Path, sets: &[&str]) -> (PathBuf, PathBuf) {
    let config = setup(dir, Backbone::Random, 5);
    let with = |name: &'static str| -> Vec<&str> { [&[name][..], sets].concat() };
    ok(run_stage("preprocess", &config, &with("experiment.name=whole")));
    ok(run_stage("train", &config, &with("experiment.name=whole")));

    ok(run_stage("preprocess", &config, &with("experiment.name=crashed")));
    let mut args = vec!["--config".to_string(), config.to_str().unwrap().to_string()];
    for set in with("experiment.name=crashed") {
        args.extend(["--set".to_string(), set.to_string()]);
    }
    let stopped = ok(bin("train").args(&args).args(["--stop-after-epoch", "2"]).output().unwrap());
    assert!(stopped.contains("stopped after epoch 2"), "{stopped}");
    // The stopped run's files are in the partial folder; no train/ was ever complete.
    let staged = dir.join("runs/crashed/.train.partial");
    assert_eq!(read_csv(&staged.join("history.csv")).len(), 3, "two epochs were saved before the crash");
    assert!(!staged.join("model.onnx").exists() && !dir.join("runs/crashed/train").exists());
    ok(bin("train").args(&args).arg("--resume").output().unwrap());
    let partial = dir.join("runs/crashed/train");
    assert!(!staged.exists(), "the complete run was swapped in");

    let whole = dir.join("runs/whole/train");
    for name in ["dense0.kernel", "dense0.bias", "dense1.kernel", "dense1.bias"] {
        for sub in ["params", "best", "optimizer"] {
            let file = if sub == "optimizer" { format!("m.{name}.npy") } else { format!("{name}.npy") };
            assert_eq!(
                read_f32(&whole.join("checkpoint").join(sub).join(&file)),
                read_f32(&partial.join("checkpoint").join(sub).join(&file)),
                "{sub}/{file}"
            );
        }
    }
    assert_eq!(
        history_without_seconds(&whole.join("history.csv")),
        history_without_seconds(&partial.join("history.csv"))
    );
    assert!(std::fs::read(whole.join("model.onnx")).unwrap() == std::fs::read(partial.join("model.onnx")).unwrap());
    (whole, partial)
}

#[test]
fn resume_after_a_crash_ends_where_an_uninterrupted_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    crash_resume_and_compare(dir.path(), &[]);
}

#[test]
fn augmented_training_is_reproducible_across_a_resume_and_differs_from_plain_training() {
    let dir = tempfile::tempdir().unwrap();
    let augmented = ["train.augment.enabled=true", "train.augment.rotate_degrees=10", "train.augment.brightness=0.2"];
    let (whole, _) = crash_resume_and_compare(dir.path(), &augmented);
    let provenance = std::fs::read_to_string(whole.join("provenance.json")).unwrap();
    assert!(provenance.contains("per-epoch backbone pass"), "{provenance}");

    let config = setup(dir.path(), Backbone::Random, 5);
    ok(run_stage("preprocess", &config, &["experiment.name=plain"]));
    ok(run_stage("train", &config, &["experiment.name=plain"]));
    let plain = history_without_seconds(&dir.path().join("runs/plain/train/history.csv"));
    let augmented = history_without_seconds(&whole.join("history.csv"));
    let train_loss = plain[0].iter().position(|h| h == "train_loss").unwrap();
    assert_ne!(plain[1][train_loss], augmented[1][train_loss], "augmentation must change what the head sees");
    let val_loss = plain[0].iter().position(|h| h == "val_loss").unwrap();
    assert_ne!(plain[1][val_loss], augmented[1][val_loss]);
}

#[test]
fn resume_refuses_a_changed_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), Backbone::Random, 2);
    ok(run_stage("preprocess", &config, &[]));
    ok(run_stage("train", &config, &[]));
    let out = bin("train")
        .args(["--config", config.to_str().unwrap(), "--set", "train.optimizer.lr=0.01", "--resume"])
        .output()
        .unwrap();
    let err = fails(out);
    assert!(err.contains("different config"), "{err}");
}

#[test]
fn exported_model_equals_features_then_head_and_backbone_stays_frozen() {
    exported_model_equals_features_then_head("fp32");
}

#[test]
fn an_int8_model_equals_its_features_then_head_and_keeps_the_backbone_within_half_a_step() {
    exported_model_equals_features_then_head("int8");
}

fn exported_model_equals_features_then_head(precision: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), Backbone::Random, 2);
    ok(run_stage("preprocess", &config, &[]));
    let precision_set = format!("model.precision={precision}");
    ok(run_stage("train", &config, &[&precision_set]));
    let exp = dir.path().join("runs/e");
    let cfg = cxr_config::Config::load(Some(&config), &[]).unwrap();
    let engine = cxr_engine::Engine::open(&cfg.runtime, cxr_config::Device::Cpu).unwrap();
    let backbone_sha256 = provenance_tool(&exp.join("train/provenance.json"), "backbone_sha256");

    // model.onnx on the stored val images.
    let proto = cxr_onnx::read_model(&exp.join("train/model.onnx")).unwrap();
    let (mut model, _) = engine.session_from_file(&exp.join("train/model.onnx")).unwrap();
    let mut images = NpyReader::open(&exp.join("tensors/val/images.npy")).unwrap();
    let n = images.rows();
    let pixels = images.read_rows_bytes(0, n).unwrap();
    let input = cxr_engine::Input::U8(vec![n, 32, 32, 3], pixels);
    let exported: Vec<f32> = model.run(vec![("image".into(), input)], &["probabilities"]).unwrap().remove(0);

    // eval_model.onnx on the cached val features with the best checkpoint's parameters.
    let (mut eval, _) = engine.session_from_file(&exp.join("train/eval_model.onnx")).unwrap();
    let layout = cxr_store::layout::Layout::new(&cfg);
    let content = cxr_train::features::split_content(&layout, "val", &cfg.section_hash(&["preprocess"])).unwrap();
    let cache = std::fs::read_dir(dir.path().join("runs/.feature-cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        // Split folders hold a key.json; `int8-ranges/` holds calibrations.
        .find(|d| {
            std::fs::read_to_string(d.join("key.json"))
                .is_ok_and(|key| key.contains(&content) && key.contains(&backbone_sha256))
        })
        .expect("the val split's cached features");
    let features = read_f32(&cache.join("features.npy"));
    let dim = features.len() / n;
    let mut inputs: Vec<(String, cxr_engine::Input)> = vec![
        ("features".into(), cxr_engine::Input::F32(vec![n, dim], features)),
        ("labels".into(), cxr_engine::Input::I64(vec![n], vec![0i64; n])),
        ("weights".into(), cxr_engine::Input::F32(vec![n], vec![1.0f32; n])),
    ];
    for (name, shape) in [
        ("dense0.kernel", vec![dim, 16]),
        ("dense0.bias", vec![16]),
        ("dense1.kernel", vec![16, 2]),
        ("dense1.bias", vec![2]),
    ] {
        let values = read_f32(&exp.join(format!("train/checkpoint/best/{name}.npy")));
        inputs.push((name.into(), cxr_engine::Input::F32(shape, values)));
    }
    let raw: Vec<f32> = eval.run(inputs, &["probabilities"]).unwrap().remove(0);
    // The exported head divides its logits by the temperature fitted on val.
    let meta = cxr_store::model_meta::ModelMeta::from_lookup(|k| cxr_onnx::metadata(&proto, k)).unwrap();
    let staged: Vec<f32> = raw
        .chunks(2)
        .flat_map(|p| cxr_metrics::apply_temperature(&[p[0] as f64, p[1] as f64], meta.temperature))
        .map(|v| v as f32)
        .collect();
    let worst = exported.iter().zip(&staged).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "exported model differs from features-then-head by {worst}");
    // Temperature changes the probabilities, never their order: the ROC AUC stays.
    let labels: Vec<bool> =
        cxr_store::npy::read::<i64>(&exp.join("tensors/val/labels.npy")).unwrap().iter().map(|&l| l == 1).collect();
    let pos = |p: &[f32]| p.chunks(2).map(|c| c[1] as f64).collect::<Vec<f64>>();
    let auc_raw = cxr_metrics::auc(&pos(&raw), &labels).unwrap();
    let auc_exported = cxr_metrics::auc(&pos(&exported), &labels).unwrap();
    assert!((auc_raw - auc_exported).abs() < 1e-9, "AUC {auc_raw} before vs {auc_exported} after temperature");
    if (meta.temperature - 1.0).abs() > 0.05 {
        let moved = raw.iter().zip(&exported).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(moved > 1e-3, "temperature {} left the probabilities unchanged", meta.temperature);
    }

    // The backbone in model.onnx is exactly the seeded random VGG16 (int8: each weight
    // within half a quantization step of it): training never touched it.
    let graph = proto.graph.unwrap();
    let initializer = |name: String| graph.initializer.iter().find(|t| t.name == name).unwrap();
    for conv in cxr_train::backbone::random_convs(7) {
        let kernel = format!("backbone/{}/kernel", conv.name);
        if precision == "fp32" {
            assert!(initializer(kernel).to_f32_vec().unwrap() == conv.kernel, "{} changed", conv.name);
            continue;
        }
        let q = initializer(format!("{kernel}/q"));
        assert_eq!(q.data_type, 3, "{kernel} is int8");
        let scales = initializer(format!("{kernel}/q.scale")).to_f32_vec().unwrap();
        let per_channel = conv.kernel.len() / scales.len();
        for (i, (&stored, &original)) in q.raw_data.iter().zip(&conv.kernel).enumerate() {
            let scale = scales[i / per_channel];
            let restored = stored as i8 as f32 * scale;
            assert!((restored - original).abs() <= scale * 0.5 + 1e-6, "{kernel}[{i}]: {restored} for {original}");
        }
    }
    assert!(meta.backbone.contains("int8") == (precision == "int8"), "backbone {}", meta.backbone);
}

#[test]
fn imagenet_backbone_learns_the_synthetic_task() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), Backbone::Imagenet, 15);
    let sets = [
        "preprocess.size=[64, 64]",
        "data.synthetic={train_per_class: 60, val_per_class: 20, test_per_class: 2, size: 400}",
    ];
    ok(run_stage("preprocess", &config, &sets));
    ok(run_stage("train", &config, &sets));
    let history = read_csv(&dir.path().join("runs/e/train/history.csv"));
    let col = |name: &str| history[0].iter().position(|h| h == name).unwrap();
    let first: f64 = history[1][col("train_loss")].parse().unwrap();
    let last: f64 = history.last().unwrap()[col("train_loss")].parse().unwrap();
    assert!(last < first * 0.8, "train loss {first} -> {last}");
    let best_auc = history[1..].iter().map(|r| r[col("val_auc")].parse::<f64>().unwrap()).fold(0.0, f64::max);
    assert!(best_auc > 0.8, "best validation AUC {best_auc}");
}

#[test]
fn a_diverging_run_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), Backbone::Random, 30);
    // Raw 0-255 input into a random VGG gives huge features; enormous class weights and
    // SGD at lr 10 overflow float32 within a few steps.
    let sets = [
        "model.normalization=none",
        "train.optimizer={kind: sgd, lr: 10, momentum: 0.9}",
        "train.class_weights=[1.0e30, 1.0e30]",
    ];
    ok(run_stage("preprocess", &config, &sets));
    let err = fails(run_stage("train", &config, &sets));
    assert!(err.contains("training diverged:"), "{err}");
    assert!(err.contains("Lower train.optimizer.lr"), "{err}");
    assert!(!dir.path().join("runs/e/train").exists(), "no train folder comes of a diverged run");
    let train = dir.path().join("runs/e/.train.partial");
    assert!(!train.join("model.onnx").exists(), "no model is exported from a diverged run");
    // Whatever epochs completed before the blow-up are intact and loadable.
    if train.join("checkpoint/state.json").exists() {
        let params = std::fs::read_dir(train.join("checkpoint/params")).unwrap().count();
        assert_eq!(params, 4);
        for entry in std::fs::read_dir(train.join("checkpoint/params")).unwrap() {
            let values = read_f32(&entry.unwrap().path());
            assert!(values.iter().all(|v| v.is_finite()), "a checkpoint holds non-finite parameters");
        }
    }
}

/// Validation accuracy the real-data subset run must reach (measured: see the test).
const REAL_DATA_MIN_VAL_ACCURACY: f64 = 0.85;

#[test]
fn shared_data_chest_xray_subset_reaches_the_stated_validation_accuracy() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/chest_xray_224/train");
    assert!(data.is_dir(), "shared data missing: expected {} (CI always has it)", data.display());
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new("real", &dir.path().join("runs"), &data)
        .seed(42)
        .with(|c| {
            c.data.val_source = ValSource::FromTrain;
            c.data.limit_per_class = Some(150);
            c.model.pooling = Pooling::Avg;
            c.model.head.dropout = 0.3;
            c.train.optimizer.kind = OptimizerKind::Adam;
            c.train.optimizer.lr = 0.001;
            c.train.class_weights = ClassWeights::Balanced;
        })
        .val_fraction(0.1)
        .size(64, 64)
        .backbone(Backbone::Imagenet)
        .with(|c| c.model.head.hidden = vec![64])
        .epochs(25)
        .batch_size(32)
        .write(dir.path());
    for stage in ["preprocess", "train", "infer", "report"] {
        ok(run_stage(stage, &config, &[]));
    }
    let metrics = read_csv(&dir.path().join("runs/real/report/metrics.csv"));
    let col = |name: &str| metrics[0].iter().position(|h| h == name).unwrap();
    // Judged on the estimate split: nothing (epoch, temperature, threshold) was chosen on it.
    let estimate = metrics.iter().find(|r| r[0] == "estimate").expect("an estimate row");
    assert_eq!(estimate[col("role")], "estimate");
    let accuracy: f64 = estimate[col("accuracy")].parse().unwrap();
    let n: usize = estimate[col("n")].parse().unwrap();
    assert!(n > 200, "the estimate split has {n} images");
    assert!(accuracy >= REAL_DATA_MIN_VAL_ACCURACY, "estimate accuracy {accuracy} < {REAL_DATA_MIN_VAL_ACCURACY}");
}
