//! Features cached on disk under a key made from everything that determines them: the
//! extractor, its weights, the preprocessing and the images' bytes.

use super::Features;
use crate::io::{read_npy, write_npy_f32};
use crate::Result;
use std::path::{Path, PathBuf};

/// A BLAKE3 hash (hex) of the parts, each length-prefixed so that boundaries count.
pub fn content_key<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_hex().to_string()
}

/// A folder of `<key>.npy` feature files.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
}

impl FeatureCache {
    pub fn new(dir: &Path) -> Self {
        FeatureCache {
            dir: dir.to_owned(),
        }
    }

    fn file(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.npy"))
    }

    /// The cached features for `key`, if present and readable.
    pub fn get(&self, key: &str) -> Option<Features> {
        let array = read_npy(&self.file(key)).ok()?;
        let [n, dim] = array.shape[..] else {
            return None;
        };
        Some(Features {
            n,
            dim,
            data: array.data.iter().map(|&v| v as f32).collect(),
            skipped: Vec::new(),
        })
    }

    /// Stores features under `key` (atomically; the folder is created).
    pub fn put(&self, key: &str, features: &Features) -> Result<()> {
        crate::io::create_writable_dir(&self.dir)?;
        write_npy_f32(&self.file(key), &[features.n, features.dim], &features.data)
    }
}
