//! The cohort-shift monitor in the report: whether each split's images are like the model's
//! training images (said before any accuracy figure when they are not), a histogram of the
//! split's shift scores against the validation images', and a table of every split's verdict.

use std::fmt::Write;

use cxr_store::predictions::{CohortShift, ShiftSummary};

use crate::SplitReport;
use crate::html::{esc, img};
use crate::svg::{self, Series};

/// The histogram of `scores` against the validation images' (`val`), as shares of each.
pub fn histogram(split: &str, scores: &[f64], val: &[f32], threshold: f64) -> String {
    let top = scores.iter().copied().chain(val.iter().map(|&v| v as f64)).fold(threshold * 1.5, f64::max);
    let bins = 30;
    let width = top / bins as f64;
    let shares = |values: &mut dyn Iterator<Item = f64>| -> Vec<(f64, f64)> {
        let mut counts = vec![0usize; bins];
        let mut n = 0;
        for v in values {
            counts[((v / width) as usize).min(bins - 1)] += 1;
            n += 1;
        }
        counts.iter().enumerate().map(|(i, &c)| ((i as f64 + 0.5) * width, c as f64 / n.max(1) as f64)).collect()
    };
    let series = [
        Series {
            name: format!("{split} ({} images)", scores.len()),
            points: shares(&mut scores.iter().copied()),
            dashed: false,
        },
        Series {
            name: format!("validation ({} images)", val.len()),
            points: shares(&mut val.iter().map(|&v| v as f64)),
            dashed: true,
        },
        Series {
            name: "flag threshold (val p99)".into(),
            points: vec![(threshold, 0.0), (threshold, 1.0)],
            dashed: true,
        },
    ];
    svg::line_chart(
        &format!("Shift scores, {split}"),
        "shift score (1: like the training images; higher: less like them)",
        "share of images",
        &series,
        Some((0.0, 1.0)),
    )
}

/// The sentence the headline opens with when `split`'s images are unlike the training data.
pub fn headline_warning(shift: &CohortShift, split: &str) -> Option<String> {
    let s = shift.of(split).filter(|s| s.shifted)?;
    Some(format!(
        "{:.0}% of these images lie outside what the model saw in training: the figures below may not hold (shift p = {:.1e}).",
        s.flagged_share * 100.0,
        s.p_value
    ))
}

/// The section: each split's verdict, and its histogram.
pub fn section(h: &mut String, shift: &CohortShift, splits: &[SplitReport]) {
    h.push_str("<h2>Are these images like the training images?</h2><p class=note>Each image's shift score is its distance from the training images' backbone features (Mahalanobis, Ledoit-Wolf covariance, divided by the square root of the dimension: about 1 for images like them). An image is flagged above the validation images' 99th percentile (about 1% of images like the training ones are); a cohort is called shifted when more than 5% of it is flagged and a one-sided Mann-Whitney test against the validation scores gives p &lt; 0.01.</p><table><tr><th>images</th><th>N</th><th>flagged</th><th>p</th><th>median score</th><th>validation median</th><th>verdict</th></tr>");
    let row = |h: &mut String, s: &ShiftSummary| {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.1}%</td><td>{:.2e}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
            esc(&s.source),
            s.images,
            s.flagged_share * 100.0,
            s.p_value,
            s.median_score,
            s.val_median_score,
            if s.shifted { "<b>shifted</b>" } else { "like the training images" }
        );
    };
    for s in &shift.sources {
        row(h, s);
    }
    h.push_str("</table><div class=\"plots\">");
    for split in splits {
        if let Some(svg) = &split.shift_svg {
            h.push_str(&img(svg));
        }
    }
    h.push_str("</div>");
}
