//! Tests of loading, overriding and validating configurations.

use std::io::Write;

use super::*;

fn yaml_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn load_text(text: &str, sets: &[&str]) -> Result<Config, ConfigError> {
    let f = yaml_file(text);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Config::load(Some(f.path()), &sets)
}

#[test]
fn defaults_without_file() {
    let c = Config::load(None, &[]).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.data.classes, ["NORMAL", "PNEUMONIA"]);
    assert_eq!(c.preprocess.size, [224, 224]);
    assert_eq!(c.train.epochs, 16);
    assert_eq!(c.train.batch_size, 100);
    assert_eq!(c.train.optimizer.kind, OptimizerKind::Sgd);
    assert_eq!(c.model.backbone, Backbone::Imagenet);
    assert_eq!(c.infer.device, Device::Cpu);
    assert_eq!(c.infer.threshold, Threshold::Fixed(0.5));
    assert_eq!(c.experiment_dir(), PathBuf::from("runs/default"));
}

#[test]
fn empty_file_is_defaults() {
    assert_eq!(load_text("", &[]).unwrap(), Config::default());
}

#[test]
fn file_values_override_defaults_and_keep_the_rest() {
    let c = load_text("experiment:\n  name: x\ntrain:\n  epochs: 3\n", &[]).unwrap();
    assert_eq!(c.experiment.name, "x");
    assert_eq!(c.train.epochs, 3);
    assert_eq!(c.train.batch_size, 100);
}

#[test]
fn overrides_of_every_value_type() {
    let c = load_text(
        "train:\n  epochs: 3\n",
        &[
            "train.epochs=5",                  // number
            "experiment.name=abc",             // string
            "preprocess.size=[50, 50]",        // list
            "train.feature_cache=false",       // bool
            "train.optimizer.lr=1e-3",         // float in a nested section
            "data.limit_per_class=300",        // optional number
            "model.backbone=random",           // enum
            "infer.threshold=from-validation", // string-or-number key
        ],
    )
    .unwrap();
    assert_eq!(c.train.epochs, 5);
    assert_eq!(c.experiment.name, "abc");
    assert_eq!(c.preprocess.size, [50, 50]);
    assert!(!c.train.feature_cache);
    assert_eq!(c.train.optimizer.lr, 1e-3);
    assert_eq!(c.data.limit_per_class, Some(300));
    assert_eq!(c.model.backbone, Backbone::Random);
    assert_eq!(c.infer.threshold, Threshold::FromValidation);
}

#[test]
fn later_override_wins() {
    let c = Config::load(None, &["train.epochs=2".into(), "train.epochs=7".into()]).unwrap();
    assert_eq!(c.train.epochs, 7);
}

#[test]
fn override_into_missing_section_creates_it() {
    let c = Config::load(None, &["runtime.intra_threads=1".into()]).unwrap();
    assert_eq!(c.runtime.intra_threads, 1);
}

#[test]
fn override_without_equals_is_rejected() {
    let e = Config::load(None, &["train.epochs".into()]).unwrap_err().to_string();
    assert!(e.contains("expected dotted.key=value"), "{e}");
}

#[test]
fn override_below_a_scalar_is_rejected() {
    let e = load_text("train:\n  epochs: 3\n", &["train.epochs.x=1"]).unwrap_err().to_string();
    assert!(e.contains("`train.epochs` is a number"), "{e}");
    // Not in the file: the schema then rejects the mapping where a number belongs.
    let e = Config::load(None, &["train.epochs.x=1".into()]).unwrap_err().to_string();
    assert!(
        e.contains("--set train.epochs.x=1: train.epochs: expected a whole number (0 or more), got a mapping"),
        "{e}"
    );
}

#[test]
fn unknown_key_names_path_and_allowed_keys() {
    let e = load_text("train:\n  epoch: 3\n", &[]).unwrap_err().to_string();
    assert!(e.contains("train.epoch: unknown key \"epoch\""), "{e}");
    assert!(e.contains("expected one of: epochs, batch_size"), "{e}");
}

#[test]
fn unknown_top_level_section() {
    let e = load_text("trian:\n  epochs: 3\n", &[]).unwrap_err().to_string();
    assert!(e.contains("unknown key \"trian\""), "{e}");
    assert!(e.contains("experiment, data, preprocess"), "{e}");
}

