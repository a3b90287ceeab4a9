//! `preprocess` end to end: adapters, bad input, determinism, and agreement with direct decoding.

mod common;

use std::path::Path;

use common::*;
use cxr_config::{Adapter, CsvLabelRule};
use cxr_store::npy::NpyReader;
use image::ImageFormat;

/// Experiment `t` in `dir/runs` on the images under `root`, 32x32.
fn base(dir: &Path, root: &Path) -> TestConfig {
    TestConfig::new("t", &dir.join("runs"), root).ungrouped().size(32, 32)
}

fn base_config(dir: &Path, root: &Path) -> std::path::PathBuf {
    base(dir, root).write(dir)
}

fn images_shape(exp: &Path, split: &str) -> Vec<usize> {
    NpyReader::open(&exp.join("tensors").join(split).join("images.npy")).unwrap().shape().to_vec()
}

#[test]
fn bad_files_are_recorded_and_skipped_and_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 8, 0);
    let normal = root.join("train/NORMAL");
    std::fs::write(normal.join("empty.jpeg"), b"").unwrap();
    std::fs::write(normal.join("notes.jpeg"), b"this is a text file, not an X-ray\n").unwrap();
    let good = std::fs::read(normal.join("img000.jpeg")).unwrap();
    std::fs::write(normal.join("truncated.jpeg"), &good[..good.len() / 3]).unwrap();
    std::fs::write(normal.join("jpeg_named.png"), &good).unwrap();
    save(&xray_like(1, 1, 1, false), &normal.join("one_pixel.png"), ImageFormat::Png);
    save(&xray_like(1, 1200, 1000, false), &normal.join("huge.png"), ImageFormat::Png);
    std::fs::write(normal.join("animated.gif"), b"GIF89a\x01\x00\x01\x00\x80\x00\x00").unwrap();
    // Unreadable even for root: a link to nothing, and a folder behind an image name.
    std::os::unix::fs::symlink(dir.path().join("nowhere.jpeg"), normal.join("dangling.jpeg")).unwrap();
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), normal.join("folder_link.jpeg")).unwrap();
    std::fs::write(normal.join(".DS_Store"), b"\0\0\0\x01Bud1").unwrap();
    std::fs::write(normal.join("Thumbs.db"), b"\xd0\xcf\x11\xe0").unwrap();
    let config = base_config(dir.path(), &root);
    ok(run_stage("preprocess", &config, &["preprocess.max_pixels=1000000"]));

    let exp = dir.path().join("runs/t");
    let rejects = read_csv(&exp.join("tensors/rejects.csv"));
    assert_eq!(rejects[0], ["path", "reason"]);
    let reasons: Vec<(String, String)> = rejects[1..]
        .iter()
        .map(|r| (Path::new(&r[0]).file_name().unwrap().to_string_lossy().into_owned(), r[1].clone()))
        .collect();
    let reason_of = |name: &str| reasons.iter().find(|(n, _)| n == name).map(|(_, r)| r.clone());
    assert_eq!(reasons.len(), 8, "{reasons:?}");
    assert!(reason_of("animated.gif").unwrap().starts_with("unsupported format: GIF"), "{reasons:?}");
    assert!(reason_of("dangling.jpeg").unwrap().starts_with("cannot read file"), "{reasons:?}");
    assert!(reason_of("folder_link.jpeg").unwrap().starts_with("not a regular file: a folder"), "{reasons:?}");
    assert_eq!(reason_of("empty.jpeg").unwrap(), "empty file");
    assert!(reason_of("notes.jpeg").unwrap().starts_with("not an image"), "{reasons:?}");
    assert!(reason_of("truncated.jpeg").unwrap().starts_with("corrupt or truncated JPEG"), "{reasons:?}");
    assert!(reason_of("one_pixel.png").unwrap().contains("smaller than preprocess.min_side"));
    assert!(reason_of("huge.png").unwrap().contains("over preprocess.max_pixels 1000000"));
    assert!(reason_of("jpeg_named.png").is_none(), "a JPEG named .png is decoded by content");

    // 8 + 1 (jpeg_named.png) NORMAL and 8 PNEUMONIA, split into train and val from train.
    let train = images_shape(&exp, "train");
    let val = images_shape(&exp, "val");
    assert_eq!(train[0] + val[0], 17);
    assert_eq!(&train[1..], &[32, 32, 3]);
    let manifest = read_csv(&exp.join("tensors/train/manifest.csv"));
    assert_eq!(manifest[0], ["index", "path", "label", "class", "width", "height", "sha256", "patient"]);
    assert_eq!(manifest.len() - 1, train[0]);
    assert!(exp.join("tensors/meta.json").is_file());
    assert!(exp.join("tensors/config.resolved.yaml").is_file());
    assert!(exp.join("tensors/provenance.json").is_file());
}

