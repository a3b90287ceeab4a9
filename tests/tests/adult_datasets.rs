//! Adult datasets through the shipped configs (CheXpert, NIH ChestX-ray14, RSNA) on
//! generated files with the real header and path layouts: patients never cross the split,
//! lateral views and other findings are left out with reasons, and counts add up.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use cxr_config::Adapter;
use image::ImageFormat;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs").join(name)
}

/// Runs `preprocess` with a shipped config on `root`, into `dir/runs/<name>`; returns stderr.
fn preprocess_shipped(config: &str, dir: &Path, root: &Path, extra: &[&str]) -> String {
    let mut sets = vec![
        format!("data.root={}", root.display()),
        format!("experiment.workdir={}", dir.join("runs").display()),
        "experiment.name=t".to_string(),
        "preprocess.size=[32,32]".to_string(),
        "data.val_fraction=0.3".to_string(),
    ];
    sets.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
    ok(run_stage("preprocess", &shipped(config), &refs))
}

/// Asserts that no patient has images in two splits; returns patients per split.
fn assert_patients_disjoint(rows: &[(String, String, String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_split: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (split, _, _, patient) in rows {
        assert!(!patient.is_empty());
        by_split.entry(split.clone()).or_default().insert(patient.clone());
    }
    let splits: Vec<&BTreeSet<String>> = by_split.values().collect();
    for (i, a) in splits.iter().enumerate() {
        for b in &splits[i + 1..] {
            assert!(a.is_disjoint(b), "a patient is on both sides: {:?}", a.intersection(b).collect::<Vec<_>>());
        }
    }
    by_split
}

fn rejects(dir: &Path) -> Vec<(String, String)> {
    read_csv(&dir.join("runs/t/tensors/rejects.csv"))[1..].iter().map(|r| (r[0].clone(), r[1].clone())).collect()
}

#[test]
fn chexpert_keeps_frontal_views_and_keeps_patients_together() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("chexpert");
    let base = root.join("CheXpert-v1.0-small");
    let mut csv = vec!["Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Pneumonia".to_string()];
    let (mut frontal_labelled, mut lateral, mut uncertain) = (0, 0, 0);
    for p in 0..24u32 {
        let positive = p % 2 == 1;
        // Several studies per patient, each with a frontal and a lateral view.
        for study in 1..=2 {
            for (view, kind) in [("view1_frontal", "Frontal"), ("view2_lateral", "Lateral")] {
                let rel = format!("CheXpert-v1.0-small/train/patient{p:05}/study{study}/{view}.jpg");
                save(
                    &xray_like_unique(p * 10 + study, p * 10 + study, 64, 60, positive),
                    &root.join(&rel),
                    ImageFormat::Jpeg,
                );
                let label = if p == 3 && study == 2 {
                    "-1.0"
                } else if positive {
                    "1.0"
                } else {
                    "0.0"
                };
                csv.push(format!("{rel},Female,50,{kind},AP,,{label}"));
                match (kind, label) {
                    ("Lateral", _) => lateral += 1,
                    (_, "-1.0") => uncertain += 1,
                    _ => frontal_labelled += 1,
                }
            }
        }
    }
    std::fs::write(base.join("train.csv"), csv.join("\n") + "\n").unwrap();
    let stderr = preprocess_shipped("chexpert.yaml", dir.path(), &root, &[]);
    let rows = manifest_rows(&dir.path().join("runs/t"));
    assert_eq!(rows.len(), frontal_labelled, "{stderr}");
    assert!(rows.iter().all(|r| r.1.ends_with("view1_frontal.jpg")));
    let by_split = assert_patients_disjoint(&rows);
    assert!(by_split["val"].len() >= 5 && by_split["train"].len() >= 12, "{by_split:?}");
    assert!(rows.iter().all(|r| r.1.contains(&format!("/{}/", r.3))), "the patient is the patient folder");
    let rejects = rejects(dir.path());
    assert_eq!(rejects.len(), lateral + uncertain);
    assert_eq!(rejects.iter().filter(|r| r.1.contains("Frontal/Lateral is \"Lateral\"")).count(), lateral);
    assert_eq!(rejects.iter().filter(|r| r.1.contains("label \"-1.0\"")).count(), uncertain);
    // The log and meta.json give images and patients per split.
    assert!(stderr.contains("patients"), "{stderr}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("runs/t/tensors/meta.json")).unwrap()).unwrap();
    let val = meta["splits"].as_array().unwrap().iter().find(|s| s["name"] == "val").unwrap();
    assert_eq!(val["patients"].as_u64().unwrap() as usize, by_split["val"].len());
}

/// NIH's real header: `OriginalImage[Width,Height]` has a comma inside, so rows have fewer
/// fields than the header.
const NIH_HEADER: &str = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],";

#[test]
fn nih_keeps_no_finding_as_normal_and_a_patients_follow_ups_together() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nih");
    let mut csv = vec![NIH_HEADER.to_string()];
    let findings = ["No Finding", "Pneumonia", "Effusion|Pneumonia", "Cardiomegaly", "No Finding", "Mass|Nodule"];
    let (mut kept, mut other) = (0, 0);
    for patient in 1..=30u32 {
        for follow_up in 0..3u32 {
            let name = format!("{patient:08}_{follow_up:03}.png");
            let finding = findings[((patient + follow_up) % 6) as usize];
            let positive = finding.contains("Pneumonia");
            save(
                &xray_like_unique(patient * 7 + follow_up, patient * 100 + follow_up, 70, 64, positive),
                &root.join("images").join(&name),
                ImageFormat::Png,
            );
            csv.push(format!("{name},{finding},{follow_up},{patient},58,M,PA,2682,2749,0.143,0.143"));
            if positive || finding == "No Finding" {
                kept += 1;
            } else {
                other += 1;
            }
        }
    }
    std::fs::write(root.join("Data_Entry_2017_v2020.csv"), csv.join("\n") + "\n").unwrap();
    preprocess_shipped("nih.yaml", dir.path(), &root, &[]);
    let rows = manifest_rows(&dir.path().join("runs/t"));
    assert_eq!(rows.len(), kept);
    assert_patients_disjoint(&rows);
    let rejects = rejects(dir.path());
    assert_eq!(rejects.len(), other);
    assert!(rejects.iter().all(|r| r.1.contains("matches no data.csv.label.map entry")), "{rejects:?}");
    assert!(rejects.iter().any(|r| r.1.contains("\"Cardiomegaly\"")));
    // The patient is the Patient ID column, not the file name.
    assert!(rows.iter().all(|r| {
        Path::new(&r.1)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("{:08}", r.3.parse::<u32>().unwrap()))
    }));
}

