//! A run's scratch directory: the one place of the host's filesystem a flow
//! sees, preopened as [`GUEST_PATH`] (where libraries look first) so that
//! libraries needing temporary files work; made empty for the run, held to
//! its size cap, and emptied when the run ends (what the run wrote is
//! removed; an empty directory is kept for the next run, [`ScratchPool`]).
//!
//! The cap is kept by the filesystem interface itself: `wasi:filesystem`
//! is linked through [`ScratchFilesystem`], which passes every call to
//! wasmtime-wasi's own implementation but charges what grows the directory
//! (writes, a file made longer, a new entry) to the run's [`Quota`] first;
//! past it the call fails with `ENOSPC`, an error the flow sees on its
//! write, not a trap.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::host::RunLog;
use baton_proto::v1::LogLevel;
use baton_proto::v1::limits::human_bytes;
use bytes::Bytes;
use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, ErrorCode, HostDescriptor, HostDirectoryEntryStream,
};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, FsError, FsResult, OutputStream, Pollable, StreamError,
    StreamResult,
};

/// Where the flow sees its scratch directory.
pub const GUEST_PATH: &str = "/tmp";

/// What a new directory entry (file, directory, link) is charged: bounds
/// a flood of empty files as bytes bound a big one.
const ENTRY_BYTES: u64 = 4096;

/// Names scratch directories uniquely within a process.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Empty scratch directories kept for the next runs, under one root:
/// making and removing a directory costs about 80 µs on this machine's
/// ext4, several times the rest of a run's start. A directory goes back
/// only if the run left it empty; one with files in it is removed.
pub(crate) struct ScratchPool {
    root: PathBuf,
    idle: Mutex<Vec<PathBuf>>,
    /// Idle directories kept at most (one per instance slot).
    keep: usize,
}

impl ScratchPool {
    /// A pool under `root`, after removing what processes that are gone
    /// left there.
    pub(crate) fn new(root: PathBuf, keep: usize) -> Self {
        sweep(&root);
        Self { root, idle: Mutex::new(Vec::new()), keep }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// An empty directory for one run, of at most `limit_bytes`.
    pub(crate) fn take(
        self: &Arc<Self>,
        limit_bytes: u64,
        log: Arc<RunLog>,
    ) -> std::io::Result<Scratch> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let path = match idle {
            Some(path) => path,
            None => {
                std::fs::create_dir_all(&self.root)?;
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let path = self.root.join(format!("run-{}-{n}", std::process::id()));
                std::fs::create_dir(&path)?;
                path
            }
        };
        let quota = Arc::new(Quota {
            root: path.clone(),
            limit: limit_bytes,
            used: Mutex::new(0),
            log,
            refused: AtomicBool::new(false),
        });
        Ok(Scratch { path, quota, pool: Arc::clone(self) })
    }

    /// Takes back a run's directory: kept if empty, removed otherwise.
    fn give_back(&self, path: PathBuf) {
        let empty = std::fs::read_dir(&path).is_ok_and(|mut entries| entries.next().is_none());
        if empty {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < self.keep {
                idle.push(path);
                return;
            }
        }
        if let Err(error) = std::fs::remove_dir_all(&path) {
            tracing::warn!(path = %path.display(), "could not remove a run's scratch directory: {error}");
        }
    }
}

/// Removes the scratch directories under `root` whose process is gone
/// (killed before it could remove them).
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix("run-")?.split('-').next());
        let gone = pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists());
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A run's scratch directory on the host: empty when taken, emptied (or
/// removed) when dropped.
pub(crate) struct Scratch {
    path: PathBuf,
    quota: Arc<Quota>,
    pool: Arc<ScratchPool>,
}

impl Scratch {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn quota(&self) -> &Arc<Quota> {
        &self.quota
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.path));
    }
}

/// How much of its cap a scratch directory uses.
pub(crate) struct Quota {
    root: PathBuf,
    limit: u64,
    /// An upper bound of the bytes used: what was charged since the
    /// directory was last measured (rewrites and deletions are noticed
    /// only when the bound reaches the cap and it is measured again).
    used: Mutex<u64>,
    /// Where the first refusal is said: the flow's language may see only
    /// an I/O error.
    log: Arc<RunLog>,
    refused: AtomicBool,
}