#[test]
fn on_error_fail_stops_at_the_first_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 4, 0);
    std::fs::write(root.join("train/NORMAL/broken.jpeg"), b"\xff\xd8\xff\xe0garbage").unwrap();
    let config = base_config(dir.path(), &root);
    let err = fails(run_stage("preprocess", &config, &["preprocess.on_error=fail"]));
    assert!(err.contains("broken.jpeg"), "{err}");
    assert!(err.contains("preprocess.on_error"), "{err}");
    assert!(!dir.path().join("runs/t/tensors/meta.json").exists());
}

#[test]
fn tensors_equal_decoding_each_file_directly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 5, 0);
    write_split(&root, "test", 3, 100);
    let config = base_config(dir.path(), &root);
    ok(run_stage("preprocess", &config, &[]));
    let cfg = cxr_config::Config::load(Some(&config), &[]).unwrap();
    let transform = cxr_imaging::Transform::from_config(&cfg.preprocess);
    let exp = dir.path().join("runs/t/tensors");
    for split in ["train", "val", "test"] {
        let mut images = NpyReader::open(&exp.join(split).join("images.npy")).unwrap();
        let rows = read_csv(&exp.join(split).join("manifest.csv"));
        assert_eq!(rows.len() - 1, images.rows());
        for (i, row) in rows[1..].iter().enumerate() {
            let direct = transform.apply_file(Path::new(&row[1])).unwrap();
            assert_eq!(images.read_rows_bytes(i, 1).unwrap(), direct.pixels, "{split} row {i}");
        }
    }
}

#[test]
fn output_is_byte_identical_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 12, 0);
    let config = base_config(dir.path(), &root);
    ok(run_stage("preprocess", &config, &["preprocess.threads=1", "experiment.name=one"]));
    ok(run_stage("preprocess", &config, &["preprocess.threads=2", "experiment.name=two"]));
    for file in ["train/images.npy", "train/labels.npy", "val/images.npy", "val/manifest.csv", "rejects.csv"] {
        let a = std::fs::read(dir.path().join("runs/one/tensors").join(file)).unwrap();
        let b = std::fs::read(dir.path().join("runs/two/tensors").join(file)).unwrap();
        assert!(a == b, "{file} differs between 1 and 2 threads");
    }
}

#[test]
fn flat_class_folders_and_limit_per_class() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "flat", 10, 0);
    let flat = root.join("flat");
    let config = base_config(dir.path(), &flat);
    ok(run_stage("preprocess", &config, &["data.limit_per_class=3", "data.val_fraction=0.2"]));
    let exp = dir.path().join("runs/t/tensors");
    let labels: Vec<i64> =
        cxr_store::npy::read::<i64>(&exp.join("train/labels.npy")).unwrap().iter().copied().collect();
    assert_eq!(labels.iter().filter(|&&l| l == 0).count(), 3);
    assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 3);
    assert_eq!(images_shape(dir.path().join("runs/t").as_path(), "val")[0], 4);
}

