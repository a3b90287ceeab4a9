//! The files `infer --explain DIR` writes besides one PNG per image: `heatmaps.csv` (one
//! row per image: its call and the class explained, each with its probability, and where
//! the map peaks) and
//! `heatmaps.npy` (float32 `[N, rows, cols]`, each image's map before normalisation, in
//! the CSV's row order), so that a map can be checked or redrawn without the PNG.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// The CSV's columns, in order.
pub const COLUMNS: &[&str] =
    &["path", "label", "predicted", "p_predicted", "explained", "p_explained", "peak_x", "peak_y", "max", "png"];

/// One explained image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatmapRow {
    pub path: String,
    /// Empty when unknown.
    pub label: String,
    pub predicted: String,
    /// The called class's probability.
    pub p_predicted: f64,
    /// The class whose evidence the map shows (the call, unless `--explain-class` says).
    pub explained: String,
    /// The explained class's probability: with `--explain-class` it may be another class's
    /// than the call's, so both are written.
    pub p_explained: f64,
    /// The centre of the map's largest cell, as fractions of the image's width and height;
    /// empty when the map is zero everywhere (no evidence for the class anywhere).
    pub peak_x: Option<f64>,
    pub peak_y: Option<f64>,
    /// The map's largest value before normalisation.
    pub max: f64,
    /// The PNG's file name in the same folder.
    pub png: String,
}

/// `DIR/heatmaps.csv`.
pub fn csv_path(dir: &Path) -> PathBuf {
    dir.join("heatmaps.csv")
}

/// `DIR/heatmaps.npy`.
pub fn npy_path(dir: &Path) -> PathBuf {
    dir.join("heatmaps.npy")
}

/// Writes both files into `dir`: `rows` and their maps, `[rows, cols]` each.
pub fn write(dir: &Path, rows: &[HeatmapRow], maps: &[Vec<f32>], grid: [usize; 2]) -> Result<(), StoreError> {
    let mut npy = crate::npy::NpyWriter::create(&npy_path(dir), crate::npy::DType::F32, &grid)?;
    for map in maps {
        npy.write_f32(map)?;
    }
    npy.finish()?;
    crate::csv_file::write_csv(&csv_path(dir), COLUMNS, rows)
}

/// Reads `DIR/heatmaps.csv`.
pub fn read(dir: &Path) -> Result<Vec<HeatmapRow>, StoreError> {
    crate::csv_file::read_csv(&csv_path(dir))
}
