//! What every stage binary shares on the command line: the common flags
//! (`--config`, `--set`, `--no-progress`, `-q`/`-v`), logging to stderr,
//! progress bars, and printing an error as one paragraph with a non-zero exit.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cxr_config::{Config, Stage};
pub use indicatif::ProgressBar;
use indicatif::{ProgressDrawTarget, ProgressStyle};

/// `--device cpu|cuda|auto` of the stages that run models (`train`, `infer`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
    Auto,
}

impl From<DeviceArg> for cxr_config::Device {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Cpu => cxr_config::Device::Cpu,
            DeviceArg::Cuda => cxr_config::Device::Cuda,
            DeviceArg::Auto => cxr_config::Device::Auto,
        }
    }
}

/// Flags every stage takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// YAML configuration file (every key has a default; see the README's config reference).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one key, value parsed as YAML: --set train.epochs=3 --set preprocess.size=[50,50]
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Hide progress bars (they are hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Only print warnings and errors.
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail (-v debug, -vv trace).
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print the experiment folder (EXP = <experiment.workdir>/<experiment.name>) and exit.
    #[arg(long)]
    pub print_exp_dir: bool,
    /// Print the hash of the config sections this stage depends on and exit (the
    /// Makefile's stamp: a stage reruns exactly when its hash changes).
    #[arg(long, conflicts_with = "print_exp_dir")]
    pub print_stage_hash: bool,
}

impl CommonArgs {
    /// Loads the configuration with this command line's file and overrides.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        Config::load(self.config.as_deref(), &self.overrides).context("invalid configuration")
    }

    /// Handles `--print-exp-dir`: prints EXP and returns true when the binary should stop.
    pub fn print_exp_dir_and_stop(&self, config: &Config) -> bool {
        if self.print_exp_dir {
            println!("{}", config.experiment_dir().display());
        }
        self.print_exp_dir
    }

    /// Whether progress bars should be drawn.
    pub fn show_progress(&self) -> bool {
        !self.no_progress && !self.quiet && std::io::stderr().is_terminal()
    }

    /// Sets up `tracing` to stderr at the level the flags ask for; `RUST_LOG` set to a
    /// level (`error`, `warn`, `info`, `debug`, `trace`) wins.
    pub fn init_logging(&self) {
        let from_flags = match (self.quiet, self.verbose) {
            (true, _) => tracing::Level::WARN,
            (false, 0) => tracing::Level::INFO,
            (false, 1) => tracing::Level::DEBUG,
            (false, _) => tracing::Level::TRACE,
        };
        let level = std::env::var("RUST_LOG").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(from_flags);
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .try_init();
    }

    /// A progress bar counting `len` items; hidden unless [`Self::show_progress`].
    pub fn progress_bar(&self, len: u64, what: &str) -> ProgressBar {
        progress_bar(len, what, self.show_progress())
    }
}

/// A progress bar counting `len` items with items/s and time left; `visible: false` draws nothing.
pub fn progress_bar(len: u64, what: &str, visible: bool) -> ProgressBar {
    let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({per_sec}, {eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    if visible {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

/// The body of every stage binary: sets up logging, loads the configuration, handles
/// `--print-exp-dir` and `--print-stage-hash`, then runs `body`; errors are printed by [`run`].
pub fn run_stage(common: &CommonArgs, stage: Stage, body: impl FnOnce(Config) -> anyhow::Result<()>) -> ExitCode {
    common.init_logging();
    run(|| {
        let config = common.load_config()?;
        if common.print_exp_dir_and_stop(&config) {
            return Ok(());
        }
        if common.print_stage_hash {
            println!("{}", config.stage_hash(stage));
            return Ok(());
        }
        body(config)
    })
}

/// Runs a binary's body: prints an error as `error: outer: inner: ...` and exits 1.
pub fn run(body: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
