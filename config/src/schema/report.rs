//! `report` and `runtime`: what the report draws, and how ONNX Runtime is opened.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Report settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Report {
    /// Sensitivity the validation operating point must reach.
    pub target_sensitivity: f64,
    /// Bootstrap resamples for the AUC confidence interval.
    pub bootstrap: usize,
    /// Render PNG plots besides the SVG ones.
    pub png: bool,
    /// Cases per kind in each split's gallery (confident wrong and right calls, with
    /// thumbnails); 0 leaves the gallery out.
    pub gallery: usize,
    /// Draw each gallery thumbnail with the Grad-CAM heatmap of its call (the model runs
    /// on those images once more, on CPU).
    pub explain: bool,
}

impl Default for Report {
    fn default() -> Self {
        Self { target_sensitivity: 0.95, bootstrap: 1000, png: true, gallery: 4, explain: true }
    }
}

/// ONNX Runtime settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    /// Path to `libonnxruntime.so`; else `ORT_DYLIB_PATH`; else the project's `.ort/` folder.
    pub onnxruntime: Option<PathBuf>,
    /// Threads inside one operator; 0 = one per core.
    pub intra_threads: usize,
    /// Threads across independent operators; 0 = ONNX Runtime's default.
    pub inter_threads: usize,
    /// On a CPU with AMX, run int8 convolutions on ONNX Runtime's AMX GEMM (same outputs).
    pub amx: bool,
}

impl Default for Runtime {
    fn default() -> Self {
        Self { onnxruntime: None, intra_threads: 0, inter_threads: 0, amx: true }
    }
}
