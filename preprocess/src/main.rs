//! The `preprocess` binary: dataset -> `EXP/tensors/`.

use std::process::ExitCode;

use clap::Parser;

/// Decode, resize and store a chest X-ray dataset as uint8 tensors (EXP/tensors/).
#[derive(Debug, Parser)]
#[command(name = "preprocess", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    common: cxr_cli::CommonArgs,
    /// Process only shard I of N (0-based): a contiguous part of every split, written to
    /// EXP/shards/I-of-N/tensors/. Run `--merge N` once every shard is done.
    #[arg(long, value_name = "I/N", conflicts_with = "merge")]
    shard: Option<cxr_store::shard::Shard>,
    /// Concatenate the N shard stores, in order, into EXP/tensors/.
    #[arg(long, value_name = "N")]
    merge: Option<usize>,
}

/// The end of `--help`: real commands, run from the repository's folder.
const EXAMPLES: &str = "\
Examples:
  preprocess --config configs/demo.yaml
  preprocess --config configs/kermany.yaml --set data.root=/data/chest_xray/train --set data.limit_per_class=200
  preprocess --config configs/kermany.yaml --shard 0/4   # then 1/4 to 3/4, then --merge 4";

fn main() -> ExitCode {
    let args: Args = cxr_cli::parse();
    cxr_cli::run_stage(&args.common, cxr_config::Stage::Preprocess, |config| {
        if let Some(count) = args.merge {
            let meta = cxr_preprocess::merge(&config, count)?;
            let total: usize = meta.splits.iter().map(|s| s.count).sum();
            tracing::info!(
                "merged {count} shards: {total} images in {}",
                cxr_store::layout::Layout::new(&config).tensors().display()
            );
            return Ok(());
        }
        let options = cxr_preprocess::Options { show_progress: args.common.show_progress(), shard: args.shard };
        let summary = cxr_preprocess::run(&config, &options)?;
        for split in &summary.splits {
            let per_class: Vec<String> =
                config.data.classes.iter().zip(&split.per_class).map(|(c, n)| format!("{c} {n}")).collect();
            let patients = split.patients.map_or(String::new(), |p| format!(", {p} patients"));
            tracing::info!("{:>6}: {} images ({}){patients}", split.name, split.count, per_class.join(", "));
        }
        let rejected: usize = summary.rejected.values().sum();
        if rejected > 0 {
            let kinds: Vec<String> = summary.rejected.iter().map(|(k, n)| format!("{n} {k}")).collect();
            tracing::warn!("rejected {rejected} file(s): {}", kinds.join(", "));
        }
        let layout = cxr_store::layout::Layout::new(&config);
        tracing::info!("tensors in {} (rejects: {})", layout.tensors().display(), layout.rejects().display());
        Ok(())
    })
}
