//! `model.precision: int8` on real chest X-rays: the ImageNet backbone quantized by the
//! project gives features within a stated tolerance of float32's, and its `model.onnx`
//! predicts in `infer`.

mod common;

use std::path::Path;

use common::*;
use cxr_config::{Backbone, Pooling};

/// A folder dataset of links to the first `n` images of each class of the shared data.
fn linked_subset(root: &Path, n: usize) {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/chest_xray_224/train");
    assert!(shared.is_dir(), "shared data missing: expected {} (CI always has it)", shared.display());
    for class in ["NORMAL", "PNEUMONIA"] {
        let mut files: Vec<_> = std::fs::read_dir(shared.join(class)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let dir = root.join("train").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for file in files.into_iter().take(n) {
            std::os::unix::fs::symlink(&file, dir.join(file.file_name().unwrap())).unwrap();
        }
    }
}

/// The cached features of the images `content` names, made by the backbone with `sha256`.
fn cached_features(workdir: &Path, content: &str, sha256: &str) -> Vec<f32> {
    let cache = std::fs::read_dir(workdir.join(".feature-cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| std::fs::read_to_string(d.join("key.json")).is_ok_and(|k| k.contains(sha256) && k.contains(content)))
        .unwrap_or_else(|| panic!("no cached val features of backbone {sha256}"));
    cxr_store::npy::read::<f32>(&cache.join("features.npy")).unwrap().into_iter().collect()
}

#[test]
fn int8_features_are_within_tolerance_of_float32_on_real_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    linked_subset(&root, 24);
    let runs = dir.path().join("runs");
    let config = TestConfig::new("fp32", &runs, &root)
        .val_fraction(0.5)
        .estimate_fraction(0.0)
        .size(224, 224)
        .backbone(Backbone::Imagenet)
        .with(|c| {
            c.model.pooling = Pooling::Avg;
            c.model.quantization.images = 16;
        })
        .epochs(3)
        .batch_size(8)
        .write(dir.path());
    ok(run_stage("preprocess", &config, &[]));
    ok(run_stage("train", &config, &[]));
    // The same tensors, another experiment: only the precision differs.
    std::fs::create_dir_all(runs.join("int8")).unwrap();
    copy_dir(&runs.join("fp32/tensors"), &runs.join("int8/tensors"));
    let int8 = ["experiment.name=int8", "model.precision=int8"];
    let first = ok(run_stage("train", &config, &int8));
    assert!(first.contains("ranges=\"measured\"") || first.contains("ranges=measured"), "{first}");

    let sha = |name: &str| provenance_tool(&runs.join(name).join("train/provenance.json"), "backbone_sha256");
    // A repeated int8 train reuses the calibration from the feature cache: the same backbone.
    let quantized_backbone = sha("int8");
    let again = ok(run_stage("train", &config, &int8));
    assert!(again.contains("reused from the feature cache"), "{again}");
    assert_eq!(sha("int8"), quantized_backbone, "the reused ranges quantize to the same backbone");
    let cfg = cxr_config::Config::load(Some(&config), &[]).unwrap();
    let layout = cxr_store::layout::Layout::new(&cfg);
    let val = cxr_train::features::split_content(&layout, "val", &cfg.section_hash(&["preprocess"])).unwrap();
    let features = |name: &str| cached_features(&runs, &val, &sha(name));
    let (float, quantized) = (features("fp32"), features("int8"));
    assert_eq!(float.len(), quantized.len());
    let cosines: Vec<f64> = float
        .chunks(512)
        .zip(quantized.chunks(512))
        .map(|(a, b)| {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            dot / (norm(a) * norm(b))
        })
        .collect();
    let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
    let worst = cosines.iter().copied().fold(1.0, f64::min);
    eprintln!(
        "int8 against float32 features of {} real val images: cosine mean {mean:.4}, min {worst:.4}",
        cosines.len()
    );
    assert!(mean >= 0.99 && worst >= 0.97, "cosine similarity mean {mean:.4}, min {worst:.4}");

    // The int8 model.onnx predicts like any other.
    ok(run_stage("infer", &config, &int8));
    let predictions = read_csv(&runs.join("int8/predictions/val.csv"));
    assert_eq!(predictions.len() - 1, cosines.len());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
