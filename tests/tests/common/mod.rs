//! Helpers shared by the end-to-end tests: the real binaries, configs, generated images.
#![allow(dead_code)]

mod config;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;

use assert_cmd::Command;
use image::{DynamicImage, GrayImage, ImageFormat};

pub use config::TestConfig;

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The stages every end-to-end test may run.
const STAGES: [&str; 4] = ["preprocess", "train", "infer", "report"];

/// Every binary of the workspace by name, built once per test process.
///
/// The binaries live in other packages, where `CARGO_BIN_EXE_<name>` cannot reach, so this
/// runs the build `make build` runs (`cargo build --workspace --bins` with the features of
/// `scripts/cargo-features.sh`), in this test binary's profile, so that after `make build`
/// (or `make build-release` and `cargo test --release`) it is a no-op and a plain
/// `cargo test` is enough. Where cargo put each binary is read from its own messages
/// (`--message-format=json`), so the target folder is wherever cargo's configuration
/// (`CARGO_TARGET_DIR`, `build.target-dir`) says. Then, as `make build` does, `train
/// --build-backbone` builds the ImageNet backbone from the set-up weights when missing;
/// without `make setup` this fails, and only the tests that need it say so.
fn binaries() -> &'static BTreeMap<String, PathBuf> {
    // A failed build is kept too: every test of the process reports it, none builds again.
    static BINARIES: OnceLock<Result<BTreeMap<String, PathBuf>, String>> = OnceLock::new();
    let built = BINARIES.get_or_init(|| {
        let binaries = build_binaries()?;
        if let Some(stage) = STAGES.iter().find(|s| !binaries.contains_key(**s)) {
            return Err(format!("cargo built no `{stage}` binary: {binaries:?}"));
        }
        let _ = std::process::Command::new(&binaries["train"])
            .args(["--build-backbone", "-q"])
            .current_dir(workspace_root())
            .status();
        Ok(binaries)
    });
    built.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `cargo build --workspace --bins` as `make build` does, in this test binary's
/// profile; returns each binary's path as cargo reports it.
fn build_binaries() -> Result<BTreeMap<String, PathBuf>, String> {
    let root = workspace_root();
    let features = std::process::Command::new(root.join("scripts/cargo-features.sh")).output().unwrap();
    let features = String::from_utf8(features.stdout).unwrap();
    // As the Makefile does: nasm from `make setup`, for libjpeg-turbo's SIMD.
    let nasm = root.join(".tools/nasm/usr/bin");
    let path = std::env::join_paths(
        std::iter::once(nasm).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let (profile, triple) = this_build();
    let mut cargo = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(&root)
        .env("PATH", path)
        .args(["build", "--workspace", "--bins", "--quiet", "--message-format=json-render-diagnostics"])
        .args(["--profile", &profile])
        .args(features.split_whitespace())
        .stderr(Stdio::inherit());
    if let Some(triple) = triple {
        cargo.args(["--target", &triple]);
    }
    let output = cargo.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err("building the stage binaries failed (cargo's messages are above)".into());
    }
    let mut binaries = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let is_bin = message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
        if let (true, Some(name), Some(path)) =
            (is_bin, message["target"]["name"].as_str(), message["executable"].as_str())
        {
            binaries.insert(name.to_string(), PathBuf::from(path));
        }
    }
    Ok(binaries)
}

/// The cargo profile this test binary was built in, and its `--target` triple if one was
/// given, from where cargo put it: `<target>/[<triple>/]<profile folder>/deps/<test>`.
fn this_build() -> (String, Option<String>) {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().filter(|deps| deps.ends_with("deps")).and_then(Path::parent);
    let Some(profile_dir) = profile_dir else { return ("dev".into(), None) };
    let folder = profile_dir.file_name().unwrap().to_string_lossy().into_owned();
    // The `dev` and `test` profiles build into `debug`; every other profile into its own name.
    let profile = if folder == "debug" { "dev".to_string() } else { folder };
    // The target folder itself holds `CACHEDIR.TAG`; a triple's folder under it does not.
    let parent = profile_dir.parent().unwrap();
    let triple = (!parent.join("CACHEDIR.TAG").exists()
        && parent.parent().is_some_and(|t| t.join("CACHEDIR.TAG").exists()))
    .then(|| parent.file_name().unwrap().to_string_lossy().into_owned());
    (profile, triple)
}

/// The path of a workspace binary (a stage), built first if needed.
pub fn bin_path(name: &str) -> PathBuf {
    let path = binaries().get(name).unwrap_or_else(|| panic!("cargo built no `{name}` binary"));
    assert!(path.is_file(), "{} is missing after `cargo build --workspace --bins`", path.display());
    path.clone()
}

