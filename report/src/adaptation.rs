//! The report of an experiment adapted by `train --adapt-from`: the local sample's
//! cross-fitted predictions and the source model's predictions as splits of their own,
//! the roles that say what each was chosen on, the headline that names the local sample,
//! the source model beside the adapted one on the same images, and the label-budget curve.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use cxr_store::adaptation::{Adaptation, BudgetRow};
use cxr_store::layout::Layout;
use cxr_store::predictions::PredictionSource;

use crate::html::{esc, img};
use crate::svg::{self, Series};
use crate::tables::{MetricsRow, Role};

/// The split name of the local sample's cross-fitted predictions.
pub const CROSSFIT: &str = "crossfit";

/// The split name of the source model's predictions of `split`.
pub fn source_split(split: &str) -> String {
    format!("source-{split}")
}

/// What `train --adapt-from` left for the report.
#[derive(Debug, Clone)]
pub struct Adapted {
    pub adaptation: Adaptation,
    pub budget: Vec<BudgetRow>,
    pub budget_svg: String,
}

/// A predictions file besides `EXP/predictions/*.csv`: its split name, path, role and the
/// threshold its calls were made with (`None` when they were made by several).
#[derive(Debug, Clone)]
pub struct Extra {
    pub split: String,
    pub path: PathBuf,
    pub role: Role,
    pub threshold: Option<f64>,
}

/// The adaptation outputs of the experiment at `layout`, when it was adapted; writes
/// `budget.csv` and the budget plot (with a PNG when `png`, `report.png`) into the report folder `dir`.
pub fn load(layout: &Layout, dir: &Path, png: bool) -> anyhow::Result<Option<Adapted>> {
    if !layout.adaptation().is_file() {
        return Ok(None);
    }
    let adaptation = Adaptation::read(&layout.adaptation())?;
    let budget = cxr_store::adaptation::read_budget(&layout.budget())?;
    cxr_store::adaptation::write_budget(&dir.join("budget.csv"), &budget)?;
    let budget_svg = budget_plot(&budget);
    crate::write_plot(dir, "budget", &budget_svg, png)?;
    Ok(Some(Adapted { adaptation, budget, budget_svg }))
}

/// A figure of a budget point with its interval: `[value, lo, hi]`.
type Figure = fn(&BudgetRow) -> [Option<f64>; 3];

/// Accuracy, specificity and ROC AUC against the local labels used, with their intervals.
fn budget_plot(budget: &[BudgetRow]) -> String {
    let figures: [(&str, Figure); 3] = [
        ("accuracy", |r| [r.accuracy, r.accuracy_lo, r.accuracy_hi]),
        ("specificity", |r| [r.specificity, r.specificity_lo, r.specificity_hi]),
        ("ROC AUC", |r| [r.auc, r.auc_lo, r.auc_hi]),
    ];
    let mut series = Vec::new();
    let mut intervals = Vec::new();
    for (name, get) in figures {
        let rows: Vec<(f64, [Option<f64>; 3])> = budget.iter().map(|r| (r.local_images, get(r))).collect();
        if rows.iter().all(|(_, v)| v[0].is_none()) {
            continue;
        }
        series.push(Series {
            name: name.to_string(),
            points: rows.iter().map(|(x, v)| (*x, v[0].unwrap_or(f64::NAN))).collect(),
            dashed: false,
        });
        intervals.push(rows.iter().map(|(_, v)| v[1].zip(v[2])).collect());
    }
    svg::line_chart_with_intervals(
        "Label budget: cross-fitted figures on the local sample",
        "local labelled images used (0: the source model unchanged)",
        "figure (95% interval by patient)",
        &series,
        &intervals,
        None,
    )
}

/// The cross-fitted local sample and the source model's predictions, as extra splits;
/// `splits` are this experiment's own predictions files.
pub fn extra_files(layout: &Layout, adapted: &Adapted, splits: &[(String, PathBuf)]) -> Vec<Extra> {
    let a = &adapted.adaptation;
    let source_role = |what: &str| Role {
        name: "source model",
        chosen_on: format!("{what}: the source model {} unchanged (chosen on its own val split)", a.source_experiment),
    };
    let mut out = vec![
        Extra {
            split: CROSSFIT.into(),
            path: layout.crossfit(),
            role: Role {
                name: "cross-fitted",
                chosen_on: format!(
                    "the local sample ({}), cross-fitted in {} folds by patient: each image scored by a refit that did not see it, and its local weight, temperature and threshold chosen on the other folds",
                    a.local_splits.join(", "),
                    a.folds
                ),
            },
            threshold: None,
        },
        Extra {
            split: source_split(CROSSFIT),
            path: layout.crossfit_source(),
            role: source_role("the local sample"),
            threshold: a.source_threshold,
        },
    ];
    let source_dir = layout.source_predictions_dir();
    let recorded = PredictionSource::read(&source_dir.join("model.json")).ok();
    for (split, _) in splits {
        let path = source_dir.join(format!("{split}.csv"));
        if path.is_file() {
            out.push(Extra {
                split: source_split(split),
                path,
                role: source_role(split),
                threshold: recorded.as_ref().map(|s| s.threshold),
            });
        }
    }
    out
}

