//! Grad-CAM heatmaps: where in the X-ray the evidence for a class lies.
//!
//! - `graph.rs`: the Grad-CAM graph, appended to `model.onnx` from the metadata `train`
//!   writes (`cxr_store::model_meta::ExplainMeta`), run by ONNX Runtime like any model.
//! - `heatmap.rs`: one image's map and where its cells lie on the image.
//! - `maps.rs`: the Grad-CAM output of a run, kept per image and class.
//! - `render.rs`: the map drawn over the X-ray with a colour bar and the call, as PNG.

mod graph;
mod heatmap;
mod maps;
mod render;

pub use graph::{CAM, ExplainModel, append_grad_cam, explain_model};
pub use heatmap::Heatmap;
pub use maps::CamMaps;
pub use render::{PANEL, Picture, overlay, render_png, turbo};

/// Errors of building or drawing heatmaps.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("cannot explain this model: {0}")]
    Model(String),
    #[error("cannot draw the heatmap: {0}")]
    Render(String),
}

#[cfg(test)]
mod tests;
