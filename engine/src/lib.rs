//! The one place that opens ONNX Runtime for every stage: which library file is
//! loaded, how many threads sessions use, and which execution provider runs them.
//!
//! Invariant: `--device cuda` either runs on CUDA or fails; it never falls back to CPU.

mod amx;
mod cuda_libs;
mod lanes;
mod model;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cxr_config::{Device, Runtime};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

pub use lanes::{Inputs, Lanes, MAX_LANES};
pub use model::{Element, Input, Model, Shaped};

/// Environment variable ort itself honours for the library path.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";
/// ONNX Runtime release the project is built and tested against.
pub const EXPECTED_VERSION: &str = "1.31.1";
/// Where `make setup` puts the CPU library, relative to the project root.
pub const CPU_LIBRARY: &str = ".ort/cpu/libonnxruntime.so";
/// Where `make setup-cuda` puts the GPU library, relative to the project root.
pub const CUDA_LIBRARY: &str = ".ort/cuda/libonnxruntime.so";

/// Why ONNX Runtime could not be opened or could not run a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "the ONNX Runtime library was not found; tried: {}. Run `make setup` (it puts ONNX Runtime {EXPECTED_VERSION} into .ort/cpu/), or point runtime.onnxruntime or {DYLIB_ENV} at libonnxruntime.so",
        list(tried)
    )]
    LibraryNotFound { tried: Vec<PathBuf> },
    #[error(
        "cannot load ONNX Runtime from {path}: {message}. Expected ONNX Runtime {EXPECTED_VERSION}; run `make setup`"
    )]
    Load { path: PathBuf, message: String },
    #[error(
        "--device cuda: ONNX Runtime at {library} could not use CUDA: {message}. CUDA needs an NVIDIA GPU with its driver, and the GPU build of ONNX Runtime with its CUDA/cuDNN libraries: run `make setup-cuda` and use --device cuda (it loads .ort/cuda/ by default), or use --device cpu"
    )]
    Cuda { library: PathBuf, message: String },
    #[error(
        "{path} is not the ONNX Runtime library the pinned wheels ship (its SHA-256 is {sha256}); delete .ort/ and run `make setup` (or `make setup-cuda`), or set runtime.onnxruntime to this file to use it anyway"
    )]
    Untrusted { path: PathBuf, sha256: String },
    #[error("ONNX Runtime cannot open model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("ONNX Runtime failed running {path}: {message}")]
    Run { path: PathBuf, message: String },
    #[error("ONNX Runtime: {0}")]
    Ort(String),
}

fn list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn ort_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Ort(e.to_string())
}

/// The execution provider a session actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    Cuda,
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Provider::Cpu => "CPUExecutionProvider",
            Provider::Cuda => "CUDAExecutionProvider",
        })
    }
}

/// An opened ONNX Runtime: create every session through it.
pub struct Engine {
    env: ort::environment::Environment,
    library: PathBuf,
    device: Device,
    intra_threads: usize,
    inter_threads: usize,
    /// `runtime.amx`: int8 convolutions on AMX where the CPU has it.
    amx: bool,
    /// What loading the CUDA libraries found (cuda and auto only); named in CUDA errors.
    cuda_preload: cuda_libs::Preload,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("library", &self.library).field("device", &self.device).finish()
    }
}

/// Folders that may hold the project's `.ort/`: the working directory, the checkout of the
/// running binary (`target/<profile>/` or `target/<profile>/deps/` for tests), the source tree.
pub fn project_roots() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from(".")];
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(2).take(3).map(Path::to_path_buf));
    }
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    roots
}

/// The library files tried, in order, for `runtime` and `device`.
pub fn library_candidates(runtime: &Runtime, device: Device) -> Vec<PathBuf> {
    if let Some(path) = &runtime.onnxruntime {
        return vec![path.clone()];
    }
    if let Some(path) = std::env::var_os(DYLIB_ENV).filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(path)];
    }
    let relative: &[&str] = match device {
        Device::Cpu => &[CPU_LIBRARY],
        Device::Cuda | Device::Auto => &[CUDA_LIBRARY, CPU_LIBRARY],
    };
    let roots = project_roots();
    let mut out: Vec<PathBuf> = Vec::new();
    for rel in relative {
        for root in &roots {
            let candidate = root.join(rel);
            let key = candidate.canonicalize().unwrap_or_else(|_| candidate.clone());
            if !out.iter().any(|p| p.canonicalize().unwrap_or_else(|_| p.clone()) == key) {
                out.push(candidate);
            }
        }
    }
    out
}

