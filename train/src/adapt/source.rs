//! The source experiment of `train --adapt-from`: its resolved config, its `model.onnx`
//! (metadata and head), and the checks that it can be adapted to this experiment's images
//! (same classes, pixels and features; a model and backbone that are the ones its own
//! `train` recorded).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cxr_config::{Config, spelling};
use cxr_store::layout::Layout;
use cxr_store::model_meta::ModelMeta;
use cxr_store::provenance::Provenance;

use crate::head::{HeadShape, Params};

/// A trained source experiment.
#[derive(Debug)]
pub struct Source {
    /// The folder as given to `--adapt-from`.
    pub exp: PathBuf,
    pub config: Config,
    pub layout: Layout,
    pub model_path: PathBuf,
    pub model_sha256: String,
    pub meta: ModelMeta,
    /// The head `model.onnx` carries, and its shape.
    pub head: Params,
    pub head_shape: HeadShape,
    /// `train/provenance.json`: the backbone's SHA-256 among its tools.
    pub provenance: Provenance,
    /// The epoch its own run exported.
    pub exported_epoch: Option<usize>,
}

impl Source {
    /// Opens `exp` and checks it against this experiment's `config`.
    pub fn open(exp: &Path, config: &Config) -> anyhow::Result<Source> {
        let layout = Layout::at(exp);
        let train = layout.train();
        let resolved = train.join(cxr_config::RESOLVED_FILE_NAME);
        if !resolved.is_file() {
            bail!(
                "--adapt-from {}: {} is missing: it is not a trained experiment (run `train` there first)",
                exp.display(),
                resolved.display()
            );
        }
        let source_config = Config::load(Some(&resolved), &[])
            .with_context(|| format!("--adapt-from {}: cannot read its config", exp.display()))?;
        let provenance = Provenance::read(&train.join("provenance.json"))?;
        let model_path = layout.model();
        let model = cxr_model::ModelFile::open(&model_path)?;
        let model_sha256 = model.sha256();
        if provenance.inputs.get("model.onnx").is_some_and(|recorded| *recorded != model_sha256) {
            bail!(
                "--adapt-from {}: {} is not the model its train/provenance.json records (an interrupted or mixed run); rerun `train` there",
                exp.display(),
                model_path.display()
            );
        }
        let (head, head_shape) = read_head(model.proto()?, &model_path)?;
        let meta = model.meta;
        let exported_epoch = cxr_store::history::read(&layout.history())
            .ok()
            .and_then(|rows| rows.iter().rev().find(|r| r.best).map(|r| r.epoch));
        let source = Source {
            exp: exp.to_path_buf(),
            config: source_config,
            layout,
            model_path,
            model_sha256,
            meta,
            head,
            head_shape,
            provenance,
            exported_epoch,
        };
        source.check_compatible(config)?;
        Ok(source)
    }

    /// Refuses a source whose classes, pixels or features differ from this experiment's,
    /// naming each difference and the `--set` that removes it.
    fn check_compatible(&self, config: &Config) -> anyhow::Result<()> {
        let (ours, theirs) = (config, &self.config);
        let mut differences = Vec::new();
        let mut check = |key: &str, a: String, b: String| {
            if a != b {
                differences.push(format!("{key} is {b} there and {a} here (--set {key}={b})"));
            }
        };
        check("data.classes", spelling(&ours.data.classes), spelling(&theirs.data.classes));
        let positive = |c: &Config| c.data.classes.get(c.data.positive_index()).cloned().unwrap_or_default();
        check("data.positive_class", positive(ours), positive(theirs));
        let (p, q) = (&ours.preprocess, &theirs.preprocess);
        check("preprocess.size", spelling(&p.size), spelling(&q.size));
        check("preprocess.channel_order", spelling(&p.channel_order), spelling(&q.channel_order));
        check("preprocess.resize_filter", spelling(&p.resize_filter), spelling(&q.resize_filter));
        check("preprocess.equalize", spelling(&p.equalize), spelling(&q.equalize));
        let (m, n) = (&ours.model, &theirs.model);
        check("model.backbone", spelling(&m.backbone), spelling(&n.backbone));
        check("model.backbone_layout", spelling(&m.backbone_layout), spelling(&n.backbone_layout));
        check("model.normalization", spelling(&m.normalization), spelling(&n.normalization));
        check("model.pooling", spelling(&m.pooling), spelling(&n.pooling));
        check("model.precision", spelling(&m.precision), spelling(&n.precision));
        if m.precision == cxr_config::Precision::Int8 {
            check("model.quantization", spelling(&m.quantization), spelling(&n.quantization));
        }
        if m.backbone == cxr_config::Backbone::Random {
            // The random backbone is drawn from the seed: another seed, other features.
            check("experiment.seed", spelling(&ours.experiment.seed), spelling(&theirs.experiment.seed));
        }
        if !differences.is_empty() {
            bail!(
                "--adapt-from {}: its model cannot be adapted to this experiment's images: {}",
                self.exp.display(),
                differences.join("; ")
            );
        }
        Ok(())
    }

    /// The backbone SHA-256 the source's own `train` used.
    pub fn backbone_sha256(&self) -> Option<&str> {
        self.provenance.tools.get("backbone_sha256").map(String::as_str)
    }
}

/// The head of an exported model: the initialisers `head/dense{i}.kernel` and
/// `head/dense{i}.bias` that `head::append_head` writes, in order.
fn read_head(proto: &cxr_onnx::ModelProto, path: &Path) -> anyhow::Result<(Params, HeadShape)> {
    let graph = proto.graph.as_ref().with_context(|| format!("{}: no graph", path.display()))?;
    let find = |name: &str| graph.initializer.iter().find(|t| t.name == name);
    let mut params = Vec::new();
    let mut sizes = Vec::new();
    for i in 0.. {
        let (k, b) = (format!("dense{i}.kernel"), format!("dense{i}.bias"));
        let (Some(kernel), Some(bias)) = (find(&format!("head/{k}")), find(&format!("head/{b}"))) else { break };
        let dims: Vec<usize> = kernel.dims.iter().map(|&d| d as usize).collect();
        let [rows, cols] = dims[..] else { bail!("{}: head/{k} is not a matrix", path.display()) };
        if sizes.is_empty() {
            sizes.push(rows);
        }
        sizes.push(cols);
        params.push((k, kernel.to_f32_vec()?));
        params.push((b, bias.to_f32_vec()?));
    }
    if params.is_empty() {
        bail!("{}: no head/dense0.kernel: not a model exported by `train`", path.display());
    }
    let shape = HeadShape {
        input: sizes[0],
        hidden: sizes[1..sizes.len() - 1].to_vec(),
        classes: *sizes.last().expect("two sizes"),
    };
    Ok((params, shape))
}
