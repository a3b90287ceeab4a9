//! `report compare`'s plain outputs: the aligned table and sentences it prints, and the
//! rows of `compare.csv` (one per experiment and split).

use std::fmt::Write;

use crate::compare::{Comparison, MetricsLine, PairedSplit};
use crate::compare_paired::Pairing;

/// Columns of `compare.csv`: the first ones as `report compare` has always printed them,
/// then the intervals, the config changes and the paired tests against the first experiment
/// (empty for the first, and where a split could not be paired; `note` says why).
pub const COMPARE_COLUMNS: &[&str] = &[
    "experiment",
    "split",
    "n",
    "threshold",
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "auc",
    "auc_lo",
    "auc_hi",
    "role",
    "accuracy_lo",
    "accuracy_hi",
    "sensitivity_lo",
    "sensitivity_hi",
    "specificity_lo",
    "specificity_hi",
    "reference",
    "config_changes",
    "n_paired",
    "auc_reference_paired",
    "auc_paired",
    "auc_diff",
    "delong_z",
    "delong_p",
    "accuracy_reference_paired",
    "accuracy_paired",
    "b",
    "c",
    "mcnemar_method",
    "mcnemar_p",
    "note",
];

/// The metrics.csv columns copied as they are (the first 20 of [`COMPARE_COLUMNS`] but one).
const COPIED: usize = 20;

/// `key: old -> new; ...` (`(absent)` for a side without the key).
pub(crate) fn change_list(changes: &Result<Vec<cxr_config::KeyChange>, String>) -> String {
    match changes {
        Err(why) => why.clone(),
        Ok(list) if list.is_empty() => "none".into(),
        Ok(list) => list
            .iter()
            .map(|c| {
                let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
                format!("{}: {} -> {}", c.key, side(&c.old), side(&c.new))
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The paired-test cells (from `n_paired` to `note`) of one split.
fn paired_cells(paired: Option<&PairedSplit>) -> Vec<String> {
    let empty = || vec![String::new(); 13];
    let Some(paired) = paired else { return empty() };
    let p = match &paired.pairing {
        Pairing::Skipped(why) => {
            let mut cells = empty();
            cells[12] = why.clone();
            return cells;
        }
        Pairing::Paired(p) => p,
    };
    let (delong, note) = match &p.delong {
        Ok(d) => ([d.auc_a, d.auc_b, d.difference(), d.z, d.p].map(|v| v.to_string()), String::new()),
        Err(why) => (Default::default(), why.clone()),
    };
    let mut cells = vec![p.shared.to_string()];
    cells.extend(delong);
    cells.extend([
        p.accuracy_reference.to_string(),
        p.accuracy_other.to_string(),
        p.mcnemar.b.to_string(),
        p.mcnemar.c.to_string(),
        p.mcnemar.method().to_string(),
        p.mcnemar.p.to_string(),
        note,
    ]);
    cells
}

/// The paired result of experiment `index`'s split `split`, if it is not the reference.
fn paired_of<'a>(comparison: &'a Comparison, index: usize, split: &str) -> Option<&'a PairedSplit> {
    comparison.paired.iter().find(|p| p.experiment == index && p.split == split)
}

/// The header and rows of `compare.csv`.
pub(crate) fn csv_rows(comparison: &Comparison) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let mut rows = Vec::new();
    for (index, exp) in comparison.experiments.iter().enumerate() {
        let (reference, changes) = match index {
            0 => (String::new(), String::new()),
            _ => (comparison.experiments[0].label.clone(), change_list(&comparison.changes[index - 1])),
        };
        for line in &exp.metrics {
            let mut row = vec![exp.label.clone()];
            row.extend(COMPARE_COLUMNS[1..COPIED].iter().map(|c| line.text(c).to_string()));
            row.extend([reference.clone(), changes.clone()]);
            row.extend(paired_cells(paired_of(comparison, index, line.split())));
            rows.push(row);
        }
    }
    (COMPARE_COLUMNS.to_vec(), rows)
}

fn three(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.3}"))
}

fn p_cell(p: Option<f64>) -> String {
    p.map_or(String::new(), |p| if p < 0.001 { "<0.001".into() } else { format!("{p:.3}") })
}

/// `0.912 (0.890-0.931)`.
fn auc_cell(line: &MetricsLine) -> String {
    match (line.num("auc"), line.num("auc_lo"), line.num("auc_hi")) {
        (Some(a), Some(lo), Some(hi)) => format!("{a:.3} ({lo:.3}-{hi:.3})"),
        (a, _, _) => three(a),
    }
}

