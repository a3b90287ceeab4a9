//! Heatmaps on the gallery's thumbnails (`report.explain`): the model that made the
//! predictions, with its Grad-CAM output (`cxr-explain`), run once more on the few
//! gallery images, on CPU.

use std::path::Path;

use anyhow::Context;
use cxr_config::{Config, Device};
use cxr_engine::{Engine, Input, Model};
use cxr_explain::Heatmap;
use cxr_imaging::Transform;
use cxr_store::model_meta::ModelMeta;

/// The Grad-CAM model of the experiment's (or the predictions') `model.onnx`.
pub struct Explainer {
    session: Model,
    transform: Transform,
    meta: ModelMeta,
    stride: Option<[u32; 2]>,
}

impl Explainer {
    /// Opens the Grad-CAM model of `model`; an error says why heatmaps cannot be drawn.
    pub fn open(config: &Config, model: &Path) -> anyhow::Result<Explainer> {
        let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
        let proto = cxr_onnx::decode_model(&bytes, model)?;
        let meta = ModelMeta::from_lookup(|key| cxr_onnx::metadata(&proto, key))
            .map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
        let explain = meta
            .explain
            .as_ref()
            .with_context(|| format!("{} has no cxr.explain metadata (exported before heatmaps)", model.display()))?;
        let explained = cxr_explain::explain_model(&bytes, &proto, explain, meta.classes.len())?;
        let engine = Engine::open(&config.runtime, Device::Cpu)?;
        let (session, _) = engine.session_from_bytes(&explained.bytes, model)?;
        let preprocess = meta.preprocess.as_ref().unwrap_or(&config.preprocess);
        let mut transform = Transform::of_model(preprocess, meta.size, meta.channel_order);
        transform.max_file_bytes = config.preprocess.max_file_bytes;
        transform.max_pixels = config.preprocess.max_pixels;
        Ok(Explainer { session, transform, stride: explained.stride, meta })
    }

    /// For each `(path, class name)`, the map of that class; `None` where the file cannot
    /// be read any more or the class is not the model's.
    pub fn maps(&mut self, items: &[(&str, &str)]) -> anyhow::Result<Vec<Option<Heatmap>>> {
        let mut out = Vec::with_capacity(items.len());
        for (path, class) in items {
            let Some(class) = self.meta.classes.iter().position(|c| c == class) else {
                out.push(None);
                continue;
            };
            let Ok(prepared) = self.transform.apply_file(Path::new(path)) else {
                out.push(None);
                continue;
            };
            let [h, w] = self.meta.size;
            let input = Input::U8(vec![1, h as usize, w as usize, 3], prepared.pixels);
            let (shape, cam) = self.session.run_shaped(vec![("image".into(), input)], &[cxr_explain::CAM])?.remove(0);
            let &[1, classes, rows, cols] = shape.as_slice() else {
                anyhow::bail!("the Grad-CAM output has shape {shape:?}, not [1, K, H, W]");
            };
            anyhow::ensure!(class < classes, "the Grad-CAM output has {classes} classes");
            let values = cam[class * rows * cols..(class + 1) * rows * cols].to_vec();
            out.push(Some(Heatmap::new(rows, cols, values, self.stride, self.meta.size)));
        }
        Ok(out)
    }
}
