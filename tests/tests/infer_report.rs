//! `infer` and `report` end to end, and the faults a user meets: missing runtime,
//! missing stage inputs, CUDA on a CPU-only machine, bad files, degenerate predictions.

mod common;

use std::path::Path;

use common::*;

fn probabilities_by_path(path: &Path) -> Vec<(String, f64)> {
    let mut rows: Vec<(String, f64)> =
        read_csv(path)[1..].iter().map(|r| (r[0].clone(), r[4].parse().unwrap())).collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[test]
fn raw_files_give_the_same_probabilities_as_their_tensor_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    ok(run_stage("infer", &config, &[]));
    let from_split = probabilities_by_path(&dir.path().join("runs/e/predictions/test.csv"));
    let out = dir.path().join("raw.csv");
    ok(bin("infer")
        .args(["--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .arg(dir.path().join("data/test"))
        .output()
        .unwrap());
    let from_files = probabilities_by_path(&out);
    assert_eq!(from_split.len(), 8);
    assert_eq!(from_split.len(), from_files.len());
    for ((pa, a), (pb, b)) in from_split.iter().zip(&from_files) {
        assert_eq!(pa, pb);
        assert!((a - b).abs() < 1e-6, "{pa}: {a} vs {b}");
    }
    // Labels come from the class folder names.
    let rows = read_csv(&out);
    assert!(rows[1..].iter().all(|r| Path::new(&r[0]).parent().unwrap().ends_with(&r[1])));
}

#[test]
fn a_single_file_prints_one_human_line_and_jsonl_works() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let file = dir.path().join("data/test/PNEUMONIA/img100.jpeg");
    let out = bin("infer").args(["--config", config.to_str().unwrap()]).arg(&file).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.trim();
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert!(["NORMAL", "PNEUMONIA"].contains(&parts[0]), "{line}");
    assert!(parts[1].parse::<f64>().is_ok(), "{line}");
    assert!(line.ends_with("img100.jpeg"), "{line}");

    let jsonl = dir.path().join("p.jsonl");
    ok(bin("infer")
        .args(["--config", config.to_str().unwrap(), "--split", "test", "--format", "jsonl", "--out"])
        .arg(&jsonl)
        .output()
        .unwrap());
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first["probabilities"]["PNEUMONIA"].is_number(), "{first}");
    assert_eq!(text.lines().count(), 8);
}

#[test]
fn bad_files_in_a_folder_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let folder = dir.path().join("incoming");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(dir.path().join("data/test/NORMAL/img100.jpeg"), folder.join("good.jpeg")).unwrap();
    std::fs::write(folder.join("broken.jpeg"), b"\xff\xd8\xff garbage").unwrap();
    std::fs::write(folder.join(".DS_Store"), b"junk").unwrap();
    let out = dir.path().join("incoming.csv");
    let err = ok(bin("infer")
        .args(["--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .arg(&folder)
        .output()
        .unwrap());
    assert!(err.contains("could not be read"), "{err}");
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][1], "", "no label for a folder that is not a class");
    let rejects = read_csv(&dir.path().join("incoming.rejects.csv"));
    assert_eq!(rejects.len(), 2);
    assert!(rejects[1][0].ends_with("broken.jpeg"));
}

#[test]
fn cuda_on_a_cpu_only_machine_fails_with_the_documented_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let out = bin("infer")
        .args(["--config", config.to_str().unwrap(), "--device", "cuda", "--split", "test"])
        .output()
        .unwrap();
    let gpu_build = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ort/cuda/libonnxruntime.so").exists();
    if gpu_build {
        return; // a machine set up for CUDA: this test is about CPU-only machines
    }
    let err = fails(out);
    assert!(err.contains("--device cuda"), "{err}");
    assert!(err.contains("make setup-cuda"), "{err}");
    assert!(!dir.path().join("runs/e/predictions/test.csv").exists(), "no silent CPU fallback");
    // auto runs on CPU and says so.
    let err = ok(bin("infer")
        .args(["--config", config.to_str().unwrap(), "--device", "auto", "--split", "test"])
        .output()
        .unwrap());
    assert!(err.contains("CPUExecutionProvider"), "{err}");
}

