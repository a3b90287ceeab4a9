//! The one-page summary `index.html`: plots inline, metrics with intervals, config and provenance.

use std::fmt::Write;

use base64::Engine as _;
use cxr_config::Config;
use cxr_store::history::EpochRow;
use cxr_store::manifest::TensorsMeta;
use cxr_store::provenance::Provenance;

use cxr_store::predictions::PredictionSource;

use crate::SplitReport;
use crate::tables::MetricsRow;

pub struct Page<'a> {
    pub config: &'a Config,
    pub history: &'a [EpochRow],
    /// Accuracy and loss plots, when the experiment trained a model.
    pub curves: Option<(&'a str, &'a str)>,
    /// The model and threshold behind the predictions (from `infer`).
    pub source: Option<&'a PredictionSource>,
    pub meta: Option<&'a TensorsMeta>,
    pub train_provenance: Option<&'a Provenance>,
    pub splits: &'a [SplitReport],
    /// What `train --adapt-from` left, in an adapted experiment.
    pub adapted: Option<&'a crate::adaptation::Adapted>,
    /// What did not belong together (`--allow-stale`): said before anything else.
    pub stale: &'a [String],
}

/// The style of every page (`index.html`, `compare.html`).
pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;padding:0 1em;max-width:1100px;color:#222;line-height:1.4}table{border-collapse:collapse;margin:1em 0;font-size:14px;display:block;overflow-x:auto;max-width:100%}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}.plots{display:flex;flex-wrap:wrap;gap:12px}.plots img{width:520px}pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:13px}.note{color:#555}.headline{background:#f4f8ff;border:1px solid #bcd;padding:0.5em 1em}.optimistic{color:#a60}.gallery{display:flex;flex-wrap:wrap;gap:8px}.gallery figure{margin:0;max-width:200px;font-size:12px}.gallery img{height:128px;border:1px solid #ccc}.gallery .missing{width:128px;height:128px;background:#eee}figcaption{overflow-wrap:anywhere}small{font-size:12px}";

/// Text made safe for HTML content and for attribute values in either quote.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{:.1}%", v * 100.0))
}

pub(crate) fn with_ci(v: Option<f64>, lo: Option<f64>, hi: Option<f64>) -> String {
    match (v, lo, hi) {
        (Some(v), Some(lo), Some(hi)) => {
            format!("{:.1}% <small>({:.1}-{:.1})</small>", v * 100.0, lo * 100.0, hi * 100.0)
        }
        (v, _, _) => pct(v),
    }
}

