//! Faults: kill -9 during preprocess and during train, a full disk, a read-only
//! experiment folder. Outputs are complete and equal to an uninterrupted run after a
//! rerun / `--resume`, and earlier outputs stay intact when a stage cannot write.

mod common;

use std::path::Path;
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use common::*;
use cxr_config::{Adapter, Synthetic};

fn config(dir: &Path, workdir: &Path) -> std::path::PathBuf {
    TestConfig::new("e", workdir, &dir.join("synthetic"))
        .seed(3)
        .with(|c| {
            c.data.adapter = Adapter::Synthetic;
            c.data.synthetic = Synthetic { train_per_class: 60, val_per_class: 20, test_per_class: 10, size: 600 };
            c.preprocess.threads = 1;
        })
        .size(32, 32)
        .random_backbone(&[8])
        .epochs(40)
        .batch_size(4)
        .write(dir)
}

/// Starts a stage, kills it with SIGKILL once `ready` holds (or after `max`), returns whether it was still running.
fn kill_when(stage: &str, config: &Path, sets: &[&str], ready: impl Fn() -> bool, max: Duration) -> bool {
    let mut cmd = StdCommand::new(bin(stage).get_program());
    cmd.arg("--no-progress").arg("-q").arg("--config").arg(config);
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    while !ready() && started.elapsed() < max {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    running
}

fn staging_exists(exp: &Path) -> bool {
    std::fs::read_dir(exp)
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains(".staging-")))
        .unwrap_or(false)
}

#[test]
fn kill_9_during_preprocess_then_rerun_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &dir.path().join("runs"));
    // Generate the dataset first so the kill lands in decoding.
    ok(run_stage("preprocess", &config, &["experiment.name=whole"]));
    let exp = dir.path().join("runs/e");
    let killed = kill_when("preprocess", &config, &[], || staging_exists(&exp), Duration::from_secs(20));
    assert!(killed, "preprocess finished before it could be killed");
    assert!(!exp.join("tensors/meta.json").exists(), "a killed run must not look finished");
    ok(run_stage("preprocess", &config, &[]));
    assert!(!staging_exists(&exp), "the rerun cleans what the killed run left");
    for file in ["train/images.npy", "val/labels.npy", "test/manifest.csv", "rejects.csv"] {
        let a = std::fs::read(exp.join("tensors").join(file)).unwrap();
        let b = std::fs::read(dir.path().join("runs/whole/tensors").join(file)).unwrap();
        assert!(a == b, "{file} differs from the uninterrupted run");
    }
}