impl Quota {
    /// Charges `bytes` about to be written, or refuses them with `ENOSPC`.
    fn charge(&self, bytes: u64) -> std::io::Result<()> {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        if used.saturating_add(bytes) > self.limit {
            *used = measure(&self.root);
        }
        if used.saturating_add(bytes) > self.limit {
            if !self.refused.swap(true, Ordering::Relaxed) {
                self.log.log(
                    LogLevel::Error,
                    &format!(
                        "a write to the run's scratch directory was refused: it holds {} of its {} cap (job variable scratch_mib)",
                        human_bytes(usize::try_from(*used).unwrap_or(usize::MAX)),
                        human_bytes(usize::try_from(self.limit).unwrap_or(usize::MAX)),
                    ),
                );
            }
            return Err(std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error()));
        }
        *used = used.saturating_add(bytes);
        Ok(())
    }

    fn charge_fs(&self, bytes: u64) -> FsResult<()> {
        self.charge(bytes).map_err(|_| FsError::from(ErrorCode::InsufficientSpace))
    }
}

/// The bytes a directory holds: its files' lengths and [`ENTRY_BYTES`] per
/// entry, without following links.
fn measure(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| {
            let size = match entry.metadata() {
                Ok(meta) if meta.is_dir() => measure(&entry.path()),
                Ok(meta) => meta.len(),
                Err(_) => 0,
            };
            size.saturating_add(ENTRY_BYTES)
        })
        .fold(0, u64::saturating_add)
}

/// `wasi:filesystem/types` with the run's quota in front of wasmtime-wasi's.
pub(crate) struct ScratchFilesystem;

impl HasData for ScratchFilesystem {
    type Data<'a> = ScratchView<'a>;
}

/// One call's view: wasmtime-wasi's filesystem and the run's quota (none
/// when the run has no scratch directory, which leaves nothing to write to).
pub(crate) struct ScratchView<'a> {
    pub(crate) inner: WasiFilesystemCtxView<'a>,
    pub(crate) quota: Option<&'a Arc<Quota>>,
}

impl ScratchView<'_> {
    fn charge(&self, bytes: u64) -> FsResult<()> {
        self.quota.map_or(Ok(()), |quota| quota.charge_fs(bytes))
    }

    /// Wraps a stream that writes into a file so its writes are charged.
    fn charged(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some(quota) = self.quota else { return Ok(stream) };
        let inner = self.inner.table.delete(stream)?;
        let charged: DynOutputStream = Box::new(ChargedStream { inner, quota: Arc::clone(quota) });
        Ok(self.inner.table.push(charged)?)
    }
}

/// A borrow of the descriptor `fd` names, to pass it on while keeping it.
fn again<T: 'static>(fd: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(fd.rep())
}

impl types::Host for ScratchView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.inner, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.inner, err)
    }
}

impl HostDirectoryEntryStream for ScratchView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        self.inner.read_directory_entry(stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}