#[test]
fn csv_adapter_nih_style_labels() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nih");
    let images = root.join("images");
    let mut rows = vec!["Image Index,Finding Labels,Patient ID".to_string()];
    for i in 0..6 {
        save(&xray_like(i, 64, 64, false), &images.join(format!("{i:08}_000.png")), ImageFormat::Png);
        rows.push(format!("{i:08}_000.png,No Finding,{i}"));
        save(&xray_like(i, 64, 64, true), &images.join(format!("{:08}_000.png", 100 + i)), ImageFormat::Png);
        rows.push(format!("{:08}_000.png,Effusion|Pneumonia,{}", 100 + i, 100 + i));
    }
    rows.push("00000999_000.png,Pneumonia,999".into()); // listed, but no file
    std::fs::write(root.join("Data_Entry_2017.csv"), rows.join("\n") + "\n").unwrap();
    let config = base(dir.path(), &root)
        .with(|c| {
            c.data.adapter = Adapter::Csv;
            let csv = &mut c.data.csv;
            csv.file = "Data_Entry_2017.csv".into();
            csv.path_column = "Image Index".into();
            csv.path_template = "images/{}".into();
            csv.label.column = "Finding Labels".into();
            csv.label.rule = CsvLabelRule::Contains;
            csv.label.map = vec![("Pneumonia".into(), "PNEUMONIA".into())];
            csv.label.otherwise = Some("NORMAL".into());
        })
        .write(dir.path());
    ok(run_stage("preprocess", &config, &[]));
    let exp = dir.path().join("runs/t/tensors");
    let mut labels: Vec<(String, String)> = Vec::new();
    for split in ["train", "val"] {
        for r in &read_csv(&exp.join(split).join("manifest.csv"))[1..] {
            labels.push((Path::new(&r[1]).file_name().unwrap().to_string_lossy().into_owned(), r[3].clone()));
        }
    }
    assert_eq!(labels.len(), 12);
    assert!(labels.iter().all(|(name, class)| (class == "PNEUMONIA") == name.starts_with("000001")));
    let rejects = read_csv(&exp.join("rejects.csv"));
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert!(rejects[1][1].contains("file not found"), "{rejects:?}");
}

#[test]
fn synthetic_adapter_generates_then_reuses_its_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("synth");
    let config = base_config(dir.path(), &root);
    let sets = [
        "data.adapter=synthetic",
        "data.val_source=dataset",
        "data.synthetic={train_per_class: 3, val_per_class: 2, test_per_class: 2, size: 128}",
    ];
    ok(run_stage("preprocess", &config, &sets));
    let exp = dir.path().join("runs/t");
    assert_eq!(images_shape(&exp, "train")[0], 6);
    assert_eq!(images_shape(&exp, "test")[0], 4);
    let first = std::fs::read(root.join("train/PNEUMONIA/p00000_pneumonia.jpeg")).unwrap();
    ok(run_stage("preprocess", &config, &sets));
    assert_eq!(std::fs::read(root.join("train/PNEUMONIA/p00000_pneumonia.jpeg")).unwrap(), first);
}

#[test]
fn dataset_problems_are_errors_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let config = base_config(dir.path(), &missing);
    let err = fails(run_stage("preprocess", &config, &[]));
    assert!(err.contains("does not exist") && err.contains("nope"), "{err}");

    let root = dir.path().join("data");
    write_split(&root, "train", 3, 0);
    std::fs::create_dir_all(root.join("train/COVID")).unwrap();
    let config = base_config(dir.path(), &root);
    let err = fails(run_stage("preprocess", &config, &["data.classes=[NORMAL, PNEUMONIA, COVID]"]));
    assert!(err.contains("COVID") && err.contains("is empty"), "{err}");
    let err = fails(run_stage("preprocess", &config, &["data.classes=[NORMAL, VIRAL]"]));
    assert!(err.contains("\"VIRAL\"") && err.contains("has no images"), "{err}");

    let err = fails(run_stage("preprocess", &config, &["preprocess.size=[32]"]));
    assert!(err.contains("preprocess.size"), "{err}");
}
