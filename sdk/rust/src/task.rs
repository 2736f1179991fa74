//! Tasks: named steps of a flow that the host times, shows, retries and
//! caches, like Prefect's `@task`.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::baton::flow::host::{self, TaskSpec, TaskStart};
use crate::bindings::baton::flow::task_cache;

/// Starts describing a task called `name`; finish with [`Task::run`].
pub fn task(name: impl Into<String>) -> Task {
    Task {
        name: name.into(),
        retries: 0,
        retry_delay: Duration::ZERO,
        cache_key: None,
        cache_expiration: None,
    }
}

/// A task about to run: its name, retry policy and cache key.
#[derive(Debug, Clone)]
#[must_use = "a task does nothing until `.run(...)` is called"]
pub struct Task {
    name: String,
    retries: u32,
    retry_delay: Duration,
    cache_key: Option<String>,
    cache_expiration: Option<Duration>,
}

impl Task {
    /// Runs the task again up to `retries` more times when it fails.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Waits this long between attempts.
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Lets the host answer with the result stored under `key` by an earlier
    /// successful attempt of a task with the same key, in this run or an
    /// earlier run of the same deployment, instead of running it.
    pub fn cache_key(mut self, key: impl Into<String>) -> Self {
        self.cache_key = Some(key.into());
        self
    }

    /// How long the result this task stores under its cache key is used;
    /// without it, until the deployment's cache budget pushes it out.
    pub fn cache_expiration(mut self, expiration: Duration) -> Self {
        self.cache_expiration = Some(expiration);
        self
    }

    /// Runs `body`, retrying on error as configured; returns its output or
    /// the last attempt's error.
    pub fn run<T, F>(self, mut body: F) -> anyhow::Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut() -> anyhow::Result<T>,
    {
        let max_attempts = self.retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            let spec = TaskSpec {
                name: self.name.clone(),
                attempt,
                max_attempts,
                cache_key: self.cache_key.clone(),
            };
            let id = match host::start_task(&spec) {
                TaskStart::Cached(json) => match serde_json::from_str(&json) {
                    Ok(value) => return Ok(value),
                    // A cached value of another shape (the task's type
                    // changed): run the task, and its result replaces it.
                    Err(e) => {
                        crate::warn!(
                            "task `{}`: the cached result is not what the task returns now ({e}); running it and replacing that result",
                            self.name
                        );
                        task_cache::start_uncached(&spec)
                    }
                },
                TaskStart::Run(id) => id,
            };
            if let (Some(_), Some(expiration)) = (&self.cache_key, self.cache_expiration) {
                let millis = u64::try_from(expiration.as_millis()).unwrap_or(u64::MAX);
                task_cache::expire_after(id, millis);
            }
            let error = match body() {
                Ok(value) => match serde_json::to_string(&value) {
                    Ok(json) => {
                        host::finish_task(id, Ok(&json));
                        return Ok(value);
                    }
                    Err(e) => anyhow::anyhow!("task `{}` output is not JSON: {e}", self.name),
                },
                Err(error) => error,
            };
            host::finish_task(id, Err(&format!("{error:#}")));
            if attempt >= max_attempts {
                return Err(error.context(format!(
                    "task `{}` failed after {attempt} attempt{}",
                    self.name,
                    if attempt == 1 { "" } else { "s" }
                )));
            }
            crate::warn!(
                "task `{}` attempt {attempt}/{max_attempts} failed: {error:#}; retrying",
                self.name
            );
            if !self.retry_delay.is_zero() {
                std::thread::sleep(self.retry_delay);
            }
            attempt += 1;
        }
    }
}
