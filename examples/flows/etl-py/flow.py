"""A small extract-transform-load flow in Python, the Rust `etl`'s twin:
three tasks, one of which fails on its first attempt and succeeds when
retried, a cache key, progress reports, and a variable for the unit."""

from dataclasses import dataclass

from baton import AccessError, flow, log, progress, task, variable


@dataclass
class Reading:
    sensor: str
    celsius: float


@dataclass
class Summary:
    loaded: int
    flagged: int
    mean: float
    unit: str


@task(cache_key_fn=lambda count: f"extract-{count}")
def extract(count: int) -> list[Reading]:
    readings = [Reading(f"s{i % 3}", 15.0 + (i * 7 % 11)) for i in range(count)]
    log.info(f"extracted {len(readings)} readings")
    return readings


# Attempts of the flaky task within this run (a fresh instance per run).
_transform_attempts = 0


@task(retries=2, retry_delay_seconds=0.01)
def transform(readings: list[Reading], threshold: float) -> list[Reading]:
    global _transform_attempts
    _transform_attempts += 1
    if _transform_attempts == 1:
        raise ConnectionError("upstream service busy (simulated)")
    return [r for r in readings if r.celsius > threshold]


@task
def load(readings: list[Reading], flagged: list[Reading], unit: str) -> int:
    for reading in flagged:
        log.warning(f"{reading.sensor} is hot: {reading.celsius:.1f} {unit}")
    return len(readings)


@flow(name="etl-py", version="0.1.0")
def etl(count: int = 10, threshold: float = 20.0) -> Summary:
    """Extracts readings, flags the hot ones, loads them.

    Args:
        count: How many readings to extract.
        threshold: Readings above this value are flagged.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    try:
        unit = variable("unit")
    except AccessError:
        unit = "°C"
    progress(0.0, "extracting")
    readings = extract(count)
    progress(0.33, "transforming")
    flagged = transform(readings, threshold)
    progress(0.66, "loading")
    loaded = load(readings, flagged, unit)
    progress(1.0, "done")
    mean = sum(r.celsius for r in readings) / len(readings)
    return Summary(loaded, len(flagged), mean, unit)
