//! Errors that teach, with the real binaries: a config mistake names the file, line and
//! column or the `--set` that made it, with the value meant and types in words; a missing
//! file says its OS error once; `--device gpu` is answered with cuda; `<stage> help` and
//! each `--help`'s examples work; completions and man pages are written; a folder of
//! non-images is refused with its reject reasons counted.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

const STAGES: [&str; 4] = ["preprocess", "train", "infer", "report"];

/// A stage binary without the harness's `--no-progress`, so that its first argument is
/// the one a user types first.
fn bare(stage: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin_path(stage));
    cmd.env_remove("RUST_LOG").current_dir(workspace_root());
    cmd
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_typo_in_the_file_names_file_line_and_column_and_the_key_meant() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "experiment:\n  name: e\ntrain:\n  epoch: 3\n");
    let err = fails(run_stage("preprocess", &config, &[]));
    let expected = format!(
        "{}, line 4, column 3: train.epoch: unknown key \"epoch\" (did you mean \"epochs\"?), expected one of: epochs,",
        config.display()
    );
    assert!(err.contains(&expected), "{err}");
    assert!(!err.contains("--set"), "{err}");
}

#[test]
fn a_bad_set_value_names_the_set_and_its_type_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "train:\n  epochs: 3\n");
    let err = fails(run_stage("train", &config, &["train.epochs=abc"]));
    assert!(
        err.contains("--set train.epochs=abc: train.epochs: expected a whole number (0 or more), got \"abc\""),
        "{err}"
    );
    assert!(!err.contains("usize") && !err.contains(&config.display().to_string()), "{err}");
    let err = fails(run_stage("infer", &config, &["infer.device=gpu"]));
    assert!(err.contains("--set infer.device=gpu: infer.device: unknown value \"gpu\" (use cuda)"), "{err}");
}

#[test]
fn a_duplicate_key_is_reported_at_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "train:\n  epochs: 3\n  batch_size: 8\n  epochs: 4\n");
    let err = fails(run_stage("report", &config, &[]));
    assert!(err.contains("line 4, column 3: `train.epochs` is given twice (first at line 2)"), "{err}");
}

#[test]
fn a_missing_config_file_says_its_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = fails(run_stage("preprocess", &missing, &[]));
    assert!(err.contains(&format!("cannot read config file {}", missing.display())), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn device_gpu_is_answered_with_cuda() {
    for stage in ["train", "infer"] {
        let output = bare(stage).args(["--device", "gpu"]).output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{err}");
        assert!(err.contains("gpu: use --device cuda"), "{stage}: {err}");
        assert!(!err.contains("'cpu'"), "{stage}: {err}");
    }
}

#[test]
fn help_as_a_word_is_help_for_every_stage() {
    for stage in STAGES {
        for args in [&["help"][..], &["-q", "help"]] {
            let output = bare(stage).args(args).output().unwrap();
            assert!(output.status.success(), "{stage} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
            let text = stdout(&output);
            assert!(text.contains(&format!("Usage: {stage}")), "{stage}: {text}");
        }
    }
}

/// The command lines of a `--help`'s Examples section, without their `# remarks`.
fn examples(help: &str) -> Vec<Vec<String>> {
    let (_, section) = help.split_once("\nExamples:\n").expect("an Examples section");
    section
        .lines()
        .map(|line| line.split(" #").next().unwrap().trim())
        .filter(|line| !line.is_empty())
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn every_help_ends_with_examples_that_parse_with_configs_that_exist() {
    for stage in STAGES {
        let output = bare(stage).arg("--help").output().unwrap();
        let help = stdout(&output);
        assert!(output.status.success() && help.contains("\nExamples:\n"), "{stage}: {help}");
        let lines = examples(&help);
        assert!((2..=3).contains(&lines.len()), "{stage}: {lines:?}");
        for words in lines {
            assert_eq!(words[0], stage, "{words:?}");
            if let Some(at) = words.iter().position(|w| w == "--config") {
                assert!(workspace_root().join(&words[at + 1]).is_file(), "{words:?}: no such config");
            }
            // The flags parse and the config loads; --print-exp-dir stops before any work.
            let output = bare(stage).arg("--print-exp-dir").args(&words[1..]).output().unwrap();
            assert!(output.status.success(), "{words:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
    }
}

#[test]
fn each_binary_writes_its_completions_and_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let (completions, man) = (dir.path().join("completions"), dir.path().join("man"));
    for stage in STAGES {
        let output = bare(stage)
            .arg("--generate-completions")
            .arg(&completions)
            .arg("--generate-man")
            .arg(&man)
            .output()
            .unwrap();
        assert!(output.status.success(), "{stage}: {}", String::from_utf8_lossy(&output.stderr));
        for file in [format!("{stage}.bash"), format!("_{stage}"), format!("{stage}.fish")] {
            let text = std::fs::read_to_string(completions.join(&file)).unwrap();
            assert!(text.contains("config") && text.contains("print-exp-dir"), "{file}");
        }
        let page = std::fs::read_to_string(man.join(format!("{stage}.1"))).unwrap();
        assert!(page.contains(&format!(".TH {stage} 1")) && page.contains("Examples:"), "{page}");
    }
}

#[test]
fn the_makefile_target_calls_the_generate_flags() {
    let makefile = std::fs::read_to_string(workspace_root().join("Makefile")).unwrap();
    let target = makefile.split("\ncompletions:").nth(1).expect("a completions target");
    assert!(target.contains("--generate-completions target/completions --generate-man target/man"), "{target}");
}

/// Writes `n` files per class that are not images: text, and JPEGs cut after their header.
fn junk_dataset(root: &Path, n: usize) {
    let mut jpeg = Vec::new();
    xray_like(1, 64, 64, false).write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    for class in ["NORMAL", "PNEUMONIA"] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            std::fs::write(dir.join(format!("notes{i}.jpeg")), "not an image at all\n").unwrap();
        }
        std::fs::write(dir.join("cut.jpeg"), &jpeg[..40]).unwrap();
    }
}

#[test]
fn a_folder_of_non_images_is_refused_with_its_reasons_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("junk");
    junk_dataset(&root, 3);
    let config = TestConfig::new("e", &dir.path().join("runs"), &root).write(dir.path());
    let err = fails(run_stage("preprocess", &config, &[]));
    let rejects = dir.path().join("runs/e/tensors.rejects.csv");
    assert!(
        err.contains(&format!(
            "no usable image in {}: 8 file(s) rejected: 6 not an image (content is text), 2 corrupt or truncated JPEG",
            root.display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("every file and its reason: {}", rejects.display())), "{err}");
    let rows = read_csv(&rejects);
    assert_eq!(rows.len(), 1 + 8, "{rows:?}");
    assert!(!dir.path().join("runs/e/tensors").exists(), "nothing usable, so no tensors");
}

#[test]
fn a_relative_data_root_says_where_it_was_resolved_from() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().canonicalize().unwrap();
    let config = TestConfig::new("e", Path::new("runs"), Path::new("data/x")).write(&cwd);
    let output = bare("preprocess").current_dir(&cwd).arg("--config").arg(&config).output().unwrap();
    let err = fails(output);
    let resolved = cwd.join("data/x");
    assert!(
        err.contains(&format!(
            "data.root 'data/x' (resolved from {} as {}) does not exist",
            cwd.display(),
            resolved.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("data.root 'data/x' is relative: resolved from the current folder {}", cwd.display())),
        "{err}"
    );
}
