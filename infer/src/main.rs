//! The `infer` binary: `model.onnx` on files, folders or a split -> predictions CSV.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cxr_config::OutputFormat;

/// Predict NORMAL/PNEUMONIA for image files, folders or a preprocessed split.
#[derive(Debug, Parser)]
#[command(name = "infer", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    common: cxr_cli::CommonArgs,
    /// Image files or folders (searched recursively). Without them: every non-train split.
    paths: Vec<PathBuf>,
    /// A preprocessed split of the experiment (e.g. test); repeatable.
    #[arg(long = "split", value_name = "NAME")]
    splits: Vec<String>,
    /// cpu, cuda or auto (overrides infer.device). cuda fails loudly when CUDA is unavailable.
    #[arg(long, value_parser = cxr_cli::DeviceParser::new())]
    device: Option<cxr_cli::DeviceArg>,
    /// Write predictions here instead of EXP/predictions/<split>.csv (one source only).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// csv (default) or jsonl (overrides infer.format).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// A model other than EXP/train/model.onnx.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Predict only shard I of N (0-based): a contiguous part of each source, written to
    /// EXP/shards/I-of-N/predictions/. Run `--merge N` once every shard is done.
    #[arg(long, value_name = "I/N", conflicts_with = "merge")]
    shard: Option<cxr_store::shard::Shard>,
    /// Concatenate the N shards' prediction files, in order, into EXP/predictions/.
    #[arg(long, value_name = "N")]
    merge: Option<usize>,
    /// Also write each image's Grad-CAM heatmap here: <stem>.png (the X-ray, the map of the
    /// predicted class, a colour bar and the call), heatmaps.csv and heatmaps.npy. The folder
    /// is replaced whole.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["merge", "shard"])]
    explain: Option<PathBuf>,
    /// With --explain: draw the evidence for this class instead of each image's call.
    #[arg(long, value_name = "NAME", requires = "explain")]
    explain_class: Option<String>,
    /// Go on when train/model.onnx and the tensors do not belong together (retrained or
    /// preprocessed again since, or a train folder that mixes two runs); the predictions
    /// and the report then say so.
    #[arg(long)]
    allow_stale: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Csv,
    Jsonl,
}

/// The end of `--help`: real commands, run from the repository's folder.
const EXAMPLES: &str = "\
Examples:
  infer --config configs/demo.yaml
  infer --config configs/demo.yaml data/synthetic/test/PNEUMONIA --out predictions.csv
  infer --config configs/kermany.yaml --split test --device cuda --explain runs/kermany/heatmaps";

fn main() -> ExitCode {
    cxr_engine::disable_telemetry();
    let args: Args = cxr_cli::parse();
    cxr_cli::run_stage(&args.common, cxr_config::Stage::Infer, |config| {
        if let Some(count) = args.merge {
            for (path, rows) in cxr_infer::merge(&config, count)? {
                tracing::info!("{rows} rows -> {}", path.display());
            }
            return Ok(());
        }
        let mut sources: Vec<cxr_infer::Source> = args.splits.iter().cloned().map(cxr_infer::Source::Split).collect();
        if !args.paths.is_empty() {
            sources.push(cxr_infer::Source::Paths(args.paths.clone()));
        }
        let options = cxr_infer::Options {
            device: args.device.map(Into::into),
            sources,
            out: args.out.clone(),
            format: args.format.map(|f| match f {
                FormatArg::Csv => OutputFormat::Csv,
                FormatArg::Jsonl => OutputFormat::Jsonl,
            }),
            model: args.model.clone(),
            show_progress: args.common.show_progress(),
            shard: args.shard,
            explain: args
                .explain
                .clone()
                .map(|dir| cxr_infer::explain::ExplainOptions { dir, class: args.explain_class.clone() }),
            allow_stale: args.allow_stale,
        };
        let outcome = cxr_infer::run(&config, &options)?;
        if let Some(p) = &outcome.single {
            println!("{}", cxr_infer::doctor_line(p, &config.data.classes));
        }
        for (path, n) in &outcome.outputs {
            tracing::info!("{n} predictions -> {}", path.display());
        }
        for (path, n) in &outcome.source_outputs {
            tracing::info!("{n} predictions of the unadapted source model -> {}", path.display());
        }
        if let Some(dir) = &args.explain {
            tracing::info!("heatmaps -> {}", dir.display());
        }
        tracing::info!(
            "{} images in {:.2}s ({:.1} images/s) on {}, threshold {:.4}",
            outcome.images,
            outcome.seconds,
            outcome.images as f64 / outcome.seconds.max(1e-9),
            outcome.provider,
            outcome.threshold
        );
        Ok(())
    })
}
