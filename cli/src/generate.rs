//! Shell completions (bash, zsh, fish) and a man page written from a binary's own clap
//! definition: the hidden `--generate-completions DIR` and `--generate-man DIR` that
//! `make completions` calls.

use std::path::{Path, PathBuf};

use clap_complete::{Generator, Shell};

/// Writing a completion script or man page failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {error}")]
pub struct GenerateError {
    path: PathBuf,
    error: std::io::Error,
}

fn create_dir(dir: &Path) -> Result<(), GenerateError> {
    std::fs::create_dir_all(dir).map_err(|error| GenerateError { path: dir.to_path_buf(), error })
}

/// Writes `command`'s completions for bash (`NAME.bash`), zsh (`_NAME`) and fish
/// (`NAME.fish`) into `dir`; returns the files written.
pub fn completions(command: &mut clap::Command, dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    create_dir(dir)?;
    let name = command.get_name().to_string();
    let mut written = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, command, &name, dir)
            .map_err(|error| GenerateError { path: dir.join(shell.file_name(&name)), error })?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `command`'s man page, `NAME.1` (section 1, with its Examples), into `dir`.
pub fn man_page(command: &clap::Command, dir: &Path) -> Result<PathBuf, GenerateError> {
    create_dir(dir)?;
    let path = dir.join(format!("{}.1", command.get_name()));
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .map_err(|error| GenerateError { path: path.clone(), error })?;
    std::fs::write(&path, page).map_err(|error| GenerateError { path: path.clone(), error })?;
    Ok(path)
}

/// Handles `--generate-completions DIR` / `--generate-man DIR` when given: writes the
/// files, prints their paths, and returns the exit code the binary should end with.
pub(crate) fn requested(command: &mut clap::Command, matches: &clap::ArgMatches) -> Option<std::process::ExitCode> {
    let completions_dir = matches.get_one::<PathBuf>("generate_completions");
    let man_dir = matches.get_one::<PathBuf>("generate_man");
    if completions_dir.is_none() && man_dir.is_none() {
        return None;
    }
    let mut command = command.clone();
    command.build();
    Some(crate::run(|| {
        let mut written = Vec::new();
        if let Some(dir) = completions_dir {
            written.extend(completions(&mut command, dir)?);
        }
        if let Some(dir) = man_dir {
            written.push(man_page(&command, dir)?);
        }
        for path in written {
            println!("{}", path.display());
        }
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_three_completion_scripts_and_a_man_page() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = clap::Command::new("stage").about("A stage").arg(clap::Arg::new("config").long("config"));
        let written = completions(&mut command, dir.path()).unwrap();
        let names: Vec<String> =
            written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["stage.bash", "_stage", "stage.fish"]);
        assert!(std::fs::read_to_string(&written[0]).unwrap().contains("--config"));
        let page = man_page(&command, &dir.path().join("man")).unwrap();
        assert_eq!(page, dir.path().join("man/stage.1"));
        assert!(std::fs::read_to_string(page).unwrap().contains(".TH stage 1"));
    }
}
