//! Stage 4, `report`: epoch metrics, confusion matrices, metrics with confidence
//! intervals, ROC and threshold tables (CSV), plots (SVG and PNG), and one
//! self-contained `index.html`; `report compare` puts experiments side by side.

mod adaptation;
mod compare;
mod compare_html;
mod compare_paired;
mod compare_text;
mod explained;
mod gallery;
mod html;
mod shift;
pub mod svg;
pub mod tables;

pub use compare::compare;
pub use compare_text::COMPARE_COLUMNS;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cxr_config::{Config, Data, Preprocess, Report, Runtime, Threshold};
use cxr_store::csv_file::write_csv;
use cxr_store::layout::Layout;
use cxr_store::manifest::TensorsMeta;
use cxr_store::predictions::PredictionSource;
use cxr_store::provenance::Provenance;
use serde::Serialize;

use crate::svg::Series;
use crate::tables::{MetricsRow, SplitData};

/// How to run the report.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Go on when the predictions, the model and the tensors do not belong together, and
    /// say so on the page's first line.
    pub allow_stale: bool,
}

/// What a finished report contains.
#[derive(Debug, Clone)]
pub struct Summary {
    pub index: PathBuf,
    pub metrics: Vec<MetricsRow>,
}

fn write_table<T: Serialize>(path: &Path, rows: &[T], header: &[&str]) -> anyhow::Result<()> {
    write_csv(path, header, rows)?;
    Ok(())
}

pub(crate) fn write_plot(dir: &Path, name: &str, svg: &str, png: bool) -> anyhow::Result<()> {
    cxr_store::write_atomic(&dir.join(format!("{name}.svg")), svg.as_bytes())?;
    if png {
        match svg::to_png(svg) {
            Ok(bytes) => cxr_store::write_atomic(&dir.join(format!("{name}.png")), &bytes)?,
            Err(e) => tracing::warn!("{name}.png not written: {e}"),
        }
    }
    Ok(())
}

