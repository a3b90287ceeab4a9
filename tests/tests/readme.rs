//! The README's "Your own data in five minutes" walked as written: its configs are written
//! to files, its commands run with the real stage binaries, on datasets generated in the
//! layout it describes (a folder per class, a CSV label file, DICOM).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use image::ImageFormat;

/// One `###` part of the section: its YAML files by name and its commands, in order.
#[derive(Debug, Default)]
struct Part {
    configs: BTreeMap<String, String>,
    commands: Vec<Vec<String>>,
}

/// The `###` parts of the README's `## Your own data in five minutes`, by title. A YAML block
/// belongs to the last `` `NAME.yaml` `` (no folder) named in the text before it; an `sh` block's lines are
/// commands (`#` comments and empty lines aside).
fn parts(readme: &str) -> BTreeMap<String, Part> {
    let start = readme.find("\n## Your own data in five minutes\n").expect("the README has the section");
    let rest = &readme[start + 1..];
    let section = &rest[..rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3)];
    let mut out = BTreeMap::new();
    for chunk in section.split("\n### ").skip(1) {
        let (title, body) = chunk.split_once('\n').expect("a title line");
        let mut part = Part::default();
        let mut named = None;
        let mut pieces = body.split("```");
        let mut text = pieces.next().unwrap_or_default();
        loop {
            named = text.split('`').rfind(|w| w.ends_with(".yaml") && !w.contains('/')).map(str::to_string).or(named);
            let Some(block) = pieces.next() else { break };
            let (lang, code) = block.split_once('\n').unwrap_or((block, ""));
            match lang.trim() {
                "yaml" => {
                    let name = named.clone().expect("a YAML block after a file name");
                    part.configs.insert(name, code.to_string());
                }
                "sh" => part.commands.extend(
                    code.lines()
                        .map(|l| l.split('#').next().unwrap_or_default().trim())
                        .filter(|l| !l.is_empty())
                        .map(|l| l.split_whitespace().map(str::to_string).collect()),
                ),
                _ => {}
            }
            text = pieces.next().unwrap_or_default();
        }
        out.insert(title.trim().to_string(), part);
    }
    out
}

/// Writes the part's configs into `dir` and runs its commands there; returns their stdout.
fn walk(part: &Part, dir: &Path) -> Vec<String> {
    for (name, yaml) in &part.configs {
        std::fs::write(dir.join(name), yaml).unwrap();
    }
    let mut outputs = Vec::new();
    for command in &part.commands {
        let stage = command[0].as_str();
        assert!(["preprocess", "train", "infer", "report"].contains(&stage), "not a stage: {command:?}");
        let out = common::bin(stage).args(&command[1..]).current_dir(dir).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "`{}` failed:\n{stderr}", command.join(" "));
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    outputs
}

fn rows(path: &Path) -> usize {
    common::read_csv(path).len().saturating_sub(1)
}

#[test]
fn the_readmes_own_data_section_runs_as_written() {
    let readme = std::fs::read_to_string(common::workspace_root().join("README.md")).unwrap();
    let parts = parts(&readme);
    let titles: Vec<&str> = parts.keys().map(String::as_str).collect();
    assert_eq!(titles, ["A CSV label file", "A folder per class", "DICOM"], "the section's parts changed");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // A folder per class, with a test split: the layout the README draws.
    let folders = &parts["A folder per class"];
    assert!(folders.configs["mine.yaml"].contains("root: my_xrays"));
    for (split, n, offset) in [("train", 16, 0), ("test", 6, 100)] {
        for (class, bright) in [("NORMAL", false), ("PNEUMONIA", true)] {
            for i in 0..n {
                let id = offset + i + if bright { 1000 } else { 0 };
                let path = dir.join(format!("my_xrays/{split}/{class}/{class}-{id}.jpeg"));
                common::save(
                    &common::xray_like_unique(id, id, 120 + i % 9, 100 + i % 7, bright),
                    &path,
                    ImageFormat::Jpeg,
                );
            }
        }
    }
    walk(folders, dir);
    assert!(dir.join("runs/mine/report/index.html").is_file());
    assert!(dir.join("runs/mine/predictions/test.csv").is_file(), "the test split judged");
    assert_eq!(rows(&dir.join("new.csv")), 6, "`infer --out new.csv my_xrays/test/PNEUMONIA`");

    // A CSV label file: path,label,patient, two images per patient.
    let csv = &parts["A CSV label file"];
    assert!(csv.configs["adult.yaml"].contains("root: adult_xrays"));
    let mut labels = String::from("path,label,patient\n");
    for i in 0..40u32 {
        let (class, bright) = if i % 2 == 0 { ("NORMAL", false) } else { ("PNEUMONIA", true) };
        let name = format!("images/a{i:03}.png");
        common::save(
            &common::xray_like_unique(i, 5000 + i, 110, 96, bright),
            &dir.join("adult_xrays").join(&name),
            ImageFormat::Png,
        );
        labels.push_str(&format!("{name},{class},p{:02}\n", i / 4 * 2 + i % 2));
    }
    std::fs::write(dir.join("adult_xrays/labels.csv"), labels).unwrap();
    walk(csv, dir);
    assert!(dir.join("runs/adult/report/index.html").is_file());
    let manifest = common::read_csv(&dir.join("runs/adult/tensors/train/manifest.csv"));
    assert!(manifest.len() > 20, "the label file's images were read");

    // DICOM in class folders, and new files to predict.
    let dicom = &parts["DICOM"];
    assert!(dicom.configs["dicom.yaml"].contains("root: dicom_xrays"));
    for i in 0..14u32 {
        for (class, bright) in [("NORMAL", false), ("PNEUMONIA", true)] {
            let seed = i * 2 + bright as u32;
            common::write_dicom(&dir.join(format!("dicom_xrays/train/{class}/{seed:03}.dcm")), seed, 100, 90, bright);
        }
    }
    for i in 0..4u32 {
        common::write_dicom(&dir.join(format!("new_dicoms/new{i}.dcm")), 200 + i, 100, 90, i % 2 == 1);
    }
    walk(dicom, dir);
    assert_eq!(rows(&dir.join("new_dicoms.csv")), 4, "`infer --out new_dicoms.csv new_dicoms`");
}
