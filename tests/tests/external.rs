//! External validation: a dataset with only an evaluation split is preprocessed into its
//! own experiment, judged with another experiment's `model.onnx` alone (threshold and
//! temperature from its metadata), and reported as external.

mod common;

use common::*;

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
    let config = write_config(
        &dir.path().join("hospital_cfg"),
        &format!(
            "experiment: {{name: hospital, workdir: {}}}\ndata: {{root: {}}}\npreprocess: {{size: [32, 32]}}\ninfer: {{threshold: from-validation}}\nreport: {{bootstrap: 20}}\n",
            dir.path().join("runs").display(),
            cohort.display()
        ),
    );
    let stderr = ok(run_stage("preprocess", &config, &[]));
    assert!(stderr.contains("can only be evaluated"), "{stderr}");
    let exp = dir.path().join("runs/hospital");
    assert!(exp.join("tensors/test/images.npy").is_file());
    assert!(!exp.join("tensors/train").exists());

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
    let config = write_config(
        &dir.path().join("hospital_cfg"),
        &format!(
            "experiment: {{name: hospital, workdir: {}}}\ndata: {{root: {}}}\npreprocess: {{size: [32, 32], equalize: histogram}}\n",
            dir.path().join("runs").display(),
            cohort.display()
        ),
    );
    ok(run_stage("preprocess", &config, &[]));
    let err = fails(
        bin("infer").args(["--config", config.to_str().unwrap(), "--model", model.to_str().unwrap()]).output().unwrap(),
    );
    assert!(err.contains("--set preprocess.equalize=none"), "{err}");
}
