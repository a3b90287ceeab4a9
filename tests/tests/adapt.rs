//! Site adaptation (`train --adapt-from`): a source experiment's model refitted with a
//! new site's labelled local sample. On a synthetic site where the source model's sign
//! means the opposite, the adapted model beats the source on the site's untouched test
//! split; its `model.onnx` alone reproduces the site's predictions; the cross-fitting
//! never lets a model score an image it saw (labels that are noise stay at chance); the
//! label-budget curve rises and carries intervals; incompatible sources are refused.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use cxr_config::{ClassWeights, Monitor, OptimizerKind, Pooling, Threshold};
use image::{DynamicImage, GrayImage, ImageFormat};

/// A grey image; `patch` adds the bright central patch the source model learns as PNEUMONIA.
fn image(seed: u32, patch: bool) -> DynamicImage {
    let (w, h) = (80 + seed % 7, 70 + seed % 5);
    DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| {
        let base = ((x * 7 + y * 3 + seed * 13) % 60 + 40) as u8;
        let inside = patch && x > w / 3 && x < 2 * w / 3 && y > h / 3 && y < 2 * h / 3;
        image::Luma([if inside { base + 120 } else { base }])
    }))
}

/// `n` images per class in `<root>/<split>/<CLASS>/`, each its own patient; at a `flipped`
/// site the patch marks NORMAL images instead (the source's sign means the opposite).
fn write_site(root: &Path, split: &str, n: u32, offset: u32, flipped: bool) {
    for i in 0..n {
        for (class, pneumonia) in [("NORMAL", false), ("PNEUMONIA", true)] {
            let seed = i + offset;
            let path = root.join(split).join(class).join(format!("img{seed:04}.png"));
            save(&image(seed, pneumonia != flipped), &path, ImageFormat::Png);
        }
    }
}

/// What every experiment here shares: a small random-backbone head, trained long enough
/// to learn the patch, adaptation with 4 folds and a two-point label budget.
fn recipe(config: TestConfig) -> TestConfig {
    config.size(32, 32).random_backbone(&[16]).with(|c| {
        c.model.pooling = Pooling::Avg;
        c.model.head.dropout = 0.2;
        c.train.epochs = 30;
        c.train.batch_size = 8;
        c.train.optimizer.kind = OptimizerKind::Adam;
        c.train.optimizer.lr = 0.003;
        c.train.class_weights = ClassWeights::Balanced;
        c.train.early_stopping.monitor = Monitor::Last;
        c.train.adapt.folds = 4;
        c.train.adapt.budget = vec![8, 16];
        c.infer.threshold = Threshold::FromValidation;
        c.report.bootstrap = 50;
        c.report.gallery = 0;
    })
}

/// A trained source experiment on an unflipped site; returns its folder.
fn source(dir: &Path) -> PathBuf {
    let root = dir.join("source_data");
    write_site(&root, "train", 24, 0, false);
    let config = recipe(TestConfig::new("source", &dir.join("runs"), &root).val_fraction(0.25).estimate_fraction(0.0))
        .write(&dir.join("source_cfg"));
    ok(run_stage("preprocess", &config, &[]));
    ok(run_stage("train", &config, &[]));
    dir.join("runs/source")
}

/// A site experiment's config: `local` labelled images per class (train), `test` more.
fn site(dir: &Path, name: &str, local: u32, test: u32) -> PathBuf {
    let root = dir.join(format!("{name}_data"));
    write_site(&root, "train", local, 1000, true);
    if test > 0 {
        write_site(&root, "test", test, 2000, true);
    }
    recipe(TestConfig::new(name, &dir.join("runs"), &root).val_fraction(0.25)).write(&dir.join(format!("{name}_cfg")))
}

fn adapt(config: &Path, source: &Path) -> std::process::Output {
    bin("train").arg("--config").arg(config).arg("--adapt-from").arg(source).output().unwrap()
}