#[test]
fn unknown_enum_value_lists_allowed_values() {
    let e = Config::load(None, &["train.optimizer.kind=sgdd".into()]).unwrap_err().to_string();
    assert!(
        e.contains("train.optimizer.kind: unknown value \"sgdd\" (did you mean \"sgd\"?), expected one of: sgd, adam"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_key() {
    let e = load_text("train:\n  epochs: many\n", &[]).unwrap_err().to_string();
    assert!(e.contains("line 2, column 11: train.epochs: expected a whole number (0 or more), got \"many\""), "{e}");
}

#[test]
fn out_of_range_value_names_key_value_and_range() {
    let e = Config::load(None, &["model.head.dropout=1.5".into()]).unwrap_err().to_string();
    assert!(e.contains("model.head.dropout: 1.5 is out of range, expected a rate in [0, 0.95]"), "{e}");
    let e = Config::load(None, &["train.epochs=0".into()]).unwrap_err().to_string();
    assert!(e.contains("train.epochs: 0 is out of range"), "{e}");
    let e = Config::load(None, &["preprocess.size=[8, 50]".into()]).unwrap_err().to_string();
    assert!(e.contains("preprocess.size[0]: 8 is out of range"), "{e}");
}

#[test]
fn threshold_out_of_range() {
    let e = Config::load(None, &["infer.threshold=2".into()]).unwrap_err().to_string();
    assert!(e.contains("infer.threshold") && e.contains("out of range"), "{e}");
}

#[test]
fn inconsistent_keys_are_rejected() {
    let e = Config::load(None, &["data.positive_class=COVID".into()]).unwrap_err().to_string();
    assert!(e.contains("data.positive_class") && e.contains("NORMAL, PNEUMONIA"), "{e}");
    let e = Config::load(None, &["train.class_weights=[1.0]".into()]).unwrap_err().to_string();
    assert!(e.contains("1 weights given for 2 classes"), "{e}");
    let e = Config::load(None, &["data.classes=[A, A]".into()]).unwrap_err().to_string();
    assert!(e.contains("listed twice"), "{e}");
}

#[test]
fn missing_file_names_path() {
    let e = Config::load(Some(Path::new("/nonexistent/x.yaml")), &[]).unwrap_err();
    assert!(e.to_string().contains("cannot read config file /nonexistent/x.yaml: No such file"), "{e}");
    // The OS error is in the message, not a cause too: a chain printed whole says it once.
    assert!(std::error::Error::source(&e).is_none());
}

#[test]
fn malformed_yaml_has_line_and_column() {
    let e = load_text("train:\n  epochs: 3\n    batch_size: [1, 2\n", &[]).unwrap_err().to_string();
    assert!(e.contains(".yaml, line 3, column 15: malformed YAML: mapping values are not allowed"), "{e}");
}

#[test]
fn non_mapping_top_level_is_rejected() {
    let e = load_text("- a\n- b\n", &[]).unwrap_err().to_string();
    assert!(e.contains("must be a mapping"), "{e}");
}

#[test]
fn resolved_yaml_round_trips() {
    let c =
        Config::load(None, &["model.backbone=my/backbone.onnx".into(), "train.class_weights=balanced".into()]).unwrap();
    let back = Config::from_yaml_str(&c.to_yaml(), "resolved").unwrap();
    assert_eq!(back, c);
    assert_eq!(back.hash(), c.hash());
}

#[test]
fn section_hash_ignores_other_sections() {
    let a = Config::default();
    let b = Config::load(None, &["report.bootstrap=10".into()]).unwrap();
    assert_eq!(a.section_hash(&["data", "preprocess"]), b.section_hash(&["data", "preprocess"]));
    assert_ne!(a.hash(), b.hash());
    let c = Config::load(None, &["preprocess.size=[50,50]".into()]).unwrap();
    assert_ne!(a.section_hash(&["data", "preprocess"]), c.section_hash(&["data", "preprocess"]));
}

#[test]
fn contract_keys_exist() {
    // The keys outside checks set (DESIGN.md, contract section).
    for set in [
        "experiment.name=n",
        "experiment.workdir=w",
        "experiment.seed=1",
        "data.root=r",
        "data.classes=[A, B]",
        "data.limit_per_class=3",
        "preprocess.size=[64, 64]",
        "model.backbone=imagenet",
        "train.epochs=1",
        "train.batch_size=2",
        "infer.device=auto",
    ] {
        Config::load(None, &[set.to_string()]).unwrap_or_else(|e| panic!("{set}: {e}"));
    }
}

proptest::proptest! {
    #[test]
    fn any_in_range_epochs_and_batch_round_trip(epochs in 1usize..10_000, batch in 1usize..=65_536) {
        let c = Config::load(None, &[format!("train.epochs={epochs}"), format!("train.batch_size={batch}")]).unwrap();
        proptest::prop_assert_eq!(c.train.epochs, epochs);
        proptest::prop_assert_eq!(c.train.batch_size, batch);
        let back = Config::from_yaml_str(&c.to_yaml(), "x").unwrap();
        proptest::prop_assert_eq!(back, c);
    }
}

#[test]
fn patient_rules_parse_from_names_and_one_key_maps_and_round_trip() {
    for (yaml, expected) in [
        ("kermany", PatientId::Kermany),
        ("path", PatientId::Path),
        ("{column: Patient ID}", PatientId::Column("Patient ID".into())),
        ("{pattern: 'patient(\\d+)'}", PatientId::Pattern("patient(\\d+)".into())),
    ] {
        let c = Config::load(None, &[format!("data.patient={yaml}"), "data.adapter=csv".into()]).unwrap();
        assert_eq!(c.data.patient, expected);
        let again = Config::from_yaml_str(&c.to_yaml(), "resolved").unwrap();
        assert_eq!(again.data.patient, expected);
    }
    let err = Config::load(None, &["data.patient=bogus".into()]).unwrap_err().to_string();
    assert!(err.contains("data.patient") && err.contains("{column: NAME}"), "{err}");
    let err = Config::load(None, &["data.patient={column: id}".into()]).unwrap_err().to_string();
    assert!(err.contains("needs data.adapter: csv"), "{err}");
    let err = Config::load(None, &["data.patient={pattern: '(unclosed'}".into()]).unwrap_err().to_string();
    assert!(err.contains("not a regular expression"), "{err}");
    let err = Config::load(None, &["data.classes=[NORMAL, ../x]".into()]).unwrap_err().to_string();
    assert!(err.contains("data.classes") && err.contains("letters, digits"), "{err}");
}

#[test]
fn size_like_keys_are_bounded_before_any_work() {
    for (set, key) in [
        ("preprocess.threads=100000", "preprocess.threads"),
        ("model.head.hidden=[100000000]", "model.head.hidden[0]"),
        ("train.batch_size=10000000", "train.batch_size"),
        ("train.feature_batch_size=100000", "train.feature_batch_size"),
        ("infer.batch_size=100000", "infer.batch_size"),
        ("report.bootstrap=100000000", "report.bootstrap"),
        ("train.adapt.folds=1", "train.adapt.folds"),
        ("train.adapt.local_weights=[0]", "train.adapt.local_weights"),
    ] {
        let err = load_text("", &[set]).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains("out of range") || err.contains("positive"), "{set}: {err}");
    }
    assert!(load_text("", &["preprocess.threads=64", "model.head.hidden=[4096, 256]"]).is_ok());
}

/// The text of the error of `yaml` with `sets`, with the temporary file's name cut off.
fn error_of(yaml: &str, sets: &[&str]) -> String {
    let e = load_text(yaml, sets).unwrap_err().to_string();
    match e.split_once(".yaml, ") {
        Some((_, rest)) => rest.to_string(),
        None => e,
    }
}

#[test]
fn file_errors_name_the_line_and_column() {
    let e = error_of("experiment:\n  name: x\ntrain:\n  epochs: abc\n", &[]);
    assert_eq!(e, "line 4, column 11: train.epochs: expected a whole number (0 or more), got \"abc\"");
    let e = error_of("data:\n  root: x\ntrian:\n  epochs: 3\n", &[]);
    assert!(e.starts_with("line 3, column 1: trian: unknown key \"trian\" (did you mean \"train\"?)"), "{e}");
    // Out-of-range values too, though they are checked after parsing.
    let e = error_of("train:\n  batch_size: 2\n  epochs: 0\n", &[]);
    assert!(e.starts_with("line 3, column 11: train.epochs: 0 is out of range"), "{e}");
    let e = error_of("preprocess:\n  size: [224, 8]\n", &[]);
    assert!(e.starts_with("line 2, column 15: preprocess.size[1]: 8 is out of range"), "{e}");
    // And with overrides of other keys, the file's line is still named.
    let e = error_of("train:\n  epochs: 0\n", &["train.batch_size=4"]);
    assert!(e.starts_with("line 2, column 11: train.epochs: 0 is out of range"), "{e}");
}

#[test]
fn a_duplicate_key_is_reported_at_its_second_line() {
    let e = error_of("train:\n  epochs: 3\n  batch_size: 4\n  epochs: 5\n", &[]);
    assert!(e.starts_with("line 4, column 3: `train.epochs` is given twice (first at line 2)"), "{e}");
    let e = error_of("experiment:\n  name: x\ntrain:\n  epochs: 3\nexperiment:\n  seed: 1\n", &[]);
    assert!(e.starts_with("line 5, column 1: `experiment` is given twice (first at line 1)"), "{e}");
}

#[test]
fn override_errors_name_the_set_argument_not_the_file() {
    let f = yaml_file("train:\n  epochs: 3\n");
    let e = Config::load(Some(f.path()), &["train.epochs=abc".into()]).unwrap_err().to_string();
    assert_eq!(e, "--set train.epochs=abc: train.epochs: expected a whole number (0 or more), got \"abc\"");
    let e = error_of("train:\n  epochs: 3\n", &["train.optimizer={kind: sgdd}"]);
    assert!(e.starts_with("--set \"train.optimizer={kind: sgdd}\": train.optimizer.kind: unknown value"), "{e}");
    let e = error_of("", &["model.head.dropout=2", "train.epochs=3"]);
    assert!(e.starts_with("--set model.head.dropout=2: model.head.dropout: 2 is out of range"), "{e}");
    let e = error_of("", &["data.root=my scans", "train.epochs=-1"]);
    assert!(e.starts_with("--set train.epochs=-1: train.epochs: expected a whole number (0 or more), got -1"), "{e}");
    let e = Config::load(None, &["experiment.name=a b".into(), "experiment.name=a/b".into()]).unwrap_err().to_string();
    assert!(e.starts_with("--set experiment.name=a/b: experiment.name:"), "{e}");
    // A --set replaces the file's value, even a bad one.
    let c = load_text("train:\n  epochs: abc\n", &["train.epochs=4"]).unwrap();
    assert_eq!(c.train.epochs, 4);
}

#[test]
fn unknown_keys_and_values_suggest_the_closest_allowed_one() {
    let e = error_of("train:\n  epoch: 3\n", &[]);
    assert!(
        e.contains("train.epoch: unknown key \"epoch\" (did you mean \"epochs\"?), expected one of: epochs,"),
        "{e}"
    );
    let e = error_of("", &["train.optimizer.kind=Adam"]);
    assert!(e.contains("unknown value \"Adam\" (did you mean \"adam\"?), expected one of: sgd, adam"), "{e}");
    let e = error_of("", &["infer.device=gpu"]);
    assert!(e.contains("infer.device: unknown value \"gpu\" (use cuda), expected one of: cpu, cuda, auto"), "{e}");
    let e = error_of("", &["model.backbone=imagenett"]);
    assert!(e.contains("(did you mean \"imagenet\"?), expected one of: imagenet, random"), "{e}");
    // Nothing close: only the allowed values.
    let e = error_of("", &["train.optimizer.kind=lbfgs"]);
    assert!(e.contains("unknown value \"lbfgs\", expected one of: sgd, adam") && !e.contains("did you mean"), "{e}");
}

#[test]
fn types_are_said_in_words() {
    for (set, expected) in [
        ("train.epochs=abc", "train.epochs: expected a whole number (0 or more), got \"abc\""),
        ("train.epochs=2.5", "train.epochs: expected a whole number (0 or more), got 2.5"),
        ("train.optimizer.lr=fast", "train.optimizer.lr: expected a number, got \"fast\""),
        ("train.feature_cache=3", "train.feature_cache: expected true or false, got 3"),
        ("preprocess.size=224", "preprocess.size: expected a list of 2 items, got 224"),
        ("model.head.hidden=7", "model.head.hidden: expected a list, e.g. [a, b], got 7"),
        ("experiment.name=[a]", "experiment.name: expected text, got a list"),
        ("train=3", "train: expected a section of key: value lines, got 3"),
    ] {
        let e = Config::load(None, &[set.to_string()]).unwrap_err().to_string();
        assert!(e.ends_with(expected), "{set}: {e}");
        assert!(!e.contains("usize") && !e.contains("f64"), "{e}");
    }
}
