//! Heatmaps on the gallery's thumbnails (`report.explain`): the model that made the
//! predictions, with its Grad-CAM output (`cxr-explain`), run once more on the few
//! gallery images, on CPU.

use std::path::Path;

use cxr_config::{Device, Preprocess, Runtime};
use cxr_engine::{Engine, Input, Model};
use cxr_explain::{CamMaps, Heatmap};
use cxr_imaging::Transform;
use cxr_model::ModelFile;
use cxr_store::model_meta::ModelMeta;

/// The Grad-CAM model of the experiment's (or the predictions') `model.onnx`.
pub struct GalleryHeatmaps {
    session: Model,
    transform: Transform,
    meta: ModelMeta,
    stride: Option<[u32; 2]>,
}

impl GalleryHeatmaps {
    /// Opens the Grad-CAM model of `model` on `runtime`, its images prepared by `preprocess`
    /// as the model's own settings adjust it; an error says why heatmaps cannot be drawn.
    pub fn open(runtime: &Runtime, preprocess: &Preprocess, model: &Path) -> anyhow::Result<GalleryHeatmaps> {
        let model = ModelFile::open(model)?;
        let explained = model.grad_cam()?;
        let engine = Engine::open(runtime, Device::Cpu)?;
        let (session, _) = engine.session_from_bytes(&explained.bytes, &model.path)?;
        Ok(GalleryHeatmaps {
            session,
            transform: model.transform(preprocess),
            stride: explained.stride,
            meta: model.meta,
        })
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
            let mut maps = CamMaps::default();
            maps.push(&shape, &cam, 1)?;
            out.push(maps.heatmap(0, class, self.stride, self.meta.size));
        }
        Ok(out)
    }
}
