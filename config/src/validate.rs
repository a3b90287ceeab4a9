//! Range and consistency checks that the type system alone cannot express.

use crate::{ClassWeights, Config, ConfigError};

/// Rewrites serde's wording into the project's: `unknown value "x", expected one of: a, b`.
pub(crate) fn friendly_serde_message(message: &str) -> String {
    for (prefix, noun) in [("unknown variant `", "value"), ("unknown field `", "key")] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let Some((bad, tail)) = rest.split_once('`') else {
                break;
            };
            let allowed =
                tail.trim_start_matches(',').trim().trim_start_matches("expected ").trim_start_matches("one of ");
            let allowed: Vec<&str> = allowed
                .split([',', ' '])
                .filter(|s| !s.is_empty() && *s != "or")
                .map(|s| s.trim_matches('`'))
                .collect();
            return format!("unknown {noun} {bad:?}, expected one of: {}", allowed.join(", "));
        }
    }
    // serde_yaml appends " at line L column C" for its own Value input; it means nothing here.
    message.to_string()
}

struct Checker<'a> {
    origin: &'a str,
}

impl Checker<'_> {
    fn fail(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid { origin: self.origin.to_string(), key: key.to_string(), message }
    }

    fn range(&self, key: &str, value: f64, lo: f64, hi: f64, allowed: &str) -> Result<(), ConfigError> {
        if value.is_finite() && value >= lo && value <= hi {
            Ok(())
        } else {
            Err(self.fail(key, format!("{value} is out of range, expected {allowed}")))
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

impl Config {
    /// Checks ranges and cross-key consistency; the error names the key and what is allowed.
    pub(crate) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let c = Checker { origin };
        let name = &self.experiment.name;
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(c.fail(
                "experiment.name",
                format!("{name:?} is not allowed, expected a non-empty folder name without slashes"),
            ));
        }

        let classes = &self.data.classes;
        if classes.len() < 2 {
            return Err(c.fail("data.classes", format!("{} class(es) given, expected at least 2", classes.len())));
        }
        for (i, class) in classes.iter().enumerate() {
            if class.is_empty() || class.contains([',', '/', '\\', '\n']) {
                return Err(c.fail(
                    "data.classes",
                    format!("{class:?} is not allowed, expected a name without commas or slashes"),
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
        c.range("data.val_fraction", self.data.val_fraction, 0.01, 0.9, "a fraction in [0.01, 0.9]")?;
        if let Some(limit) = self.data.limit_per_class {
            c.at_least("data.limit_per_class", limit, 1)?;
        }
        for (value, class) in &self.data.csv.label.map {
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
        if let Some(class) = &self.data.csv.label.otherwise
            && !classes.contains(class)
        {
            return Err(c.fail(
                "data.csv.label.otherwise",
                format!("{class:?} is not in data.classes, expected one of: {}", classes.join(", ")),
            ));
        }
        if !self.data.csv.path_template.contains("{}") {
            return Err(c.fail(
                "data.csv.path_template",
                format!("{:?} has no {{}} placeholder for the column value", self.data.csv.path_template),
            ));
        }
        c.at_least("data.synthetic.train_per_class", self.data.synthetic.train_per_class, 2)?;
        c.range("data.synthetic.size", self.data.synthetic.size as f64, 64.0, 4096.0, "pixels in [64, 4096]")?;

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
        c.at_least("preprocess.min_side", self.preprocess.min_side as usize, 1)?;

        c.range("model.head.dropout", self.model.head.dropout, 0.0, 0.95, "a rate in [0, 0.95]")?;
        for (i, width) in self.model.head.hidden.iter().enumerate() {
            c.at_least(&format!("model.head.hidden[{i}]"), *width, 1)?;
        }

        let t = &self.train;
        c.at_least("train.epochs", t.epochs, 1)?;
        c.at_least("train.batch_size", t.batch_size, 1)?;
        c.at_least("train.feature_batch_size", t.feature_batch_size, 1)?;
        c.range("train.optimizer.lr", t.optimizer.lr, 1e-12, 10.0, "a learning rate in (0, 10]")?;
        c.range("train.optimizer.momentum", t.optimizer.momentum, 0.0, 0.999, "a value in [0, 0.999]")?;
        c.range("train.optimizer.beta1", t.optimizer.beta1, 0.0, 0.9999, "a value in [0, 0.9999]")?;
        c.range("train.optimizer.beta2", t.optimizer.beta2, 0.0, 0.99999, "a value in [0, 0.99999]")?;
        c.range("train.optimizer.epsilon", t.optimizer.epsilon, 1e-12, 1.0, "a value in (0, 1]")?;
        c.range("train.optimizer.weight_decay", t.optimizer.weight_decay, 0.0, 1.0, "a value in [0, 1]")?;
        if let ClassWeights::Explicit(weights) = &t.class_weights {
            if weights.len() != classes.len() {
                return Err(c.fail(
                    "train.class_weights",
                    format!("{} weights given for {} classes", weights.len(), classes.len()),
                ));
            }
            if weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
                return Err(c.fail("train.class_weights", "every weight must be a positive number".into()));
            }
        }
        c.range("train.augment.rotate_degrees", t.augment.rotate_degrees, 0.0, 45.0, "degrees in [0, 45]")?;
        c.range("train.augment.shift_fraction", t.augment.shift_fraction, 0.0, 0.5, "a fraction in [0, 0.5]")?;
        c.range("train.augment.brightness", t.augment.brightness, 0.0, 1.0, "a fraction in [0, 1]")?;

        c.at_least("infer.batch_size", self.infer.batch_size, 1)?;
        c.range("report.target_sensitivity", self.report.target_sensitivity, 0.01, 1.0, "a rate in [0.01, 1]")?;
        Ok(())
    }
}
