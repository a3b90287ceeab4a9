//! Which sources a run predicts on.

use anyhow::bail;
use cxr_store::layout::Layout;
use cxr_store::manifest::TensorsMeta;

use crate::{Options, Source};

/// The sources to predict on: those asked for (split names checked, since they name
/// output files), or every split of the experiment but `train`; in an adapted experiment,
/// every split but the local sample its model was fitted on (whose honest figures are the
/// cross-fitted ones `train` wrote), which may leave none.
pub(crate) fn resolve_sources(
    layout: &Layout,
    options: &Options,
    adapted: Option<&cxr_store::adaptation::Adaptation>,
) -> anyhow::Result<Vec<Source>> {
    if options.sources.is_empty() {
        let meta = TensorsMeta::read(&layout.tensors_meta())?;
        let fitted_on = |name: &str| match adapted {
            Some(a) => a.local_splits.iter().any(|s| s == name),
            None => name == "train",
        };
        let splits: Vec<Source> =
            meta.splits.iter().filter(|s| !fitted_on(&s.name)).map(|s| Source::Split(s.name.clone())).collect();
        if let Some(a) = adapted {
            tracing::info!(
                "the adapted model was fitted on {}: their figures are the cross-fitted ones in {}",
                a.local_splits.join(", "),
                layout.crossfit().display()
            );
        } else if splits.is_empty() {
            bail!("no split to predict on besides train; give --split train or image paths");
        }
        return Ok(splits);
    }
    for source in &options.sources {
        if let Source::Split(name) = source
            && !cxr_config::is_safe_name(name)
        {
            bail!(
                "--split {name}: a split name has only letters, digits, `_` and `-` (it names a file of EXP/predictions/)"
            );
        }
    }
    Ok(options.sources.clone())
}