/// ROC AUC of `p_PNEUMONIA` against the label column of a predictions CSV.
fn auc_of(path: &Path) -> f64 {
    let rows = read_csv(path);
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let (label, p) = (col("label"), col("p_PNEUMONIA"));
    let scores: Vec<f64> = rows[1..].iter().map(|r| r[p].parse().unwrap()).collect();
    let positive: Vec<bool> = rows[1..].iter().map(|r| r[label] == "PNEUMONIA").collect();
    cxr_metrics::auc(&scores, &positive).unwrap()
}

fn column(rows: &[Vec<String>], name: &str) -> Vec<String> {
    let col = rows[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    rows[1..].iter().map(|r| r[col].clone()).collect()
}

#[test]
fn an_adapted_model_beats_its_source_on_a_shifted_site_and_carries_everything_in_model_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let source = source(dir.path());
    let config = site(dir.path(), "site", 16, 10);
    ok(run_stage("preprocess", &config, &[]));
    let stderr = ok(adapt(&config, &source));
    assert!(stderr.contains("adapted with 32 local images"), "{stderr}");
    let exp = dir.path().join("runs/site");

    // infer predicts the untouched test split only, with the adapted and the source model.
    let stderr = ok(run_stage("infer", &config, &[]));
    assert!(stderr.contains("unadapted source model"), "{stderr}");
    let predictions = exp.join("predictions");
    assert!(
        !predictions.join("train.csv").exists() && !predictions.join("val.csv").exists(),
        "local sample re-predicted"
    );
    let adapted_auc = auc_of(&predictions.join("test.csv"));
    let source_auc = auc_of(&predictions.join("source/test.csv"));
    assert!(adapted_auc > source_auc + 0.4, "adapted {adapted_auc} against source {source_auc}");
    assert!(adapted_auc > 0.85, "adapted {adapted_auc}");

    // model.onnx alone reproduces the site's predictions, and names its source.
    let shipped = dir.path().join("shipped/model.onnx");
    std::fs::create_dir_all(shipped.parent().unwrap()).unwrap();
    std::fs::copy(exp.join("train/model.onnx"), &shipped).unwrap();
    let alone = dir.path().join("alone.csv");
    ok(bin("infer")
        .args(["--config", config.to_str().unwrap(), "--model", shipped.to_str().unwrap(), "--split", "test"])
        .arg("--out")
        .arg(&alone)
        .output()
        .unwrap());
    let (ours, theirs) = (read_csv(&predictions.join("test.csv")), read_csv(&alone));
    assert_eq!(column(&ours, "p_PNEUMONIA"), column(&theirs, "p_PNEUMONIA"));
    assert_eq!(column(&ours, "predicted"), column(&theirs, "predicted"), "the same threshold from its metadata");
    let proto = cxr_onnx::read_model(&shipped).unwrap();
    let meta = cxr_store::model_meta::ModelMeta::from_lookup(|k| cxr_onnx::metadata(&proto, k)).unwrap();
    let from = meta.adapted_from.expect("the model names its source");
    assert_eq!(from.source_sha256, cxr_store::sha256_file(&source.join("train/model.onnx")).unwrap());
    assert_eq!(from.local_images, 32);
    assert!(meta.threshold_chosen_on.unwrap().contains("cross-fitted"));
    assert!(meta.shift.is_some(), "the adapted model carries the shift monitor");
    assert_eq!(ours[0][5..], ["shift_score", "shifted"]);

    // The label-budget curve: the source first, every point with its intervals, rising.
    let budget = read_csv(&exp.join("train/budget.csv"));
    let images: Vec<f64> = column(&budget, "local_images").iter().map(|v| v.parse().unwrap()).collect();
    assert_eq!(images[0], 0.0);
    assert!(images.windows(2).all(|w| w[0] < w[1]), "{images:?}");
    assert!(images.len() >= 4, "source, 8, 16 and the whole training part: {images:?}");
    let auc: Vec<f64> = column(&budget, "auc").iter().map(|v| v.parse().unwrap()).collect();
    for (name, lo, hi) in [("auc", "auc_lo", "auc_hi"), ("accuracy", "accuracy_lo", "accuracy_hi")] {
        for ((v, l), h) in column(&budget, name).iter().zip(column(&budget, lo)).zip(column(&budget, hi)) {
            let (v, l, h): (f64, f64, f64) = (v.parse().unwrap(), l.parse().unwrap(), h.parse().unwrap());
            assert!(l <= v + 1e-9 && v <= h + 1e-9, "{name}: {l} <= {v} <= {h}");
        }
    }
    assert!(auc.last().unwrap() > &(auc[0] + 0.4), "the curve rises from the source: {auc:?}");

    // The report puts the local test split first, with the source beside it.
    ok(run_stage("report", &config, &[]));
    let html = std::fs::read_to_string(exp.join("report/index.html")).unwrap();
    assert!(html.contains("adapted with 32 local images"), "headline names the local sample");
    assert!(html.contains("estimate on 20 other local images"), "headline names the test split");
    assert!(html.contains("Label budget"), "the budget curve is drawn");
    let metrics = read_csv(&exp.join("report/metrics.csv"));
    let splits = column(&metrics, "split");
    assert!(splits.contains(&"crossfit".to_string()) && splits.contains(&"test".to_string()), "{splits:?}");
    assert!(
        splits.contains(&"source-test".to_string()) && splits.contains(&"source-crossfit".to_string()),
        "{splits:?}"
    );
}