/// The folder of the stage binaries (`BIN` of the Makefile), built first if needed.
pub fn bin_dir() -> PathBuf {
    let dir = bin_path("preprocess").parent().unwrap().to_path_buf();
    for stage in STAGES {
        assert_eq!(bin_path(stage).parent(), Some(dir.as_path()), "the stage binaries are in one folder");
    }
    dir
}

/// The real stage binary, built first if needed, with `--no-progress`.
pub fn bin(name: &str) -> Command {
    let mut cmd = Command::new(bin_path(name));
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
    std::fs::create_dir_all(dir).unwrap();
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

/// [`xray_like`], with `id`'s bits written into its first row: `xray_like` repeats itself
/// every 60 seeds, and `preprocess` refuses byte-identical images in two splits.
pub fn xray_like_unique(seed: u32, id: u32, w: u32, h: u32, bright: bool) -> DynamicImage {
    let mut img = xray_like(seed, w, h, bright).into_luma8();
    for x in 0..32.min(w) {
        img.put_pixel(x, 0, image::Luma([if id >> x & 1 == 1 { 250 } else { 5 }]));
    }
    DynamicImage::ImageLuma8(img)
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

/// Writes a 16-bit MONOCHROME2 DICOM (explicit VR little endian) with a seeded pattern;
/// `bright` adds a bright patch, as [`xray_like`] does.
pub fn write_dicom(path: &Path, seed: u32, w: u16, h: u16, bright: bool) {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    let img = xray_like(seed, w as u32, h as u32, bright).into_luma8();
    let pixels: Vec<u16> = img.pixels().map(|p| p.0[0] as u16 * 16).collect();
    let mut obj = InMemDicomObject::new_empty();
    let us = |v: u16| PrimitiveValue::from(v);
    obj.put(DataElement::new(tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.7")));
    obj.put(DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from(format!("1.2.3.{seed}"))));
    obj.put(DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, us(1)));
    obj.put(DataElement::new(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, PrimitiveValue::from("MONOCHROME2")));
    obj.put(DataElement::new(tags::ROWS, VR::US, us(h)));
    obj.put(DataElement::new(tags::COLUMNS, VR::US, us(w)));
    obj.put(DataElement::new(tags::BITS_ALLOCATED, VR::US, us(16)));
    obj.put(DataElement::new(tags::BITS_STORED, VR::US, us(12)));
    obj.put(DataElement::new(tags::HIGH_BIT, VR::US, us(11)));
    obj.put(DataElement::new(tags::PIXEL_REPRESENTATION, VR::US, us(0)));
    obj.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into())));
    let meta = FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    obj.with_meta(meta).unwrap().write_to_file(path).unwrap();
}

/// Every file below `dir` (recursively) with its size and modification time, except
/// below `skip`: to prove that a run wrote nothing outside its experiment folder.
pub fn snapshot(dir: &Path, skip: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.starts_with(skip) {
            continue;
        }
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.push((entry.path(), meta.len(), meta.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Splits of an experiment's manifests: (split, file path, class, patient) per row.
pub fn manifest_rows(exp: &Path) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for split in ["train", "val", "test"] {
        let path = exp.join("tensors").join(split).join("manifest.csv");
        if !path.is_file() {
            continue;
        }
        let rows = read_csv(&path);
        let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
        let (p, c, pat) = (col("path"), col("class"), col("patient"));
        for r in &rows[1..] {
            out.push((split.to_string(), r[p].clone(), r[c].clone(), r[pat].clone()));
        }
    }
    out
}

/// A trained experiment on a small folder dataset (random backbone: fast, no weights needed).
pub fn trained(dir: &Path) -> PathBuf {
    let root = dir.join("data");
    write_split(&root, "train", 10, 0);
    write_split(&root, "test", 4, 100);
    let config = TestConfig::new("e", &dir.join("runs"), &root)
        .ungrouped()
        .val_fraction(0.3)
        .size(32, 32)
        .random_backbone(&[8])
        .epochs(2)
        .batch_size(4)
        .bootstrap(20)
        .write(dir);
    ok(run_stage("preprocess", &config, &[]));
    ok(run_stage("train", &config, &[]));
    config
}

/// A value `provenance.json` records under `tools`.
pub fn provenance_tool(path: &Path, key: &str) -> String {
    let provenance: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    provenance["tools"][key].as_str().unwrap_or_else(|| panic!("{key} in {}", path.display())).to_string()
}
