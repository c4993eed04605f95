//! Features cached on disk under a key made from everything that determines them: the
//! extractor, its weights, the preprocessing and the images' bytes.

use super::{read_features, Features};
use crate::io::{write_atomic, write_npy_f32};
use crate::Result;
use std::path::{Path, PathBuf};

/// A BLAKE3 hash of parts fed one at a time (a dataset need not be in memory at once), each
/// length-prefixed so that boundaries count.
pub struct ContentKey(blake3::Hasher);

impl ContentKey {
    pub fn new() -> Self {
        ContentKey(blake3::Hasher::new())
    }

    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// The hash in hex.
    pub fn finish(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

impl Default for ContentKey {
    fn default() -> Self {
        Self::new()
    }
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

    /// The names of the images skipped as unreadable, one per line, beside the features.
    fn skipped_file(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.skipped.txt"))
    }

    /// The cached features for `key` with the images skipped when they were made, if present
    /// and readable.
    pub fn get(&self, key: &str) -> Option<Features> {
        let mut features = read_features(&self.file(key)).ok()?;
        let skipped = self.skipped_file(key);
        if skipped.exists() {
            let names = std::fs::read_to_string(skipped).ok()?;
            features.skipped = names.lines().map(str::to_owned).collect();
        }
        Some(features)
    }

    /// Stores features under `key` (atomically; the folder is created). The skipped names are
    /// written first: features present means their list is complete.
    pub fn put(&self, key: &str, features: &Features) -> Result<()> {
        crate::io::create_writable_dir(&self.dir)?;
        if !features.skipped.is_empty() {
            let names: String = features.skipped.iter().map(|n| format!("{n}\n")).collect();
            write_atomic(&self.skipped_file(key), names.as_bytes())?;
        }
        write_npy_f32(&self.file(key), &[features.n, features.dim], &features.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_hit_returns_the_features_and_the_images_skipped_making_them() {
        let dir = std::env::temp_dir().join(format!("whichgan-cache-{}", std::process::id()));
        let cache = FeatureCache::new(&dir);
        let features = Features {
            n: 2,
            dim: 3,
            data: vec![0.5, 1.0, -2.0, 3.0, 0.0, 7.25],
            skipped: vec!["bad.png".into(), "sub/worse.jpg".into()],
        };
        cache.put("with", &features).unwrap();
        cache
            .put(
                "without",
                &Features {
                    skipped: Vec::new(),
                    ..features.clone()
                },
            )
            .unwrap();
        let (with, without) = (cache.get("with"), cache.get("without"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(with.as_ref(), Some(&features));
        assert_eq!(without.unwrap().skipped, Vec::<String>::new());
        assert!(cache.get("absent").is_none());
    }

    #[test]
    fn keys_count_part_boundaries() {
        let key = |parts: &[&[u8]]| {
            let mut k = ContentKey::new();
            parts.iter().for_each(|p| {
                k.part(p);
            });
            k.finish()
        };
        assert_eq!(key(&[b"ab", b"c"]), key(&[b"ab", b"c"]));
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
    }
}
