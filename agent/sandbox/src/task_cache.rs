//! The task cache: a task started with a cache key is answered with the
//! result stored under that key, if one is there and has not expired. The
//! sandbox hashes the keys (a key may hold a secret), keeps out results it
//! must not store (over the size limit, holding a secret's value) and asks
//! the embedder's [`TaskCache`]: the agent asks the core, which keeps
//! results across runs of a deployment; a local run keeps them in memory.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use baton_proto::v1::limits::over_limit;
use baton_proto::v1::{CacheAnswer, CacheOp, LogLevel, MAX_CACHED_RESULT_BYTES, ReportBody};
use sha2::{Digest as _, Sha256};

use crate::bindings::{self, TaskSpec, TaskStart};
use crate::host::FlowHost;

/// What a [`TaskCache`] answers with.
pub type CacheAnswerFuture = Pin<Box<dyn Future<Output = CacheAnswer> + Send>>;

/// The embedder's task cache. Keys arrive hashed (see [`key_digest`]);
/// an implementation that asks over a network retries as it sees fit, the
/// sandbox gives up after [`CACHE_ANSWER_TIMEOUT`].
pub trait TaskCache: Send + Sync {
    fn ask(&self, op: CacheOp) -> CacheAnswerFuture;
}

/// How long a task waits for the cache: past it the task runs (a lookup)
/// or its result goes uncached (a store), and the run's log says so.
pub const CACHE_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of results a [`MemoryTaskCache`] keeps. It lives outside the
/// sandbox's memory cap, so a flow caching result after result must not
/// grow the host without bound: past the budget a result is not cached.
pub const MAX_MEMORY_TASK_CACHE_BYTES: usize = 64 << 20;

/// The name a cache key is kept under: its sha256, in hex.
pub fn key_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A [`TaskCache`] in memory, for one process, within
/// [`MAX_MEMORY_TASK_CACHE_BYTES`].
#[derive(Debug, Default)]
pub struct MemoryTaskCache(Mutex<CachedOutputs>);

#[derive(Debug, Default)]
struct CachedOutputs {
    /// Key to the result and when it expires.
    outputs: HashMap<String, (String, Option<Instant>)>,
    bytes: usize,
}

impl MemoryTaskCache {
    fn answer(&self, op: CacheOp) -> CacheAnswer {
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match op {
            CacheOp::Get { key } => match cache.outputs.get(&key) {
                Some((output, expires)) if expires.is_none_or(|at| Instant::now() < at) => {
                    CacheAnswer::Hit { output: output.clone(), run_id: None }
                }
                _ => CacheAnswer::Miss,
            },
            CacheOp::Put { key, output, expire_after_ms } => {
                let size = key.len() + output.len();
                let replaced = cache.outputs.get(&key).map_or(0, |(old, _)| key.len() + old.len());
                let bytes = cache.bytes - replaced + size;
                if bytes > MAX_MEMORY_TASK_CACHE_BYTES {
                    return CacheAnswer::Refused {
                        reason: over_limit("the task cache", bytes, MAX_MEMORY_TASK_CACHE_BYTES),
                    };
                }
                let expires = expire_after_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
                cache.outputs.insert(key, (output, expires));
                cache.bytes = bytes;
                CacheAnswer::Stored
            }
        }
    }
}

impl TaskCache for MemoryTaskCache {
    fn ask(&self, op: CacheOp) -> CacheAnswerFuture {
        let answer = self.answer(op);
        Box::pin(async move { answer })
    }
}

/// A task attempt started and not yet finished.
pub(crate) struct OpenTask {
    name: String,
    cache_key: Option<String>,
    expire_after_ms: Option<u64>,
}

impl FlowHost {
    /// Asks the embedder's cache, for at most [`CACHE_ANSWER_TIMEOUT`].
    async fn ask_cache(&self, op: CacheOp) -> CacheAnswer {
        let asked = self.task_cache().ask(op);
        tokio::time::timeout(CACHE_ANSWER_TIMEOUT, asked).await.unwrap_or_else(|_| {
            CacheAnswer::Refused {
                reason: format!("no answer within {} s", CACHE_ANSWER_TIMEOUT.as_secs()),
            }
        })
    }

