//! Inputs that try to hurt: paths that leave their folder, files that are not files,
//! oversized files, hostile split names, NaN probabilities and a model that returns NaN.
//! Each run completes or stops with a clear error within seconds, writing nothing outside EXP.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use cxr_config::Adapter;
use image::ImageFormat;

/// Makes a FIFO at `path` (a `preprocess` that opened it plainly would block for ever).
fn mkfifo(path: &Path) {
    assert!(std::process::Command::new("mkfifo").arg(path).status().unwrap().success());
}

fn reason_of<'a>(rejects: &'a [Vec<String>], name: &str) -> &'a str {
    rejects
        .iter()
        .find(|r| r[0].ends_with(name))
        .map(|r| r[1].as_str())
        .unwrap_or_else(|| panic!("{name} not rejected: {rejects:?}"))
}

#[test]
fn a_hostile_label_file_reads_nothing_outside_its_root_and_writes_nothing_outside_exp() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let outside = dir.path().join("outside");
    save(&xray_like(1, 64, 64, true), &outside.join("secret.png"), ImageFormat::Png);
    std::fs::write(outside.join("secret.txt"), "TOP-SECRET-CONTENT\n").unwrap();
    let mut csv = vec!["path,label,split".to_string()];
    for i in 0..10u32 {
        save(&xray_like(i, 48, 48, i % 2 == 1), &root.join(format!("img/{i}.png")), ImageFormat::Png);
        csv.push(format!("img/{i}.png,{},train", if i % 2 == 1 { "PNEUMONIA" } else { "NORMAL" }));
    }
    std::os::unix::fs::symlink(outside.join("secret.png"), root.join("img/link.png")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", root.join("img/zero.png")).unwrap();
    mkfifo(&root.join("img/pipe.png"));
    csv.extend([
        format!("{},NORMAL,train", outside.join("secret.txt").display()),
        "../outside/secret.png,PNEUMONIA,train".into(),
        "img/../../outside/secret.txt,NORMAL,train".into(),
        "img/link.png,PNEUMONIA,train".into(),
        "img/zero.png,NORMAL,train".into(),
        "img/pipe.png,NORMAL,train".into(),
        "img/3.png,PNEUMONIA,../../escaped".into(),
        "img/5.png,PNEUMONIA,te/st".into(),
    ]);
    std::fs::write(root.join("labels.csv"), csv.join("\n") + "\n").unwrap();
    let config = TestConfig::new("t", &dir.path().join("runs"), &root)
        .ungrouped()
        .size(32, 32)
        .with(|c| {
            c.data.adapter = Adapter::Csv;
            c.data.csv.split_column = Some("split".into());
        })
        .write(dir.path());
    let exp = dir.path().join("runs/t");
    let before = snapshot(dir.path(), &exp);
    let output = bin("preprocess").arg("--config").arg(&config).timeout(Duration::from_secs(60)).output().unwrap();
    ok(output);
    assert_eq!(snapshot(dir.path(), &exp), before, "something outside EXP was written");
    assert!(!dir.path().join("escaped").exists());

    let rejects = read_csv(&exp.join("tensors/rejects.csv"));
    for name in ["secret.txt", "outside/secret.png", "link.png", "zero.png"] {
        assert!(reason_of(&rejects, name).starts_with("outside data.root"), "{name}: {rejects:?}");
    }
    assert!(reason_of(&rejects, "pipe.png").starts_with("not a regular file: a FIFO"), "{rejects:?}");
    let escaped =
        rejects.iter().filter(|r| r[1].contains("split \"../../escaped\"") || r[1].contains("split \"te/st\"")).count();
    assert_eq!(escaped, 2, "{rejects:?}");
    let all = std::fs::read_to_string(exp.join("tensors/rejects.csv")).unwrap();
    assert!(!all.contains("TOP-SECRET"), "a rejected file's content reached rejects.csv");
    // The good rows made it (img/3 and img/5 had their second row rejected, not the first).
    assert_eq!(manifest_rows(&exp).len(), 10);
}