#[test]
fn rsna_merges_box_rows_and_reads_dicom() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rsna");
    let mut csv = vec!["patientId,x,y,width,height,Target".to_string()];
    for i in 0..30u32 {
        let id = format!("0004cfab-14fd-4e49-80ba-{i:012}");
        let positive = i % 3 == 0;
        write_dicom(&root.join("stage_2_train_images").join(format!("{id}.dcm")), i, 64, 64, positive);
        if positive {
            // Two boxes: two rows for one image.
            csv.push(format!("{id},264.0,152.0,213.0,379.0,1"));
            csv.push(format!("{id},562.0,152.0,256.0,453.0,1"));
        } else {
            csv.push(format!("{id},,,,,0"));
        }
    }
    std::fs::write(root.join("stage_2_train_labels.csv"), csv.join("\n") + "\n").unwrap();
    preprocess_shipped("rsna.yaml", dir.path(), &root, &[]);
    let rows = manifest_rows(&dir.path().join("runs/t"));
    assert_eq!(rows.len(), 30, "one row per image, boxes merged");
    assert_eq!(rows.iter().filter(|r| r.2 == "PNEUMONIA").count(), 10);
    assert_patients_disjoint(&rows);
    assert!(rejects(dir.path()).is_empty());
}

#[test]
fn labels_equal_to_class_names_need_no_map_and_an_all_rejected_file_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let mut csv = vec!["file,diagnosis".to_string()];
    for i in 0..12u32 {
        let class = if i % 2 == 0 { "NORMAL" } else { "PNEUMONIA" };
        save(&xray_like(i, 48, 48, i % 2 == 1), &root.join(format!("img/{i}.png")), ImageFormat::Png);
        csv.push(format!("img/{i}.png,{class}"));
    }
    std::fs::write(root.join("labels.csv"), csv.join("\n") + "\n").unwrap();
    let config = TestConfig::new("t", &dir.path().join("runs"), &root)
        .size(32, 32)
        .with(|c| {
            c.data.adapter = Adapter::Csv;
            c.data.csv.path_column = "file".into();
            c.data.csv.label.column = "diagnosis".into();
        })
        .write(dir.path());
    ok(run_stage("preprocess", &config, &[]));
    assert_eq!(manifest_rows(&dir.path().join("runs/t")).len(), 12);

    let err = fails(run_stage("preprocess", &config, &["data.classes=[HEALTHY, SICK]"]));
    assert!(err.contains("every row of") && err.contains("labels.csv") && err.contains("12 rows"), "{err}");
    assert!(err.contains("label \\\"NORMAL\\\"") || err.contains("label \"NORMAL\""), "{err}");
    assert!(!err.contains("class folders"), "a CSV user is not told about folders: {err}");

    // One class without rows: the error speaks of the label file, not of folders.
    let err = fails(run_stage("preprocess", &config, &["data.classes=[NORMAL, VIRAL]"]));
    assert!(err.contains("\"VIRAL\"") && err.contains("no usable row in") && !err.contains("class folders"), "{err}");
}

#[test]
fn a_wrong_patient_grouping_is_an_error_that_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("chexpert");
    let mut csv = vec!["Path,Frontal/Lateral,Pneumonia".to_string()];
    for p in 0..40u32 {
        let rel = format!("CheXpert-v1.0-small/train/patient{p:05}/study1/view1_frontal.jpg");
        save(&xray_like(p, 48, 48, p % 2 == 0), &root.join(&rel), ImageFormat::Jpeg);
        csv.push(format!("{rel},Frontal,{}", if p % 2 == 0 { "1.0" } else { "0.0" }));
    }
    std::fs::write(root.join("CheXpert-v1.0-small/train.csv"), csv.join("\n") + "\n").unwrap();
    // The Kermany file-name rule makes every view1_frontal.jpg one "patient".
    let sets = [
        format!("data.root={}", root.display()),
        format!("experiment.workdir={}", dir.path().join("runs").display()),
        "data.patient=kermany".to_string(),
    ];
    let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
    let err = fails(run_stage("preprocess", &shipped("chexpert.yaml"), &refs));
    assert!(err.contains("\"view1_frontal\" holds 40 of the 40") && err.contains("data.patient"), "{err}");
}
