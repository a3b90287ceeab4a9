//! Records this project's git revision at build time (`CXR_GIT_REVISION`), so that
//! `provenance.json` names the code the binaries were built from and no stage runs `git`
//! in the user's folder (where a repository's config could run commands of its own).

use std::path::Path;
use std::process::Command;

fn git(root: &Path, args: &[&str]) -> Option<String> {
    // The project's own checkout, with hooks that run commands switched off.
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null"])
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it");
    let root = Path::new(&manifest).parent().expect("store/ is in the workspace").to_path_buf();
    let git_dir = root.join(".git");
    let revision = match git(&root, &["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&root, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=CXR_GIT_REVISION={revision}");
    // A new commit or checkout changes HEAD or the branch it points to.
    for watched in ["HEAD", "refs", "packed-refs", "index"] {
        println!("cargo:rerun-if-changed={}", git_dir.join(watched).display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
