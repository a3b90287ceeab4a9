//! The `report` binary: history and predictions -> `EXP/report/`; `report compare EXP...`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Write metrics, confusion matrices, plots and index.html for an experiment.
#[derive(Debug, Parser)]
#[command(name = "report", version, after_help = EXAMPLES)]
struct Args {
    #[command(flatten)]
    common: cxr_cli::CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
    /// Go on when the predictions, the model and the tensors do not belong together
    /// (trained or preprocessed again since `infer`); the page then says so first.
    #[arg(long)]
    allow_stale: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Is B better than A? Set each experiment folder against the first: config keys it
    /// changed, headline metrics, and on the images both predicted DeLong's test of the ROC
    /// AUCs and McNemar's test of the accuracies.
    Compare {
        /// Experiment folders (<workdir>/<name>), each with report/metrics.csv; the first is
        /// the reference.
        #[arg(required = true)]
        experiments: Vec<PathBuf>,
        /// Also write DIR/compare.html and DIR/compare.csv (DIR is replaced whole; a folder
        /// holding other files is refused).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// The end of `--help`: real commands, run from the repository's folder.
const EXAMPLES: &str = "\
Examples:
  report --config configs/demo.yaml
  report --config configs/kermany.yaml --allow-stale
  report compare runs/seed_replica runs/kermany --out runs/compare";

fn main() -> ExitCode {
    cxr_engine::disable_telemetry();
    let args: Args = cxr_cli::parse();
    cxr_cli::run_stage(&args.common, cxr_config::Stage::Report, |config| {
        if let Some(Command::Compare { experiments, out }) = &args.command {
            print!("{}", cxr_report::compare(experiments, out.as_deref())?);
            return Ok(());
        }
        let summary = cxr_report::run(&config, &cxr_report::Options { allow_stale: args.allow_stale })?;
        for m in &summary.metrics {
            let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
            tracing::info!(
                "{:>6}: accuracy {} sensitivity {} specificity {} AUC {} (n={})",
                m.split,
                f(m.accuracy),
                f(m.sensitivity),
                f(m.specificity),
                f(m.auc),
                m.n
            );
        }
        println!("report: {}", summary.index.display());
        Ok(())
    })
}