#[test]
fn kill_9_during_training_then_resume_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &dir.path().join("runs"));
    ok(run_stage("preprocess", &config, &[]));
    ok(run_stage("preprocess", &config, &["experiment.name=whole"]));
    ok(run_stage("train", &config, &["experiment.name=whole"]));
    let exp = dir.path().join("runs/e");
    let history = exp.join(".train.partial/history.csv");
    // Kill mid-run: after at least one epoch's checkpoint, usually inside a later epoch.
    let killed = kill_when("train", &config, &[], || history.exists(), Duration::from_secs(60));
    if killed {
        assert!(!exp.join("train").exists(), "a killed first run leaves no train folder to trust");
    }
    ok(bin("train").args(["--config", config.to_str().unwrap(), "--resume"]).output().unwrap());
    let whole = dir.path().join("runs/whole/train");
    for name in ["dense0.kernel", "dense1.bias"] {
        let a = std::fs::read(exp.join("train/checkpoint/params").join(format!("{name}.npy"))).unwrap();
        let b = std::fs::read(whole.join("checkpoint/params").join(format!("{name}.npy"))).unwrap();
        assert!(a == b, "{name} differs from the uninterrupted run");
    }
    assert!(std::fs::read(exp.join("train/model.onnx")).unwrap() == std::fs::read(whole.join("model.onnx")).unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(exp.join("train"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".model.onnx.tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "the killed run's temporary files are cleared: {leftovers:?}");
}

/// Every file of a train folder with its bytes (history without its wall-time column).
fn train_files(train: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(train)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn a_retrain_killed_at_any_point_leaves_the_previous_train_folder_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &dir.path().join("runs"));
    let quick = ["train.epochs=2"];
    ok(run_stage("preprocess", &config, &quick));
    ok(run_stage("train", &config, &quick));
    ok(run_stage("infer", &config, &quick));
    let exp = dir.path().join("runs/e");
    let before = train_files(&exp.join("train"));
    let partial = exp.join(".train.partial");
    type Ready<'a> = Box<dyn Fn() -> bool + 'a>;
    let points: [(&str, Ready); 3] = [
        ("as it starts", Box::new(|| partial.exists())),
        ("after a checkpoint", Box::new(|| partial.join("history.csv").exists())),
        ("with its training artifacts written", Box::new(|| partial.join("training_model.onnx").exists())),
    ];
    for (when, ready) in points {
        kill_when("train", &config, &["train.epochs=40"], ready, Duration::from_secs(60));
        assert_eq!(train_files(&exp.join("train")), before, "killed {when}: train/ changed");
        // infer and report find nothing mixed: the predictions are of the model in train/.
        ok(run_stage("report", &config, &quick));
    }
    // A retrain stopped after an epoch also leaves train/ alone; --resume completes it.
    ok(bin("train")
        .args(["--config", config.to_str().unwrap(), "--set", "train.epochs=3", "--stop-after-epoch", "1"])
        .output()
        .unwrap());
    assert_eq!(train_files(&exp.join("train")), before);
    ok(bin("train")
        .args(["--config", config.to_str().unwrap(), "--set", "train.epochs=3", "--resume"])
        .output()
        .unwrap());
    assert_eq!(read_csv(&exp.join("train/history.csv")).len(), 4, "three epochs, swapped in whole");
    assert!(!partial.exists());
    let err = fails(run_stage("report", &config, &["train.epochs=3"]));
    assert!(err.contains("rerun `infer`"), "the old predictions are not reported as the new model's: {err}");
}

#[test]
fn an_infer_killed_midway_leaves_the_previous_predictions_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &dir.path().join("runs"));
    let quick = ["train.epochs=1"];
    ok(run_stage("preprocess", &config, &quick));
    ok(run_stage("train", &config, &quick));
    ok(run_stage("infer", &config, &quick));
    let exp = dir.path().join("runs/e");
    let before = train_files(&exp.join("predictions"));
    assert!(before.iter().any(|(n, _)| n == "test.csv") && before.iter().any(|(n, _)| n == "val.csv"));
    // A slow run over many files, killed while it builds its folder.
    let files = dir.path().join("synthetic");
    let staging = |exp: &Path| {
        std::fs::read_dir(exp)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".predictions.staging-"))
    };
    let mut cmd = StdCommand::new(bin("infer").get_program());
    cmd.args(["--no-progress", "-q", "--config"]).arg(&config).args(["--set", "train.epochs=1"]).arg(&files);
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    while !staging(&exp) && child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    child.wait().unwrap();
    assert_eq!(train_files(&exp.join("predictions")), before, "the previous predictions are whole");
    ok(run_stage("report", &config, &quick));
    // A finished run replaces the folder: only its own sources are there.
    ok(bin("infer")
        .args(["--config", config.to_str().unwrap(), "--set", "train.epochs=1", "--split", "test"])
        .output()
        .unwrap());
    let after: Vec<String> = train_files(&exp.join("predictions")).into_iter().map(|(n, _)| n).collect();
    assert!(after.contains(&"test.csv".to_string()) && !after.contains(&"val.csv".to_string()), "{after:?}");
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = StdCommand::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_a_clear_error_and_earlier_outputs_stay_intact() {
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().join("small-disk");
    std::fs::create_dir_all(&workdir).unwrap();
    let status =
        StdCommand::new("mount").args(["-t", "tmpfs", "-o", "size=700k", "tmpfs"]).arg(&workdir).status().unwrap();
    assert!(status.success(), "this test mounts a 700 KB tmpfs (needs root, as CI and make test run)");
    let _mount = Mount(workdir.clone());
    let config = config(dir.path(), &workdir);
    ok(run_stage("preprocess", &config, &["preprocess.size=[32, 32]"]));
    let meta_before = std::fs::read(workdir.join("e/tensors/meta.json")).unwrap();
    // 64x64 tensors of 160 images need about 2 MB: more than the disk has.
    let err = fails(run_stage("preprocess", &config, &["preprocess.size=[64, 64]"]));
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains(&workdir.display().to_string()), "the error names the path: {err}");
    assert_eq!(std::fs::read(workdir.join("e/tensors/meta.json")).unwrap(), meta_before);
    assert!(cxr_store::npy::NpyReader::open(&workdir.join("e/tensors/train/images.npy")).is_ok());
    assert!(!staging_exists(&workdir.join("e")));
}

#[test]
fn a_full_disk_during_a_retrain_leaves_the_previous_train_folder_whole() {
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().join("small-disk");
    std::fs::create_dir_all(&workdir).unwrap();
    // model.onnx carries VGG16's weights (about 59 MB): room for one, not for a second.
    let status =
        StdCommand::new("mount").args(["-t", "tmpfs", "-o", "size=100m", "tmpfs"]).arg(&workdir).status().unwrap();
    assert!(status.success(), "this test mounts a 100 MB tmpfs (needs root, as CI and make test run)");
    let _mount = Mount(workdir.clone());
    let config = config(dir.path(), &workdir);
    ok(run_stage("preprocess", &config, &["train.epochs=1"]));
    ok(run_stage("train", &config, &["train.epochs=1"]));
    let before = train_files(&workdir.join("e/train"));
    let err = fails(run_stage("train", &config, &["train.epochs=2"]));
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(train_files(&workdir.join("e/train")), before, "the previous train folder is intact");
    ok(run_stage("infer", &config, &["train.epochs=1"]));
}

#[test]
fn a_read_only_experiment_folder_is_a_clear_error_and_outputs_stay_intact() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &dir.path().join("runs"));
    ok(run_stage("preprocess", &config, &[]));
    let exp = dir.path().join("runs/e");
    let meta_before = std::fs::read(exp.join("tensors/meta.json")).unwrap();
    // Root ignores permission bits; the immutable attribute stops root too.
    assert!(StdCommand::new("chattr").arg("+i").arg(&exp).status().unwrap().success(), "chattr +i needs root");
    let result = run_stage("preprocess", &config, &["preprocess.size=[48, 48]"]);
    StdCommand::new("chattr").arg("-i").arg(&exp).status().unwrap();
    let err = fails(result);
    assert!(err.contains("Operation not permitted") && err.contains(&exp.display().to_string()), "{err}");
    assert_eq!(std::fs::read(exp.join("tensors/meta.json")).unwrap(), meta_before);
}
