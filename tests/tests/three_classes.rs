//! Three classes: NORMAL, BACTERIA and VIRUS, the last two read from file names inside one
//! `PNEUMONIA` folder (`data.class_patterns`), trained, predicted and reported per class.

mod common;

use common::*;
use cxr_config::{ClassPattern, Monitor, OptimizerKind, PatientId};
use image::{DynamicImage, GrayImage, ImageFormat};

/// A grey image whose class shows as a bright patch: none, the centre (bacteria) or the
/// top-left corner (virus).
fn image_of(class: &str, seed: u32) -> DynamicImage {
    let (w, h) = (72 + seed % 5, 64 + seed % 3);
    DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| {
        let base = ((x * 7 + y * 3 + seed * 13) % 50 + 90) as u8;
        let patch = match class {
            "bacteria" => x > w / 3 && x < 2 * w / 3 && y > h / 3 && y < 2 * h / 3,
            "virus" => x < w / 3 && y < h / 3,
            _ => false,
        };
        image::Luma([if patch { base + 110 } else { base }])
    }))
}

fn write_kermany_like(root: &std::path::Path, split: &str, n: u32, offset: u32) {
    for i in offset..offset + n {
        save(&image_of("normal", i), &root.join(format!("{split}/NORMAL/IM-{i:04}-0001.jpeg")), ImageFormat::Jpeg);
        let bacteria = root.join(format!("{split}/PNEUMONIA/person{i}_bacteria_{}.jpeg", i * 2));
        save(&image_of("bacteria", i), &bacteria, ImageFormat::Jpeg);
        let virus = root.join(format!("{split}/PNEUMONIA/person{}_virus_{}.jpeg", i + 500, i * 2 + 1));
        save(&image_of("virus", i), &virus, ImageFormat::Jpeg);
    }
}

#[test]
fn three_classes_from_file_names_are_trained_predicted_and_reported_per_class() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_kermany_like(&root, "train", 24, 0);
    write_kermany_like(&root, "test", 6, 100);
    // A pneumonia image whose name says neither kind is a reject, not a guess.
    save(&image_of("bacteria", 7), &root.join("train/PNEUMONIA/person999_unknown_1.jpeg"), ImageFormat::Jpeg);
    let config = TestConfig::new("three", &dir.path().join("runs"), &root)
        .with(|c| {
            c.data.classes = ["NORMAL", "BACTERIA", "VIRUS"].map(String::from).to_vec();
            c.data.patient = PatientId::Kermany;
            c.data.class_patterns = [("_bacteria_", "BACTERIA"), ("_virus_", "VIRUS")]
                .map(|(pattern, class)| ClassPattern {
                    folder: "PNEUMONIA".into(),
                    pattern: pattern.into(),
                    class: class.into(),
                })
                .to_vec();
        })
        .val_fraction(0.3)
        .estimate_fraction(0.0)
        .size(32, 32)
        .random_backbone(&[16])
        .epochs(30)
        .batch_size(8)
        .with(|c| {
            c.train.optimizer.kind = OptimizerKind::Adam;
            c.train.optimizer.lr = 0.001;
            c.train.early_stopping.monitor = Monitor::ValLoss;
            c.train.early_stopping.patience = 0;
        })
        .bootstrap(20)
        .write(dir.path());
    ok(run_stage("preprocess", &config, &[]));
    let exp = dir.path().join("runs/three");
    let rejects = read_csv(&exp.join("tensors/rejects.csv"));
    assert!(
        rejects.iter().any(|r| r[0].ends_with("person999_unknown_1.jpeg") && r[1].starts_with("unlabelled")),
        "{rejects:?}"
    );
    let manifest = read_csv(&exp.join("tensors/test/manifest.csv"));
    let label = manifest[0].iter().position(|h| h == "label").unwrap();
    let path = manifest[0].iter().position(|h| h == "path").unwrap();
    for row in manifest.iter().skip(1) {
        let expected = if row[path].contains("_bacteria_") {
            "1"
        } else if row[path].contains("_virus_") {
            "2"
        } else {
            "0"
        };
        assert_eq!(row[label], expected, "{}", row[path]);
    }

    ok(run_stage("train", &config, &[]));
    ok(run_stage("infer", &config, &[]));
    let predictions = read_csv(&exp.join("predictions/test.csv"));
    assert_eq!(
        predictions[0],
        ["path", "label", "predicted", "p_NORMAL", "p_BACTERIA", "p_VIRUS", "shift_score", "shifted"]
    );
    for row in predictions.iter().skip(1) {
        let p: Vec<f64> = row[3..6].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{row:?}");
        let argmax = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(
            row[2],
            ["NORMAL", "BACTERIA", "VIRUS"][argmax],
            "three classes are decided by the largest probability"
        );
    }

    ok(run_stage("report", &config, &[]));
    let matrix = read_csv(&exp.join("report/confusion_matrix_test.csv"));
    assert_eq!(matrix.len(), 4, "a header and one row per class: {matrix:?}");
    let total: usize = matrix.iter().skip(1).flat_map(|r| r[1..].iter().map(|v| v.parse::<usize>().unwrap())).sum();
    assert_eq!(total, 18);
    let per_class = read_csv(&exp.join("report/per_class_test.csv"));
    assert_eq!(per_class[0], ["class", "n", "sensitivity", "specificity", "precision", "auc_one_vs_rest"]);
    assert_eq!(per_class.len(), 4);
    let metrics = read_csv(&exp.join("report/metrics.csv"));
    let col = |name: &str| metrics[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    let test = metrics.iter().find(|r| r[0] == "test").unwrap();
    let macro_auc: f64 = test[col("macro_auc")].parse().unwrap();
    assert!(macro_auc > 0.9, "the classes are separable by their patches: macro AUC {macro_auc}");
    let accuracy: f64 = test[col("accuracy")].parse().unwrap();
    assert!(accuracy > 0.8, "accuracy {accuracy}: {predictions:?} {:?}", read_csv(&exp.join("train/history.csv")));
    let html = std::fs::read_to_string(exp.join("report/index.html")).unwrap();
    assert!(html.contains("BACTERIA") && html.contains("macro"), "the page shows per-class figures");
}
