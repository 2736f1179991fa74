//! Content addressing and the on-disk cache of precompiled components.
//!
//! Compiling a component takes tens to hundreds of milliseconds; loading the
//! precompiled artifact (memory-mapped) takes well under one. Artifacts are
//! keyed by the component's sha256 and by the engine's compatibility hash,
//! because an artifact is only valid for the wasmtime version and settings
//! that produced it.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The sha256 of a component's bytes: its identity everywhere in Baton.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A digest that is not 64 hexadecimal digits.
#[derive(Debug, thiserror::Error)]
#[error("a sha256 digest is 64 hexadecimal digits, got `{0}`")]
pub struct BadDigest(String);

impl FromStr for Digest {
    type Err = BadDigest;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| BadDigest(s.to_owned()))?;
        Ok(Self(bytes))
    }
}

/// Precompiled artifacts on disk, written by this process only (loading an
/// artifact is `unsafe` precisely because it must be trusted).
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
    /// Bytes of artifacts kept; past it the least recently used go.
    max_bytes: u64,
}

impl ArtifactCache {
    pub(crate) fn open(dir: &Path, engine: &Engine, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self { dir: dir.to_owned(), engine_key: format!("{:016x}", hasher.finish()), max_bytes })
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// Loads the artifact for `digest`, if one is cached and still valid.
    pub(crate) fn load(&self, engine: &Engine, digest: &Digest) -> Option<Component> {
        let path = self.path(digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `store` below from
        // `Component::serialize` of this engine's configuration (the name
        // carries its compatibility hash) in a directory this process owns;
        // wasmtime still checks the header and refuses a mismatched artifact.
        #[allow(unsafe_code, reason = "loading our own precompiled artifact, see SAFETY")]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => {
                // Its time of last use, for eviction.
                let touched = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|file| file.set_modified(std::time::SystemTime::now()));
                if let Err(error) = touched {
                    tracing::debug!(%digest, "could not mark a cached artifact used: {error}");
                }
                Some(component)
            }
            Err(error) => {
                tracing::warn!(%digest, path = %path.display(), "discarding unusable precompiled artifact: {error:#}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores the precompiled form of `component`; atomic, so a reader never
    /// sees half a file. Then evicts the least recently used artifacts past
    /// the size budget, and returns their digests.
    pub(crate) fn store(
        &self,
        digest: &Digest,
        component: &Component,
    ) -> anyhow::Result<Vec<Digest>> {
        let bytes = component.serialize()?;
        let path = self.path(digest);
        // Per process: within one, `Sandbox::load` writes an artifact once.
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, &path)?;
        Ok(self.evict_past_budget(digest))
    }

    /// Removes the least recently used artifacts until the rest fit the
    /// budget; never `keep`, the one just stored.
    fn evict_past_budget(&self, keep: &Digest) -> Vec<Digest> {
        let mut artifacts: Vec<(std::time::SystemTime, u64, Digest)> = self.artifacts().collect();
        let mut total: u64 = artifacts.iter().map(|(_, len, _)| len).sum();
        artifacts.sort_unstable_by_key(|(used, _, _)| *used);
        let mut evicted = Vec::new();
        for (_, len, digest) in artifacts {
            if total <= self.max_bytes {
                break;
            }
            if digest != *keep {
                self.remove(&digest);
                total = total.saturating_sub(len);
                evicted.push(digest);
            }
        }
        evicted
    }

    /// Removes the artifact for `digest`, if there is one.
    pub(crate) fn remove(&self, digest: &Digest) {
        let path = self.path(digest);
        if let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%digest, path = %path.display(), "could not remove a cached artifact: {error}");
        }
    }

    /// Bytes of the artifacts cached for this engine.
    pub(crate) fn bytes(&self) -> u64 {
        self.artifacts().map(|(_, len, _)| len).sum()
    }

    /// Digests with a precompiled artifact for this engine.
    pub(crate) fn digests(&self) -> Vec<Digest> {
        self.artifacts().map(|(_, _, digest)| digest).collect()
    }

    /// The artifacts cached for this engine: when each was last used, its
    /// size and its digest.
    fn artifacts(&self) -> impl Iterator<Item = (std::time::SystemTime, u64, Digest)> {
        let suffix = format!("-{}.cwasm", self.engine_key);
        std::fs::read_dir(&self.dir).into_iter().flatten().filter_map(move |entry| {
            let entry = entry.ok()?;
            let digest: Digest = entry.file_name().to_str()?.strip_suffix(&suffix)?.parse().ok()?;
            let metadata = entry.metadata().ok()?;
            Some((metadata.modified().ok()?, metadata.len(), digest))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_through_hex() {
        let digest = Digest::of(b"hello");
        let text = digest.to_string();
        assert_eq!(text, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(text.parse::<Digest>().unwrap(), digest);
        assert!("xyz".parse::<Digest>().is_err());
    }
}