/// The variable ONNX Runtime reads when its environment is created: set, it writes no
/// device id or event database (`$XDG_CACHE_HOME` or `~/.cache/Microsoft/DeveloperTools/`).
pub const TELEMETRY_ENV: &str = "ORT_DISABLE_TELEMETRY";

/// Turns ONNX Runtime's telemetry off for this process: nothing leaves the experiment
/// folder unasked. Its C++ code reads the variable when the environment is created, and
/// `DisableTelemetryEvents` (which `with_telemetry(false)` calls) comes too late to stop
/// the files. Call it first thing in `main`, while the process has one thread.
#[allow(unsafe_code)]
pub fn disable_telemetry() {
    if std::env::var_os(TELEMETRY_ENV).is_none() {
        // SAFETY: called at the start of `main`, before any other thread exists, so no
        // other thread can read the environment while it changes.
        unsafe { std::env::set_var(TELEMETRY_ENV, "1") };
    }
}

impl Engine {
    /// Loads the ONNX Runtime library for `device` and creates the environment.
    ///
    /// Only one library can be loaded per process; a second call reuses the first.
    pub fn open(runtime: &Runtime, device: Device) -> Result<Engine, EngineError> {
        let tried = library_candidates(runtime, device);
        let library = tried
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| EngineError::LibraryNotFound { tried: tried.clone() })?;
        let library = library.canonicalize().unwrap_or(library);
        // A library found in a `.ort/` folder must be the pinned wheels' own; one named by
        // runtime.onnxruntime or ORT_DYLIB_PATH is the user's explicit choice.
        if runtime.onnxruntime.is_none() && std::env::var_os(DYLIB_ENV).is_none_or(|p| p.is_empty()) {
            verify::verify_library(&library)?;
        }
        if let Some(version) = version_from_file_name(&library) {
            let wanted = EXPECTED_VERSION.rsplit_once('.').map_or(EXPECTED_VERSION, |(mm, _)| mm);
            if !(version == wanted || version.starts_with(&format!("{wanted}."))) {
                return Err(EngineError::Load {
                    path: library,
                    message: format!("version mismatch: this is ONNX Runtime {version}"),
                });
            }
        }
        let (library, env) = process_environment(library)?;
        let cuda_preload = if device != Device::Cpu && cfg!(feature = "cuda") {
            cuda_libs::preload_once(library.parent().unwrap_or(Path::new(".")))
        } else {
            cuda_libs::Preload::default()
        };
        Ok(Engine {
            env,
            library,
            device,
            intra_threads: runtime.intra_threads,
            inter_threads: runtime.inter_threads,
            amx: runtime.amx,
            cuda_preload,
        })
    }

    /// The library file that was loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// The ONNX Runtime version, read from the library's file name (`libonnxruntime.so.1.31.1`).
    pub fn version(&self) -> String {
        version_from_file_name(&self.library).unwrap_or_else(|| "unknown".to_string())
    }

    /// Opens a model file as a session on this engine's device.
    pub fn session_from_file(&self, path: &Path) -> Result<(Model, Provider), EngineError> {
        self.open_session(&read_model(path)?, path, self.intra_threads)
    }

    /// Opens a model file whose operations are too small to split across threads (the
    /// training head's artifacts): one intra-op thread, since hand-offs between threads
    /// cost more than they save on them (README, "Measured").
    pub fn session_for_small_model(&self, path: &Path) -> Result<(Model, Provider), EngineError> {
        self.open_session(&read_model(path)?, path, 1)
    }

    /// Opens an in-memory model as a session; `origin` names it in errors.
    pub fn session_from_bytes(&self, model: &[u8], origin: &Path) -> Result<(Model, Provider), EngineError> {
        self.open_session(model, origin, self.intra_threads)
    }

    /// Opens an in-memory model as [`Lanes`]. An int8 model on the CPU gets one
    /// single-thread session per core the process may use (`runtime.intra_threads` where set;
    /// logical CPUs, as `std::thread::available_parallelism` counts them), up to
    /// [`MAX_LANES`] sessions sharing the cores beyond, created side by side: its operations
    /// are too short for ONNX Runtime's hand-offs between threads inside each to pay
    /// (`docs/measurements.md`). A float model, or any on CUDA, gets one session.
    pub fn lanes_from_bytes(&self, model: &[u8], origin: &Path) -> Result<(Lanes, Provider), EngineError> {
        let cpu_threads = if amx::quantized(model) {
            let cores = match self.intra_threads {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                n => n,
            };
            lanes::threads_per_lane(cores)
        } else {
            vec![self.intra_threads]
        };
        let (sessions, provider) = self.open_sessions(model, origin, &cpu_threads, self.intra_threads)?;
        let models = sessions.into_iter().map(|s| Model::new(s, origin.to_path_buf())).collect();
        Ok((Lanes::new(models), provider))
    }

    fn open_session(
        &self,
        model: &[u8],
        origin: &Path,
        intra_threads: usize,
    ) -> Result<(Model, Provider), EngineError> {
        let (mut sessions, provider) = self.open_sessions(model, origin, &[intra_threads], intra_threads)?;
        let session = sessions.pop().expect("one session asked for");
        Ok((Model::new(session, origin.to_path_buf()), provider))
    }

    /// Sessions of `model`: on the CPU one per entry of `cpu_threads`, with that many
    /// intra-op threads; on CUDA one, with `cuda_threads`.
    fn open_sessions(
        &self,
        model: &[u8],
        origin: &Path,
        cpu_threads: &[usize],
        cuda_threads: usize,
    ) -> Result<(Vec<Session>, Provider), EngineError> {
        let cuda_err = |message: String| EngineError::Cuda {
            library: self.library.clone(),
            message: format!("{}{}", message.trim_end().trim_end_matches('.'), self.cuda_preload.describe()),
        };
        let on_cpu = || self.cpu_sessions(model, origin, cpu_threads);
        let (sessions, provider) = match self.device {
            Device::Cpu => (on_cpu()?, Provider::Cpu),
            Device::Cuda => {
                let builder = register_cuda(self.builder(cuda_threads)?).map_err(|(_, message)| cuda_err(message))?;
                match self.commit(builder, model, origin) {
                    Ok(session) => (vec![session], Provider::Cuda),
                    Err(CommitError::Cuda(failure)) => return Err(cuda_err(failure)),
                    Err(CommitError::Other(e)) => return Err(e),
                }
            }
            Device::Auto => {
                let attempt = match register_cuda(self.builder(cuda_threads)?) {
                    Ok(builder) => self.commit(builder, model, origin),
                    Err((_, message)) => Err(CommitError::Cuda(message)),
                };
                match attempt {
                    Ok(session) => (vec![session], Provider::Cuda),
                    Err(CommitError::Cuda(message)) => {
                        tracing::info!("CUDA unavailable ({message}); running on CPU");
                        (on_cpu()?, Provider::Cpu)
                    }
                    Err(CommitError::Other(e)) => return Err(e),
                }
            }
        };
        tracing::info!(model = %origin.display(), provider = %provider, sessions = sessions.len(), "session ready");
        Ok((sessions, provider))
    }

    /// CPU sessions of `model`, one per entry of `threads` (its intra-op threads), created
    /// side by side. The CPU provider gets the model as `runtime.amx` and the CPU would have
    /// it. Without the memory pattern: ONNX Runtime allocates a pattern's one block outside
    /// its arena on every run, hundreds of MB at 224 px that the kernel must fault in afresh
    /// each batch; without it each tensor comes from the arena, reused from run to run.
    fn cpu_sessions(&self, model: &[u8], origin: &Path, threads: &[usize]) -> Result<Vec<Session>, EngineError> {
        let model = amx::for_cpu(model, origin, self.amx);
        let one = |intra_threads: usize| -> Result<Session, EngineError> {
            let builder = self.builder(intra_threads)?.with_memory_pattern(false).map_err(ort_err)?;
            Ok(self.commit(builder, &model, origin)?)
        };
        let (&first, others) = threads.split_first().expect("at least one CPU session asked for");
        std::thread::scope(|scope| {
            let others: Vec<_> = others.iter().map(|&t| scope.spawn(move || one(t))).collect();
            let mut sessions = vec![one(first)?];
            for other in others {
                sessions.push(other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?);
            }
            Ok(sessions)
        })
    }

    /// A session builder with this engine's optimisation level and thread counts.
    fn builder(&self, intra_threads: usize) -> Result<Builder, EngineError> {
        let mut builder = Session::builder(&self.env)
            .map_err(ort_err)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(ort_err)?;
        if intra_threads > 0 {
            builder = builder.with_intra_threads(intra_threads).map_err(ort_err)?;
        }
        if self.inter_threads > 0 {
            builder = builder.with_inter_threads(self.inter_threads).map_err(ort_err)?;
        }
        Ok(builder)
    }

    /// Creates the session. The CUDA provider registers without touching the GPU, so a missing
    /// or failing device first shows here; it is told apart from a problem with the model.
    fn commit(&self, mut builder: Builder, model: &[u8], origin: &Path) -> Result<Session, CommitError> {
        builder.commit_from_memory(model).map_err(|e| {
            let message = e.to_string();
            match cuda_failure(&message) {
                Some(failure) => CommitError::Cuda(failure),
                None => CommitError::Other(EngineError::Model { path: origin.to_path_buf(), message }),
            }
        })
    }
}