/// The predictions files of an experiment, by split name, in name order.
fn prediction_files(layout: &Layout) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let dir = layout.predictions_dir();
    let mut out = Vec::new();
    if dir.is_dir() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            if let Some(split) = name.strip_suffix(".csv")
                && !split.ends_with(".rejects")
                && !split.starts_with('.')
            {
                out.push((split.to_string(), path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The learning curves, when the experiment trained a model (an evaluation-only
/// experiment, judged with another experiment's model, has none).
struct Curves {
    history: Vec<cxr_store::history::EpochRow>,
    accuracy_svg: String,
    loss_svg: String,
}

/// `png`: `report.png`.
fn learning_curves(layout: &Layout, dir: &Path, png: bool) -> anyhow::Result<Option<Curves>> {
    if !layout.history().is_file() {
        return Ok(None);
    }
    let history = cxr_store::history::read(&layout.history())?;
    cxr_store::history::write(&dir.join("epochs.csv"), &history)?;
    let epochs: Vec<f64> = history.iter().map(|r| r.epoch as f64).collect();
    let curve = |name: &str, values: Vec<f64>, dashed: bool| Series {
        name: name.to_string(),
        points: epochs.iter().copied().zip(values).collect(),
        dashed,
    };
    let accuracy_svg = svg::line_chart(
        "Accuracy per epoch",
        "epoch",
        "accuracy",
        &[
            curve("train", history.iter().map(|r| r.train_accuracy).collect(), false),
            curve("validation (selection)", history.iter().map(|r| r.val_accuracy).collect(), true),
        ],
        Some((0.0, 1.0)),
    );
    let loss_svg = svg::line_chart(
        "Loss per epoch",
        "epoch",
        "cross-entropy",
        &[
            curve("train", history.iter().map(|r| r.train_loss).collect(), false),
            curve("validation (selection)", history.iter().map(|r| r.val_loss).collect(), true),
        ],
        None,
    );
    write_plot(dir, "accuracy", &accuracy_svg, png)?;
    write_plot(dir, "loss", &loss_svg, png)?;
    Ok(Some(Curves { history, accuracy_svg, loss_svg }))
}

/// Path -> patient over `splits`, from their manifests when this experiment preprocessed them.
fn patients_of(layout: &Layout, splits: &[&str]) -> std::collections::HashMap<String, String> {
    splits
        .iter()
        .flat_map(|split| {
            cxr_store::csv_file::read_csv::<cxr_store::manifest::ManifestRow>(&layout.manifest(split))
                .map(|rows| rows.into_iter().filter(|r| !r.patient.is_empty()).map(|r| (r.path, r.patient)).collect())
                .unwrap_or_else(|_| Vec::new())
        })
        .collect()
}

/// One evaluated split: its data, table rows and plots.
pub struct SplitReport {
    pub data: SplitData,
    pub metrics: MetricsRow,
    pub operating_point: tables::OperatingPointRow,
    pub roc_svg: String,
    pub confusion_svg: String,
    pub calibration_svg: String,
    /// Each class against the rest (`per_class_<split>.csv`, and the page's table with 3+ classes).
    pub per_class: Vec<tables::PerClassRow>,
    /// The gallery: cases and their thumbnails, when the file could be read.
    pub cases: Vec<(gallery::Case, Option<gallery::Thumbnail>)>,
    /// The histogram of its shift scores against validation's (a model with the monitor).
    pub shift_svg: Option<String>,
}

/// One predictions file to report: its split name, what it is to the model, the threshold
/// its calls were made with, whose images they are, and any label-free prior adaptation.
struct ToReport<'a> {
    split: &'a str,
    path: &'a Path,
    role: tables::Role,
    threshold: Option<f64>,
    patients: std::collections::HashMap<String, String>,
    prior: Option<&'a cxr_store::predictions::PriorAdaptation>,
    /// The shift monitor's reference (a model with the monitor): validation's scores and the
    /// flag threshold.
    shift: Option<(&'a [f32], f64)>,
}

/// Reports one predictions file into `dir`; `seed` (`experiment.seed`) seeds the bootstrap.
fn report_split(data: &Data, report: &Report, seed: u64, dir: &Path, file: ToReport) -> anyhow::Result<SplitReport> {
    let ToReport { split, path, role, threshold, patients, prior, shift } = file;
    let classes = &data.classes;
    let (file_classes, rows) = cxr_store::predictions::read_csv(path)?;
    if &file_classes != classes {
        bail!(
            "{}: predictions are for classes [{}] but data.classes is [{}]",
            path.display(),
            file_classes.join(", "),
            classes.join(", ")
        );
    }
    let split_data = SplitData::new(split, classes, data.positive_index(), &rows, |p| patients.get(p).cloned())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let matrix = split_data.confusion_matrix();
    write_confusion(dir, split, classes, &matrix)?;
    let roc_rows = tables::roc_rows(&split_data);
    write_table(&dir.join(format!("roc_{split}.csv")), &roc_rows, &["threshold", "fpr", "tpr"])?;
    write_table(
        &dir.join(format!("thresholds_{split}.csv")),
        &tables::threshold_table(&split_data),
        &["threshold", "sensitivity", "specificity", "precision", "accuracy"],
    )?;
    let per_class = tables::per_class_rows(&split_data);
    write_table(&dir.join(format!("per_class_{split}.csv")), &per_class, tables::PER_CLASS_COLUMNS)?;
    let (bins, binning) = tables::calibration_rows(&split_data);
    write_table(
        &dir.join(format!("calibration_{split}.csv")),
        &bins,
        &["lo", "hi", "count", "mean_predicted", "fraction_positive"],
    )?;
    let mut metrics = tables::metrics_row(&split_data, threshold, &role, report.bootstrap, seed);
    if let Some(adapted) = prior {
        metrics.adapted_prior = Some(adapted.estimated_prior);
        metrics.chosen_on.push_str(&format!(
            "; probabilities adapted without labels to the prevalence estimated from this split's {} images ({:.3}; the model assumes {:.3})",
            adapted.images, adapted.estimated_prior, adapted.model_prior
        ));
    }
    let roc_svg = roc_plot(split, &metrics, &roc_rows);
    write_plot(dir, &format!("roc_{split}"), &roc_svg, report.png)?;
    let confusion_svg = svg::heatmap(&format!("Confusion matrix, {split}"), classes, &matrix);
    write_plot(dir, &format!("confusion_matrix_{split}"), &confusion_svg, report.png)?;
    let calibration_svg = calibration_plot(split, &metrics, (&bins, &binning), &classes[data.positive_index()]);
    write_plot(dir, &format!("calibration_{split}"), &calibration_svg, report.png)?;
    if split_data.labels.is_empty() {
        tracing::warn!(split, "no labelled predictions: metrics are empty");
    }
    let operating_point = tables::operating_point(&split_data, report.target_sensitivity);
    let shift_svg = shift
        .filter(|_| !split_data.all_shift_scores.is_empty())
        .map(|(val, threshold)| crate::shift::histogram(split, &split_data.all_shift_scores, val, threshold));
    if let Some(svg) = &shift_svg {
        write_plot(dir, &format!("shift_{split}"), svg, report.png)?;
    }
    // Thumbnails are drawn by `run`, which holds the model for their heatmaps.
    let cases = gallery::pick(&split_data, report.gallery).into_iter().map(|case| (case, None)).collect();
    Ok(SplitReport {
        data: split_data,
        metrics,
        operating_point,
        roc_svg,
        confusion_svg,
        calibration_svg,
        per_class,
        cases,
        shift_svg,
    })
}

/// The ROC curve of one split against chance.
fn roc_plot(split: &str, metrics: &MetricsRow, roc_rows: &[tables::RocRow]) -> String {
    let roc: Vec<(f64, f64)> = roc_rows.iter().map(|r| (r.fpr, r.tpr)).collect();
    svg::line_chart(
        &format!("ROC, {split} (AUC {})", metrics.auc.map_or("n/a".to_string(), |a| format!("{a:.3}"))),
        "1 - specificity (false positive rate)",
        "sensitivity (true positive rate)",
        &[
            Series { name: "model".into(), points: roc, dashed: false },
            Series { name: "chance".into(), points: vec![(0.0, 0.0), (1.0, 1.0)], dashed: true },
        ],
        Some((0.0, 1.0)),
    )
}

/// The reliability diagram of one split against perfect calibration, each bin's image count
/// beside its point.
fn calibration_plot(
    split: &str,
    metrics: &MetricsRow,
    (bins, binning): (&[cxr_metrics::ReliabilityBin], &str),
    positive: &str,
) -> String {
    svg::line_chart_with_notes(
        &format!("Reliability, {split} (ECE {})", metrics.ece.map_or("n/a".to_string(), |e| format!("{e:.3}"))),
        &format!("predicted probability of {positive}"),
        "observed share of positives",
        &[
            Series {
                name: format!("model ({binning}; n per bin)"),
                points: bins.iter().map(|b| (b.mean_predicted, b.fraction_positive)).collect(),
                dashed: false,
            },
            Series { name: "perfect calibration".into(), points: vec![(0.0, 0.0), (1.0, 1.0)], dashed: true },
        ],
        &bins.iter().map(|b| (b.mean_predicted, b.fraction_positive, b.count.to_string())).collect::<Vec<_>>(),
        Some((0.0, 1.0)),
    )
}

/// The threshold the predictions were decided with: as `infer` recorded it in
/// `predictions/model.json`; for predictions without one, `infer.threshold` resolved for
/// the experiment's model as `infer` resolves it (`cxr_model`). `None`, with a warning,
/// when neither says.
fn applied_threshold(
    classes: &[String],
    threshold: Threshold,
    layout: &Layout,
    source: Option<&PredictionSource>,
) -> Option<f64> {
    if classes.len() != 2 {
        return None; // called by the largest probability
    }
    if let Some(s) = source {
        return Some(s.threshold);
    }
    let resolved = cxr_model::ModelFile::open(&layout.model())
        .and_then(|model| model.decision(threshold, &layout.operating_point()));
    match resolved {
        Ok(decision) => Some(decision.threshold),
        Err(e) => {
            tracing::warn!(
                "{} is missing and infer.threshold cannot be resolved ({e:#}): metrics at a threshold are left empty; rerun `infer`",
                layout.predictions_source().display()
            );
            None
        }
    }
}

/// The model whose heatmaps go on the gallery's thumbnails (the one that made the
/// predictions), when `report.explain` asks for them and they can be drawn; else a
/// warning says why not, and the thumbnails have none.
fn gallery_explainer(
    report: &Report,
    runtime: &Runtime,
    preprocess: &Preprocess,
    layout: &Layout,
    source: Option<&PredictionSource>,
) -> Option<explained::GalleryHeatmaps> {
    if !report.explain || report.gallery == 0 {
        return None;
    }
    let model = source.map_or_else(|| layout.model(), |s| PathBuf::from(&s.model_path));
    explained::GalleryHeatmaps::open(runtime, preprocess, &model)
        .map_err(|e| tracing::warn!("the gallery's thumbnails have no heatmaps: {e:#}"))
        .ok()
}

/// Runs the stage.
pub fn run(config: &Config, options: &Options) -> anyhow::Result<Summary> {
    let _lock = cxr_store::lock::ExperimentLock::acquire(&config.experiment_dir(), "report", None)?;
    let layout = Layout::new(config);
    // The report folder is built beside the old one and swapped in whole: an interrupted
    // report leaves the previous one, never a page beside another run's tables.
    cxr_store::staging::recover(&layout.report());
    let staging = cxr_store::staging::Staging::new(&layout.report())?;
    let dir = staging.path().to_path_buf();
    let mut provenance = Provenance::start("report", config);
    let curves = learning_curves(&layout, &dir, config.report.png)?;
    let source = PredictionSource::read(&layout.predictions_source()).ok();
    let stale = stale_inputs(&layout, source.as_ref(), options)?;
    let threshold = applied_threshold(&config.data.classes, config.infer.threshold, &layout, source.as_ref());
    let files = prediction_files(&layout)?;
    if files.is_empty() && !layout.adaptation().is_file() {
        bail!("{} has no predictions: run `infer` first", layout.predictions_dir().display());
    }
    let adapted = adaptation::load(&layout, &dir, config.report.png)?;
    let mut explainer =
        gallery_explainer(&config.report, &config.runtime, &config.preprocess, &layout, source.as_ref());
    let mut splits = Vec::new();
    let external =
        source.as_ref().filter(|s| s.external).map(|s| s.experiment.clone().unwrap_or_else(|| s.model_path.clone()));
    for (split, path) in &files {
        provenance.input(&format!("predictions/{split}.csv"), cxr_store::sha256_file(path)?);
        let role = match (&adapted, &external) {
            (Some(a), None) => adaptation::role_of(split, a),
            _ => tables::Role::of(split, external.as_deref()),
        };
        let prior = source.as_ref().and_then(|s| s.adaptation_of(split));
        let patients = patients_of(&layout, &[split]);
        let shift = source
            .as_ref()
            .and_then(|s| s.shift.as_ref())
            .and_then(|c| c.of(split).map(|summary| (c.val_scores.as_slice(), summary.threshold)));
        let file = ToReport { split, path, role, threshold, patients, prior, shift };
        let mut report = report_split(&config.data, &config.report, config.experiment.seed, &dir, file)?;
        with_thumbnails(&config.preprocess, &mut report, &mut explainer)?;
        splits.push(report);
    }
    if let Some(a) = &adapted {
        splits.extend(report_adaptation_splits(config, &layout, &dir, a, &files, &mut provenance)?);
    }
    let metrics: Vec<MetricsRow> = splits.iter().map(|s| s.metrics.clone()).collect();
    let columns = tables::metrics_columns();
    write_table(&dir.join("metrics.csv"), &metrics, &columns.iter().map(String::as_str).collect::<Vec<_>>())?;
    let operating_points: Vec<_> = splits.iter().map(|s| s.operating_point.clone()).collect();
    write_table(
        &dir.join("operating_point.csv"),
        &operating_points,
        &["split", "target_sensitivity", "threshold", "sensitivity", "specificity", "chosen_on"],
    )?;
    let meta = TensorsMeta::read(&layout.tensors_meta()).ok();
    let train_provenance = Provenance::read(&layout.train().join("provenance.json")).ok();
    let page = html::Page {
        config,
        history: curves.as_ref().map_or(&[], |c| c.history.as_slice()),
        curves: curves.as_ref().map(|c| (c.accuracy_svg.as_str(), c.loss_svg.as_str())),
        source: source.as_ref(),
        meta: meta.as_ref(),
        train_provenance: train_provenance.as_ref(),
        splits: &splits,
        adapted: adapted.as_ref(),
        stale: &stale,
    };
    cxr_store::write_atomic(&dir.join("index.html"), page.render().as_bytes())?;
    provenance.write(&dir, config)?;
    let index = staging.commit()?.join("index.html");
    Ok(Summary { index, metrics })
}

/// What does not belong together among this experiment's model, tensors and predictions;
/// an error unless `--allow-stale`, else the lines the page opens with.
fn stale_inputs(layout: &Layout, source: Option<&PredictionSource>, options: &Options) -> anyhow::Result<Vec<String>> {
    let mut stale = Vec::new();
    if source.is_none_or(|s| !s.external) {
        stale.extend(cxr_store::integrity::trained_model(layout)?);
    }
    if let Some(s) = source {
        stale.extend(cxr_store::integrity::predictions(layout, s)?);
    }
    let mut lines = cxr_store::integrity::check(stale, options.allow_stale).map_err(anyhow::Error::msg)?;
    // Predictions that `infer --allow-stale` made stay marked whatever this run is told.
    lines.extend(source.map_or(&[][..], |s| s.stale.as_slice()).iter().map(|l| format!("infer --allow-stale: {l}")));
    for line in &lines {
        tracing::warn!("{line}");
    }
    Ok(lines)
}

/// An adapted experiment's extra splits: the cross-fitted local sample and the source model's
/// predictions of each split.
fn report_adaptation_splits(
    config: &Config,
    layout: &Layout,
    dir: &Path,
    adapted: &adaptation::Adapted,
    files: &[(String, PathBuf)],
    provenance: &mut Provenance,
) -> anyhow::Result<Vec<SplitReport>> {
    let local: Vec<&str> = adapted.adaptation.local_splits.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for extra in adaptation::extra_files(layout, adapted, files) {
        provenance.input(&extra.split, cxr_store::sha256_file(&extra.path)?);
        let patients = patients_of(layout, if extra.split.ends_with(adaptation::CROSSFIT) { &local } else { &[] });
        let file = ToReport {
            split: &extra.split,
            path: &extra.path,
            role: extra.role,
            threshold: extra.threshold,
            patients,
            prior: None,
            shift: None,
        };
        let mut report = report_split(&config.data, &config.report, config.experiment.seed, dir, file)?;
        // Heatmaps come from the exported model alone: these calls were made by others.
        with_thumbnails(&config.preprocess, &mut report, &mut None)?;
        out.push(report);
    }
    Ok(out)
}

/// Draws `report`'s gallery thumbnails, with the heatmaps of `explainer`'s model when it can.
fn with_thumbnails(
    preprocess: &Preprocess,
    report: &mut SplitReport,
    explainer: &mut Option<explained::GalleryHeatmaps>,
) -> anyhow::Result<()> {
    let cases: Vec<gallery::Case> = report.cases.iter().map(|(c, _)| c.clone()).collect();
    let thumbnails = match gallery::thumbnails(&cases, preprocess, explainer.as_mut()) {
        Ok(thumbnails) => thumbnails,
        Err(e) => {
            // Heatmaps are an extra: the report goes on with plain thumbnails.
            tracing::warn!("the gallery's thumbnails have no heatmaps: {e:#}");
            *explainer = None;
            gallery::thumbnails(&cases, preprocess, None)?
        }
    };
    report.cases = cases.into_iter().zip(thumbnails).collect();
    Ok(())
}

fn write_confusion(dir: &Path, split: &str, classes: &[String], m: &[Vec<usize>]) -> anyhow::Result<()> {
    let mut header = vec!["actual"];
    header.extend(classes.iter().map(String::as_str));
    let counts = classes.iter().zip(m).map(|(class, row)| {
        let mut c = vec![class.clone()];
        c.extend(row.iter().map(|v| v.to_string()));
        c
    });
    let rates = classes.iter().zip(m).map(|(class, row)| {
        let total: usize = row.iter().sum();
        let mut r = vec![class.clone()];
        r.extend(
            row.iter().map(|&v| if total == 0 { String::new() } else { format!("{:.6}", v as f64 / total as f64) }),
        );
        r
    });
    use cxr_store::csv_file::encode;
    cxr_store::write_atomic(&dir.join(format!("confusion_matrix_{split}.csv")), &encode(&header, counts)?)?;
    cxr_store::write_atomic(&dir.join(format!("confusion_matrix_{split}_rates.csv")), &encode(&header, rates)?)?;
    Ok(())
}
