//! The tests' configs, typed: a `cxr_config::Config` built in Rust and written as the
//! YAML a person would write (only the keys that differ from the defaults), checked to
//! load back as exactly that value. A test that means to write a broken file writes its
//! text with `write_config` instead.

use std::path::{Path, PathBuf};

use cxr_config::{Backbone, Config};
use serde_yaml::{Mapping, Value};

/// A test's config: `TestConfig::new("e", &runs, &data).size(32, 32).epochs(2)...`; any
/// other key through [`TestConfig::with`], which edits the typed `Config`.
#[derive(Debug, Clone, Default)]
pub struct TestConfig(Config);

impl TestConfig {
    /// The defaults, with the experiment `name` in `workdir` and `data.root` at `root`.
    pub fn new(name: &str, workdir: &Path, root: &Path) -> Self {
        let mut config = Config::default();
        config.experiment.name = name.to_string();
        config.experiment.workdir = workdir.to_path_buf();
        config.data.root = root.to_path_buf();
        TestConfig(config)
    }

    /// Any edit of the typed config: `.with(|c| c.train.class_weights = ClassWeights::Balanced)`.
    pub fn with(mut self, edit: impl FnOnce(&mut Config)) -> Self {
        edit(&mut self.0);
        self
    }

    /// `experiment.seed`.
    pub fn seed(self, seed: u64) -> Self {
        self.with(|c| c.experiment.seed = seed)
    }

    /// `data.group_by_patient: false`: every image its own patient in the split.
    pub fn ungrouped(self) -> Self {
        self.with(|c| c.data.group_by_patient = false)
    }

    /// `data.val_fraction`.
    pub fn val_fraction(self, fraction: f64) -> Self {
        self.with(|c| c.data.val_fraction = fraction)
    }

    /// `data.estimate_fraction`.
    pub fn estimate_fraction(self, fraction: f64) -> Self {
        self.with(|c| c.data.estimate_fraction = fraction)
    }

    /// `preprocess.size: [width, height]`.
    pub fn size(self, width: u32, height: u32) -> Self {
        self.with(|c| c.preprocess.size = [width, height])
    }

    /// `model.backbone`.
    pub fn backbone(self, backbone: Backbone) -> Self {
        self.with(|c| c.model.backbone = backbone)
    }

    /// `model.backbone: random` (fast, no weights needed) with `model.head.hidden` layers.
    pub fn random_backbone(self, hidden: &[usize]) -> Self {
        self.backbone(Backbone::Random).with(|c| c.model.head.hidden = hidden.to_vec())
    }

    /// `train.epochs`.
    pub fn epochs(self, epochs: usize) -> Self {
        self.with(|c| c.train.epochs = epochs)
    }

    /// `train.batch_size`.
    pub fn batch_size(self, batch_size: usize) -> Self {
        self.with(|c| c.train.batch_size = batch_size)
    }

    /// `report.bootstrap` resamples.
    pub fn bootstrap(self, resamples: usize) -> Self {
        self.with(|c| c.report.bootstrap = resamples)
    }

    /// The typed config.
    pub fn config(&self) -> &Config {
        &self.0
    }

    /// The YAML text: every key whose value differs from the default, nothing else.
    /// Panics if the text does not load back (validation included) as this very config.
    pub fn yaml(&self) -> String {
        let value = |config: &Config| serde_yaml::to_value(config).expect("a Config serialises");
        let changed = changed_keys(value(&self.0), &value(&Config::default())).unwrap_or_default();
        let text = serde_yaml::to_string(&changed).unwrap();
        let text = if text.trim() == "{}" { String::new() } else { text };
        match Config::from_yaml_str(&text, "test config") {
            Ok(loaded) => assert_eq!(loaded, self.0, "the test config's YAML loads back as another config:\n{text}"),
            Err(e) => panic!("the test config does not load: {e}\n{text}"),
        }
        text
    }

    /// Writes the YAML to `dir/config.yaml` (creating `dir`); returns the file's path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        super::write_config(dir, &self.yaml())
    }
}

/// The part of `value` that differs from `default`: mappings key by key, anything else
/// (numbers, strings, lists) whole; `None` when nothing differs.
fn changed_keys(value: Value, default: &Value) -> Option<Value> {
    match (value, default) {
        (Value::Mapping(map), Value::Mapping(defaults)) => {
            let mut changed = Mapping::new();
            for (key, v) in map {
                let kept = match defaults.get(&key) {
                    Some(d) => changed_keys(v, d),
                    None => Some(v),
                };
                if let Some(v) = kept {
                    changed.insert(key, v);
                }
            }
            (!changed.is_empty()).then_some(Value::Mapping(changed))
        }
        (value, default) => (value != *default).then_some(value),
    }
}
