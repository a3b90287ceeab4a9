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
    assert!(e.contains("train.epochs: invalid type: map"), "{e}");
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
    assert!(e.contains("train.optimizer.kind: unknown value \"sgdd\", expected one of: sgd, adam"), "{e}");
}

#[test]
fn wrong_type_names_key() {
    let e = load_text("train:\n  epochs: many\n", &[]).unwrap_err().to_string();
    assert!(e.contains("train.epochs"), "{e}");
    assert!(e.contains("invalid type"), "{e}");
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
    let e = Config::load(Some(Path::new("/nonexistent/x.yaml")), &[]).unwrap_err().to_string();
    assert!(e.contains("cannot read config file /nonexistent/x.yaml"), "{e}");
}

#[test]
fn malformed_yaml_has_line_and_column() {
    let e = load_text("train:\n  epochs: 3\n    batch_size: [1, 2\n", &[]).unwrap_err().to_string();
    assert!(e.contains("malformed YAML at line"), "{e}");
    assert!(e.contains("column"), "{e}");
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