#[test]
fn missing_onnx_runtime_names_the_paths_tried_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let err = fails(run_stage("infer", &config, &["runtime.onnxruntime=/nowhere/libonnxruntime.so"]));
    assert!(err.contains("/nowhere/libonnxruntime.so"), "{err}");
    assert!(err.contains("make setup"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn a_missing_stage_input_names_the_stage_to_run_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::default().with(|c| c.experiment.workdir = dir.path().to_path_buf()).write(dir.path());
    let err = fails(run_stage("train", &config, &[]));
    assert!(err.contains("run `preprocess` first"), "{err}");
    let err = fails(run_stage("infer", &config, &[]));
    assert!(err.contains("run `train` first"), "{err}");
    let err = fails(run_stage("report", &config, &[]));
    assert!(err.contains("run `infer` first"), "{err}");
}

#[test]
fn incompatible_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let err = fails(run_stage("train", &config, &["preprocess.size=[64, 64]"]));
    assert!(err.contains("tensors are 32x32") && err.contains("64x64"), "{err}");
    let err = fails(run_stage("infer", &config, &["data.classes=[NORMAL, VIRAL]"]));
    assert!(err.contains("trained for classes [NORMAL, PNEUMONIA]"), "{err}");
}

#[test]
fn config_errors_exit_non_zero_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "train:\n  optimizer:\n    kind: sgdd\n");
    for stage in ["preprocess", "train", "infer", "report"] {
        let err = fails(run_stage(stage, &config, &[]));
        assert!(
            err.contains(
                "train.optimizer.kind: unknown value \"sgdd\" (did you mean \"sgd\"?), expected one of: sgd, adam"
            ),
            "{stage}: {err}"
        );
    }
}

fn report_on(dir: &Path, config: &Path, predictions: &str) -> std::process::Output {
    let pred_dir = dir.join("runs/e/predictions");
    std::fs::create_dir_all(&pred_dir).unwrap();
    for entry in std::fs::read_dir(&pred_dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    std::fs::write(pred_dir.join("test.csv"), predictions).unwrap();
    run_stage("report", config, &[])
}

#[test]
fn report_handles_degenerate_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let header = "path,label,predicted,p_NORMAL,p_PNEUMONIA\n";
    let metrics = |dir: &Path| read_csv(&dir.join("runs/e/report/metrics.csv"));
    let col = |rows: &[Vec<String>], name: &str| rows[1][rows[0].iter().position(|h| h == name).unwrap()].clone();

    // One class only: specificity and AUC are empty, not NaN.
    ok(report_on(dir.path(), &config, &format!("{header}a,PNEUMONIA,PNEUMONIA,0.2,0.8\nb,PNEUMONIA,NORMAL,0.7,0.3\n")));
    let m = metrics(dir.path());
    assert_eq!(col(&m, "sensitivity"), "0.5");
    assert_eq!(col(&m, "specificity"), "");
    assert_eq!(col(&m, "auc"), "");
    assert!(!std::fs::read_to_string(dir.path().join("runs/e/report/metrics.csv")).unwrap().contains("NaN"));

    // All predictions the same.
    ok(report_on(dir.path(), &config, &format!("{header}a,NORMAL,PNEUMONIA,0.5,0.5\nb,PNEUMONIA,PNEUMONIA,0.5,0.5\n")));
    assert_eq!(col(&metrics(dir.path()), "auc"), "0.5");

    // An empty split.
    ok(report_on(dir.path(), &config, header));
    assert_eq!(col(&metrics(dir.path()), "n"), "0");

    // Class names that are not the config's.
    let err = fails(report_on(dir.path(), &config, "path,label,predicted,p_NORMAL,p_COVID\na,NORMAL,NORMAL,0.9,0.1\n"));
    assert!(err.contains("classes [NORMAL, COVID]") && err.contains("data.classes is [NORMAL, PNEUMONIA]"), "{err}");
}

#[test]
fn report_compare_puts_experiments_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    ok(run_stage("infer", &config, &[]));
    ok(run_stage("report", &config, &[]));
    let exp = dir.path().join("runs/e");
    let out = bin("report").arg("compare").arg(&exp).arg(&exp).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("experiment") && lines[0].contains("DeLong p"), "{text}");
    // A header and one row per experiment and split (val, test), then the comparison.
    assert!(lines[1..5].iter().all(|l| l.starts_with(exp.to_str().unwrap())), "{text}");
    assert!(text.contains("DeLong p = 1.000"), "an experiment against itself: {text}");
}
