//! The model a run uses: opened with its decision threshold, checked against this experiment
//! (stale inputs, pixels, adaptation), and its session, plain or with the Grad-CAM output.

use std::path::Path;

use anyhow::bail;
use cxr_config::{Adaptation, Config, Device, Infer, Runtime, Threshold};
use cxr_engine::{Engine, Model};
use cxr_store::layout::Layout;

use crate::sources::resolve_sources;
use crate::{Decision, ModelFile, Options, Source, adapt, explain};

/// The model's decision threshold under `threshold` (`infer.threshold`, resolved by `cxr_model`),
/// with a warning when the model carries none and its experiment's operating point stands in.
pub fn decision(threshold: Threshold, layout: &Layout, model: &ModelFile) -> anyhow::Result<Decision> {
    let decision = model.decision(threshold, &layout.operating_point())?;
    if let Some(why) = &decision.fallback {
        tracing::warn!("{why}");
    }
    Ok(decision)
}

/// `path` as an absolute path (not resolving links), as `experiment` is written: the
/// report shows both, and `model.json` stays valid from any working folder.
pub(crate) fn absolute(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// The experiment folder a model file belongs to: `EXP` for `EXP/train/model.onnx`.
pub(crate) fn experiment_of(model: &Path) -> Option<String> {
    let abs = model.canonicalize().ok()?;
    let train = abs.parent().filter(|p| p.file_name().is_some_and(|n| n == "train"))?;
    Some(train.parent()?.display().to_string())
}

/// The pixel settings (`preprocess` keys) in which `ours` differs from what `model` was trained with.
pub(crate) fn pixel_differences(ours: &cxr_config::Preprocess, model: &cxr_config::Preprocess) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |key: &str, a: String, b: String| {
        if a != b {
            out.push(format!("--set preprocess.{key}={b} (this config has {a})"));
        }
    };
    use cxr_config::spelling;
    check("size", spelling(&ours.size), spelling(&model.size));
    check("channel_order", spelling(&ours.channel_order), spelling(&model.channel_order));
    check("resize_filter", spelling(&ours.resize_filter), spelling(&model.resize_filter));
    check("equalize", spelling(&ours.equalize), spelling(&model.equalize));
    out
}

/// The model's prior when `adaptation` (`infer.adaptation`) is `prior` (checked before any
/// image is read).
pub(crate) fn prior_adaptation(
    adaptation: Adaptation,
    options: &Options,
    info: &ModelFile,
) -> anyhow::Result<Option<f64>> {
    match adaptation {
        Adaptation::None => Ok(None),
        Adaptation::Prior if options.shard.is_some() => {
            bail!("infer.adaptation: prior estimates each cohort's prevalence from all its images; run without --shard")
        }
        Adaptation::Prior => Ok(Some(adapt::check_model(info)?)),
    }
}

/// With this experiment's own model `info`: what does not belong together with it (an error
/// unless `--allow-stale`).
pub(crate) fn stale_inputs(
    layout: &Layout,
    options: &Options,
    external: bool,
    info: &ModelFile,
) -> anyhow::Result<Vec<String>> {
    if external {
        return Ok(Vec::new());
    }
    let stale = cxr_store::integrity::trained_model_hashed(layout, || Ok(info.sha256()))?;
    let stale = cxr_store::integrity::check(stale, options.allow_stale).map_err(anyhow::Error::msg)?;
    for line in &stale {
        tracing::warn!("--allow-stale: {line}");
    }
    Ok(stale)
}

/// In an experiment adapted by `train --adapt-from`, with its own model, its adaptation: its
/// predictions are set beside its source model's, and the local sample it was fitted on is
/// not predicted again.
pub(crate) fn own_adaptation(
    layout: &Layout,
    options: &Options,
    external: bool,
) -> anyhow::Result<Option<cxr_store::adaptation::Adaptation>> {
    if external || options.out.is_some() || !layout.adaptation().is_file() {
        return Ok(None);
    }
    Ok(Some(cxr_store::adaptation::Adaptation::read(&layout.adaptation())?))
}