/// Why a session could not be created: the CUDA device or libraries, or anything else.
enum CommitError {
    Cuda(String),
    Other(EngineError),
}

/// On the CPU provider no CUDA failure can happen; should one, it is reported as it came.
impl From<CommitError> for EngineError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Cuda(message) => EngineError::Ort(message),
            CommitError::Other(e) => e,
        }
    }
}

/// The one readable line of a CUDA, cuDNN or cuBLAS failure in ONNX Runtime's error text:
/// `CUDA failure 100: no CUDA-capable device is detected` without the C++ signature around it.
fn cuda_failure(message: &str) -> Option<String> {
    let start = ["CUDA failure ", "CUDNN failure ", "CUBLAS failure "].iter().filter_map(|m| message.find(m)).min()?;
    let failure = &message[start..];
    let end = failure.find(" ; ").unwrap_or(failure.len());
    Some(failure[..end].trim().to_string())
}

fn read_model(path: &Path) -> Result<Vec<u8>, EngineError> {
    std::fs::read(path).map_err(|e| EngineError::Model { path: path.to_path_buf(), message: e.to_string() })
}

/// `1.31.1` from `.../libonnxruntime.so.1.31.1`.
fn version_from_file_name(library: &Path) -> Option<String> {
    let name = library.file_name()?.to_str()?;
    let version = name.split_once(".so.")?.1;
    version.chars().next()?.is_ascii_digit().then(|| version.to_string())
}

