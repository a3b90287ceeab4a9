//! Loads the CUDA and cuDNN libraries that ONNX Runtime's CUDA provider needs, from the folder
//! of the runtime library (where `make setup-cuda` puts them), before the provider is registered.
//!
//! Why: `libonnxruntime_providers_cuda.so` has no RUNPATH, so the loader would look for
//! `libcublas.so.13` & co. only on the system paths. Once a library with the same soname is in
//! the process, the loader uses it for the provider's dependencies, which is how Python's
//! `onnxruntime.preload_dlls()` solves the same problem.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One library the CUDA provider needs, and whether it can run without it.
struct CudaLibrary {
    name: &'static str,
    /// Needed by the provider itself; the optional ones serve only some operators.
    required: bool,
}

/// In load order (cuBLAS needs cuBLASLt first), for ONNX Runtime 1.31's CUDA 13 build.
const LIBRARIES: &[CudaLibrary] = &[
    CudaLibrary { name: "libcudart.so.13", required: true },
    CudaLibrary { name: "libcublasLt.so.13", required: true },
    CudaLibrary { name: "libcublas.so.13", required: true },
    CudaLibrary { name: "libcurand.so.10", required: true },
    CudaLibrary { name: "libcufft.so.12", required: false },
    CudaLibrary { name: "libnvrtc.so.13", required: false },
    // Convolutions run through cuDNN, which the provider opens only when a session needs it.
    CudaLibrary { name: "libcudnn.so.9", required: true },
];

/// What preloading found: the required libraries that could not be loaded, with the reason.
#[derive(Debug, Clone, Default)]
pub(crate) struct Preload {
    pub(crate) missing: Vec<String>,
}

impl Preload {
    /// A sentence for error messages, empty when nothing required is missing.
    pub(crate) fn describe(&self) -> String {
        if self.missing.is_empty() {
            String::new()
        } else {
            format!(" (CUDA libraries not loaded: {})", self.missing.join("; "))
        }
    }
}

/// Loads the libraries once per process (later calls return the first result): from `folder`
/// when it has the file, else by name from the loader's search path (a system CUDA install).
pub(crate) fn preload_once(folder: &Path) -> Preload {
    static DONE: OnceLock<Preload> = OnceLock::new();
    DONE.get_or_init(|| preload(folder)).clone()
}

fn preload(folder: &Path) -> Preload {
    let mut result = Preload::default();
    for library in LIBRARIES {
        let local = folder.join(library.name);
        let target: PathBuf = if local.is_file() { local } else { PathBuf::from(library.name) };
        match open_global(&target) {
            Ok(()) => tracing::debug!(library = %target.display(), "CUDA library loaded"),
            Err(message) if library.required => {
                tracing::debug!(library = %target.display(), %message, "CUDA library not loaded");
                result.missing.push(format!("{}: {message}", library.name));
            }
            Err(message) => tracing::debug!(library = %target.display(), %message, "optional CUDA library not loaded"),
        }
    }
    result
}

/// Loads one library and keeps it for the life of the process (ort's helper leaks it on purpose).
fn open_global(path: &Path) -> Result<(), String> {
    ort::util::preload_dylib(path).map_err(|e| {
        // libloading puts dlerror()'s text, which names the file and the cause, in the source.
        match std::error::Error::source(&e) {
            Some(cause) => cause.to_string(),
            None => e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_cuda_reports_every_required_library_by_name() {
        let dir = tempfile::tempdir().unwrap();
        // This machine has no CUDA install, so the search path cannot supply them either.
        if open_global(Path::new("libcudart.so.13")).is_ok() {
            return;
        }
        let preload = preload(dir.path());
        let names: Vec<&str> = preload.missing.iter().map(|m| m.split(':').next().unwrap()).collect();
        let required: Vec<&str> = LIBRARIES.iter().filter(|l| l.required).map(|l| l.name).collect();
        assert_eq!(names, required);
        assert!(preload.describe().contains("libcublas.so.13"), "{}", preload.describe());
    }

    #[test]
    fn a_library_in_the_folder_is_opened_by_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libcudart.so.13");
        std::fs::write(&fake, b"not an ELF file").unwrap();
        let preload = preload(dir.path());
        let cudart = preload.missing.iter().find(|m| m.starts_with("libcudart.so.13")).unwrap();
        // The loader's error names the file it was given, so the folder's copy was the one tried.
        assert!(cudart.contains(&fake.display().to_string()), "{cudart}");
    }

    #[test]
    fn nothing_missing_describes_as_empty() {
        assert_eq!(Preload::default().describe(), "");
    }
}
