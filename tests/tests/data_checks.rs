//! What a messy hospital export does to `preprocess` and `infer`: a class folder named in
//! another case is read (with a warning), the same image in two splits or under two labels
//! is an error (or a warning when asked), a truncated JPEG with an end marker is a reject,
//! a folder of non-images is an error that says why, and so is an `infer` whose every
//! input is rejected. Size-like config keys are bounded before any work.

mod common;

use std::path::Path;

use common::*;

fn folder_config(dir: &Path, root: &Path) -> std::path::PathBuf {
    TestConfig::new("e", &dir.join("runs"), root).ungrouped().val_fraction(0.3).size(32, 32).write(dir)
}

#[test]
fn a_class_folder_in_another_case_is_read_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 6, 0);
    std::fs::rename(root.join("train/PNEUMONIA"), root.join("train/Pneumonia")).unwrap();
    std::fs::create_dir_all(root.join("train/notes")).unwrap();
    std::fs::write(root.join("train/notes/readme.txt"), "x").unwrap();
    let config = folder_config(dir.path(), &root);
    let stderr = ok(run_stage("preprocess", &config, &[]));
    assert!(stderr.contains("Pneumonia is read as class PNEUMONIA"), "{stderr}");
    assert!(stderr.contains("notes is not a class folder"), "{stderr}");
    let rows = manifest_rows(&dir.path().join("runs/e"));
    assert_eq!(rows.iter().filter(|r| r.2 == "PNEUMONIA").count(), 6, "no image of the folder lost");
}

#[test]
fn the_same_image_in_two_splits_or_under_two_labels_is_an_error_unless_downgraded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 6, 0);
    write_split(&root, "test", 3, 100);
    std::fs::copy(root.join("train/NORMAL/img003.jpeg"), root.join("test/NORMAL/copy.jpeg")).unwrap();
    let config = folder_config(dir.path(), &root);
    let err = fails(run_stage("preprocess", &config, &[]));
    assert!(
        err.contains("byte for byte") && err.contains("copy.jpeg") && err.contains("data.duplicates: warn"),
        "{err}"
    );
    assert!(!dir.path().join("runs/e/tensors/meta.json").exists(), "nothing half-made is left");
    let stderr = ok(run_stage("preprocess", &config, &["data.duplicates=warn"]));
    assert!(stderr.contains("byte for byte"), "{stderr}");
    // Under two labels within one split.
    std::fs::remove_file(root.join("test/NORMAL/copy.jpeg")).unwrap();
    std::fs::copy(root.join("train/NORMAL/img004.jpeg"), root.join("train/PNEUMONIA/relabelled.jpeg")).unwrap();
    let err = fails(run_stage("preprocess", &config, &[]));
    assert!(err.contains("relabelled.jpeg") && err.contains("NORMAL") && err.contains("PNEUMONIA"), "{err}");
}

#[test]
fn a_truncated_jpeg_with_an_end_marker_is_a_reject_and_a_folder_of_non_images_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 6, 0);
    let full = std::fs::read(root.join("train/NORMAL/img000.jpeg")).unwrap();
    let mut cut = full[..full.len() / 10].to_vec();
    cut.extend_from_slice(&[0xFF, 0xD9]);
    std::fs::write(root.join("train/NORMAL/cut.jpeg"), cut).unwrap();
    let config = folder_config(dir.path(), &root);
    ok(run_stage("preprocess", &config, &[]));
    let rejects = read_csv(&dir.path().join("runs/e/tensors/rejects.csv"));
    let cut_row = rejects.iter().find(|r| r[0].ends_with("cut.jpeg")).expect("the cut file is a reject");
    assert!(cut_row[1].contains("corrupt or truncated JPEG"), "{cut_row:?}");

    // Nothing usable at all: an error that says why, and the earlier tensors stay.
    let junk = dir.path().join("junk");
    for class in ["NORMAL", "PNEUMONIA"] {
        for i in 0..3 {
            let path = junk.join(class).join(format!("{i}.jpeg"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "not an image at all\n").unwrap();
        }
    }
    let err = fails(run_stage("preprocess", &config, &[&format!("data.root={}", junk.display())]));
    assert!(err.contains("no usable image") && err.contains("6 not an image"), "{err}");
    assert!(dir.path().join("runs/e/tensors/meta.json").exists());

    // infer on inputs that are all rejects fails, and says where they are listed.
    let config = trained(&dir.path().join("model"));
    let err =
        fails(bin("infer").args(["--config", config.to_str().unwrap()]).arg(junk.join("NORMAL")).output().unwrap());
    assert!(err.contains("every one of the 3 input file(s) was rejected") && err.contains("rejects.csv"), "{err}");
}

#[test]
fn size_like_keys_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 4, 0);
    let config = folder_config(dir.path(), &root);
    for (set, key) in [
        ("preprocess.threads=100000", "preprocess.threads"),
        ("model.head.hidden=[100000000]", "model.head.hidden[0]"),
        ("train.batch_size=100000000", "train.batch_size"),
    ] {
        let started = std::time::Instant::now();
        let err = fails(run_stage("preprocess", &config, &[set]));
        assert!(err.contains(key) && err.contains("out of range"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    // A head too big for memory is refused by train before the backbone runs.
    ok(run_stage("preprocess", &config, &[]));
    let err = fails(run_stage("train", &config, &["model.head.hidden=[60000, 60000]", "model.backbone=random"]));
    assert!(err.contains("parameters") && err.contains("model.head.hidden"), "{err}");
}
