//! Range and consistency checks that the type system alone cannot express.

use crate::{Adapter, ClassWeights, Config, ConfigError, Origin, PatientId};

struct Checker<'a> {
    /// Where the value of a key came from (the file's line, or a `--set`).
    origin: &'a dyn Fn(&str) -> Origin,
}

impl Checker<'_> {
    fn fail(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid { origin: (self.origin)(key), key: key.to_string(), message }
    }

    fn range(&self, key: &str, value: f64, lo: f64, hi: f64, allowed: &str) -> Result<(), ConfigError> {
        if value.is_finite() && value >= lo && value <= hi {
            Ok(())
        } else {
            Err(self.fail(key, format!("{value} is out of range, expected {allowed}")))
        }
    }

    /// An integer in `[min, max]`: size-like keys are bounded before any work, so a typo
    /// cannot hang the machine or ask for terabytes.
    fn between(&self, key: &str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(self.fail(key, format!("{value} is out of range, expected an integer in [{min}, {max}]")))
        }
    }

    fn at_least(&self, key: &str, value: usize, min: usize) -> Result<(), ConfigError> {
        if value >= min {
            Ok(())
        } else {
            Err(self.fail(key, format!("{value} is out of range, expected an integer >= {min}")))
        }
    }
}

/// Whether `name` may become part of a file name: letters, digits, `_` and `-` only.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Config {
    /// Checks ranges and cross-key consistency; the error names the key and what is allowed.
    pub(crate) fn validate(&self, origin: &dyn Fn(&str) -> Origin) -> Result<(), ConfigError> {
        let c = Checker { origin };
        self.validate_experiment(&c)?;
        self.validate_classes(&c)?;
        self.validate_data(&c)?;
        self.validate_csv(&c)?;
        self.validate_preprocess(&c)?;
        self.validate_model(&c)?;
        self.validate_train(&c)?;
        c.between("infer.batch_size", self.infer.batch_size, 1, 4096)?;
        c.range("report.target_sensitivity", self.report.target_sensitivity, 0.01, 1.0, "a rate in [0.01, 1]")?;
        c.between("report.bootstrap", self.report.bootstrap, 0, 100_000)?;
        c.between("report.gallery", self.report.gallery, 0, 100)?;
        c.between("runtime.intra_threads", self.runtime.intra_threads, 0, 1024)?;
        c.between("runtime.inter_threads", self.runtime.inter_threads, 0, 1024)?;
        Ok(())
    }

    fn validate_experiment(&self, c: &Checker) -> Result<(), ConfigError> {
        let name = &self.experiment.name;
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(c.fail(
                "experiment.name",
                format!("{name:?} is not allowed, expected a non-empty folder name without slashes"),
            ));
        }
        Ok(())
    }

    fn validate_classes(&self, c: &Checker) -> Result<(), ConfigError> {
        let classes = &self.data.classes;
        if classes.len() < 2 {
            return Err(c.fail("data.classes", format!("{} class(es) given, expected at least 2", classes.len())));
        }
        for (i, class) in classes.iter().enumerate() {
            // Class names become CSV column names and parts of file names.
            if !is_safe_name(class) {
                return Err(c.fail(
                    "data.classes",
                    format!("{class:?} is not allowed, expected a name of letters, digits, `_` and `-`"),
                ));
            }
            if classes[..i].contains(class) {
                return Err(c.fail("data.classes", format!("{class:?} is listed twice")));
            }
        }
        if let Some(positive) = &self.data.positive_class
            && !classes.contains(positive)
        {
            return Err(c.fail(
                "data.positive_class",
                format!("{positive:?} is not in data.classes, expected one of: {}", classes.join(", ")),
            ));
        }
        Ok(())
    }

    fn validate_data(&self, c: &Checker) -> Result<(), ConfigError> {
        let data = &self.data;
        c.range("data.val_fraction", data.val_fraction, 0.01, 0.9, "a fraction in [0.01, 0.9]")?;
        c.range("data.estimate_fraction", data.estimate_fraction, 0.0, 0.9, "a fraction in [0, 0.9]")?;
        c.range("data.max_patient_share", data.max_patient_share, 1e-6, 1.0, "a fraction in (0, 1]")?;
        if let Some(limit) = data.limit_per_class {
            c.at_least("data.limit_per_class", limit, 1)?;
        }
        match &data.patient {
            PatientId::Column(column) if data.adapter != Adapter::Csv => {
                return Err(c.fail(
                    "data.patient",
                    format!(
                        "{{column: {column:?}}} needs data.adapter: csv, expected kermany, path or {{pattern: ...}}"
                    ),
                ));
            }
            PatientId::Pattern(pattern) => {
                regex::Regex::new(pattern).map_err(|e| {
                    c.fail("data.patient", format!("pattern {pattern:?} is not a regular expression: {e}"))
                })?;
            }
            _ => {}
        }
        self.validate_class_patterns(c)?;
        c.between("data.synthetic.train_per_class", data.synthetic.train_per_class, 2, 100_000)?;
        c.between("data.synthetic.val_per_class", data.synthetic.val_per_class, 0, 100_000)?;
        c.between("data.synthetic.test_per_class", data.synthetic.test_per_class, 0, 100_000)?;
        c.range("data.synthetic.size", data.synthetic.size as f64, 64.0, 4096.0, "pixels in [64, 4096]")?;
        Ok(())
    }

    fn validate_class_patterns(&self, c: &Checker) -> Result<(), ConfigError> {
        let data = &self.data;
        if !data.class_patterns.is_empty() && data.adapter != Adapter::Folders {
            return Err(c.fail("data.class_patterns", "applies to data.adapter: folders only".to_string()));
        }
        for rule in &data.class_patterns {
            if !data.classes.contains(&rule.class) {
                return Err(c.fail(
                    "data.class_patterns",
                    format!(
                        "class {:?} is not in data.classes, expected one of: {}",
                        rule.class,
                        data.classes.join(", ")
                    ),
                ));
            }
            if !is_safe_name(&rule.folder) {
                return Err(c.fail(
                    "data.class_patterns",
                    format!("folder {:?} must be one folder name (letters, digits, `_` and `-`)", rule.folder),
                ));
            }
            regex::Regex::new(&rule.pattern).map_err(|e| {
                c.fail("data.class_patterns", format!("pattern {:?} is not a regular expression: {e}", rule.pattern))
            })?;
        }
        Ok(())
    }

    fn validate_csv(&self, c: &Checker) -> Result<(), ConfigError> {
        let classes = &self.data.classes;
        let csv = &self.data.csv;
        for (value, class) in &csv.label.map {
            if !classes.contains(class) {
                return Err(c.fail(
                    "data.csv.label.map",
                    format!(
                        "{value:?} maps to {class:?}, which is not in data.classes, expected one of: {}",
                        classes.join(", ")
                    ),
                ));
            }
        }
        if let Some(class) = &csv.label.otherwise
            && !classes.contains(class)
        {
            return Err(c.fail(
                "data.csv.label.otherwise",
                format!("{class:?} is not in data.classes, expected one of: {}", classes.join(", ")),
            ));
        }
        if !csv.path_template.contains("{}") {
            return Err(c.fail(
                "data.csv.path_template",
                format!("{:?} has no {{}} placeholder for the column value", csv.path_template),
            ));
        }
        for filter in &csv.filters {
            if filter.keep.is_empty() {
                return Err(c.fail(
                    "data.csv.filters",
                    format!("the filter on column {:?} keeps no value, expected a non-empty keep list", filter.column),
                ));
            }
        }
        Ok(())
    }

    fn validate_preprocess(&self, c: &Checker) -> Result<(), ConfigError> {
        for (i, side) in self.preprocess.size.iter().enumerate() {
            c.range(
                &format!("preprocess.size[{i}]"),
                *side as f64,
                32.0,
                2048.0,
                "pixels in [32, 2048] (VGG16 halves the size five times)",
            )?;
        }
        if self.preprocess.max_pixels == 0 {
            return Err(c.fail("preprocess.max_pixels", "0 is out of range, expected >= 1".into()));
        }
        if self.preprocess.max_decoded_bytes == 0 {
            return Err(c.fail("preprocess.max_decoded_bytes", "0 is out of range, expected >= 1".into()));
        }
        if self.preprocess.max_file_bytes == 0 {
            return Err(c.fail("preprocess.max_file_bytes", "0 is out of range, expected >= 1".into()));
        }
        c.between("preprocess.threads", self.preprocess.threads, 0, 1024)?;
        c.at_least("preprocess.min_side", self.preprocess.min_side as usize, 1)
    }

    fn validate_model(&self, c: &Checker) -> Result<(), ConfigError> {
        c.range("model.head.dropout", self.model.head.dropout, 0.0, 0.95, "a rate in [0, 0.95]")?;
        c.between("model.quantization.images", self.model.quantization.images, 1, 100_000)?;
        c.range(
            "model.quantization.percentile",
            self.model.quantization.percentile,
            90.0,
            100.0,
            "a percentile in [90, 100]",
        )?;
        c.between("model.head.hidden (layers)", self.model.head.hidden.len(), 0, 16)?;
        for (i, width) in self.model.head.hidden.iter().enumerate() {
            c.between(&format!("model.head.hidden[{i}]"), *width, 1, 65_536)?;
        }
        Ok(())
    }

    fn validate_train(&self, c: &Checker) -> Result<(), ConfigError> {
        let t = &self.train;
        c.between("train.epochs", t.epochs, 1, 100_000)?;
        c.between("train.batch_size", t.batch_size, 1, 65_536)?;
        c.between("train.feature_batch_size", t.feature_batch_size, 1, 4096)?;
        c.range("train.optimizer.lr", t.optimizer.lr, 1e-12, 10.0, "a learning rate in (0, 10]")?;
        c.range("train.optimizer.momentum", t.optimizer.momentum, 0.0, 0.999, "a value in [0, 0.999]")?;
        c.range("train.optimizer.beta1", t.optimizer.beta1, 0.0, 0.9999, "a value in [0, 0.9999]")?;
        c.range("train.optimizer.beta2", t.optimizer.beta2, 0.0, 0.99999, "a value in [0, 0.99999]")?;
        c.range("train.optimizer.epsilon", t.optimizer.epsilon, 1e-12, 1.0, "a value in (0, 1]")?;
        c.range("train.optimizer.weight_decay", t.optimizer.weight_decay, 0.0, 1.0, "a value in [0, 1]")?;
        if let ClassWeights::Explicit(weights) = &t.class_weights {
            if weights.len() != self.data.classes.len() {
                return Err(c.fail(
                    "train.class_weights",
                    format!("{} weights given for {} classes", weights.len(), self.data.classes.len()),
                ));
            }
            if weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
                return Err(c.fail("train.class_weights", "every weight must be a positive number".into()));
            }
        }
        c.range("train.augment.rotate_degrees", t.augment.rotate_degrees, 0.0, 45.0, "degrees in [0, 45]")?;
        c.range("train.augment.shift_fraction", t.augment.shift_fraction, 0.0, 0.5, "a fraction in [0, 0.5]")?;
        c.range("train.augment.brightness", t.augment.brightness, 0.0, 1.0, "a fraction in [0, 1]")?;
        let a = &t.adapt;
        c.between("train.adapt.folds", a.folds, 2, 50)?;
        if a.local_weights.is_empty() || a.local_weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(c.fail("train.adapt.local_weights", "expected a list of positive numbers".into()));
        }
        if a.budget.contains(&0) {
            return Err(c.fail("train.adapt.budget", "sizes are numbers of local images, at least 1".into()));
        }
        if let Some(epochs) = a.epochs {
            c.between("train.adapt.epochs", epochs, 1, 100_000)?;
        }
        Ok(())
    }
}
