//! `infer --explain DIR`: one PNG per image with the Grad-CAM heatmap of the predicted
//! class (or `--explain-class`) over the X-ray at its own aspect ratio, the call and the
//! probability written on it, plus `heatmaps.csv` and `heatmaps.npy`
//! (`cxr_store::heatmaps`). The maps come from the same pass as the predictions: the
//! model runs once, as `model.onnx` with a Grad-CAM output appended (`cxr-explain`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cxr_explain::{CamMaps, Heatmap, Picture};
use cxr_imaging::Transform;
use cxr_store::heatmaps::HeatmapRow;
use rayon::prelude::*;

use crate::{ModelFile, Prediction};

/// Longest side of the drawn X-ray, and the least (small images are enlarged to stay legible).
const LONG_SIDE: u32 = 512;
const MIN_SIDE: u32 = 256;

/// What `--explain DIR` and `--explain-class NAME` asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainOptions {
    pub dir: PathBuf,
    pub class: Option<String>,
}

/// What `--explain` draws: the class asked for, and the maps the Grad-CAM model returned so
/// far, one per prediction with every class's map (which one is drawn depends on the final
/// call, which label-free adaptation may still change).
#[derive(Debug)]
pub(crate) struct Explaining {
    /// The class to explain for every image; `None` explains each image's call.
    pub class: Option<usize>,
    pub stride: Option<[u32; 2]>,
    pub maps: CamMaps,
}

/// The file every `--explain` folder holds: a folder without it is not ours to replace.
const MARKER: &str = ".cxr-explain";

/// Checks the options against the model and `DIR`; returns the Grad-CAM model's bytes.
pub(crate) fn open(info: &ModelFile, options: &ExplainOptions) -> anyhow::Result<(Vec<u8>, Explaining)> {
    let class =
        match &options.class {
            None => None,
            Some(name) => Some(info.classes.iter().position(|c| c == name).with_context(|| {
                format!("--explain-class {name}: the model's classes are {}", info.classes.join(", "))
            })?),
        };
    let dir = &options.dir;
    if dir.exists() && !dir.is_dir() {
        bail!("--explain {}: a file is there; give a folder (an --explain folder is replaced whole)", dir.display());
    }
    // Only a folder that --explain wrote (it holds the marker) may be replaced.
    let foreign =
        std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) && !dir.join(MARKER).is_file();
    if foreign {
        bail!(
            "--explain {}: the folder exists and holds files that an earlier --explain did not write; give a new or empty folder (an --explain folder is replaced whole)",
            dir.display()
        );
    }
    // Built from the model decoded when it was opened: the protobuf is not decoded twice.
    let model = info.grad_cam()?;
    Ok((model.bytes, Explaining { class, stride: model.stride, maps: CamMaps::default() }))
}

/// Where the drawn image comes from when a prediction's file cannot be read any more: the
/// split's stored tensors (the model's input, stretched), row `first_row + i`.
pub(crate) struct Fallback {
    pub images: PathBuf,
    pub first_row: usize,
}

/// What drawing needs besides the maps.
pub(crate) struct Drawing<'a> {
    pub info: &'a ModelFile,
    pub transform: &'a Transform,
    pub threshold: f64,
    pub threads: usize,
    pub show_progress: bool,
}

