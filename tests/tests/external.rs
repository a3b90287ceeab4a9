//! External validation: a dataset with only an evaluation split is preprocessed into its
//! own experiment, judged with another experiment's `model.onnx` alone (threshold and
//! temperature from its metadata), and reported as external.

mod common;

use common::*;
use cxr_config::{Equalize, Threshold};

#[test]
fn an_evaluation_only_cohort_is_judged_with_another_experiments_model_alone() {
    let dir = tempfile::tempdir().unwrap();
    let trained_config = trained(dir.path());
    // Only model.onnx travels: nothing else of the training experiment is used.
    let model = dir.path().join("shipped/model.onnx");
    std::fs::create_dir_all(model.parent().unwrap()).unwrap();
    std::fs::copy(dir.path().join("runs/e/train/model.onnx"), &model).unwrap();
    std::fs::remove_dir_all(dir.path().join("runs/e")).unwrap();
    drop(trained_config);

    let cohort = dir.path().join("hospital");
    write_split(&cohort, "test", 5, 700);
    let config = TestConfig::new("hospital", &dir.path().join("runs"), &cohort)
        .size(32, 32)
        .with(|c| c.infer.threshold = Threshold::FromValidation)
        .bootstrap(20)
        .write(&dir.path().join("hospital_cfg"));
    let stderr = ok(run_stage("preprocess", &config, &[]));
    assert!(stderr.contains("can only be evaluated"), "{stderr}");
    let exp = dir.path().join("runs/hospital");
    assert!(exp.join("tensors/test/images.npy").is_file());
    assert!(!exp.join("tensors/train").exists());
    let stderr = fails(run_stage("train", &config, &[]));
    assert!(stderr.contains("can only be evaluated: run `infer --model"), "train points to infer --model: {stderr}");

    ok(bin("infer").args(["--config", config.to_str().unwrap(), "--model", model.to_str().unwrap()]).output().unwrap());
    let source: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exp.join("predictions/model.json")).unwrap()).unwrap();
    let proto = cxr_onnx::read_model(&model).unwrap();
    let meta = cxr_store::model_meta::ModelMeta::from_lookup(|k| cxr_onnx::metadata(&proto, k)).unwrap();
    assert_eq!(source["external"], true);
    assert_eq!(source["threshold"].as_f64().unwrap(), meta.threshold.expect("the model carries its threshold"));
    assert!(source["threshold_source"].as_str().unwrap().contains("model's metadata"));
    let sha = cxr_store::sha256_file(&model).unwrap();
    assert_eq!(source["model_sha256"], sha.as_str());

    ok(run_stage("report", &config, &[]));
    let metrics = read_csv(&exp.join("report/metrics.csv"));
    let col = |name: &str| metrics[0].iter().position(|h| h == name).unwrap();
    let test = metrics.iter().find(|r| r[0] == "test").expect("a test row");
    assert_eq!(test[col("role")], "external");
    assert_eq!(test[col("n")], "10");
    assert!(test[col("chosen_on")].contains("nothing"), "{:?}", test[col("chosen_on")]);
    let html = std::fs::read_to_string(exp.join("report/index.html")).unwrap();
    assert!(html.contains("external validation") && html.contains(&sha), "the report names the model and its hash");
    assert!(html.contains("Headline: <code>test</code> (external"), "the external cohort is the headline");
}

#[test]
fn a_cohort_preprocessed_differently_from_the_model_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    trained(dir.path());
    let model = dir.path().join("runs/e/train/model.onnx");
    let cohort = dir.path().join("hospital");
    write_split(&cohort, "test", 3, 800);
    let config = TestConfig::new("hospital", &dir.path().join("runs"), &cohort)
        .size(32, 32)
        .with(|c| c.preprocess.equalize = Equalize::Histogram)
        .write(&dir.path().join("hospital_cfg"));
    ok(run_stage("preprocess", &config, &[]));
    let err = fails(
        bin("infer").args(["--config", config.to_str().unwrap(), "--model", model.to_str().unwrap()]).output().unwrap(),
    );
    assert!(err.contains("--set preprocess.equalize=none"), "{err}");
}

