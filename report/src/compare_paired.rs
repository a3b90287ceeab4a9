//! The paired tests of `report compare`: one split of an experiment against the same split
//! of the reference, on the images both predicted (joined by path): DeLong's test of the
//! two ROC AUCs and McNemar's test of the two accuracies, each at its own threshold (the
//! calls in the predictions files), and the sentence that says what they show.

use std::collections::HashMap;

use cxr_metrics::{DeLong, McNemar};
use cxr_store::layout::Layout;
use cxr_store::predictions::Prediction;

use crate::compare::{Experiment, MetricsLine};

/// The significance level the sentences speak of.
pub(crate) const LEVEL: f64 = 0.05;

/// The tests on the images two experiments share.
pub(crate) struct Paired {
    /// Labelled images in both predictions files.
    pub shared: usize,
    /// Labelled images of the reference's and of the other's split.
    pub n_reference: usize,
    pub n_other: usize,
    /// DeLong's test (reference = A, other = B), or why there is none.
    pub delong: Result<DeLong, String>,
    /// Accuracy of each on the shared images.
    pub accuracy_reference: f64,
    pub accuracy_other: f64,
    pub mcnemar: McNemar,
}

pub(crate) enum Pairing {
    Paired(Paired),
    /// Why the split could not be tested.
    Skipped(String),
}

/// A predictions file's classes and labelled rows.
type Labelled = (Vec<String>, Vec<Prediction>);

/// One split's labelled predictions, or why they cannot be paired.
fn labelled(exp: &Experiment, line: &MetricsLine) -> anyhow::Result<Result<Labelled, String>> {
    let split = line.split();
    let path = Layout::at(&exp.dir).predictions_file(split, "csv");
    if !path.is_file() {
        return Ok(Err(format!("{} has no predictions/{split}.csv", exp.label)));
    }
    let (classes, rows) = cxr_store::predictions::read_csv(&path)?;
    let rows: Vec<Prediction> = rows.into_iter().filter(|r| r.label.is_some()).collect();
    let counted = line.text("n");
    if counted != rows.len().to_string() {
        return Ok(Err(format!(
            "{} holds {} labelled images but the report of {} counted {counted}: run `report` for it again",
            path.display(),
            rows.len(),
            exp.label
        )));
    }
    Ok(Ok((classes, rows)))
}

/// Tests `other`'s split `line` against the reference's same split.
pub(crate) fn pair(
    reference: &Experiment,
    reference_line: &MetricsLine,
    other: &Experiment,
    line: &MetricsLine,
) -> anyhow::Result<Pairing> {
    let ((classes, rows_a), (classes_b, rows_b)) = match (labelled(reference, reference_line)?, labelled(other, line)?)
    {
        (Ok(a), Ok(b)) => (a, b),
        (Err(why), _) | (_, Err(why)) => return Ok(Pairing::Skipped(why)),
    };
    if classes != classes_b {
        return Ok(Pairing::Skipped(format!(
            "the classes differ: [{}] and [{}]",
            classes.join(", "),
            classes_b.join(", ")
        )));
    }
    let by_path: HashMap<&str, &Prediction> = rows_b.iter().map(|r| (r.path.as_str(), r)).collect();
    let paths_a: std::collections::HashSet<&str> = rows_a.iter().map(|r| r.path.as_str()).collect();
    if by_path.len() != rows_b.len() || paths_a.len() != rows_a.len() {
        return Ok(Pairing::Skipped("a path appears twice in a predictions file: images cannot be matched".into()));
    }
    let shared: Vec<(&Prediction, &Prediction)> =
        rows_a.iter().filter_map(|a| by_path.get(a.path.as_str()).map(|b| (a, *b))).collect();
    if shared.is_empty() {
        return Ok(Pairing::Skipped(format!(
            "no image in common ({} and {} labelled images, matched by path): paired tests need the same images",
            rows_a.len(),
            rows_b.len()
        )));
    }
    let relabelled = shared.iter().filter(|(a, b)| a.label != b.label).count();
    if relabelled > 0 {
        return Ok(Pairing::Skipped(format!("{relabelled} shared images have different labels in the two files")));
    }
    let right = |p: &Prediction| p.label.as_deref() == Some(p.predicted.as_str());
    let right_a: Vec<bool> = shared.iter().map(|(a, _)| right(a)).collect();
    let right_b: Vec<bool> = shared.iter().map(|(_, b)| right(b)).collect();
    let accuracy = |r: &[bool]| r.iter().filter(|x| **x).count() as f64 / r.len() as f64;
    Ok(Pairing::Paired(Paired {
        shared: shared.len(),
        n_reference: rows_a.len(),
        n_other: rows_b.len(),
        delong: delong(&classes, reference_line.text("positive_class"), &shared),
        accuracy_reference: accuracy(&right_a),
        accuracy_other: accuracy(&right_b),
        mcnemar: McNemar::of_calls(&right_a, &right_b),
    }))
}