/// Runs `rest` while [`stale_inputs`] hashes the model on another core; the stale check's
/// error comes before `rest`'s.
pub(crate) fn beside_stale_check<T>(
    layout: &Layout,
    options: &Options,
    external: bool,
    info: &ModelFile,
    rest: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(Vec<String>, T)> {
    std::thread::scope(|scope| {
        let stale = scope.spawn(|| stale_inputs(layout, options, external, info));
        let rest = rest();
        let stale = stale.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok((stale, rest?))
    })
}

/// What a run has checked and opened before its first image.
pub(crate) struct Opened {
    pub(crate) adapted: Option<cxr_store::adaptation::Adaptation>,
    pub(crate) decision: Decision,
    pub(crate) adapt_from: Option<f64>,
    pub(crate) sources: Vec<Source>,
    pub(crate) engine: Engine,
    pub(crate) session: Model,
    pub(crate) provider: cxr_engine::Provider,
    pub(crate) explaining: Option<explain::Explaining>,
}

/// Checks the model `info` against this run (its classes, threshold, adaptation, the
/// sources asked for) and opens the engine and its session; `external`: `info` is not this
/// experiment's own model.
pub(crate) fn check_and_open(
    config: &Config,
    layout: &Layout,
    options: &Options,
    info: &ModelFile,
    external: bool,
) -> anyhow::Result<Opened> {
    info.check_classes(&config.data.classes)?;
    let adapted = own_adaptation(layout, options, external)?;
    let decision = decision(config.infer.threshold, layout, info)?;
    let adapt_from = prior_adaptation(config.infer.adaptation, options, info)?;
    let sources = resolve_sources(layout, options, adapted.as_ref())?;
    if options.out.is_some() && sources.len() > 1 {
        bail!("--out takes one source; {} were given", sources.len());
    }
    let (engine, session, provider, explaining) =
        open_model(&config.infer, &config.runtime, options, info, sources.len())?;
    Ok(Opened { adapted, decision, adapt_from, sources, engine, session, provider, explaining })
}

/// Opens the engine and the model it runs: `model.onnx`, or with `--explain` the Grad-CAM
/// model made from it, on `infer.device` unless `--device` says otherwise.
pub(crate) fn open_model(
    infer: &Infer,
    runtime: &Runtime,
    options: &Options,
    info: &ModelFile,
    sources: usize,
) -> anyhow::Result<(Engine, Model, cxr_engine::Provider, Option<explain::Explaining>)> {
    let (explain_bytes, explaining) = match &options.explain {
        None => (None, None),
        Some(_) if options.shard.is_some() => {
            bail!("--explain writes one folder for all images; run it without --shard")
        }
        Some(_) if sources > 1 => bail!("--explain takes one source; {sources} were given"),
        Some(asked) => {
            let (bytes, explaining) = explain::open(info, asked)?;
            (Some(bytes), Some(explaining))
        }
    };
    let device = options.device.unwrap_or(infer.device);
    let engine = Engine::open(runtime, device)?;
    let (session, provider) = engine.session_from_bytes(explain_bytes.as_deref().unwrap_or(&info.bytes), &info.path)?;
    if device == Device::Auto {
        tracing::info!("--device auto: running on {provider}");
    }
    Ok((engine, session, provider, explaining))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxr_config::{ChannelOrder, Equalize, Preprocess, ResizeFilter};

    #[test]
    fn pixel_differences_name_each_differing_key_as_the_config_spells_it() {
        let model = Preprocess::default();
        assert!(pixel_differences(&model, &model).is_empty());
        let ours = Preprocess {
            size: [50, 50],
            channel_order: ChannelOrder::Bgr,
            resize_filter: ResizeFilter::Bilinear,
            equalize: Equalize::Histogram,
            ..model.clone()
        };
        let found = pixel_differences(&ours, &model);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(
            found[0].starts_with("--set preprocess.size=[") && found[0].contains("this config has [50,50]"),
            "{found:?}"
        );
        assert!(found[1].contains("preprocess.channel_order=rgb (this config has bgr)"), "{found:?}");
        assert!(found[2].contains("(this config has bilinear)"), "{found:?}");
        assert!(found[3].contains("preprocess.equalize=none (this config has histogram)"), "{found:?}");
    }
}
