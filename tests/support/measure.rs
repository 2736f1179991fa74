//! What the benchmarks measure with: percentiles of latencies, a
//! process's resident memory, the wall clock.

use std::time::Duration;

/// The `p` percentile (0.0 to 1.0) of sorted latencies; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let last = sorted.len().saturating_sub(1);
    let index = (last as f64 * p).round() as usize;
    sorted.get(index.min(last)).copied().unwrap_or_default()
}

/// Resident memory (VmRSS) of process `pid`, or of this process, in KiB;
/// 0 if it cannot be read.
pub fn resident_kib(pid: Option<u32>) -> u64 {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |p| format!("/proc/{p}/status"));
    std::fs::read_to_string(path)
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The highest resident memory of process `pid` while `during` runs,
/// sampled every 10 ms, in kB.
pub fn peak_resident_kib<T>(pid: u32, during: impl FnOnce() -> T) -> (T, u64) {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(resident_kib(Some(pid)));
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            peak
        });
        let result = during();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (result, sampler.join().unwrap_or(0))
    })
}

/// Milliseconds since the Unix epoch, as the core stamps runs.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
