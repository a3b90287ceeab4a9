//! Sharded runs: three shards of `preprocess` and `infer`, merged, equal one unsharded run.

mod common;

use std::path::Path;

use common::*;

#[test]
fn three_shards_merged_equal_one_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 11, 0);
    write_split(&root, "test", 5, 100);
    std::fs::write(root.join("train/NORMAL/broken.jpeg"), b"\xff\xd8\xff nothing").unwrap();
    std::fs::write(root.join("test/PNEUMONIA/empty.jpeg"), b"").unwrap();
    let config = TestConfig::new("one", &dir.path().join("runs"), &root)
        .ungrouped()
        .size(32, 32)
        .random_backbone(&[8])
        .epochs(1)
        .batch_size(4)
        .write(dir.path());
    // One unsharded run.
    ok(run_stage("preprocess", &config, &[]));
    ok(run_stage("train", &config, &[]));
    ok(run_stage("infer", &config, &[]));

    // The same experiment, sharded: three preprocess shards, merged; then three infer shards, merged.
    let sharded = ["experiment.name=sharded"];
    for i in 0..3 {
        ok(bin("preprocess")
            .args(["--config", config.to_str().unwrap(), "--set", sharded[0], "--shard", &format!("{i}/3")])
            .output()
            .unwrap());
    }
    ok(bin("preprocess")
        .args(["--config", config.to_str().unwrap(), "--set", sharded[0], "--merge", "3"])
        .output()
        .unwrap());
    let (one, many) = (dir.path().join("runs/one"), dir.path().join("runs/sharded"));
    for file in [
        "tensors/train/images.npy",
        "tensors/train/labels.npy",
        "tensors/train/manifest.csv",
        "tensors/val/images.npy",
        "tensors/val/manifest.csv",
        "tensors/test/images.npy",
        "tensors/test/manifest.csv",
        "tensors/rejects.csv",
        "tensors/meta.json",
    ] {
        let a = std::fs::read(one.join(file)).unwrap();
        let b = std::fs::read(many.join(file)).unwrap();
        assert!(a == b, "{file} differs between the unsharded and the merged run");
    }
    assert_eq!(read_csv(&one.join("tensors/rejects.csv")).len(), 3);

    // Infer shards use the unsharded run's model so the predictions are comparable.
    let model = one.join("train/model.onnx");
    for i in 0..3 {
        ok(bin("infer")
            .args(["--config", config.to_str().unwrap(), "--set", sharded[0], "--shard", &format!("{i}/3"), "--model"])
            .arg(&model)
            .output()
            .unwrap());
    }
    ok(bin("infer")
        .args(["--config", config.to_str().unwrap(), "--set", sharded[0], "--merge", "3"])
        .output()
        .unwrap());
    for split in ["val", "test"] {
        let a = std::fs::read(one.join(format!("predictions/{split}.csv"))).unwrap();
        let b = std::fs::read(many.join(format!("predictions/{split}.csv"))).unwrap();
        assert!(a == b, "predictions/{split}.csv differs");
    }
    // The merged shift verdict covers every shard's images, as the unsharded run's does.
    let shift = |exp: &std::path::Path| -> serde_json::Value {
        let text = std::fs::read_to_string(exp.join("predictions/model.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["shift"].clone()
    };
    let (whole, merged) = (shift(&one), shift(&many));
    assert_eq!(merged["images"], whole["images"], "{merged}");
    assert_eq!(merged["flagged_share"], whole["flagged_share"]);
    // A merge before every shard is done names the missing one.
    let err = fails(bin("preprocess").args(["--config", config.to_str().unwrap(), "--merge", "4"]).output().unwrap());
    assert!(err.contains("run `preprocess --shard 0/4` first"), "{err}");
    assert!(Path::new(&many.join("shards/2-of-3/tensors/meta.json")).is_file());
}

/// Every file of the feature cache under `workdir`: (path below it, bytes).
fn feature_cache(workdir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(workdir.join(".feature-cache")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.join("key.json").is_file() {
            continue; // not a split's folder (int8 calibrations live in `int8-ranges/`)
        }
        for file in ["key.json", "features.npy"] {
            let name = format!("{}/{file}", dir.file_name().unwrap().to_string_lossy());
            out.push((name, std::fs::read(dir.join(file)).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn train_shards_fill_the_feature_cache_byte_identical_to_one_backbone_pass() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_split(&root, "train", 13, 0);
    let config = |workdir: &Path| {
        TestConfig::new("e", workdir, &root)
            .ungrouped()
            .size(32, 32)
            .random_backbone(&[8])
            .epochs(2)
            .batch_size(4)
            .with(|c| c.train.feature_batch_size = 4)
            .write(workdir)
    };
    let (one, many) = (dir.path().join("one"), dir.path().join("many"));
    let (config_one, config_many) = (config(&one), config(&many));
    for config in [&config_one, &config_many] {
        ok(run_stage("preprocess", config, &[]));
    }
    ok(run_stage("train", &config_one, &[]));

    // Three shards of the backbone pass (their batches start elsewhere than one pass's),
    // then a train that finds them and only fits the head.
    let shard = |i: usize| {
        bin("train").args(["--config", config_many.to_str().unwrap(), "--shard", &format!("{i}/3")]).output().unwrap()
    };
    for i in 0..3 {
        let log = ok(shard(i));
        assert!(!many.join("e/train/model.onnx").exists(), "a shard fits no head: {log}");
    }
    let log = ok(shard(1));
    assert!(log.contains("already in"), "a shard done is not redone: {log}");
    let log = ok(run_stage("train", &config_many, &[]));
    assert!(log.contains("merged from `train --shard`"), "{log}");
    assert!(!log.contains("computing backbone features"), "the merged run ran the backbone: {log}");
    assert!(feature_cache(&one) == feature_cache(&many), "the merged feature cache differs from one pass's");
    let model = |w: &Path| std::fs::read(w.join("e/train/model.onnx")).unwrap();
    assert!(model(&one) == model(&many), "model.onnx differs after a sharded backbone pass");
}
