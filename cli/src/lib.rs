//! What every stage binary shares on the command line: the common flags
//! (`--config`, `--set`, `--no-progress`, `-q`/`-v`), `<stage> help`, shell completions
//! and man pages, logging to stderr, progress bars, and printing an error as one
//! paragraph with a non-zero exit.

mod device;
pub mod generate;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cxr_config::{Config, Stage};
pub use indicatif::ProgressBar;
use indicatif::{ProgressDrawTarget, ProgressStyle};

pub use device::{DeviceArg, DeviceParser};

/// Where `help` stands as the first word that is neither a flag nor a flag's value
/// (`train help`, `train -q help`), in a binary without subcommands (one with them has
/// clap's own `help` subcommand).
fn help_word(command: &clap::Command, args: &[OsString]) -> Option<usize> {
    if command.has_subcommands() {
        return None;
    }
    let takes_value = |flag: &str| {
        command.get_arguments().any(|a| {
            let named = match flag.strip_prefix("--") {
                Some(long) => a.get_long() == Some(long),
                None => flag.len() == 2 && flag.ends_with(|c| a.get_short() == Some(c)),
            };
            named && a.get_action().takes_values()
        })
    };
    let mut at = 1;
    while let Some(arg) = args.get(at) {
        let text = arg.to_string_lossy();
        if text == "help" {
            return Some(at);
        }
        if !text.starts_with('-') || text == "--" {
            return None;
        }
        at += if !text.contains('=') && takes_value(&text) { 2 } else { 1 };
    }
    None
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
    /// Write this binary's bash, zsh and fish completions into DIR and exit (`make completions`).
    #[arg(long, value_name = "DIR", hide = true)]
    pub generate_completions: Option<PathBuf>,
    /// Write this binary's man page (NAME.1) into DIR and exit (`make completions`).
    #[arg(long, value_name = "DIR", hide = true)]
    pub generate_man: Option<PathBuf>,
}

/// Parses the command line as clap's `Parser::parse` does, plus what every stage shares:
/// `<stage> help` is `<stage> --help` (a stage with subcommands has clap's own `help`),
/// and the hidden `--generate-completions DIR` / `--generate-man DIR` write this binary's
/// completions or man page, then exit.
pub fn parse<A: clap::Parser>() -> A {
    parse_from(std::env::args_os())
}

/// [`parse`] of the given arguments (the binary's name first).
pub fn parse_from<A: clap::Parser>(args: impl IntoIterator<Item = impl Into<OsString>>) -> A {
    let mut command = A::command();
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if let Some(at) = help_word(&command, &args) {
        args[at] = "--help".into();
    }
    let matches = command.try_get_matches_from_mut(args).unwrap_or_else(|e| e.exit());
    if let Some(code) = generate::requested(&mut command, &matches) {
        std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
    }
    A::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit())
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
            eprintln!("error: {}", one_paragraph(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes as one line, `outer: inner: ...`, each said once: a cause
/// whose text the message already holds (an error that prints its `source` in its own
/// message, as `cannot read X: {source}`) is not repeated.
pub fn one_paragraph(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Args {
        #[command(flatten)]
        common: CommonArgs,
        paths: Vec<PathBuf>,
    }

    fn help_at(args: &[&str]) -> Option<usize> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        help_word(&<Args as clap::CommandFactory>::command(), &args)
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct ReadError {
        path: String,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let e = anyhow::Error::new(ReadError { path: "/x.onnx".into(), source: io }).context("cannot load the model");
        assert_eq!(
            one_paragraph(&e),
            "cannot load the model: cannot read /x.onnx: No such file or directory (os error 2)"
        );
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_paragraph(&e), "outer: inner");
    }

    #[test]
    fn help_as_the_first_word_is_the_help_flag() {
        assert_eq!(help_at(&["train", "help"]), Some(1));
        assert_eq!(help_at(&["train", "-q", "--no-progress", "help"]), Some(3));
        assert_eq!(help_at(&["train", "--config", "x.yaml", "help"]), Some(3));
        assert_eq!(help_at(&["train", "--config=x.yaml", "-c", "y", "help"]), Some(4));
        // A flag's value or a later word is not a request for help.
        assert_eq!(help_at(&["infer", "--config", "help"]), None);
        assert_eq!(help_at(&["infer", "a.png", "help"]), None);
        assert_eq!(help_at(&["infer", "--", "help"]), None);
    }
}
