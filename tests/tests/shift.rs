//! The cohort-shift monitor: `model.onnx` carries a `shift_score` output; `infer` writes it
//! per image with `shifted`, and a cohort verdict in `predictions/model.json`; images like
//! the training ones pass, photo-like images are flagged with a warning, and the report says
//! so before any figure.

mod common;

use std::path::Path;

use common::*;
use image::{DynamicImage, ImageFormat, RgbImage};

/// A colourful photo-like image: nothing like a chest X-ray.
fn photo(seed: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(96, 80, |x, y| {
        let v = |k: u32| ((x * (3 + k) + y * (5 + seed % 7) + seed * 17 * k) % 256) as u8;
        image::Rgb([v(1), 255 - v(2), v(3) / 2 + 100])
    }))
}

fn trained_with_many(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("data");
    write_split(&root, "train", 50, 0);
    write_split(&root, "test", 20, 100);
    let config = TestConfig::new("e", &dir.join("runs"), &root)
        .ungrouped()
        .val_fraction(0.3)
        .estimate_fraction(0.0)
        .size(32, 32)
        .random_backbone(&[8])
        .epochs(2)
        .batch_size(8)
        .bootstrap(20)
        .write(dir);
    ok(run_stage("preprocess", &config, &[]));
    let stderr = ok(run_stage("train", &config, &[]));
    assert!(stderr.contains("shift monitor fitted on"), "{stderr}");
    config
}

fn model_json(exp: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(exp.join("predictions/model.json")).unwrap()).unwrap()
}

#[test]
fn images_like_the_training_ones_pass_and_photos_are_flagged_before_any_figure() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained_with_many(dir.path());
    let exp = dir.path().join("runs/e");

    // The splits: per-image columns, a verdict per split and for the whole run.
    ok(run_stage("infer", &config, &[]));
    let test = read_csv(&exp.join("predictions/test.csv"));
    assert_eq!(test[0][5..], ["shift_score", "shifted"]);
    let shift = &model_json(&exp)["shift"];
    for key in ["images", "flagged_share", "p_value"] {
        assert!(shift[key].is_number(), "model.json shift.{key}: {shift}");
    }
    let sources = shift["sources"].as_array().unwrap();
    let of = |name: &str| sources.iter().find(|s| s["source"] == name).unwrap().clone();
    let t = of("test");
    assert_eq!(t["images"], 40);
    assert_eq!(t["shifted"], false, "{t}");
    assert!(t["flagged_share"].as_f64().unwrap() <= 0.1, "{t}");
    // The graph's scores are the ones train computed for val: the medians agree.
    let v = of("val");
    let (median, reference) = (v["median_score"].as_f64().unwrap(), v["val_median_score"].as_f64().unwrap());
    assert!((median - reference).abs() < 1e-4 * reference.max(1.0), "{median} vs {reference}");

    // Photos: flagged, warned about, and said first in the report.
    let photos = dir.path().join("photos");
    for i in 0..12 {
        save(&photo(i), &photos.join(format!("photo{i}.png")), ImageFormat::Png);
    }
    let stderr = ok(bin("infer").args(["--config", config.to_str().unwrap()]).arg(&photos).output().unwrap());
    assert!(stderr.contains("lie outside what the model saw in training"), "{stderr}");
    let files = &model_json(&exp)["shift"];
    assert_eq!(files["images"], 12);
    assert!(files["flagged_share"].as_f64().unwrap() > 0.9, "{files}");
    assert!(files["p_value"].as_f64().unwrap() < 0.01, "{files}");
    assert_eq!(files["shifted"], true);
    let rows = read_csv(&exp.join("predictions/files.csv"));
    assert!(rows[1..].iter().all(|r| r[6] == "true"), "every photo flagged");

    ok(run_stage("report", &config, &[]));
    let html = std::fs::read_to_string(exp.join("report/index.html")).unwrap();
    let warning = html.find("lie outside what the model saw in training").expect("the page says so");
    let first_figure = html.find("Headline").unwrap_or(html.len()).min(html.find("<h2>Metrics").unwrap());
    assert!(warning < first_figure, "the shift is said before any figure");
    assert!(exp.join("report/shift_files.svg").is_file());
}

#[test]
fn a_model_without_the_monitor_still_predicts_without_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let exp = dir.path().join("runs/e");
    // The model.onnx of a run before the monitor: the output and its metadata removed.
    let model = exp.join("train/model.onnx");
    let mut proto = cxr_onnx::read_model(&model).unwrap();
    proto.metadata_props.retain(|p| p.key != cxr_store::model_meta::SHIFT);
    proto.graph.as_mut().unwrap().output.retain(|o| o.name != "shift_score");
    let old = dir.path().join("old.onnx");
    std::fs::write(&old, cxr_onnx::encode_model(&proto)).unwrap();
    ok(bin("infer").args(["--config", config.to_str().unwrap(), "--model", old.to_str().unwrap()]).output().unwrap());
    let test = read_csv(&exp.join("predictions/test.csv"));
    assert_eq!(test[0], ["path", "label", "predicted", "p_NORMAL", "p_PNEUMONIA"]);
    assert!(model_json(&exp).get("shift").is_none());
    ok(run_stage("report", &config, &[]));
    let html = std::fs::read_to_string(exp.join("report/index.html")).unwrap();
    assert!(html.contains("has no shift monitor"), "the report says the monitor is unavailable");
}