#[test]
fn cross_fitting_never_lets_a_model_score_an_image_it_saw() {
    // Labels that are noise: any image scored by a refit that saw it (weighted 64 times a
    // source image) would be called right, and the cross-fitted AUC would be near 1.
    let dir = tempfile::tempdir().unwrap();
    let source = source(dir.path());
    let root = dir.path().join("noise_data");
    for i in 0..30u32 {
        let class = if (i * 7919) % 11 < 5 { "NORMAL" } else { "PNEUMONIA" };
        save(
            &image(3000 + i, i % 2 == 0),
            &root.join("train").join(class).join(format!("n{i:03}.png")),
            ImageFormat::Png,
        );
    }
    let config = recipe(TestConfig::new("noise", &dir.path().join("runs"), &root).val_fraction(0.25))
        .write(&dir.path().join("noise_cfg"));
    ok(run_stage("preprocess", &config, &[]));
    ok(adapt(&config, &source));
    let exp = dir.path().join("runs/noise");
    let crossfit = auc_of(&exp.join("train/crossfit.csv"));
    assert!((0.25..0.75).contains(&crossfit), "cross-fitted AUC on noise labels: {crossfit}");
    let adaptation: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exp.join("train/adaptation.json")).unwrap()).unwrap();
    assert_eq!(adaptation["local_images"], 30);
    assert!(adaptation["local_splits"].as_array().unwrap().iter().all(|s| s != "test"));
}

#[test]
fn incompatible_sources_are_refused_naming_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let source = source(dir.path());
    let config = site(dir.path(), "other", 4, 0);
    for (set, key) in [
        ("preprocess.size=[64,64]", "preprocess.size"),
        ("model.pooling=max", "model.pooling"),
        ("preprocess.equalize=histogram", "preprocess.equalize"),
    ] {
        ok(run_stage("preprocess", &config, &[set]));
        let mut train = bin("train");
        train.arg("--config").arg(&config).args(["--set", set, "--adapt-from"]).arg(&source);
        let err = fails(train.output().unwrap());
        assert!(err.contains(key) && err.contains("--adapt-from") && err.contains(&format!("--set {key}=")), "{err}");
    }
    let mut train = bin("train");
    train.arg("--config").arg(&config).args(["--set", "data.classes=[NORMAL,OTHER]", "--adapt-from"]).arg(&source);
    let err = fails(train.output().unwrap());
    assert!(err.contains("data.classes"), "{err}");
    let missing = fails(adapt(&config, &dir.path().join("runs/nowhere")));
    assert!(missing.contains("not a trained experiment"), "{missing}");
}
