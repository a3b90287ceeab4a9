//! `report compare A B --out DIR` end to end: two small experiments on the same images that
//! differ in one config key, their paired tests in compare.csv, the changed key in
//! compare.html, and the messages for a missing folder and a folder without a report.

mod common;

use std::path::Path;

use common::*;

/// The cells of `column` in a CSV read by [`read_csv`], by row.
fn column<'a>(rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let i = rows[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}: {:?}", rows[0]));
    rows[1..].iter().map(|r| r[i].as_str()).collect()
}

/// Experiments `runs/e` (2 epochs) and `runs/f` (3 epochs) on the same data, reported.
fn two_experiments(dir: &Path) {
    let config = trained(dir);
    ok(run_stage("infer", &config, &[]));
    ok(run_stage("report", &config, &[]));
    let other = ["experiment.name=f", "train.epochs=3"];
    for stage in ["preprocess", "train", "infer", "report"] {
        ok(run_stage(stage, &config, &other));
    }
}

#[test]
fn compare_tests_b_against_a_on_the_shared_images() {
    let dir = tempfile::tempdir().unwrap();
    two_experiments(dir.path());
    let (a, b) = (dir.path().join("runs/e"), dir.path().join("runs/f"));
    let out_dir = dir.path().join("cmp");
    let out = bin("report").arg("compare").arg(&a).arg(&b).arg("--out").arg(&out_dir).output().unwrap();
    ok(out.clone());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let first = stdout.lines().next().unwrap();
    for heading in ["experiment", "split", "accuracy", "AUC (95% CI)", "DeLong p", "McNemar p"] {
        assert!(first.contains(heading), "{stdout}");
    }
    assert!(stdout.contains("train.epochs: 2 -> 3"), "{stdout}");
    assert!(stdout.contains("On test (8 shared images)") && stdout.contains("at the 5% level"), "{stdout}");
    assert!(!stdout.contains("0.0000000"), "3 decimals, not long floats: {stdout}");

    let rows = read_csv(&out_dir.join("compare.csv"));
    let experiments = column(&rows, "experiment");
    let splits = column(&rows, "split");
    let (delong, mcnemar) = (column(&rows, "delong_p"), column(&rows, "mcnemar_p"));
    let shared = column(&rows, "n_paired");
    for (k, exp) in experiments.iter().enumerate() {
        if *exp == a.display().to_string() {
            assert_eq!((delong[k], mcnemar[k]), ("", ""), "the reference is not tested against itself");
        } else {
            assert_eq!(*exp, b.display().to_string());
            for p in [delong[k], mcnemar[k]] {
                let p: f64 = p.parse().unwrap_or_else(|_| panic!("{}: p {p:?}", splits[k]));
                assert!((0.0..=1.0).contains(&p), "{p}");
            }
        }
    }
    let test_row = (0..experiments.len()).find(|&k| experiments[k] != a.display().to_string() && splits[k] == "test");
    assert_eq!(shared[test_row.unwrap()], "8");
    for name in ["auc_diff", "delong_z", "b", "c", "config_changes"] {
        column(&rows, name);
    }

    let html = std::fs::read_to_string(out_dir.join("compare.html")).unwrap();
    assert!(html.contains("<code>train.epochs</code>") && html.contains("DeLong"), "{html}");
    assert!(html.contains("<style>") && !html.contains("<script"), "self-contained, no scripts");

    // Run again into the same folder: replaced whole, nothing left beside it.
    ok(bin("report").arg("compare").arg(&a).arg(&b).arg("--out").arg(&out_dir).output().unwrap());
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(names.iter().all(|n| !n.contains("staging")), "{names:?}");
}

#[test]
fn compare_names_what_is_missing_and_escapes_folder_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    ok(run_stage("infer", &config, &[]));
    ok(run_stage("report", &config, &[]));
    let a = dir.path().join("runs/e");

    let missing = dir.path().join("runs/nope");
    let err = fails(bin("report").arg("compare").arg(&a).arg(&missing).output().unwrap());
    assert!(err.contains(&format!("{}: no such experiment folder", missing.display())), "{err}");
    assert!(!err.contains("run `report`"), "a missing folder is not a missing report: {err}");

    let unreported = dir.path().join("runs/g");
    std::fs::create_dir_all(unreported.join("predictions")).unwrap();
    let err = fails(bin("report").arg("compare").arg(&a).arg(&unreported).output().unwrap());
    assert!(err.contains("metrics.csv") && err.contains("run `report`"), "{err}");

    // --out never replaces a folder of other files (here the workdir itself).
    let runs = dir.path().join("runs");
    let err = fails(bin("report").args(["compare"]).arg(&a).arg(&a).arg("--out").arg(&runs).output().unwrap());
    assert!(err.contains("did not write"), "{err}");
    assert!(a.join("report/metrics.csv").is_file());

    // A folder name that is HTML is shown as text.
    let odd = dir.path().join("<b>odd");
    std::fs::create_dir_all(&odd).unwrap();
    for part in ["report", "predictions"] {
        let target = odd.join(part);
        std::fs::create_dir_all(&target).unwrap();
        for entry in std::fs::read_dir(a.join(part)).unwrap() {
            let entry = entry.unwrap();
            if entry.path().is_file() {
                std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
            }
        }
    }
    let out_dir = dir.path().join("cmp");
    ok(bin("report").arg("compare").arg(&a).arg(&odd).arg("--out").arg(&out_dir).output().unwrap());
    let html = std::fs::read_to_string(out_dir.join("compare.html")).unwrap();
    assert!(html.contains("&lt;b&gt;odd") && !html.contains("<b>odd"), "{html}");
    // The same predictions and the same (copied) config: no difference, p = 1.
    let rows = read_csv(&out_dir.join("compare.csv"));
    assert!(column(&rows, "delong_p").contains(&"1"), "{rows:?}");
    assert!(html.contains("the same configuration"), "copied config: {html}");
}
