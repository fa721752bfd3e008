//! The knowledge base's embeddings, kept between starts: embedding its ~1,500 examples
//! and titles takes ~27 s of one core, a cached one a file read. Files are named by the
//! SHA-256 of the text, so any number of gateways (and a reload, or a taught example)
//! share them, and a changed knowledge base embeds only its new texts.
//!
//! Only knowledge-base texts are kept: a caller's words are embedded and forgotten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::engine::{Engine, EngineError};

/// Texts embedded per call into the engine: it streams its weights once per batch.
const BATCH: usize = 64;

pub struct Store {
    engine: Engine,
    dir: PathBuf,
    /// Threads a cold cache is filled with.
    threads: usize,
    /// This process's vectors, so rebuilt matchers (a reload, a teaching preview) read
    /// no files.
    memo: Mutex<HashMap<String, Arc<[f32]>>>,
}

impl Store {
    pub fn new(engine: Engine, dir: PathBuf, threads: usize) -> Store {
        Store {
            engine,
            dir,
            threads: threads.max(1),
            memo: Mutex::new(HashMap::new()),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The vectors of `texts`, in order: from memory, else from disk, else embedded
    /// (and written to disk).
    pub fn vectors(&self, texts: &[&str]) -> Result<Vec<Arc<[f32]>>, EngineError> {
        let mut found: Vec<Option<Arc<[f32]>>> = {
            let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            texts.iter().map(|t| memo.get(*t).cloned()).collect()
        };
        for (slot, text) in found.iter_mut().zip(texts) {
            if slot.is_none() {
                *slot = self.read(text);
            }
        }
        let missing: Vec<&str> = found
            .iter()
            .zip(texts)
            .filter(|(v, _)| v.is_none())
            .map(|(_, t)| *t)
            .collect();
        if !missing.is_empty() {
            tracing::info!(
                texts = missing.len(),
                cache = %self.dir.display(),
                "embedding knowledge-base texts not seen before (once; kept on disk)"
            );
        }
        let embedded = self.embed_all(&missing)?;
        let mut fresh = missing.iter().zip(embedded);
        let vectors: Vec<Arc<[f32]>> = found
            .into_iter()
            .map(|v| match v {
                Some(v) => v,
                None => {
                    let (text, v) = fresh.next().expect("one vector per missing text");
                    let v: Arc<[f32]> = v.into();
                    self.write(text, &v);
                    v
                }
            })
            .collect();
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        for (text, v) in texts.iter().zip(&vectors) {
            memo.entry((*text).to_string()).or_insert_with(|| v.clone());
        }
        Ok(vectors)
    }

    /// `texts` embedded on `threads` threads, in order.
    fn embed_all(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let per_thread = texts.len().div_ceil(self.threads);
        std::thread::scope(|s| {
            let parts: Vec<_> = texts
                .chunks(per_thread)
                .map(|part| {
                    s.spawn(move || -> Result<Vec<Vec<f32>>, EngineError> {
                        let mut out = Vec::with_capacity(part.len());
                        for batch in part.chunks(BATCH) {
                            out.extend(self.engine.embed(batch)?);
                        }
                        Ok(out)
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(texts.len());
            for part in parts {
                all.extend(part.join().map_err(|_| EngineError::Embed(texts.len()))??);
            }
            Ok(all)
        })
    }

    fn path(&self, text: &str) -> PathBuf {
        let hash = Sha256::digest(text.as_bytes());
        let name: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.f32"))
    }

    fn read(&self, text: &str) -> Option<Arc<[f32]>> {
        let bytes = std::fs::read(self.path(text)).ok()?;
        (bytes.len() == self.engine.dim() * 4).then(|| {
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
    }

    /// Best effort: a cache that cannot be written costs time at the next start, not a
    /// wrong answer.
    fn write(&self, text: &str, v: &[f32]) {
        let path = self.path(text);
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        if let Err(e) = write_atomically(&self.dir, &path, &bytes) {
            tracing::warn!(path = %path.display(), error = %e, "embedding not cached");
        }
    }
}

/// Through a temporary file and a rename, so a gateway starting beside this one never
/// reads half a vector.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