/// DeLong's test on the positive class's probability, or why there is none.
fn delong(classes: &[String], positive: &str, shared: &[(&Prediction, &Prediction)]) -> Result<DeLong, String> {
    if classes.len() != 2 {
        return Err(format!("{} classes: DeLong's test here is for two", classes.len()));
    }
    let k = classes.iter().position(|c| c == positive).ok_or_else(|| format!("positive class {positive:?} unknown"))?;
    let is_positive: Vec<bool> = shared.iter().map(|(a, _)| a.label.as_deref() == Some(positive)).collect();
    let a: Vec<f64> = shared.iter().map(|(a, _)| a.probabilities[k]).collect();
    let b: Vec<f64> = shared.iter().map(|(_, b)| b.probabilities[k]).collect();
    cxr_metrics::delong(&is_positive, &a, &b).ok_or_else(|| {
        "no DeLong test: it needs two images of each class, and scores that do not separate the classes perfectly in opposite directions".into()
    })
}

/// `x` to 9 decimals, for display: an AUC that the midranks give as 0.95749999999999991
/// shows as 0.958, as the report's 0.9575 does.
pub(crate) fn tidy(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// `p = 0.030`, or `p < 0.001`.
pub(crate) fn p_text(p: f64) -> String {
    if p < 0.001 { "p < 0.001".into() } else { format!("p = {p:.3}") }
}

/// What one comparison shows, in a sentence or two that claim no more than the tests do.
pub(crate) fn sentence(reference: &Experiment, other: &Experiment, line: &MetricsLine, pairing: &Pairing) -> String {
    let (a, b, split) = (&reference.label, &other.label, line.split());
    let p = match pairing {
        Pairing::Skipped(why) => return format!("On {split}, no paired test: {why}."),
        Pairing::Paired(p) => p,
    };
    let images = if p.shared == p.n_reference && p.shared == p.n_other {
        format!("{} shared images", p.shared)
    } else {
        format!(
            "the {} images both predicted; {a} has {}, {b} {}: the tests use only these",
            p.shared, p.n_reference, p.n_other
        )
    };
    let (auc_part, auc_verdict) = match &p.delong {
        Ok(d) => auc_clause(a, b, d),
        Err(why) => (why.clone(), None),
    };
    let m = &p.mcnemar;
    let accuracy_part = format!(
        "accuracy {:.3} vs {:.3} at each one's own threshold (McNemar, {}, {}; {} images right only by {a}, {} only by {b})",
        tidy(p.accuracy_other),
        tidy(p.accuracy_reference),
        m.method(),
        p_text(m.p),
        m.b,
        m.c
    );
    let accuracy_verdict = (m.p < LEVEL).then_some(m.c > m.b);
    let verdict = verdict(b, auc_verdict, accuracy_verdict, p.delong.is_ok());
    let role = line.text("role");
    let tuned = if matches!(role, "selection" | "training") {
        format!(" Both were tuned on {split} (its role: {role}), so this says little about new images.")
    } else {
        String::new()
    };
    format!("On {split} ({images}), {auc_part}; {accuracy_part}: {verdict}.{tuned}")
}

/// `B's ROC AUC is 0.012 higher than A's (0.912 vs 0.900; DeLong p = 0.030)`, and whether
/// B is better (`Some(true)`), worse (`Some(false)`) or neither at the 5% level.
fn auc_clause(a: &str, b: &str, d: &DeLong) -> (String, Option<bool>) {
    let diff = tidy(d.difference());
    let how = if diff.abs() < 0.0005 {
        format!("{b}'s ROC AUC is within 0.001 of {a}'s")
    } else {
        format!("{b}'s ROC AUC is {:.3} {} than {a}'s", diff.abs(), if diff > 0.0 { "higher" } else { "lower" })
    };
    (
        format!("{how} ({:.3} vs {:.3}; DeLong {})", tidy(d.auc_b), tidy(d.auc_a), p_text(d.p)),
        (d.p < LEVEL).then_some(diff > 0.0),
    )
}

/// `B is better on AUC at the 5% level, not on accuracy`, and the like.
fn verdict(b: &str, auc: Option<bool>, accuracy: Option<bool>, auc_tested: bool) -> String {
    let word = |better: bool| if better { "better" } else { "worse" };
    match (auc, accuracy) {
        (Some(x), Some(y)) if x == y => format!("{b} is {} on both AUC and accuracy at the 5% level", word(x)),
        (Some(x), Some(y)) => {
            format!("{b} is {} on AUC and {} on accuracy at the 5% level", word(x), word(y))
        }
        (Some(x), None) => format!(
            "{b} is {} on AUC at the 5% level; the accuracy difference is not significant at the 5% level",
            word(x)
        ),
        (None, Some(y)) if auc_tested => format!(
            "{b} is {} on accuracy at the 5% level; the AUC difference is not significant at the 5% level",
            word(y)
        ),
        (None, Some(y)) => format!("{b} is {} on accuracy at the 5% level", word(y)),
        (None, None) if auc_tested => {
            "neither difference is significant at the 5% level (which does not show that the two are equal)".into()
        }
        (None, None) => {
            "the accuracy difference is not significant at the 5% level (which does not show that the two are equal)"
                .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_claim_only_what_was_tested_at_the_5_percent_level() {
        assert_eq!(verdict("B", Some(true), Some(true), true), "B is better on both AUC and accuracy at the 5% level");
        assert_eq!(
            verdict("B", Some(true), None, true),
            "B is better on AUC at the 5% level; the accuracy difference is not significant at the 5% level"
        );
        assert_eq!(
            verdict("B", Some(false), Some(true), true),
            "B is worse on AUC and better on accuracy at the 5% level"
        );
        assert!(verdict("B", None, None, true).starts_with("neither difference is significant at the 5% level"));
        assert!(!verdict("B", None, Some(true), false).contains("AUC"), "no DeLong test, no word on AUC");
        assert_eq!(p_text(0.0304), "p = 0.030");
        assert_eq!(p_text(0.0004), "p < 0.001");
        assert_eq!(format!("{:.3}", tidy(0.957_499_999_999_999_9)), "0.958");
    }

    #[test]
    fn the_auc_clause_says_which_is_higher() {
        let d =
            |a: f64, b: f64, p: f64| DeLong { auc_a: a, auc_b: b, var_a: 0.0, var_b: 0.0, covariance: 0.0, z: 0.0, p };
        let (text, verdict) = auc_clause("A", "B", &d(0.900, 0.912, 0.03));
        assert_eq!(text, "B's ROC AUC is 0.012 higher than A's (0.912 vs 0.900; DeLong p = 0.030)");
        assert_eq!(verdict, Some(true));
        let (text, verdict) = auc_clause("A", "B", &d(0.9, 0.8998, 0.9));
        assert!(text.starts_with("B's ROC AUC is within 0.001 of A's"), "{text}");
        assert_eq!(verdict, None);
    }
}