    /// Starts a task: answered from the cache when its key has a result
    /// there, else opened (see [`FlowHost::open_started_task`]).
    pub(crate) async fn start_cached_task(&mut self, spec: TaskSpec) -> TaskStart {
        if let Some(key) = &spec.cache_key {
            match self.ask_cache(CacheOp::Get { key: key_digest(key) }).await {
                CacheAnswer::Hit { output, run_id } => {
                    let task_id = self.next_task_id();
                    self.log().emit(ReportBody::TaskCached {
                        name: self.log().redact(&spec.name),
                        cache_key: self.log().redact(key),
                        task_id: Some(task_id),
                        from_run: run_id,
                    });
                    return TaskStart::Cached(output);
                }
                CacheAnswer::Refused { reason } => {
                    let name = &spec.name;
                    self.log().log(
                        LogLevel::Warn,
                        &format!(
                            "task `{name}`: the task cache did not answer ({reason}); running it"
                        ),
                    );
                }
                CacheAnswer::Miss | CacheAnswer::Stored => {}
            }
        }
        TaskStart::Run(self.open_started_task(spec))
    }

    /// Numbers a task, keeps it open until it finishes (its result is
    /// cached then, if it has a key) and reports it started.
    fn open_started_task(&mut self, spec: TaskSpec) -> u64 {
        let task_id = self.next_task_id();
        let open = OpenTask {
            name: spec.name.clone(),
            cache_key: spec.cache_key.clone(),
            expire_after_ms: None,
        };
        self.open_task(task_id, open);
        self.log().emit(ReportBody::TaskStarted {
            task_id,
            name: self.log().redact(&spec.name),
            attempt: spec.attempt,
            max_attempts: spec.max_attempts,
            cache_key: spec.cache_key.as_deref().map(|key| self.log().redact(key)),
        });
        task_id
    }

    /// Stores a finished task's result under its cache key, unless it is
    /// too large or holds a secret's value (the log says which).
    pub(crate) async fn cache_result(&self, task: OpenTask, output_json: &str) {
        let Some(key) = task.cache_key else { return };
        let name = self.log().redact(&task.name);
        let refused = if output_json.len() > MAX_CACHED_RESULT_BYTES {
            Some(over_limit("its result", output_json.len(), MAX_CACHED_RESULT_BYTES))
        } else if self.log().holds_secret(output_json) {
            Some("its result holds a secret's value, which the cache never stores".to_owned())
        } else {
            let put = CacheOp::Put {
                key: key_digest(&key),
                output: output_json.to_owned(),
                expire_after_ms: task.expire_after_ms,
            };
            match self.ask_cache(put).await {
                CacheAnswer::Refused { reason } => Some(reason),
                CacheAnswer::Stored | CacheAnswer::Hit { .. } | CacheAnswer::Miss => None,
            }
        };
        if let Some(reason) = refused {
            self.log().log(LogLevel::Warn, &format!("task `{name}` was not cached: {reason}"));
        }
    }
}

impl bindings::baton::flow::task_cache::Host for FlowHost {
    async fn start_uncached(&mut self, spec: TaskSpec) -> u64 {
        self.open_started_task(spec)
    }

    fn expire_after(&mut self, task_id: u64, milliseconds: u64) {
        // A task that is not open (finished, never started) is ignored.
        if let Some(task) = self.open_task_mut(task_id) {
            task.expire_after_ms = Some(milliseconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(cache: &MemoryTaskCache, key: &str, output: &str, expire_after_ms: Option<u64>) -> bool {
        let op = CacheOp::Put { key: key.into(), output: output.into(), expire_after_ms };
        matches!(cache.answer(op), CacheAnswer::Stored)
    }

    fn get(cache: &MemoryTaskCache, key: &str) -> Option<String> {
        match cache.answer(CacheOp::Get { key: key.into() }) {
            CacheAnswer::Hit { output, .. } => Some(output),
            _ => None,
        }
    }

    #[test]
    fn the_memory_cache_keeps_within_its_budget_and_expires() {
        let cache = MemoryTaskCache::default();
        assert!(put(&cache, "small", "1", None));
        assert_eq!(get(&cache, "small").as_deref(), Some("1"));
        // 1 MiB results: 63 fit in 64 MiB beside the small one, the 64th not.
        let chunk = "y".repeat(MAX_CACHED_RESULT_BYTES);
        let kept = (0..70).filter(|i| put(&cache, &format!("k{i}"), &chunk, None)).count();
        assert_eq!(kept, MAX_MEMORY_TASK_CACHE_BYTES / MAX_CACHED_RESULT_BYTES - 1);
        // Replacing a result counts only the difference.
        assert!(put(&cache, "k0", "2", None));
        assert!(put(&cache, "k69", "3", None));
        assert_eq!(get(&cache, "k69").as_deref(), Some("3"));
        // An expired result is not used.
        assert!(put(&cache, "brief", "4", Some(0)));
        assert_eq!(get(&cache, "brief"), None);
        assert!(put(&cache, "lasting", "5", Some(60_000)));
        assert_eq!(get(&cache, "lasting").as_deref(), Some("5"));
    }

    #[test]
    fn a_key_is_kept_by_its_sha256() {
        assert_eq!(
            key_digest("hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
