//! The `preprocess` binary: dataset -> `EXP/tensors/`.

use std::process::ExitCode;

use clap::Parser;

/// Decode, resize and store a chest X-ray dataset as uint8 tensors (EXP/tensors/).
#[derive(Debug, Parser)]
#[command(name = "preprocess", version)]
struct Args {
    #[command(flatten)]
    common: cxr_cli::CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    args.common.init_logging();
    cxr_cli::run(|| {
        let config = args.common.load_config()?;
        if args.common.print_exp_dir_and_stop(&config) {
            return Ok(());
        }
        let options = cxr_preprocess::Options { show_progress: args.common.show_progress() };
        let summary = cxr_preprocess::run(&config, &options)?;
        for split in &summary.splits {
            let per_class: Vec<String> =
                config.data.classes.iter().zip(&split.per_class).map(|(c, n)| format!("{c} {n}")).collect();
            tracing::info!("{:>6}: {} images ({})", split.name, split.count, per_class.join(", "));
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
