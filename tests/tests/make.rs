//! The Makefile's experiment targets remember the config: a changed SET reruns exactly the
//! stages it affects, and SET values with spaces or shell characters arrive intact.

mod common;

use std::path::Path;
use std::time::SystemTime;

use common::*;

fn make_experiment(exp: &Path, config: &Path, set: &str) -> String {
    let root = workspace_root();
    let output = std::process::Command::new("make")
        .current_dir(&root)
        .args(["--no-print-directory", "-f", "mk/experiment.mk"])
        .arg(format!("EXP={}", exp.display()))
        .arg(format!("BIN={}", bin_dir().display()))
        .env("CONFIG", config)
        .env("SET", set)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "make failed: {text}");
    text
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn a_changed_set_reruns_exactly_the_stages_it_affects() {
    let dir = tempfile::tempdir().unwrap();
    // A data folder whose name would break an unquoted shell: a space and a semicolon.
    let root = dir.path().join("my data;touch PWNED");
    write_split(&root, "train", 8, 0);
    write_split(&root, "test", 3, 100);
    let config = TestConfig::default()
        .with(|c| {
            c.experiment.name = "e".into();
            c.experiment.workdir = dir.path().join("runs");
        })
        .ungrouped()
        .val_fraction(0.3)
        .size(32, 32)
        .random_backbone(&[8])
        .epochs(1)
        .batch_size(4)
        .bootstrap(20)
        .with(|c| c.report.png = false)
        .write(dir.path());
    let exp = dir.path().join("runs/e");
    let data = format!("'data.root={}'", root.display());
    make_experiment(&exp, &config, &data);
    assert!(exp.join("report/index.html").is_file());
    assert!(!workspace_root().join("PWNED").exists() && !dir.path().join("PWNED").exists());
    let files = ["tensors/meta.json", "train/model.onnx", "predictions/provenance.json", "report/index.html"];
    let times = |exp: &Path| files.map(|f| mtime(&exp.join(f)));
    let first = times(&exp);

    // The same SET again: nothing reruns.
    make_experiment(&exp, &config, &data);
    assert_eq!(times(&exp), first);

    // Another epoch count: train and what follows rerun, preprocess does not.
    make_experiment(&exp, &config, &format!("train.epochs=2 {data}"));
    let second = times(&exp);
    assert_eq!(second[0], first[0], "preprocess reran");
    assert!(second[1] > first[1] && second[2] > first[2] && second[3] > first[3]);
    assert_eq!(read_csv(&exp.join("train/history.csv")).len() - 1, 2);

    // A report setting: only the report reruns.
    make_experiment(&exp, &config, &format!("train.epochs=2 {data} report.target_sensitivity=0.9"));
    let third = times(&exp);
    assert_eq!(third[..3], second[..3]);
    assert!(third[3] > second[3]);

    // Unbalanced quotes are an error, not a guess.
    let output = std::process::Command::new("scripts/stage.sh")
        .current_dir(workspace_root())
        .arg(bin_path("report"))
        .arg("--print-exp-dir")
        .env("CONFIG", &config)
        .env("SET", "'data.root=/x")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unbalanced quotes"));
}