#[test]
fn files_that_are_not_files_and_oversized_files_are_rejects_not_reads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 6, 0);
    let normal = root.join("train/NORMAL");
    mkfifo(&normal.join("pipe.jpeg"));
    std::os::unix::fs::symlink("/dev/zero", normal.join("zero.jpeg")).unwrap();
    std::os::unix::fs::symlink("/dev/urandom", normal.join("random.png")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(normal.join("socket.jpeg")).unwrap();
    save(&xray_like(3, 900, 900, false), &normal.join("big.png"), ImageFormat::Png);
    let big = std::fs::metadata(normal.join("big.png")).unwrap().len();
    let config = TestConfig::new("t", &dir.path().join("runs"), &root)
        .ungrouped()
        .size(32, 32)
        .with(|c| c.preprocess.max_file_bytes = big - 1)
        .write(dir.path());
    let output = bin("preprocess").arg("--config").arg(&config).timeout(Duration::from_secs(60)).output().unwrap();
    ok(output);
    let rejects = read_csv(&dir.path().join("runs/t/tensors/rejects.csv"));
    assert_eq!(rejects.len() - 1, 5, "{rejects:?}");
    assert!(reason_of(&rejects, "pipe.jpeg").contains("FIFO"));
    assert!(reason_of(&rejects, "zero.jpeg").contains("character device"));
    assert!(reason_of(&rejects, "random.png").contains("character device"));
    assert!(reason_of(&rejects, "socket.jpeg").contains("socket"));
    assert_eq!(
        reason_of(&rejects, "big.png"),
        format!("file is {big} bytes, over preprocess.max_file_bytes {}", big - 1)
    );
    assert_eq!(manifest_rows(&dir.path().join("runs/t")).len(), 12);
}

#[test]
fn infer_on_a_folder_with_non_files_finishes_and_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let folder = dir.path().join("incoming");
    write_split(&folder, "x", 2, 500);
    mkfifo(&folder.join("pipe.jpeg"));
    std::os::unix::fs::symlink("/dev/zero", folder.join("zero.jpeg")).unwrap();
    let out = dir.path().join("runs/e/predictions/incoming.csv");
    let output = bin("infer")
        .args(["--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .arg(&folder)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    ok(output);
    assert_eq!(read_csv(&out).len() - 1, 4);
    let rejects = read_csv(&out.with_extension("rejects.csv"));
    assert!(reason_of(&rejects, "pipe.jpeg").contains("FIFO"));
    assert!(reason_of(&rejects, "zero.jpeg").contains("character device"));
    // A split name is never a path.
    let err = fails(bin("infer").args(["--config", config.to_str().unwrap(), "--split", "../../x"]).output().unwrap());
    assert!(err.contains("--split") && err.contains("../../x"), "{err}");
}

#[test]
fn nan_in_a_predictions_file_stops_report_naming_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    ok(run_stage("infer", &config, &[]));
    let predictions = dir.path().join("runs/e/predictions/test.csv");
    let text = std::fs::read_to_string(&predictions).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[3].split(',').map(str::to_string).collect();
    let column = lines[0].split(',').position(|h| h == "p_PNEUMONIA").unwrap();
    cells[column] = "NaN".into();
    lines[3] = cells.join(",");
    std::fs::write(&predictions, lines.join("\n") + "\n").unwrap();
    let output = bin("report").arg("--config").arg(&config).timeout(Duration::from_secs(10)).output().unwrap();
    let err = fails(output);
    assert!(err.contains("test.csv") && err.contains("row 4") && err.contains("NaN"), "{err}");
}

