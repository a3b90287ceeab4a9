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
    let config = write_config(
        dir.path(),
        &format!(
            "experiment: {{name: one, workdir: {}}}\ndata: {{root: {}, group_by_patient: false}}\npreprocess: {{size: [32, 32]}}\nmodel: {{backbone: random, head: {{hidden: [8]}}}}\ntrain: {{epochs: 1, batch_size: 4}}\n",
            dir.path().join("runs").display(),
            root.display()
        ),
    );
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
    // A merge before every shard is done names the missing one.
    let err = fails(bin("preprocess").args(["--config", config.to_str().unwrap(), "--merge", "4"]).output().unwrap());
    assert!(err.contains("run `preprocess --shard 0/4` first"), "{err}");
    assert!(Path::new(&many.join("shards/2-of-3/tensors/meta.json")).is_file());
}
