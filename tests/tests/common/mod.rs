//! Helpers shared by the end-to-end tests: the real binaries, configs, generated images.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use image::{DynamicImage, GrayImage, ImageFormat};

/// The real stage binary (built by `cargo build --workspace --bins`, which `make test` runs first).
pub fn bin(name: &str) -> Command {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    let mut cmd = Command::new(path);
    cmd.env_remove("RUST_LOG").arg("--no-progress");
    cmd
}

/// Runs a stage with a config file and `--set` overrides; returns the output.
pub fn run_stage(stage: &str, config: &Path, sets: &[&str]) -> Output {
    let mut cmd = bin(stage);
    cmd.arg("--config").arg(config);
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    cmd.output().unwrap()
}

/// Asserts success and returns stderr.
pub fn ok(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "stage failed: {stderr}");
    stderr
}

/// Asserts failure and returns stderr.
pub fn fails(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "stage should have failed: {stderr}");
    assert!(!stderr.contains("panicked"), "stage panicked: {stderr}");
    stderr
}

/// Writes a config file into `dir`.
pub fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A grey image with a seeded pattern; `bright` adds a bright patch (an easy "pneumonia").
pub fn xray_like(seed: u32, w: u32, h: u32, bright: bool) -> DynamicImage {
    DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| {
        let base = ((x * 7 + y * 3 + seed * 13) % 60 + 40) as u8;
        let patch = bright && x > w / 3 && x < 2 * w / 3 && y > h / 3 && y < 2 * h / 3;
        image::Luma([if patch { base + 120 } else { base }])
    }))
}

pub fn save(img: &DynamicImage, path: &Path, format: ImageFormat) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save_with_format(path, format).unwrap();
}

/// Writes `n` images per class into `<root>/<split>/<CLASS>/`.
pub fn write_split(root: &Path, split: &str, n: u32, offset: u32) {
    for i in 0..n {
        for (class, bright) in [("NORMAL", false), ("PNEUMONIA", true)] {
            let path = root.join(split).join(class).join(format!("img{:03}.jpeg", i + offset));
            save(&xray_like(i + offset, 80 + i % 7, 70 + i % 5, bright), &path, ImageFormat::Jpeg);
        }
    }
}

pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_path(path).unwrap();
    r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect()
}
