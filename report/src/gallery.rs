//! The cases behind the numbers: per split, the most confident wrong calls and a few
//! right ones, each with a thumbnail of the image as the model saw it (the experiment's
//! own transform) and, with `report.explain`, the Grad-CAM heatmap of its call over it,
//! embedded in `index.html` as a PNG.

use std::path::Path;

use base64::Engine as _;
use cxr_config::{ChannelOrder, Preprocess};
use cxr_explain::{Heatmap, Picture};
use cxr_imaging::Transform;

use crate::explained::GalleryHeatmaps;

use crate::tables::SplitData;

/// Thumbnail side in pixels.
const THUMBNAIL: u32 = 128;

/// What a case shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Called positive (or, with 3+ classes, another class than its own) with the most confidence.
    ConfidentWrong,
    /// A positive image called negative with the most confidence (two classes only).
    MissedPositive,
    /// Right calls, most confident first.
    Right,
}

impl Kind {
    pub fn title(self, two_classes: bool) -> &'static str {
        match (self, two_classes) {
            (Kind::ConfidentWrong, true) => "Most confident false positives",
            (Kind::ConfidentWrong, false) => "Most confident wrong calls",
            (Kind::MissedPositive, _) => "Most confident false negatives",
            (Kind::Right, _) => "Confident right calls",
        }
    }
}

/// One image of the gallery.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub kind: Kind,
    /// Row of the split's labelled predictions.
    pub row: usize,
    pub path: String,
    pub label: String,
    pub predicted: String,
    /// The class whose probability is shown: the positive class with two classes (the
    /// one the threshold applies to), else the predicted class.
    pub shown: String,
    pub probability: f64,
    /// Its shift score (how unlike the training images it is), from a model with the monitor.
    pub shift_score: Option<f64>,
}

/// Up to `per_kind` cases of each kind from the labelled rows of `d`. With two classes:
/// false positives by descending positive probability, false negatives by ascending, and
/// right calls of each class by descending confidence; with more: wrong calls and right
/// calls by descending probability of the predicted class. Ties keep row order.
pub fn pick(d: &SplitData, per_kind: usize) -> Vec<Case> {
    let case = |kind, row: usize| {
        let shown = if d.classes.len() == 2 { d.positive } else { d.predicted[row] };
        Case {
            kind,
            row,
            path: d.paths[row].clone(),
            label: d.classes[d.labels[row]].clone(),
            predicted: d.classes[d.predicted[row]].clone(),
            shown: d.classes[shown].clone(),
            probability: d.probabilities[row][shown],
            shift_score: d.shift_scores.get(row).copied().flatten(),
        }
    };
    let confidence = |row: &usize| d.probabilities[*row][d.predicted[*row]];
    let top = |mut rows: Vec<usize>, kind: Kind| -> Vec<Case> {
        rows.sort_by(|a, b| confidence(b).total_cmp(&confidence(a)));
        rows.into_iter().take(per_kind).map(|r| case(kind, r)).collect()
    };
    let rows = 0..d.labels.len();
    let wrong: Vec<usize> = rows.clone().filter(|&r| d.labels[r] != d.predicted[r]).collect();
    let mut out = Vec::new();
    if d.classes.len() == 2 {
        let p = d.positive;
        out.extend(top(wrong.iter().copied().filter(|&r| d.predicted[r] == p).collect(), Kind::ConfidentWrong));
        out.extend(top(wrong.iter().copied().filter(|&r| d.predicted[r] != p).collect(), Kind::MissedPositive));
        for class in [p, 1 - p] {
            let right = rows.clone().filter(|&r| d.labels[r] == d.predicted[r] && d.labels[r] == class).collect();
            out.extend(top(right, Kind::Right).into_iter().take(per_kind.div_ceil(2)));
        }
    } else {
        out.extend(top(wrong, Kind::ConfidentWrong));
        out.extend(top(rows.filter(|&r| d.labels[r] == d.predicted[r]).collect(), Kind::Right));
    }
    out
}

/// A thumbnail of an image: PNG (base64) of the model's square view, and the source's
/// width / height, so that the page shows it at the X-ray's own aspect ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    pub png_base64: String,
    pub aspect: f64,
    /// Whether the Grad-CAM heatmap of the call is drawn over it.
    pub heatmap: bool,
}

