//! Experiment integrity: nothing mixed, nothing run, nothing leaked. A report refuses
//! predictions of a model trained again since (and says so first when told to go on); infer
//! refuses a model trained on other tensors; a second run on a busy experiment names the
//! holder; a hostile file name reaches neither the page's markup nor a spreadsheet formula;
//! no stage runs `git` in the user's folder or writes under `$HOME`.

mod common;

use std::path::Path;

use common::*;
use cxr_config::PatientId;
use image::ImageFormat;

fn config_arg(config: &Path) -> [&str; 2] {
    ["--config", config.to_str().unwrap()]
}

#[test]
fn report_refuses_predictions_of_a_model_trained_again_and_allow_stale_says_so_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    ok(run_stage("infer", &config, &[]));
    ok(run_stage("train", &config, &["train.epochs=3"]));
    let err = fails(run_stage("report", &config, &["train.epochs=3"]));
    assert!(err.contains("another model") && err.contains("rerun `infer`"), "{err}");
    let stderr = ok(bin("report")
        .args(config_arg(&config))
        .args(["--set", "train.epochs=3", "--allow-stale"])
        .output()
        .unwrap());
    assert!(stderr.contains("another model"), "{stderr}");
    let html = std::fs::read_to_string(dir.path().join("runs/e/report/index.html")).unwrap();
    let body = &html[html.find("<body>").unwrap() + 6..];
    assert!(body.trim_start().starts_with(r#"<div class="headline optimistic"><p><b>Stale"#), "{}", &body[..200]);
    // Predicting again makes the report whole again.
    ok(run_stage("infer", &config, &["train.epochs=3"]));
    ok(run_stage("report", &config, &["train.epochs=3"]));
}

#[test]
fn infer_refuses_a_model_trained_on_other_tensors_and_a_train_folder_that_mixes_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let exp = dir.path().join("runs/e");
    // The tensors made again from other images: the model was not trained on these.
    write_split(&dir.path().join("data"), "train", 12, 330);
    ok(run_stage("preprocess", &config, &[]));
    let err = fails(run_stage("infer", &config, &[]));
    assert!(err.contains("changed after the model was trained") && err.contains("rerun `train`"), "{err}");
    ok(run_stage("train", &config, &[]));
    ok(run_stage("infer", &config, &[]));
    // A train folder whose model.onnx is not the one its provenance.json records (as a
    // killed retrain that replaced one and not the other would leave it).
    let provenance = exp.join("train/provenance.json");
    let text = std::fs::read_to_string(&provenance).unwrap();
    let sha = cxr_store::sha256_file(&exp.join("train/model.onnx")).unwrap();
    std::fs::write(&provenance, text.replace(&sha, &"0".repeat(64))).unwrap();
    let err = fails(run_stage("infer", &config, &[]));
    assert!(err.contains("mixes two runs"), "{err}");
    // Checked while the session is built, the stale model is still the error reported, before
    // one from opening the session (CUDA on a machine without it) or the classes.
    let err = fails(bin("infer").args(config_arg(&config)).args(["--device", "cuda"]).output().unwrap());
    assert!(err.contains("mixes two runs") && !err.contains("CUDA"), "{err}");
    let other_classes = ["--set", "data.classes=[PNEUMONIA,NORMAL]"];
    let err = fails(bin("infer").args(config_arg(&config)).args(other_classes).output().unwrap());
    assert!(err.contains("mixes two runs"), "{err}");
}

#[test]
fn a_second_run_on_a_busy_experiment_stops_and_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let lock = dir.path().join("runs/e/.lock");
    let file = std::fs::OpenOptions::new().write(true).open(&lock).unwrap();
    file.try_lock().unwrap();
    std::fs::write(&lock, "`train`, process 4242\n").unwrap();
    for stage in ["preprocess", "train", "infer", "report"] {
        let err = fails(run_stage(stage, &config, &[]));
        assert!(err.contains("in use by another run (`train`, process 4242)"), "{stage}: {err}");
    }
    drop(file);
    ok(run_stage("infer", &config, &[]));
}