#[test]
fn a_model_that_returns_nan_stops_infer_naming_the_model_and_the_image() {
    use cxr_onnx::{Attr, DataType, Dim, GraphBuilder};
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    // uint8 image in, [N, 2] of 0/0 = NaN out, with the metadata `train` writes.
    let mut g = GraphBuilder::new("nan");
    let image = g.input("image", DataType::Uint8, &[Dim::named("N"), Dim::Fixed(32), Dim::Fixed(32), Dim::Fixed(3)]);
    let x = g.op("Cast", &[&image], &[("to", Attr::Int(DataType::Float as i64))]);
    let shape = g.const_i64(&[2], &[0, -1]);
    let flat = g.op("Reshape", &[&x, &shape], &[]);
    let mean = g.op("ReduceMean", &[&flat], &[("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))]);
    let zero = g.const_f32(&[], &[0.0]);
    let zeros = g.op("Mul", &[&mean, &zero], &[]);
    let nan = g.op("Div", &[&zeros, &zeros], &[]);
    let probs = g.op("Concat", &[&nan, &nan], &[("axis", Attr::Int(1))]);
    g.output(&probs, "probabilities", DataType::Float, &[Dim::named("N"), Dim::Fixed(2)]);
    for (k, v) in [
        (cxr_store::model_meta::CLASSES, "NORMAL,PNEUMONIA"),
        (cxr_store::model_meta::SIZE, "32,32"),
        (cxr_store::model_meta::CHANNEL_ORDER, "rgb"),
        (cxr_store::model_meta::POSITIVE_CLASS, "PNEUMONIA"),
    ] {
        g.metadata(k, v);
    }
    let model = dir.path().join("nan.onnx");
    std::fs::write(&model, cxr_onnx::encode_model(&g.into_model("test"))).unwrap();
    let output = bin("infer")
        .args(["--config", config.to_str().unwrap(), "--model", model.to_str().unwrap(), "--split", "test"])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let err = fails(output);
    assert!(err.contains("nan.onnx") && err.contains("non-finite") && err.contains(".jpeg"), "{err}");
    assert!(!dir.path().join("runs/e/predictions/test.csv").exists(), "no predictions file from a NaN model");
}

#[test]
fn a_runtime_library_or_backbone_found_in_the_working_directory_is_checked_before_use() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let cwd = dir.path().join("elsewhere");
    // A library that is not the pinned wheel's, where the engine looks first (./.ort/cpu/).
    std::fs::create_dir_all(cwd.join(".ort/cpu")).unwrap();
    std::fs::write(cwd.join(".ort/cpu/libonnxruntime.so.1.31.1"), b"\x7fELF not really").unwrap();
    std::os::unix::fs::symlink("libonnxruntime.so.1.31.1", cwd.join(".ort/cpu/libonnxruntime.so")).unwrap();
    let output =
        bin("infer").current_dir(&cwd).env_remove("ORT_DYLIB_PATH").arg("--config").arg(&config).output().unwrap();
    let err = fails(output);
    assert!(err.contains("not the ONNX Runtime library the pinned wheels ship") && err.contains("SHA-256"), "{err}");

    // A well-formed ONNX file posing as the built ImageNet backbone.
    std::fs::remove_dir_all(cwd.join(".ort/cpu")).unwrap();
    std::fs::create_dir_all(cwd.join(".ort/models")).unwrap();
    let mut g = cxr_onnx::GraphBuilder::new("impostor");
    let x = g.input("x", cxr_onnx::DataType::Float, &[cxr_onnx::Dim::Fixed(1)]);
    g.output(&x, "y", cxr_onnx::DataType::Float, &[cxr_onnx::Dim::Fixed(1)]);
    std::fs::write(cwd.join(".ort/models/vgg16_imagenet_notop.onnx"), cxr_onnx::encode_model(&g.into_model("x")))
        .unwrap();
    let output = bin("train")
        .current_dir(&cwd)
        .args(["--config", config.to_str().unwrap(), "--set", "model.backbone=imagenet"])
        .output()
        .unwrap();
    let err = fails(output);
    assert!(err.contains("vgg16_imagenet_notop.onnx has SHA-256") && err.contains("delete it"), "{err}");
}