/// The role of this experiment's own predictions of `split`: the local sample is what the
/// adapted head was fitted on; any other split is untouched local data.
pub fn role_of(split: &str, adapted: &Adapted) -> Role {
    let a = &adapted.adaptation;
    if a.local_splits.iter().any(|s| s == split) {
        Role { name: "training", chosen_on: "this split: the adapted head was fitted on it (optimistic)".into() }
    } else {
        Role {
            name: "evaluation",
            chosen_on: format!(
                "the local sample ({}, cross-fitted): nothing was chosen on this split",
                a.local_splits.join(", ")
            ),
        }
    }
}

/// The sentence that opens the headline of an adapted experiment.
pub fn headline_note(adapted: &Adapted, headline: &MetricsRow) -> String {
    let a = &adapted.adaptation;
    let what = if headline.role == "cross-fitted" {
        format!(
            "cross-fitted estimate on those {} images (no test split: each scored by a refit that did not see it)",
            headline.n
        )
    } else {
        format!("estimate on {} other local images", headline.n)
    };
    let warning =
        cxr_store::adaptation::worse_than_source(&adapted.budget).map_or(String::new(), |w| format!(" Warning: {w}."));
    format!("Adapted from {} with {} local images; {what}.{warning}", a.source_experiment, a.local_images)
}

/// The section that sets the source model beside the adapted one and draws the budget curve.
pub fn section(h: &mut String, adapted: &Adapted, metrics: &[MetricsRow]) {
    let a = &adapted.adaptation;
    let _ = write!(
        h,
        "<h2>Adaptation to this site</h2><p>This experiment's model is <code>{}</code> (SHA-256 <code>{}</code>) adapted with {} local images of {} patients: its head refitted on the {} source training images plus the local ones, each local image weighing {} source images (of the candidates {}, the best cross-fitted ROC AUC), temperature {:.3} and threshold {} {}. {} refits, {} epochs each ({}).</p>",
        esc(&a.source_model),
        esc(&a.source_model_sha256),
        a.local_images,
        a.local_patients,
        a.source_images,
        a.local_weight,
        a.candidates.iter().map(|c| format!("{}", c.weight)).collect::<Vec<_>>().join(", "),
        a.temperature,
        a.threshold.map_or("n/a".into(), |t| format!("{t:.4}")),
        esc(&a.threshold_chosen_on),
        a.refits,
        a.epochs,
        esc(&a.epochs_from)
    );
    h.push_str("<table><tr><th>images</th><th>model</th><th>N</th><th>accuracy</th><th>sensitivity</th><th>specificity</th><th>ROC AUC</th></tr>");
    for adapted_row in metrics.iter().filter(|m| m.role == "evaluation" || m.role == "cross-fitted") {
        let source = source_split(&adapted_row.split);
        for (label, m) in [("source model", metrics.iter().find(|m| m.split == source)), ("adapted", Some(adapted_row))]
        {
            let Some(m) = m else { continue };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&adapted_row.split),
                m.n,
                cell(m.accuracy, m.accuracy_lo, m.accuracy_hi),
                cell(m.sensitivity, m.sensitivity_lo, m.sensitivity_hi),
                cell(m.specificity, m.specificity_lo, m.specificity_hi),
                cell(m.auc, m.auc_lo, m.auc_hi)
            );
        }
    }
    h.push_str("</table><h3>Label budget</h3><p class=note>Would more local labels help? Each point refits the head with nested subsets (whole patients) of each fold's training part and scores the fold left out, so every figure is cross-fitted; 0 is the source model unchanged, the last point every local image but a fold's. Intervals: 95% bootstrap over patients.</p>");
    let _ = write!(h, r#"<div class="plots">{}</div>"#, img(&adapted.budget_svg));
    h.push_str("<table><tr><th>local images used</th><th>N scored</th><th>accuracy</th><th>sensitivity</th><th>specificity</th><th>ROC AUC</th></tr>");
    for r in &adapted.budget {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if r.local_images == 0.0 { "0 (source model)".to_string() } else { format!("{:.0}", r.local_images) },
            r.n,
            cell(r.accuracy, r.accuracy_lo, r.accuracy_hi),
            cell(r.sensitivity, r.sensitivity_lo, r.sensitivity_hi),
            cell(r.specificity, r.specificity_lo, r.specificity_hi),
            cell(r.auc, r.auc_lo, r.auc_hi)
        );
    }
    h.push_str("</table>");
}

/// A figure with its interval, as the page's tables show it.
fn cell(v: Option<f64>, lo: Option<f64>, hi: Option<f64>) -> String {
    match (v, lo, hi) {
        (Some(v), Some(lo), Some(hi)) => format!("{v:.3} <small>({lo:.3}-{hi:.3})</small>"),
        (v, _, _) => v.map_or("n/a".into(), |v| format!("{v:.3}")),
    }
}
