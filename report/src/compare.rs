//! `report compare EXP... [--out DIR]`: is B better than A? Each experiment after the first
//! is set against the first: the config keys it changed, the headline metrics of every
//! split, and, on the images both predicted, DeLong's test of the ROC AUCs and McNemar's
//! test of the accuracies (`compare_paired.rs`). A short table goes to stdout; `DIR`
//! gets `compare.csv` and a self-contained `compare.html` (`compare_html.rs`), written
//! in a folder beside it and swapped in whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cxr_config::KeyChange;
use cxr_store::layout::Layout;

use crate::compare_paired::{Pairing, sentence};

/// One experiment folder as `report compare` reads it.
pub(crate) struct Experiment {
    /// The folder as the user named it.
    pub label: String,
    pub dir: PathBuf,
    /// The rows of `EXP/report/metrics.csv`, in order.
    pub metrics: Vec<MetricsLine>,
    /// `EXP/report/config.resolved.yaml` as dotted keys, or why it could not be read.
    pub config: Result<Vec<(String, String)>, String>,
}

/// One row of a `metrics.csv`, by column name.
pub(crate) struct MetricsLine {
    cells: BTreeMap<String, String>,
}

impl MetricsLine {
    /// The cell of `column` as written (empty when the file has no such column).
    pub fn text(&self, column: &str) -> &str {
        self.cells.get(column).map_or("", String::as_str)
    }

    /// The cell of `column` as a finite number.
    pub fn num(&self, column: &str) -> Option<f64> {
        self.text(column).parse().ok().filter(|v: &f64| v.is_finite())
    }

    pub fn split(&self) -> &str {
        self.text("split")
    }