/// The names of every element and attribute in `html` (a small tokenizer: tags open with
/// `<` followed by a letter; attribute values are quoted).
fn markup(html: &str) -> (Vec<String>, Vec<String>) {
    let (mut elements, mut attributes) = (Vec::new(), Vec::new());
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(at) = html[i..].find('<') {
        i += at + 1;
        let name: String = html[i..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if name.is_empty() {
            continue;
        }
        elements.push(name.to_ascii_lowercase());
        i += name.len();
        loop {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= bytes.len() || bytes[i] == b'>' || bytes[i] == b'/' {
                break;
            }
            let attr: String =
                html[i..].chars().take_while(|c| !c.is_ascii_whitespace() && *c != '=' && *c != '>').collect();
            i += attr.len().max(1);
            attributes.push(attr.to_ascii_lowercase());
            if bytes.get(i) == Some(&b'=') {
                i += 1;
                let quote = bytes[i];
                if quote == b'"' || quote == b'\'' {
                    i += html[i + 1..].find(quote as char).unwrap() + 2;
                } else {
                    // An unquoted value (`class=note`): letters only, as the project writes them.
                    let value: String =
                        html[i..].chars().take_while(|c| !c.is_ascii_whitespace() && *c != '>').collect();
                    assert!(value.chars().all(|c| c.is_ascii_alphanumeric()), "unquoted value {value:?}");
                    i += value.len();
                }
            }
        }
    }
    (elements, attributes)
}

#[test]
fn a_hostile_file_name_reaches_neither_the_page_markup_nor_a_spreadsheet_formula() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 10, 0);
    write_split(&root, "test", 3, 100);
    let hostile = r#"x" onmouseover="alert(1)" y='<script>alert(2)</script>.jpeg"#;
    save(&xray_like(7, 80, 70, true), &root.join("test/PNEUMONIA").join(hostile), ImageFormat::Jpeg);
    // Patients named as formulas, through a pattern over the path.
    let formula_dir = root.join("test/NORMAL");
    save(&xray_like(8, 80, 70, false), &formula_dir.join("=HYPERLINK(1)_scan.jpeg"), ImageFormat::Jpeg);
    let config = TestConfig::new("e", &dir.path().join("runs"), &root)
        .ungrouped()
        .val_fraction(0.3)
        .with(|c| c.data.patient = PatientId::Pattern(r"(=[A-Z]+\(1\))".into()))
        .size(32, 32)
        .random_backbone(&[8])
        .epochs(2)
        .batch_size(4)
        .bootstrap(20)
        .with(|c| c.report.gallery = 8)
        .write(dir.path());
    for stage in ["preprocess", "train", "infer", "report"] {
        ok(run_stage(stage, &config, &[]));
    }
    let exp = dir.path().join("runs/e");
    let html = std::fs::read_to_string(exp.join("report/index.html")).unwrap();
    assert!(html.contains("onmouseover=&quot;alert(1)&quot;"), "the name is on the page, as text");
    let (elements, attributes) = markup(&html);
    let allowed_elements = [
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "h3",
        "p",
        "b",
        "small",
        "code",
        "pre",
        "div",
        "table",
        "tr",
        "td",
        "th",
        "img",
        "figure",
        "figcaption",
        "br",
        "ul",
        "li",
    ];
    let allowed_attributes = ["lang", "charset", "name", "content", "class", "alt", "src", "style", "title"];
    let stray: Vec<&String> = elements.iter().filter(|e| !allowed_elements.contains(&e.as_str())).collect();
    assert!(stray.is_empty(), "elements the project did not write: {stray:?}");
    let stray: Vec<&String> = attributes.iter().filter(|a| !allowed_attributes.contains(&a.as_str())).collect();
    assert!(stray.is_empty(), "attributes the project did not write: {stray:?}");

    // The formula patient is neutralised in the manifest and read back as it was.
    let manifest = std::fs::read_to_string(exp.join("tensors/test/manifest.csv")).unwrap();
    assert!(manifest.contains(",'=HYPERLINK(1)") && !manifest.contains(",=HYPERLINK"), "{manifest}");
    let rows: Vec<cxr_store::manifest::ManifestRow> =
        cxr_store::csv_file::read_csv(&exp.join("tensors/test/manifest.csv")).unwrap();
    assert!(rows.iter().any(|r| r.patient == "=HYPERLINK(1)"), "read back unchanged");
    for file in ["predictions/test.csv", "report/metrics.csv", "tensors/test/manifest.csv", "tensors/rejects.csv"] {
        for line in std::fs::read_to_string(exp.join(file)).unwrap().lines() {
            for cell in line.split(',') {
                let cell = cell.trim_matches('"');
                assert!(!cell.starts_with(['=', '@', '+']), "{file}: formula cell {cell:?}");
            }
        }
    }
}

#[test]
fn no_stage_runs_git_in_the_users_folder_or_writes_under_home() {
    let dir = tempfile::tempdir().unwrap();
    // A repository whose config runs a command whenever git looks at its work tree.
    let work = dir.path().join("work");
    let marker = dir.path().join("git-ran");
    std::fs::create_dir_all(&work).unwrap();
    let git = |args: &[&str]| std::process::Command::new("git").current_dir(&work).args(args).output().unwrap();
    git(&["init", "-q"]);
    git(&["config", "core.fsmonitor", &format!("touch {}; false", marker.display())]);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let config = {
        let root = dir.path().join("data");
        write_split(&root, "train", 8, 0);
        write_split(&root, "test", 2, 100);
        TestConfig::new("e", &dir.path().join("runs"), &root)
            .ungrouped()
            .val_fraction(0.3)
            .size(32, 32)
            .random_backbone(&[8])
            .epochs(1)
            .batch_size(4)
            .bootstrap(10)
            .write(&dir.path().join("cfg"))
    };
    for stage in ["preprocess", "train", "infer", "report"] {
        let mut cmd = bin(stage);
        cmd.current_dir(&work).env("HOME", &home).env_remove("ORT_DISABLE_TELEMETRY").env_remove("XDG_CACHE_HOME");
        ok(cmd.args(config_arg(&config)).output().unwrap());
    }
    assert!(!marker.exists(), "a stage ran git in the working folder");
    let left: Vec<_> = std::fs::read_dir(&home).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "written under HOME: {left:?}");
    let provenance = provenance_tool_or_revision(&dir.path().join("runs/e/train/provenance.json"));
    assert_ne!(provenance, "unknown", "the build's own revision is recorded");
}

/// `git_revision` of a provenance file.
fn provenance_tool_or_revision(path: &Path) -> String {
    let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    value["git_revision"].as_str().unwrap().to_string()
}
