//! The per-run memory cap, kept in the store so that a run that hits it can
//! be told apart from one that trapped for another reason.

use wasmtime::ResourceLimiter;

/// Most table elements an instance may hold; generous for real programs,
/// small enough that a table bomb cannot exhaust the host.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

pub(crate) struct MemoryCap {
    limit_bytes: usize,
    exceeded: bool,
}

impl MemoryCap {
    pub(crate) fn new(limit_bytes: u64) -> Self {
        Self { limit_bytes: usize::try_from(limit_bytes).unwrap_or(usize::MAX), exceeded: false }
    }

    /// Whether the guest tried to grow past the cap at any point.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit_bytes {
            // Refuse (the guest sees `memory.grow` fail, and a Rust guest
            // aborts), and remember why, to name the outcome.
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