/// Columns padded to their widest cell; the first two left-aligned, numbers right-aligned.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| if c < 2 { format!("{s:<w$}", w = width[c]) } else { format!("{s:>w$}", w = width[c]) })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// What `report compare` prints: the metrics table, the config differences and one
/// sentence per paired split.
pub(crate) fn summary(comparison: &Comparison) -> String {
    let mut rows = vec![
        ["experiment", "split", "n", "threshold", "accuracy", "sensitivity", "specificity", "AUC (95% CI)"]
            .iter()
            .chain(&["AUC diff", "DeLong p", "McNemar p"])
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    ];
    for (index, exp) in comparison.experiments.iter().enumerate() {
        for line in &exp.metrics {
            let paired = paired_of(comparison, index, line.split()).and_then(|p| match &p.pairing {
                Pairing::Paired(p) => Some(p),
                Pairing::Skipped(_) => None,
            });
            let delong = paired.and_then(|p| p.delong.as_ref().ok());
            rows.push(vec![
                exp.label.clone(),
                line.split().to_string(),
                line.text("n").to_string(),
                three(line.num("threshold")),
                three(line.num("accuracy")),
                three(line.num("sensitivity")),
                three(line.num("specificity")),
                auc_cell(line),
                delong.map_or(String::new(), |d| format!("{:+.3}", crate::compare_paired::tidy(d.difference()))),
                p_cell(delong.map(|d| d.p)),
                p_cell(paired.map(|p| p.mcnemar.p)),
            ]);
        }
    }
    let mut out = aligned(&rows);
    let reference = &comparison.experiments[0].label;
    for (index, (exp, changes)) in comparison.experiments.iter().skip(1).zip(&comparison.changes).enumerate() {
        let _ = writeln!(out, "\n{} against {reference} (config changes: {}):", exp.label, change_list(changes));
        for p in comparison.paired.iter().filter(|p| p.experiment == index + 1) {
            let _ = writeln!(out, "  {}", p.sentence);
        }
    }
    if comparison.experiments.len() > 1 {
        out.push_str(&format!("\n{}\n", crate::compare_html::CAVEAT));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Experiment;
    use crate::compare_paired::Paired;

    fn experiment(label: &str) -> Experiment {
        let line = "split=test,n=8,threshold=0.5,accuracy=0.75,auc=0.8125,auc_lo=0.5,auc_hi=1,role=evaluation";
        Experiment {
            label: label.into(),
            dir: label.into(),
            metrics: vec![MetricsLine::from_pairs(line.split(',').map(|kv| kv.split_once('=').unwrap()))],
            config: Ok(vec![]),
        }
    }

    fn comparison(pairing: Pairing) -> Comparison {
        let paired = PairedSplit { experiment: 1, split: "test".into(), pairing, sentence: "On test, ...".into() };
        Comparison {
            experiments: vec![experiment("a"), experiment("b")],
            changes: vec![Ok(vec![cxr_config::KeyChange {
                key: "train.epochs".into(),
                old: Some("2".into()),
                new: Some("3".into()),
            }])],
            paired: vec![paired],
        }
    }

    #[test]
    fn every_csv_row_has_every_column_and_the_reference_no_tests() {
        let tested = Paired {
            shared: 8,
            n_reference: 8,
            n_other: 8,
            delong: Err("no DeLong test".into()),
            accuracy_reference: 0.75,
            accuracy_other: 0.875,
            mcnemar: cxr_metrics::McNemar::of_counts(0, 1),
        };
        for pairing in [Pairing::Skipped("no image in common".into()), Pairing::Paired(tested)] {
            let (header, rows) = csv_rows(&comparison(pairing));
            assert_eq!(rows.len(), 2);
            assert!(rows.iter().all(|r| r.len() == header.len()), "{rows:?}");
            let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
            assert_eq!(rows[0][col("mcnemar_p")], "");
            assert_eq!(rows[1][col("config_changes")], "train.epochs: 2 -> 3");
            assert_eq!(rows[1][col("reference")], "a");
            assert!(!rows[1][col("note")].is_empty());
        }
    }

    #[test]
    fn the_printed_table_is_aligned_with_three_decimals() {
        let text = summary(&comparison(Pairing::Skipped("no image in common".into())));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("a  ") && lines[2].starts_with("b  "), "{text}");
        assert_eq!(lines[1].find("0.750"), lines[2].find("0.750"), "{text}");
        assert!(text.contains("0.812 (0.500-1.000)") && text.contains("train.epochs: 2 -> 3"), "{text}");
    }
}
