//! The one-page summary `index.html`: plots inline, metrics with intervals, config and provenance.

use std::fmt::Write;

use base64::Engine as _;
use cxr_config::Config;
use cxr_store::history::EpochRow;
use cxr_store::manifest::TensorsMeta;
use cxr_store::provenance::Provenance;

use crate::tables::{MetricsRow, OperatingPointRow, SplitData};

pub struct Page<'a> {
    pub config: &'a Config,
    pub history: &'a [EpochRow],
    pub metrics: &'a [MetricsRow],
    pub operating_points: &'a [OperatingPointRow],
    pub meta: Option<&'a TensorsMeta>,
    pub train_provenance: Option<&'a Provenance>,
    pub accuracy_svg: &'a str,
    pub loss_svg: &'a str,
    pub splits: &'a [(SplitData, String, String)],
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{:.1}%", v * 100.0))
}

fn with_ci(v: Option<f64>, lo: Option<f64>, hi: Option<f64>) -> String {
    match (v, lo, hi) {
        (Some(v), Some(lo), Some(hi)) => {
            format!("{:.1}% <small>({:.1}-{:.1})</small>", v * 100.0, lo * 100.0, hi * 100.0)
        }
        (v, _, _) => pct(v),
    }
}

fn img(svg: &str) -> String {
    // Inline as a data URI: the page stays one self-contained file.
    format!(
        r#"<img alt="plot" src="data:image/svg+xml;base64,{}">"#,
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

impl Page<'_> {
    pub fn render(&self) -> String {
        let c = self.config;
        let mut h = String::new();
        let _ = write!(
            h,
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{name}: chest X-ray report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}img{{max-width:100%;border:1px solid #eee}}.plots{{display:flex;flex-wrap:wrap;gap:12px}}.plots img{{width:520px}}pre{{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}}.note{{color:#555}}</style></head><body>
<h1>Experiment <code>{name}</code></h1>
<p class="note">Pneumonia screening: sensitivity is the recall of <b>{positive}</b>, specificity the recall of the other class. Intervals are 95% (Wilson; stratified bootstrap for AUC). Validation figures come from the training distribution and are optimistic for a shifted test set.</p>"#,
            name = esc(&c.experiment.name),
            positive = esc(&c.data.classes[c.data.positive_index()]),
        );
        h.push_str("<h2>Metrics</h2><table><tr><th>split</th><th>N</th><th>threshold</th><th>accuracy</th><th>balanced acc.</th><th>sensitivity</th><th>specificity</th><th>precision (PPV)</th><th>NPV</th><th>F1</th><th>ROC AUC</th></tr>");
        for m in self.metrics {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{} <small>({} neg / {} pos)</small></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&m.split),
                m.n,
                m.n_negative,
                m.n_positive,
                m.threshold.map_or("n/a".into(), |t| format!("{t:.3}")),
                with_ci(m.accuracy, m.accuracy_lo, m.accuracy_hi),
                pct(m.balanced_accuracy),
                with_ci(m.sensitivity, m.sensitivity_lo, m.sensitivity_hi),
                with_ci(m.specificity, m.specificity_lo, m.specificity_hi),
                with_ci(m.precision, m.precision_lo, m.precision_hi),
                with_ci(m.npv, m.npv_lo, m.npv_hi),
                pct(m.f1),
                match (m.auc, m.auc_lo, m.auc_hi) {
                    (Some(a), Some(lo), Some(hi)) => format!("{a:.3} <small>({lo:.3}-{hi:.3})</small>"),
                    (a, _, _) => a.map_or("n/a".into(), |a| format!("{a:.3}")),
                }
            );
        }
        h.push_str("</table><h3>Operating points</h3><table><tr><th>split</th><th>target sensitivity</th><th>threshold</th><th>sensitivity</th><th>specificity</th></tr>");
        for o in self.operating_points {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&o.split),
                o.target_sensitivity,
                o.threshold.map_or("n/a".into(), |t| format!("{t:.4}")),
                pct(o.sensitivity),
                pct(o.specificity)
            );
        }
        h.push_str("</table>");
        let _ = write!(
            h,
            r#"<h2>Learning curves</h2><div class="plots">{}{}</div>"#,
            img(self.accuracy_svg),
            img(self.loss_svg)
        );
        if let Some(best) = self.history.iter().find(|r| r.best) {
            let _ = write!(
                h,
                "<p>Exported model: epoch {} of {} (best validation figure).</p>",
                best.epoch,
                self.history.len()
            );
        }
        for (d, roc, heat) in self.splits {
            let _ = write!(
                h,
                r#"<h2>Split <code>{}</code></h2><div class="plots">{}{}</div>"#,
                esc(&d.name),
                img(roc),
                img(heat)
            );
            if d.unlabelled > 0 {
                let _ = write!(
                    h,
                    "<p class=note>{} predictions had no label and are not in the metrics.</p>",
                    d.unlabelled
                );
            }
        }
        if let Some(meta) = self.meta {
            h.push_str("<h2>Data</h2><table><tr><th>split</th><th>images</th>");
            for class in &meta.classes {
                let _ = write!(h, "<th>{}</th>", esc(class));
            }
            h.push_str("</tr>");
            for s in &meta.splits {
                let _ = write!(h, "<tr><td>{}</td><td>{}</td>", esc(&s.name), s.count);
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
                esc(&c.data.root.display().to_string())
            );
        }
        h.push_str("<h2>Provenance</h2><table>");
        let mut row = |k: &str, v: &str| {
            let _ = write!(h, "<tr><td>{}</td><td style=\"text-align:left\"><code>{}</code></td></tr>", esc(k), esc(v));
        };
        row("config hash", &c.hash());
        row("git revision", &cxr_store::provenance::git_revision());
        if let Some(p) = self.train_provenance {
            row("backbone", p.tools.get("backbone").map_or("", String::as_str));
            row("backbone SHA-256", p.tools.get("backbone_sha256").map_or("", String::as_str));
            row("ONNX Runtime", p.tools.get("onnxruntime").map_or("", String::as_str));
            row("model.onnx SHA-256", p.inputs.get("model.onnx").map_or("", String::as_str));
        }
        row("crate version", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(h, "</table><h2>Configuration</h2><pre>{}</pre></body></html>", esc(&c.to_yaml()));
        h
    }
}