    #[cfg(test)]
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> MetricsLine {
        MetricsLine { cells: pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }
}

/// One split of one experiment set against the same split of the first.
pub(crate) struct PairedSplit {
    /// Index into the experiments (never 0, the reference).
    pub experiment: usize,
    pub split: String,
    pub pairing: Pairing,
    /// The plain sentence that says what the tests show (or why there are none).
    pub sentence: String,
}

/// Everything `report compare` found.
pub(crate) struct Comparison {
    pub experiments: Vec<Experiment>,
    /// For each experiment after the first: its config keys that differ from the first's,
    /// or why they are unknown.
    pub changes: Vec<Result<Vec<KeyChange>, String>>,
    pub paired: Vec<PairedSplit>,
}

/// Reads one experiment folder: a missing folder, and a folder without a report, each say so.
fn load(exp: &Path) -> anyhow::Result<Experiment> {
    if !exp.exists() {
        bail!("{}: no such experiment folder", exp.display());
    }
    if !exp.is_dir() {
        bail!("{}: not a folder (give experiment folders, <experiment.workdir>/<experiment.name>)", exp.display());
    }
    let report = Layout::at(exp).report();
    let path = report.join("metrics.csv");
    if !path.is_file() {
        bail!(
            "{}: {} is missing: run `report` for this experiment first (report --config <its config>)",
            exp.display(),
            path.display()
        );
    }
    let (header, records) = cxr_store::csv_file::read_records(&path)?;
    if !header.iter().any(|h| h == "split") {
        bail!("{}: no column split (not a report's metrics.csv)", path.display());
    }
    let metrics = records
        .iter()
        .map(|r| MetricsLine {
            cells: header.iter().zip(r.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect(),
        })
        .collect();
    let config_path = report.join(cxr_config::RESOLVED_FILE_NAME);
    let config = cxr_config::flatten_file(&config_path).map_err(|e| format!("{e}"));
    Ok(Experiment { label: exp.display().to_string(), dir: exp.to_path_buf(), metrics, config })
}

/// The config keys of `other` that differ from `reference`'s.
fn changes(reference: &Experiment, other: &Experiment) -> Result<Vec<KeyChange>, String> {
    match (&reference.config, &other.config) {
        (Ok(a), Ok(b)) => Ok(cxr_config::diff_flat(a, b)),
        (Err(e), _) | (_, Err(e)) => Err(format!("configurations not compared: {e}")),
    }
}

/// Reads the experiments and runs the paired tests of each against the first.
fn gather(experiments: &[PathBuf]) -> anyhow::Result<Comparison> {
    let experiments: Vec<Experiment> = experiments.iter().map(|e| load(e)).collect::<anyhow::Result<_>>()?;
    let reference = &experiments[0];
    let mut changed = Vec::new();
    let mut paired = Vec::new();
    for (index, other) in experiments.iter().enumerate().skip(1) {
        changed.push(changes(reference, other));
        for line in &other.metrics {
            let split = line.split();
            let pairing = match reference.metrics.iter().find(|m| m.split() == split) {
                Some(reference_line) => crate::compare_paired::pair(reference, reference_line, other, line)?,
                None => Pairing::Skipped(format!("{} has no {split} split", reference.label)),
            };
            let sentence = sentence(reference, other, line, &pairing);
            paired.push(PairedSplit { experiment: index, split: split.to_string(), pairing, sentence });
        }
    }
    Ok(Comparison { experiments, changes: changed, paired })
}

/// `report compare EXP...`: compares every experiment with the first; with `out`, writes
/// `out/compare.csv` and `out/compare.html`. Returns the human summary for stdout.
pub fn compare(experiments: &[PathBuf], out: Option<&Path>) -> anyhow::Result<String> {
    if experiments.is_empty() {
        bail!("report compare: name the experiment folders to compare (the first is the reference)");
    }
    if let Some(out) = out {
        check_out(out)?;
    }
    let comparison = gather(experiments)?;
    let mut text = crate::compare_text::summary(&comparison);
    if let Some(out) = out {
        write(&comparison, out)?;
        text.push_str(&format!("compare: {}\n", out.join("compare.html").display()));
    }
    Ok(text)
}

/// The files a `--out` folder may hold: what an earlier `report compare` wrote.
const OURS: &[&str] = &["compare.csv", "compare.html"];

/// Refuses an `--out` that is a file, or a folder holding anything but an earlier
/// comparison: the folder is replaced whole.
fn check_out(out: &Path) -> anyhow::Result<()> {
    if out.file_name().is_none() {
        bail!("--out {}: name a folder for compare.html and compare.csv", out.display());
    }
    if out.exists() && !out.is_dir() {
        bail!(
            "--out {}: a file is there; give a folder (report compare writes compare.html and compare.csv into it)",
            out.display()
        );
    }
    if out.is_dir() {
        let entries = std::fs::read_dir(out).with_context(|| format!("cannot list {}", out.display()))?;
        let mut foreign: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !OURS.contains(&name.as_str()))
            .collect();
        foreign.sort();
        if let Some(first) = foreign.first() {
            bail!(
                "--out {}: the folder holds files report compare did not write ({first}{}); give a new folder or an earlier comparison's (it is replaced whole)",
                out.display(),
                if foreign.len() > 1 { format!(" and {} more", foreign.len() - 1) } else { String::new() }
            );
        }
    }
    Ok(())
}

/// Writes `compare.csv` and `compare.html` into a folder beside `out`, then swaps it in.
fn write(comparison: &Comparison, out: &Path) -> anyhow::Result<()> {
    cxr_store::staging::recover(out);
    let staging = cxr_store::staging::Staging::new(out)?;
    let dir = staging.path();
    let (header, rows) = crate::compare_text::csv_rows(comparison);
    let csv =
        cxr_store::csv_file::encode(&header, rows).with_context(|| out.join("compare.csv").display().to_string())?;
    cxr_store::write_atomic(&dir.join("compare.csv"), &csv)?;
    let page = crate::compare_html::render(comparison);
    cxr_store::write_atomic(&dir.join("compare.html"), page.as_bytes())?;
    staging.commit()?;
    Ok(())
}