/// ONNX Runtime allows one library and one environment per process; every engine shares them.
static ENVIRONMENT: Mutex<Option<(PathBuf, ort::environment::Environment)>> = Mutex::new(None);

fn process_environment(library: PathBuf) -> Result<(PathBuf, ort::environment::Environment), EngineError> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((loaded, env)) = slot.as_ref() {
        if *loaded != library {
            tracing::warn!(
                loaded = %loaded.display(),
                requested = %library.display(),
                "ONNX Runtime is already loaded in this process; reusing it"
            );
        }
        return Ok((loaded.clone(), env.clone()));
    }
    let builder =
        ort::init_from(&library).map_err(|e| EngineError::Load { path: library.clone(), message: e.to_string() })?;
    // Nothing leaves the experiment folder unasked: no usage events from ONNX Runtime.
    let env = builder.with_name("cxr").with_telemetry(false).build().map_err(ort_err)?;
    tracing::debug!(library = %library.display(), "ONNX Runtime loaded");
    *slot = Some((library.clone(), env.clone()));
    Ok((library, env))
}

type Builder = ort::session::builder::SessionBuilder;

/// Registers the CUDA provider as an error on failure (never a silent CPU fallback).
#[cfg(feature = "cuda")]
#[allow(clippy::result_large_err)] // called once per session; boxing buys nothing
fn register_cuda(builder: Builder) -> Result<Builder, (Builder, String)> {
    // TF32 (ONNX Runtime's default on Ampere and later) rounds convolution inputs to 10-bit
    // mantissas: on an H200 the demo's probabilities moved by up to 8.7e-3 from the CPU's.
    // The same model.onnx must give the same answer on either device, so it stays off.
    let cuda = ort::ep::CUDA::default().with_tf32(false);
    builder.with_execution_providers([cuda.build().error_on_failure()]).map_err(|e| {
        let message = e.to_string();
        (e.recover(), message)
    })
}

#[cfg(not(feature = "cuda"))]
#[allow(clippy::result_large_err)] // called once per session; boxing buys nothing
fn register_cuda(builder: Builder) -> Result<Builder, (Builder, String)> {
    Err((builder, "this binary was built without the `cuda` feature".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cuda_failure_is_cut_to_its_readable_line() {
        // As ONNX Runtime 1.31.1 reported it on an H200 machine with CUDA_VISIBLE_DEVICES=-1.
        let message = "/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_call.cc:154 std::conditional_t<THRW, \
            void, onnxruntime::common::Status> onnxruntime::CudaCall(ERRTYPE, const char*, const char*, SUCCTYPE, \
            const char*, const char*, int) [with ERRTYPE = cudaError; bool THRW = true] CUDA failure 100: no \
            CUDA-capable device is detected ; GPU=-1 ; hostname=vm ; expr=cudaSetDevice(info_.device_id); ";
        assert_eq!(cuda_failure(message).as_deref(), Some("CUDA failure 100: no CUDA-capable device is detected"));
        assert_eq!(cuda_failure("Invalid model: Node (Conv_3) has input size 4"), None);
    }
}