#[test]
fn label_free_prior_adaptation_corrects_probabilities_from_images_alone_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    trained(dir.path());
    let model = dir.path().join("runs/e/train/model.onnx");
    let proto = cxr_onnx::read_model(&model).unwrap();
    let meta = cxr_store::model_meta::ModelMeta::from_lookup(|k| cxr_onnx::metadata(&proto, k)).unwrap();
    let model_prior = meta.prior.expect("train records the prevalence its probabilities assume");
    assert!(model_prior > 0.0 && model_prior < 1.0);

    // A cohort of another prevalence: 30 NORMAL, 10 PNEUMONIA.
    let cohort = dir.path().join("hospital");
    write_split(&cohort, "test", 30, 700);
    for i in 10..30 {
        std::fs::remove_file(cohort.join(format!("test/PNEUMONIA/img{:03}.jpeg", i + 700))).unwrap();
    }
    let config = TestConfig::new("hospital", &dir.path().join("runs"), &cohort)
        .size(32, 32)
        .with(|c| c.infer.threshold = Threshold::Fixed(0.5))
        .bootstrap(20)
        .write(&dir.path().join("hospital_cfg"));
    ok(run_stage("preprocess", &config, &[]));
    let exp = dir.path().join("runs/hospital");
    let infer = |sets: &[&str], extra: &[&str]| {
        let mut cmd = bin("infer");
        cmd.args(["--config", config.to_str().unwrap(), "--model", model.to_str().unwrap()]);
        for s in sets {
            cmd.args(["--set", s]);
        }
        cmd.args(extra).output().unwrap()
    };
    let plain = dir.path().join("plain.csv");
    ok(infer(&[], &["--split", "test", "--out", plain.to_str().unwrap()]));
    ok(infer(&["infer.adaptation=prior"], &[]));

    let source: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exp.join("predictions/model.json")).unwrap()).unwrap();
    let adapted = &source["adaptation"][0];
    assert_eq!(adapted["source"], "test");
    assert_eq!(adapted["images"], 40);
    assert_eq!(adapted["model_prior"].as_f64().unwrap(), model_prior);
    let estimated = adapted["estimated_prior"].as_f64().unwrap();
    assert!(estimated > 0.0 && estimated < 1.0 && estimated != model_prior, "{estimated}");

    // Each probability is the model's, corrected by Bayes' rule to the estimated prevalence,
    // and the decision is the threshold's on the corrected probability.
    let before = read_csv(&plain);
    let after = read_csv(&exp.join("predictions/test.csv"));
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after).skip(1) {
        assert_eq!(b[0], a[0]);
        let p: f64 = b[4].parse().unwrap();
        let q: f64 = a[4].parse().unwrap();
        let expected = cxr_metrics::shift_prior(p, model_prior, estimated);
        assert!((q - expected).abs() < 2e-6, "{}: {p} -> {q}, expected {expected}", a[0]);
        assert_eq!(a[2], if q >= 0.5 { "PNEUMONIA" } else { "NORMAL" }, "{}", a[0]);
    }

    // No label is read: the same images in one folder, without class folders, give the same estimate.
    let flat = dir.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for class in ["NORMAL", "PNEUMONIA"] {
        for entry in std::fs::read_dir(cohort.join("test").join(class)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), flat.join(format!("{class}-{}", entry.file_name().to_string_lossy()))).unwrap();
        }
    }
    let files_out = dir.path().join("flat.csv");
    ok(infer(&["infer.adaptation=prior"], &[flat.to_str().unwrap(), "--out", files_out.to_str().unwrap()]));
    let unlabelled = read_csv(&files_out);
    assert!(unlabelled.iter().skip(1).all(|r| r[1].is_empty()), "no labels in a flat folder");
    let mut by_name: Vec<(String, String)> =
        unlabelled.iter().skip(1).map(|r| (r[0].rsplit('/').next().unwrap().to_string(), r[4].clone())).collect();
    by_name.sort();
    let mut split_rows: Vec<(String, String)> = after
        .iter()
        .skip(1)
        .map(|r| {
            let mut parts = r[0].rsplit('/');
            let (file, class) = (parts.next().unwrap(), parts.next().unwrap());
            (format!("{class}-{file}"), r[4].clone())
        })
        .collect();
    split_rows.sort();
    assert_eq!(by_name, split_rows, "the same images give the same adapted probabilities, labels or not");

    ok(run_stage("report", &config, &[]));
    let metrics = read_csv(&exp.join("report/metrics.csv"));
    let col = |name: &str| metrics[0].iter().position(|h| h == name).unwrap();
    let test = metrics.iter().find(|r| r[0] == "test").unwrap();
    assert_eq!(test[col("adapted_prior")].parse::<f64>().unwrap(), estimated);
    assert!(test[col("chosen_on")].contains("adapted without labels"), "{}", test[col("chosen_on")]);
    let html = std::fs::read_to_string(exp.join("report/index.html")).unwrap();
    assert!(html.contains("infer.adaptation: prior"));

    // One image is no cohort; shards would each estimate their own prevalence.
    let one = flat.read_dir().unwrap().next().unwrap().unwrap().path();
    let err = fails(infer(&["infer.adaptation=prior"], &[one.to_str().unwrap()]));
    assert!(err.contains("at least 20"), "{err}");
    let err = fails(infer(&["infer.adaptation=prior"], &["--shard", "0/2"]));
    assert!(err.contains("--shard"), "{err}");
}