/// A PNG thumbnail of `path` through `preprocess` at [`THUMBNAIL`] pixels, in RGB, with
/// `heatmap` over it; `None` when the file cannot be read any more (moved, deleted).
pub fn thumbnail(path: &Path, preprocess: &Preprocess, heatmap: Option<&Heatmap>) -> Option<Thumbnail> {
    let mut transform = Transform::from_config(preprocess);
    transform.height = THUMBNAIL;
    transform.width = THUMBNAIL;
    transform.channel_order = ChannelOrder::Rgb;
    let prepared = transform.apply_file(path).ok()?;
    let pixels = match heatmap {
        Some(map) => {
            let picture = Picture { width: THUMBNAIL, height: THUMBNAIL, channels: 3, pixels: &prepared.pixels };
            cxr_explain::overlay(picture, map).ok()?
        }
        None => prepared.pixels,
    };
    let rgba: Vec<u8> = pixels.chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    let size = resvg::tiny_skia::IntSize::from_wh(THUMBNAIL, THUMBNAIL)?;
    let png = resvg::tiny_skia::Pixmap::from_vec(rgba, size)?.encode_png().ok()?;
    let aspect = prepared.source_width as f64 / prepared.source_height.max(1) as f64;
    Some(Thumbnail {
        png_base64: base64::engine::general_purpose::STANDARD.encode(png),
        aspect,
        heatmap: heatmap.is_some(),
    })
}

/// Thumbnails for `cases`, with the Grad-CAM heatmap of each call when `explainer` is
/// given (and the image can be read).
pub fn thumbnails(
    cases: &[Case],
    preprocess: &Preprocess,
    explainer: Option<&mut GalleryHeatmaps>,
) -> anyhow::Result<Vec<Option<Thumbnail>>> {
    let items: Vec<(&str, &str)> = cases.iter().map(|c| (c.path.as_str(), c.predicted.as_str())).collect();
    let maps = match explainer {
        Some(explainer) => explainer.maps(&items)?,
        None => vec![None; cases.len()],
    };
    Ok(cases.iter().zip(&maps).map(|(case, map)| thumbnail(Path::new(&case.path), preprocess, map.as_ref())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxr_store::predictions::Prediction;

    fn split(rows: &[(&str, &str, f64)]) -> SplitData {
        let classes = vec!["NORMAL".to_string(), "PNEUMONIA".to_string()];
        let predictions: Vec<Prediction> = rows
            .iter()
            .enumerate()
            .map(|(i, &(label, predicted, p))| Prediction {
                path: format!("img{i}.png"),
                label: Some(label.into()),
                predicted: predicted.into(),
                probabilities: vec![1.0 - p, p],
                shift: None,
            })
            .collect();
        SplitData::new("test", &classes, 1, &predictions, |_| None).unwrap()
    }

    #[test]
    fn wrong_calls_come_most_confident_first_and_right_calls_of_each_class_follow() {
        let d = split(&[
            ("NORMAL", "PNEUMONIA", 0.7),
            ("NORMAL", "PNEUMONIA", 0.99),
            ("PNEUMONIA", "NORMAL", 0.2),
            ("PNEUMONIA", "NORMAL", 0.01),
            ("PNEUMONIA", "PNEUMONIA", 0.9),
            ("NORMAL", "NORMAL", 0.05),
        ]);
        let cases = pick(&d, 4);
        let by = |k: Kind| cases.iter().filter(|c| c.kind == k).map(|c| c.path.as_str()).collect::<Vec<_>>();
        assert_eq!(by(Kind::ConfidentWrong), ["img1.png", "img0.png"]);
        assert_eq!(
            by(Kind::MissedPositive),
            ["img3.png", "img2.png"],
            "the surest NORMAL call of a PNEUMONIA image first"
        );
        assert_eq!(by(Kind::Right), ["img4.png", "img5.png"]);
        let fp = &cases[0];
        assert_eq!((fp.label.as_str(), fp.predicted.as_str()), ("NORMAL", "PNEUMONIA"));
        assert!((fp.probability - 0.99).abs() < 1e-12);
        let fn_ = cases.iter().find(|c| c.kind == Kind::MissedPositive).unwrap();
        assert_eq!(fn_.shown, "PNEUMONIA", "two classes show the positive class's probability");
        assert!((fn_.probability - 0.01).abs() < 1e-12);
        assert_eq!(pick(&d, 1).iter().filter(|c| c.kind == Kind::ConfidentWrong).count(), 1);
    }
}