impl HostDescriptor for ScratchView<'_> {
    // What grows the directory is charged first.

    async fn set_size(&mut self, fd: Resource<types::Descriptor>, size: u64) -> FsResult<()> {
        let current = self.inner.stat(again(&fd)).await?.size;
        self.charge(size.saturating_sub(current))?;
        self.inner.set_size(fd, size).await
    }

    async fn write(
        &mut self,
        fd: Resource<types::Descriptor>,
        buf: Vec<u8>,
        offset: u64,
    ) -> FsResult<u64> {
        self.charge(u64::try_from(buf.len()).unwrap_or(u64::MAX))?;
        self.inner.write(fd, buf, offset).await
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: u64,
    ) -> FsResult<Resource<DynOutputStream>> {
        let stream = self.inner.write_via_stream(fd, offset)?;
        self.charged(stream)
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let stream = self.inner.append_via_stream(fd)?;
        self.charged(stream)
    }

    async fn open_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<types::Descriptor>> {
        if oflags.contains(types::OpenFlags::CREATE) {
            self.charge(ENTRY_BYTES)?;
        }
        self.inner.open_at(fd, path_flags, path, oflags, flags).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.charge(ENTRY_BYTES)?;
        self.inner.create_directory_at(fd, path).await
    }

    async fn link_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_descriptor: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.charge(ENTRY_BYTES)?;
        self.inner.link_at(fd, old_path_flags, old_path, new_descriptor, new_path).await
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        self.charge(ENTRY_BYTES)?;
        self.inner.symlink_at(fd, src_path, dest_path).await
    }

    // The rest passes through.

    async fn advise(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: u64,
        len: u64,
        advice: types::Advice,
    ) -> FsResult<()> {
        self.inner.advise(fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        self.inner.sync_data(fd).await
    }

    async fn get_flags(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<types::DescriptorFlags> {
        self.inner.get_flags(fd).await
    }

    async fn get_type(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<types::DescriptorType> {
        self.inner.get_type(fd).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<types::Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.inner.set_times(fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<types::Descriptor>,
        len: u64,
        offset: u64,
    ) -> FsResult<(Vec<u8>, bool)> {
        self.inner.read(fd, len, offset).await
    }

    async fn read_directory(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        self.inner.read_directory(fd).await
    }

    async fn sync(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        self.inner.sync(fd).await
    }

    async fn stat(&mut self, fd: Resource<types::Descriptor>) -> FsResult<types::DescriptorStat> {
        self.inner.stat(fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        self.inner.stat_at(fd, path_flags, path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.inner.set_times_at(fd, path_flags, path, atim, mtim).await
    }

    fn drop(&mut self, fd: Resource<types::Descriptor>) -> wasmtime::Result<()> {
        HostDescriptor::drop(&mut self.inner, fd)
    }

    async fn readlink_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<String> {
        self.inner.readlink_at(fd, path).await
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.inner.remove_directory_at(fd, path).await
    }

    async fn rename_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path: String,
        new_fd: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.inner.rename_at(fd, old_path, new_fd, new_path).await
    }

    async fn unlink_file_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.inner.unlink_file_at(fd, path).await
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: u64,
    ) -> FsResult<Resource<DynInputStream>> {
        self.inner.read_via_stream(fd, offset)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<types::Descriptor>,
        b: Resource<types::Descriptor>,
    ) -> wasmtime::Result<bool> {
        self.inner.is_same_object(a, b).await
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<types::MetadataHashValue> {
        self.inner.metadata_hash(fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        self.inner.metadata_hash_at(fd, path_flags, path).await
    }
}

/// A file's output stream whose writes are charged to the run's quota.
struct ChargedStream {
    inner: DynOutputStream,
    quota: Arc<Quota>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for ChargedStream {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for ChargedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.quota.charge(len).map_err(|error| StreamError::LastOperationFailed(error.into()))?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_measures_again_before_it_refuses() {
        let root = tempfile::tempdir().unwrap();
        let reports = Arc::new(crate::ReportCollector::default());
        let log = Arc::new(RunLog::new(reports.clone(), &crate::Grants::default()));
        let pool = Arc::new(ScratchPool::new(root.path().to_owned(), 1));
        let scratch = pool.take(3 * ENTRY_BYTES, log.clone()).unwrap();
        let quota = scratch.quota();
        assert!(quota.charge(2 * ENTRY_BYTES).is_ok());
        // Over the bound, but the directory is empty: measured, it fits.
        assert!(quota.charge(2 * ENTRY_BYTES).is_ok());
        std::fs::write(scratch.path().join("f"), vec![0; 1024]).unwrap();
        let refused = quota.charge(2 * ENTRY_BYTES).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(rustix::io::Errno::NOSPC.raw_os_error()));
        assert!(quota.charge(2 * ENTRY_BYTES).is_err());
        assert_eq!(reports.reports().len(), 1, "each refusal was logged");
        let path = scratch.path().to_owned();
        drop(scratch);
        assert!(!path.exists(), "a scratch directory with files in it outlived its run");
        // An empty one is kept for the next run.
        let empty = pool.take(ENTRY_BYTES, log.clone()).unwrap();
        let kept = empty.path().to_owned();
        drop(empty);
        assert!(kept.exists());
        assert_eq!(pool.take(ENTRY_BYTES, log).unwrap().path(), kept);
    }
}
