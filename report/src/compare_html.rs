//! `compare.html`: one self-contained page in the look of the report's `index.html` (its
//! style and its one HTML escaper, `html.rs`): what each comparison shows, the config
//! keys each experiment changed, the metrics with their intervals and the paired tests.

use std::fmt::Write;

use crate::compare::{Comparison, MetricsLine};
use crate::compare_paired::{Pairing, p_text, tidy};
use crate::html::{STYLE, esc, with_ci};

/// What every p-value here is and is not.
pub(crate) const CAVEAT: &str = "Each p-value is for one comparison on one split, with no correction for multiple comparisons: among many comparisons some fall below 0.05 by chance. A difference that is not significant does not show that the two are equal. DeLong: the two ROC AUCs on the same images (Sun & Xu's fast algorithm), two-sided. McNemar: the images one experiment called right and the other wrong, each at its own threshold; exact binomial with fewer than 25 such images, else chi-square with continuity correction.";

/// The page.
pub(crate) fn render(c: &Comparison) -> String {
    let mut h = String::new();
    let reference = &c.experiments[0].label;
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Comparison with {r}</title><style>{STYLE}</style></head><body><h1>Is it better than <code>{r}</code>?</h1><p class="note">Every experiment below is set against the first, <code>{r}</code>: the configuration keys it changed, its metrics on each split, and paired tests on the images both predicted.</p>"#,
        r = esc(reference)
    );
    verdicts(&mut h, c);
    config_changes(&mut h, c);
    metrics(&mut h, c);
    paired(&mut h, c);
    h.push_str("</body></html>\n");
    h
}

fn verdicts(h: &mut String, c: &Comparison) {
    if c.paired.is_empty() {
        h.push_str("<p>One experiment only: nothing to compare it with.</p>");
        return;
    }
    h.push_str(r#"<div class="headline"><h2>What the tests show</h2><ul>"#);
    for p in &c.paired {
        let _ = write!(h, "<li>{}</li>", esc(&p.sentence));
    }
    let _ = write!(h, "</ul><p class=note>{}</p></div>", esc(CAVEAT));
}

fn config_changes(h: &mut String, c: &Comparison) {
    let reference = &c.experiments[0].label;
    h.push_str("<h2>Configuration differences</h2><p class=note>From each experiment's <code>report/config.resolved.yaml</code> (every key, defaults included); only the keys that differ.</p><table><tr><th>experiment</th><th>key</th>");
    let _ = write!(h, "<th>{}</th><th>its value</th></tr>", esc(reference));
    for (exp, changes) in c.experiments.iter().skip(1).zip(&c.changes) {
        let cell = |text: &str| format!("<td style=\"text-align:left\">{}</td>", esc(text));
        match changes {
            Err(why) => {
                let _ =
                    write!(h, "<tr>{}<td colspan=3 style=\"text-align:left\">{}</td></tr>", cell(&exp.label), esc(why));
            }
            Ok(list) if list.is_empty() => {
                let _ = write!(
                    h,
                    "<tr>{}<td colspan=3 style=\"text-align:left\">the same configuration</td></tr>",
                    cell(&exp.label)
                );
            }
            Ok(list) => {
                for change in list {
                    let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
                    let _ = write!(
                        h,
                        "<tr>{}<td style=\"text-align:left\"><code>{}</code></td>{}{}</tr>",
                        cell(&exp.label),
                        esc(&change.key),
                        cell(&side(&change.old)),
                        cell(&side(&change.new))
                    );
                }
            }
        }
    }
    h.push_str("</table>");
}

fn ci(line: &MetricsLine, name: &str) -> String {
    with_ci(line.num(name), line.num(&format!("{name}_lo")), line.num(&format!("{name}_hi")))
}

fn auc(line: &MetricsLine) -> String {
    match (line.num("auc"), line.num("auc_lo"), line.num("auc_hi")) {
        (Some(a), Some(lo), Some(hi)) => format!("{a:.3} <small>({lo:.3}-{hi:.3})</small>"),
        (a, _, _) => a.map_or("n/a".into(), |a| format!("{a:.3}")),
    }
}

fn metrics(h: &mut String, c: &Comparison) {
    h.push_str("<h2>Metrics</h2><p class=note>From each experiment's <code>report/metrics.csv</code>, with its 95% intervals. <code>val</code> figures are optimistic: the epoch, temperature and threshold were chosen on it.</p><table><tr><th>experiment</th><th>split</th><th>role</th><th>N</th><th>threshold</th><th>accuracy</th><th>sensitivity</th><th>specificity</th><th>ROC AUC</th></tr>");
    for exp in &c.experiments {
        for line in &exp.metrics {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&exp.label),
                esc(line.split()),
                esc(line.text("role")),
                esc(line.text("n")),
                line.num("threshold").map_or("n/a".into(), |t| format!("{t:.3}")),
                ci(line, "accuracy"),
                ci(line, "sensitivity"),
                ci(line, "specificity"),
                auc(line)
            );
        }
    }
    h.push_str("</table>");
}

fn paired(h: &mut String, c: &Comparison) {
    if c.paired.is_empty() {
        return;
    }
    let reference = esc(&c.experiments[0].label);
    let _ = write!(
        h,
        "<h2>Paired tests against <code>{reference}</code></h2><p class=note>On the labelled images both experiments predicted (matched by path). b: images <code>{reference}</code> called right and the other wrong; c: the reverse.</p><table><tr><th>experiment</th><th>split</th><th>shared images</th><th>AUC {reference}</th><th>AUC</th><th>difference</th><th>DeLong z</th><th>DeLong p</th><th>accuracy {reference}</th><th>accuracy</th><th>b</th><th>c</th><th>McNemar</th><th>McNemar p</th></tr>"
    );
    for p in &c.paired {
        let label = esc(&c.experiments[p.experiment].label);
        let split = esc(&p.split);
        let t = match &p.pairing {
            Pairing::Skipped(why) => {
                let _ = write!(
                    h,
                    "<tr><td>{label}</td><td>{split}</td><td colspan=12 style=\"text-align:left\">{}</td></tr>",
                    esc(why)
                );
                continue;
            }
            Pairing::Paired(t) => t,
        };
        let delong = match &t.delong {
            Ok(d) => format!(
                "<td>{:.3}</td><td>{:.3}</td><td>{:+.3}</td><td>{:.2}</td><td>{}</td>",
                tidy(d.auc_a),
                tidy(d.auc_b),
                tidy(d.difference()),
                d.z,
                esc(&p_text(d.p))
            ),
            Err(why) => format!("<td colspan=5 style=\"text-align:left\">{}</td>", esc(why)),
        };
        let m = &t.mcnemar;
        let _ = write!(
            h,
            "<tr><td>{label}</td><td>{split}</td><td>{}</td>{delong}<td>{:.3}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            t.shared,
            tidy(t.accuracy_reference),
            tidy(t.accuracy_other),
            m.b,
            m.c,
            esc(m.method()),
            esc(&p_text(m.p))
        );
    }
    h.push_str("</table>");
}