/// Draws every prediction's map and writes `DIR` whole (staged, then swapped in).
pub(crate) fn write(
    options: &ExplainOptions,
    explaining: Explaining,
    predictions: &[Prediction],
    drawing: &Drawing,
    fallback: Option<&Fallback>,
) -> anyhow::Result<()> {
    let Explaining { class: asked, stride, maps } = explaining;
    if maps.len() != predictions.len() {
        bail!("{} heatmaps for {} predictions", maps.len(), predictions.len());
    }
    let staging = cxr_store::staging::Staging::new(&options.dir)?;
    let out = staging.path().to_path_buf();
    let paths: Vec<&str> = predictions.iter().map(|p| p.path.as_str()).collect();
    let names = png_names(&paths);
    let grid = maps.grid();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(drawing.threads).build()?;
    let bar = cxr_cli::progress_bar(predictions.len() as u64, "explain", drawing.show_progress);
    let rows: Vec<(HeatmapRow, Vec<f32>)> = pool.install(|| {
        predictions
            .par_iter()
            .zip(&names)
            .enumerate()
            .map(|(i, (p, name))| {
                let class =
                    asked.unwrap_or_else(|| drawing.info.classes.iter().position(|c| *c == p.predicted).unwrap_or(0));
                let map = maps.heatmap(i, class, stride, drawing.info.size).context("no heatmap for this image")?;
                let png = draw(p, class, &map, drawing, fallback.map(|f| (f, i)))?;
                std::fs::write(out.join(name), png)
                    .with_context(|| format!("cannot write {}", out.join(name).display()))?;
                bar.inc(1);
                let peak = map.peak();
                let row = HeatmapRow {
                    path: p.path.clone(),
                    label: p.label.clone().unwrap_or_default(),
                    predicted: p.predicted.clone(),
                    p_predicted: drawing
                        .info
                        .classes
                        .iter()
                        .position(|c| *c == p.predicted)
                        .map_or(f64::NAN, |i| p.probabilities[i]),
                    explained: drawing.info.classes[class].clone(),
                    p_explained: p.probabilities[class],
                    peak_x: peak.map(|(x, _)| x as f64),
                    peak_y: peak.map(|(_, y)| y as f64),
                    max: map.max() as f64,
                    png: name.clone(),
                };
                Ok((row, map.values))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    bar.finish_and_clear();
    let (rows, values): (Vec<HeatmapRow>, Vec<Vec<f32>>) = rows.into_iter().unzip();
    cxr_store::heatmaps::write(&out, &rows, &values, grid)?;
    cxr_store::write_atomic(&out.join(MARKER), b"written by infer --explain; the folder is replaced whole\n")?;
    staging.commit()?;
    Ok(())
}

/// One image's PNG: the map over the file as a person sees it, or over the stored tensor.
fn draw(
    p: &Prediction,
    class: usize,
    map: &Heatmap,
    drawing: &Drawing,
    fallback: Option<(&Fallback, usize)>,
) -> anyhow::Result<Vec<u8>> {
    let info = drawing.info;
    let label = p.label.as_ref().map(|l| format!(", label {l}")).unwrap_or_default();
    let lines = [call_line(p, info, drawing.threshold), format!("heatmap: {}{label}", info.classes[class])];
    let displayed = drawing
        .transform
        .read_file(Path::new(&p.path))
        .and_then(|bytes| drawing.transform.display_bytes(&bytes, LONG_SIDE, MIN_SIDE));
    match (displayed, fallback) {
        (Ok(d), _) => {
            let picture = Picture { width: d.width, height: d.height, channels: d.channels, pixels: &d.data };
            Ok(cxr_explain::render_png(picture, map, &lines)?)
        }
        (Err(e), Some((fallback, i))) => {
            tracing::warn!("{}: {e}; its heatmap is drawn over the model's input instead", p.path);
            let mut reader = cxr_store::npy::NpyReader::open(&fallback.images)?;
            let pixels = reader.read_rows_bytes(fallback.first_row + i, 1)?;
            let [h, w] = info.size;
            let picture = Picture { width: w, height: h, channels: 3, pixels: &pixels };
            Ok(cxr_explain::render_png(picture, map, &lines)?)
        }
        (Err(e), None) => {
            Err(anyhow::Error::new(e).context(format!("cannot read {} again to draw its heatmap", p.path)))
        }
    }
}

/// The call as the predictions file has it: the positive class's probability against the
/// threshold with two classes, the predicted class's probability with more.
fn call_line(p: &Prediction, info: &ModelFile, threshold: f64) -> String {
    if info.classes.len() == 2 {
        let positive = &info.classes[info.positive];
        let p_positive = p.probabilities[info.positive];
        format!("{}: p({positive}) {p_positive:.3}, threshold {threshold:.3}", p.predicted)
    } else {
        let i = info.classes.iter().position(|c| *c == p.predicted).unwrap_or(0);
        format!("{}: p {:.3}", p.predicted, p.probabilities[i])
    }
}

/// A PNG name per path: the file's stem, or where stems collide, the path below the
/// colliding files' common folder (`NORMAL__img1`), with the extension if that still
/// collides (`img1_jpeg`), and a number if even that does. Characters other than
/// letters, digits, `-`, `_` and `.` become `_`.
pub(crate) fn png_names(paths: &[&str]) -> Vec<String> {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
    };
    let stem = |p: &str| Path::new(p).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut by_stem: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, p) in paths.iter().enumerate() {
        by_stem.entry(clean(&stem(p))).or_default().push(i);
    }
    let mut names: Vec<String> = paths.iter().map(|p| clean(&stem(p))).collect();
    for group in by_stem.values().filter(|g| g.len() > 1) {
        let parts: Vec<Vec<String>> = group
            .iter()
            .map(|&i| Path::new(paths[i]).components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect())
            .collect();
        let common = (0..parts.iter().map(Vec::len).min().unwrap_or(0).saturating_sub(1))
            .take_while(|&k| parts.iter().all(|p| p[k] == parts[0][k]))
            .count();
        let below = |with_extension: bool| -> Vec<String> {
            parts
                .iter()
                .zip(group)
                .map(|(p, &i)| {
                    let mut rest = p[common..p.len() - 1].to_vec();
                    let file = if with_extension {
                        Path::new(paths[i]).file_name().map(|n| n.to_string_lossy().replace('.', "_"))
                    } else {
                        Some(stem(paths[i]))
                    };
                    rest.push(file.unwrap_or_default());
                    clean(&rest.join("__"))
                })
                .collect()
        };
        let mut chosen = below(false);
        if has_duplicates(&chosen) {
            chosen = below(true);
        }
        for (&i, name) in group.iter().zip(chosen) {
            names[i] = name;
        }
    }
    // Whatever still collides (with another group's choice too) gets a number.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for name in &mut names {
        let count = seen.entry(name.clone()).or_default();
        *count += 1;
        if *count > 1 {
            *name = format!("{name}-{count}");
        }
        name.push_str(".png");
    }
    names
}

fn has_duplicates(names: &[String]) -> bool {
    let mut sorted = names.to_vec();
    sorted.sort();
    sorted.windows(2).any(|w| w[0] == w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_names_are_stems_made_unique_by_the_path_below_the_common_folder() {
        let names = png_names(&[
            "data/test/NORMAL/img1.jpeg",
            "data/test/PNEUMONIA/img1.jpeg",
            "data/test/PNEUMONIA/img2.jpeg",
            "x/a.png",
            "x/a.jpg",
            "odd name (1).png",
        ]);
        assert_eq!(
            names,
            ["NORMAL__img1.png", "PNEUMONIA__img1.png", "img2.png", "a_png.png", "a_jpg.png", "odd_name__1_.png"]
        );
    }

    #[test]
    fn names_that_still_collide_are_numbered() {
        // `b__c` is both a stem and a path made unique; the second gets a number.
        let names = png_names(&["b__c.png", "q/b/c.png", "q/x/c.png"]);
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3, "{names:?}");
        assert!(names.iter().all(|n| n.ends_with(".png")), "{names:?}");
    }
}