pub(crate) fn img(svg: &str) -> String {
    // Inline as a data URI: the page stays one self-contained file.
    format!(
        r#"<img alt="plot" src="data:image/svg+xml;base64,{}">"#,
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

fn auc_cell(m: &MetricsRow) -> String {
    match (m.auc, m.auc_lo, m.auc_hi) {
        (Some(a), Some(lo), Some(hi)) => format!("{a:.3} <small>({lo:.3}-{hi:.3})</small>"),
        (a, _, _) => a.map_or("n/a".into(), |a| format!("{a:.3}")),
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.3}"))
}

/// The row whose figures are the honest estimate: an external cohort, else the estimate
/// split, else a held-out evaluation split, else an adapted model's cross-fitted local
/// sample; never the split choices were made on.
fn headline(metrics: &[MetricsRow]) -> Option<&MetricsRow> {
    ["external", "estimate", "evaluation", "cross-fitted"]
        .iter()
        .find_map(|role| metrics.iter().find(|m| m.role == *role && m.n > 0))
}

impl Page<'_> {
    pub fn render(&self) -> String {
        let mut h = String::new();
        self.head(&mut h);
        self.headline(&mut h);
        self.model(&mut h);
        match self.source.map(|s| s.shift.as_ref()) {
            Some(Some(shift)) => crate::shift::section(&mut h, shift, self.splits),
            Some(None) => h.push_str("<h2>Are these images like the training images?</h2><p class=note>Unknown: the model that made these predictions has no shift monitor (no <code>shift_score</code> output: it was exported before the monitor or trained with augmentation).</p>"),
            None => {}
        }
        if let Some(adapted) = self.adapted {
            let metrics: Vec<MetricsRow> = self.splits.iter().map(|s| s.metrics.clone()).collect();
            crate::adaptation::section(&mut h, adapted, &metrics);
        }
        self.metrics(&mut h);
        self.per_class(&mut h);
        self.curves(&mut h);
        self.split_plots(&mut h);
        self.data(&mut h);
        self.provenance(&mut h);
        let _ = writeln!(h, "<h2>Configuration</h2><pre>{}</pre></body></html>", esc(&self.config.to_yaml()));
        h
    }

    fn head(&self, h: &mut String) {
        let c = self.config;
        let _ = write!(
            h,
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{name}: chest X-ray report</title>
<style>{STYLE}</style></head><body>
{stale}<h1>Experiment <code>{name}</code></h1>
<p class="note">Pneumonia screening: sensitivity is the recall of <b>{positive}</b>, specificity the recall of the other class. Every figure says which images it was measured on (its split) and which images the choices behind it were made on: the epoch, the temperature and the threshold are chosen on <code>val</code> (the selection split), so <code>val</code> figures are optimistic; <code>estimate</code> is a patient-disjoint part of the validation data nothing was chosen on. Both come from the training distribution: expect lower figures on images from another hospital.</p>"#,
            name = esc(&c.experiment.name),
            positive = esc(&c.data.classes[c.data.positive_index()]),
            stale = self.stale_banner() + &self.shift_banner(),
        );
    }

    /// Said before any figure when a split's images are unlike the training images.
    fn shift_banner(&self) -> String {
        let Some(shift) = self.source.and_then(|s| s.shift.as_ref()) else { return String::new() };
        let lines: String = shift
            .sources
            .iter()
            .filter_map(|s| {
                crate::shift::headline_warning(shift, &s.source)
                    .map(|w| format!("<li><code>{}</code> ({} images): {}</li>", esc(&s.source), s.images, esc(&w)))
            })
            .collect();
        if lines.is_empty() {
            return String::new();
        }
        format!(r#"<div class="headline optimistic"><p><b>Cohort shift.</b></p><ul>{lines}</ul></div>"#)
    }

    /// Said before anything else when the figures mix outputs that do not belong together.
    fn stale_banner(&self) -> String {
        if self.stale.is_empty() {
            return String::new();
        }
        let items: String = self.stale.iter().map(|l| format!("<li>{}</li>", esc(l))).collect();
        format!(
            r#"<div class="headline optimistic"><p><b>Stale: these figures mix outputs that do not belong together (--allow-stale).</b></p><ul>{items}</ul></div>"#
        )
    }

    fn headline(&self, h: &mut String) {
        let metrics: Vec<MetricsRow> = self.splits.iter().map(|s| s.metrics.clone()).collect();
        match headline(&metrics) {
            Some(m) => {
                let shifted = self
                    .source
                    .and_then(|s| s.shift.as_ref())
                    .and_then(|shift| crate::shift::headline_warning(shift, &m.split))
                    .map(|w| format!("<p><b>{}</b></p>", esc(&w)));
                let adapted = self.adapted.map(|a| format!("<p>{}</p>", esc(&crate::adaptation::headline_note(a, m))));
                let note = [shifted, adapted].into_iter().flatten().collect::<Vec<_>>().join("");
                let note = (!note.is_empty()).then_some(note);
                let _ = write!(
                    h,
                    r#"<div class="headline">{}<h2>Headline: <code>{}</code> ({}, {} images of {} patients)</h2><p>Accuracy {}, sensitivity {}, specificity {}, ROC AUC {} at threshold {}.{} Chosen on: {}. Intervals: {}.</p></div>"#,
                    note.unwrap_or_default(),
                    esc(&m.split),
                    esc(&m.role),
                    m.n,
                    m.patients,
                    with_ci(m.accuracy, m.accuracy_lo, m.accuracy_hi),
                    with_ci(m.sensitivity, m.sensitivity_lo, m.sensitivity_hi),
                    with_ci(m.specificity, m.specificity_lo, m.specificity_hi),
                    auc_cell(m),
                    m.threshold.map_or("n/a".into(), |t| format!("{t:.3}")),
                    self.target_sentence(m).map(|s| format!(" {}", esc(&s))).unwrap_or_default(),
                    esc(&m.chosen_on),
                    esc(&m.intervals)
                );
            }
            None => h.push_str(
                r#"<div class="headline optimistic"><p>No split here is free of the choices made in training: every figure below is optimistic. Set data.estimate_fraction, or judge the model on a held-out or external cohort.</p></div>"#,
            ),
        }
    }

    /// What the threshold was chosen for and what it achieved on `m`'s split: "chosen for
    /// sensitivity 0.95 on the model's validation split; here 0.80 (95% CI 0.62-0.91), below it".
    fn target_sentence(&self, m: &MetricsRow) -> Option<String> {
        let target = self.source?.target_sensitivity?;
        let achieved = m.sensitivity?;
        let ci = match (m.sensitivity_lo, m.sensitivity_hi) {
            (Some(lo), Some(hi)) => format!(" (95% CI {lo:.2}-{hi:.2})"),
            _ => String::new(),
        };
        let verdict = match (m.sensitivity_lo, m.sensitivity_hi) {
            (_, Some(hi)) if hi < target => ", below it: this split's pneumonias are found less often than planned",
            (Some(lo), _) if lo > target => ", above it (at the cost of specificity)",
            _ => ", consistent with it",
        };
        Some(format!(
            "The threshold was chosen to reach sensitivity {target:.2} on the model's validation split; on this split it reached {achieved:.2}{ci}{verdict}."
        ))
    }

    fn model(&self, h: &mut String) {
        let Some(s) = self.source else { return };
        let kind = if s.external {
            "a model from another experiment (external validation)"
        } else {
            "this experiment's model"
        };
        let _ = write!(
            h,
            "<h2>Model</h2><p>Predictions by {kind}.</p><table><tr><td>model</td><td style=\"text-align:left\"><code>{}</code></td></tr><tr><td>SHA-256</td><td style=\"text-align:left\"><code>{}</code></td></tr><tr><td>trained in</td><td style=\"text-align:left\"><code>{}</code></td></tr><tr><td>backbone</td><td style=\"text-align:left\">{}</td></tr><tr><td>temperature</td><td style=\"text-align:left\">{:.3}</td></tr><tr><td>threshold</td><td style=\"text-align:left\">{:.4}: {}</td></tr></table>",
            esc(&s.model_path),
            esc(&s.model_sha256),
            esc(s.experiment.as_deref().unwrap_or("unknown")),
            esc(&s.backbone),
            s.temperature,
            s.threshold,
            esc(&s.threshold_source)
        );
        if !s.adaptation.is_empty() {
            h.push_str("<p>Adapted to each cohort without labels (<code>infer.adaptation: prior</code>): the prevalence of each split below was estimated from its unlabelled images (EM, Saerens et al. 2002) and its probabilities corrected to it; the threshold applies to the corrected probabilities. This assumes the cohort differs in prevalence only.</p><table><tr><th>split</th><th>images</th><th>model assumes</th><th>estimated</th></tr>");
            for a in &s.adaptation {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}{}</td></tr>",
                    esc(&a.source),
                    a.images,
                    a.model_prior,
                    a.estimated_prior,
                    if a.converged { "" } else { " (not settled)" }
                );
            }
            h.push_str("</table>");
        }
    }

    /// With three or more classes: each class against the rest, per split, and the macro AUC.
    fn per_class(&self, h: &mut String) {
        if self.config.data.classes.len() < 3 {
            return;
        }
        h.push_str("<h2>Per class (one against the rest)</h2><p class=note>Sensitivity, specificity and precision from the predicted class (the most probable); ROC AUC from the class's probability. The macro AUC is their mean over classes.</p><table><tr><th>split</th><th>class</th><th>N</th><th>sensitivity</th><th>specificity</th><th>precision</th><th>ROC AUC</th></tr>");
        for s in self.splits {
            for row in &s.per_class {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&s.data.name),
                    esc(&row.class),
                    row.n,
                    pct(row.sensitivity),
                    pct(row.specificity),
                    pct(row.precision),
                    num(row.auc_one_vs_rest)
                );
            }
            let _ = write!(
                h,
                "<tr><td>{}</td><td><b>macro</b></td><td></td><td></td><td></td><td></td><td><b>{}</b></td></tr>",
                esc(&s.data.name),
                num(s.metrics.macro_auc)
            );
        }
        h.push_str("</table>");
    }

    fn metrics(&self, h: &mut String) {
        h.push_str("<h2>Metrics</h2><table><tr><th>split</th><th>role</th><th>N</th><th>threshold</th><th>accuracy</th><th>balanced acc.</th><th>sensitivity</th><th>specificity</th><th>precision (PPV)</th><th>NPV</th><th>F1</th><th>ROC AUC</th><th>Brier</th><th>ECE</th></tr>");
        for s in self.splits {
            let m = &s.metrics;
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{} <small>({} neg / {} pos, {} patients)</small></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&m.split),
                esc(&m.role),
                m.n,
                m.n_negative,
                m.n_positive,
                m.patients,
                m.threshold.map_or("n/a".into(), |t| format!("{t:.3}")),
                with_ci(m.accuracy, m.accuracy_lo, m.accuracy_hi),
                pct(m.balanced_accuracy),
                with_ci(m.sensitivity, m.sensitivity_lo, m.sensitivity_hi),
                with_ci(m.specificity, m.specificity_lo, m.specificity_hi),
                with_ci(m.precision, m.precision_lo, m.precision_hi),
                with_ci(m.npv, m.npv_lo, m.npv_hi),
                pct(m.f1),
                auc_cell(m),
                num(m.brier),
                num(m.ece)
            );
        }
        h.push_str("</table><table><tr><th>split</th><th>choices made on</th><th>intervals</th></tr>");
        for s in self.splits {
            let m = &s.metrics;
            let _ = write!(
                h,
                "<tr><td>{}</td><td style=\"text-align:left\">{}</td><td style=\"text-align:left\">{}</td></tr>",
                esc(&m.split),
                esc(&m.chosen_on),
                esc(&m.intervals)
            );
        }
        h.push_str("</table><h3>Operating points on each split (optimistic)</h3><p class=note>What each split would have needed: the threshold that reaches the target sensitivity when it is chosen with that split's own labels, against the threshold in use (chosen elsewhere, as in the metrics above). A split that needs a very different threshold has probabilities on another scale than the images the threshold was chosen on; its figures here are optimistic because they were chosen on the images they are measured on.</p><table><tr><th>split</th><th>threshold in use</th><th>target sensitivity</th><th>threshold it would need</th><th>sensitivity</th><th>specificity</th></tr>");
        for s in self.splits {
            let o = &s.operating_point;
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&o.split),
                s.metrics.threshold.map_or("n/a".into(), |t| format!("{t:.3}")),
                o.target_sensitivity,
                o.threshold.map_or("n/a".into(), |t| format!("{t:.4}")),
                pct(o.sensitivity),
                pct(o.specificity)
            );
        }
        h.push_str("</table>");
    }

    fn curves(&self, h: &mut String) {
        let Some((accuracy, loss)) = self.curves else {
            h.push_str("<p class=note>This experiment trained no model (evaluation only): no learning curves.</p>");
            return;
        };
        let _ = write!(h, r#"<h2>Learning curves</h2><div class="plots">{}{}</div>"#, img(accuracy), img(loss));
        if let Some(best) = self.history.iter().find(|r| r.best) {
            let _ = write!(
                h,
                "<p>Exported model: epoch {} of {} (best figure on the val split, which is therefore optimistic).</p>",
                best.epoch,
                self.history.len()
            );
        }
    }

    fn split_plots(&self, h: &mut String) {
        for s in self.splits {
            let _ = write!(
                h,
                r#"<h2>Split <code>{}</code> ({})</h2><div class="plots">{}{}{}</div>"#,
                esc(&s.data.name),
                esc(&s.metrics.role),
                img(&s.roc_svg),
                img(&s.confusion_svg),
                img(&s.calibration_svg)
            );
            self.gallery(h, s);
            if s.data.unlabelled > 0 {
                let _ = write!(
                    h,
                    "<p class=note>{} predictions had no label and are not in the metrics.</p>",
                    s.data.unlabelled
                );
            }
        }
    }

    /// The cases behind one split's numbers, grouped by kind, thumbnails as the model saw them.
    fn gallery(&self, h: &mut String, s: &SplitReport) {
        if s.cases.is_empty() {
            return;
        }
        let two = s.data.classes.len() == 2;
        let _ = write!(h, "<h3>Cases behind the numbers: <code>{}</code></h3>", esc(&s.data.name));
        if s.cases.iter().any(|(_, t)| t.as_ref().is_some_and(|t| t.heatmap)) {
            h.push_str("<p class=note>Over each X-ray: the Grad-CAM heatmap of its call, from the model that made the predictions (red: where the evidence for the called class is strongest; scaled per image; <code>report.explain</code>).</p>");
        }
        let mut kinds: Vec<crate::gallery::Kind> = s.cases.iter().map(|(c, _)| c.kind).collect();
        kinds.dedup();
        for kind in kinds {
            let _ = write!(h, "<p><b>{}</b></p><div class=gallery>", kind.title(two));
            for (case, thumbnail) in s.cases.iter().filter(|(c, _)| c.kind == kind) {
                let picture = thumbnail.as_ref().map_or_else(
                    || "<div class=missing>file not readable</div>".to_string(),
                    |t| {
                        // Shown at the X-ray's own aspect ratio, 128 pixels high.
                        let width = (128.0 * t.aspect).clamp(64.0, 200.0).round();
                        format!(
                            r#"<img alt="X-ray" style="width:{width}px" src="data:image/png;base64,{}">"#,
                            t.png_base64
                        )
                    },
                );
                let name = case.path.rsplit('/').next().unwrap_or(&case.path);
                let shift = case.shift_score.map_or(String::new(), |s| format!("<br>shift score {s:.2}"));
                let _ = write!(
                    h,
                    r#"<figure title="{}">{picture}<figcaption>{}<br>label {} · called {}<br>p({}) {:.3}{shift}</figcaption></figure>"#,
                    esc(&case.path),
                    esc(name),
                    esc(&case.label),
                    esc(&case.predicted),
                    esc(&case.shown),
                    case.probability
                );
            }
            h.push_str("</div>");
        }
    }

    fn data(&self, h: &mut String) {
        let Some(meta) = self.meta else { return };
        h.push_str("<h2>Data</h2><table><tr><th>split</th><th>images</th><th>patients</th>");
        for class in &meta.classes {
            let _ = write!(h, "<th>{}</th>", esc(class));
        }
        h.push_str("</tr>");
        for s in &meta.splits {
            let patients = s.patients.map_or("n/a".to_string(), |p| p.to_string());
            let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{patients}</td>", esc(&s.name), s.count);
            for n in &s.per_class {
                let _ = write!(h, "<td>{n}</td>");
            }
            h.push_str("</tr>");
        }
        let _ = write!(
            h,
            "</table><p>Images {}x{} ({}), data root <code>{}</code>.</p>",
            meta.size[0],
            meta.size[1],
            esc(&meta.channel_order),
            esc(&std::path::absolute(&self.config.data.root)
                .unwrap_or_else(|_| self.config.data.root.clone())
                .display()
                .to_string())
        );
    }

    fn provenance(&self, h: &mut String) {
        h.push_str("<h2>Provenance</h2><table>");
        let mut row = |k: &str, v: &str| {
            let _ = write!(h, "<tr><td>{}</td><td style=\"text-align:left\"><code>{}</code></td></tr>", esc(k), esc(v));
        };
        row("config hash", &self.config.hash());
        row("git revision", &cxr_store::provenance::git_revision());
        if let Some(p) = self.train_provenance {
            row("backbone", p.tools.get("backbone").map_or("", String::as_str));
            row("backbone SHA-256", p.tools.get("backbone_sha256").map_or("", String::as_str));
            row("ONNX Runtime", p.tools.get("onnxruntime").map_or("", String::as_str));
            row("model.onnx SHA-256", p.inputs.get("model.onnx").map_or("", String::as_str));
        }
        row("crate version", env!("CARGO_PKG_VERSION"));
        h.push_str("</table>");
    }
}
