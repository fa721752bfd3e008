//! ONNX Runtime, loaded at run time from `libonnxruntime.so` (the one in the PyPI
//! `onnxruntime` wheel, fetched by `models/fetch.sh`): nothing is downloaded at build
//! time, and every ONNX model in the process (Piper voices today) shares one runtime.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OnnxError {
    #[error("ONNX Runtime {path}: {message}")]
    Runtime { path: PathBuf, message: String },
    #[error("ONNX model {path}: {message}")]
    Model { path: PathBuf, message: String },
}

/// ONNX Runtime allows one environment per process, and its library loads only once.
static ENVIRONMENT: OnceLock<Result<Environment, OnnxError>> = OnceLock::new();

/// The process's runtime; the first caller's library path wins.
pub fn environment(lib: &Path) -> Result<Environment, OnnxError> {
    ENVIRONMENT
        .get_or_init(|| {
            let err = |message: String| OnnxError::Runtime {
                path: lib.into(),
                message,
            };
            if !lib.is_file() {
                return Err(err("no such file (models/fetch.sh onnxruntime)".into()));
            }
            ort::init_from(lib)
                .map_err(|e| err(e.to_string()))?
                .with_name("voicebot")
                .build()
                .map_err(|e| err(e.to_string()))
        })
        .clone()
}

/// A session on `threads` threads that never spin: the cores are shared with whisper,
/// whose own busy-waiting collapses under contention (DESIGN §3).
pub fn session(lib: &Path, model: &Path, threads: usize) -> Result<Session, OnnxError> {
    let env = environment(lib)?;
    let err = |message: String| OnnxError::Model {
        path: model.into(),
        message,
    };
    if !model.is_file() {
        return Err(err("no such file".into()));
    }
    Session::builder(&env)
        .map_err(|e| err(e.to_string()))?
        .with_intra_threads(threads)
        .map_err(|e| err(e.to_string()))?
        .with_intra_op_spinning(false)
        .map_err(|e| err(e.to_string()))?
        .with_inter_op_spinning(false)
        .map_err(|e| err(e.to_string()))?
        .commit_from_file(model)
        .map_err(|e| err(e.to_string()))
}
