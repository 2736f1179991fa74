"""The host a flow runs in, behind one small interface.

Inside a Baton component, `baton._component` installs the host that calls
the `baton:flow` imports. Anywhere else (a test, a plain `python` run) the
`LocalHost` stands in: it keeps logs, task starts and a task cache in memory,
so a flow's code can be exercised without a sandbox.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

LEVELS = ("trace", "debug", "info", "warn", "error")


class AccessError(LookupError):
    """A variable or secret the flow may not read, or that has no value."""


class SubflowError(RuntimeError):
    """A run of another deployment that the core refused to start."""


@dataclass
class TaskStart:
    """What the host decided about a task about to start: run it as task
    `task_id`, or use `cached` (JSON text) instead."""

    task_id: int | None = None
    cached: str | None = None


@dataclass
class ChildRun:
    id: str
    deployment: str
    state: str
    message: str | None
    output: str | None


class Host(Protocol):
    def log(self, level: str, message: str) -> None: ...
    def start_task(self, name: str, attempt: int, max_attempts: int, cache_key: str | None) -> TaskStart: ...
    def start_uncached(self, name: str, attempt: int, max_attempts: int, cache_key: str | None) -> int: ...
    def finish_task(self, task_id: int, output: str | None, error: str | None) -> None: ...
    def expire_after(self, task_id: int, milliseconds: int) -> None: ...
    def variable(self, name: str) -> str: ...
    def secret(self, name: str) -> str: ...
    def emit_event(self, name: str, resource: str, payload: str) -> None: ...
    def progress(self, fraction: float, message: str) -> None: ...
    def run_deployment(self, deployment: str, params: str, wait: bool, timeout_ms: int | None) -> ChildRun: ...


@dataclass
class LocalHost:
    """A host in memory: what a flow did, for tests and local runs."""

    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    logs: list[tuple[str, str]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    progress_reports: list[tuple[float, str]] = field(default_factory=list)
    cache: dict[str, str] = field(default_factory=dict)
    echo: bool = False

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))
        if self.echo:
            print(f"{level.upper():5} {message}", file=sys.stderr)

    def _open(self, name: str, attempt: int, max_attempts: int, cache_key: str | None) -> int:
        self.tasks.append(
            {"name": name, "attempt": attempt, "max_attempts": max_attempts, "cache_key": cache_key, "state": "RUNNING"}
        )
        return len(self.tasks) - 1

    def start_task(self, name: str, attempt: int, max_attempts: int, cache_key: str | None) -> TaskStart:
        if cache_key is not None and cache_key in self.cache:
            self.tasks.append({"name": name, "cache_key": cache_key, "state": "CACHED"})
            return TaskStart(cached=self.cache[cache_key])
        return TaskStart(task_id=self._open(name, attempt, max_attempts, cache_key))

    def start_uncached(self, name: str, attempt: int, max_attempts: int, cache_key: str | None) -> int:
        return self._open(name, attempt, max_attempts, cache_key)

    def finish_task(self, task_id: int, output: str | None, error: str | None) -> None:
        if not 0 <= task_id < len(self.tasks):
            return
        task = self.tasks[task_id]
        task["state"] = "COMPLETED" if error is None else "FAILED"
        task["error"] = error
        if error is None and output is not None and task.get("cache_key") is not None:
            self.cache[task["cache_key"]] = output

    def expire_after(self, task_id: int, milliseconds: int) -> None:
        if 0 <= task_id < len(self.tasks):
            self.tasks[task_id]["expire_after_ms"] = milliseconds

    def variable(self, name: str) -> str:
        if name not in self.variables:
            raise AccessError(f"variable `{name}` is not granted to this flow")
        return self.variables[name]

    def secret(self, name: str) -> str:
        if name not in self.secrets:
            raise AccessError(f"secret `{name}` is not granted to this flow")
        return self.secrets[name]

    def emit_event(self, name: str, resource: str, payload: str) -> None:
        self.events.append((name, resource, payload))

    def progress(self, fraction: float, message: str) -> None:
        self.progress_reports.append((fraction, message))

    def run_deployment(self, deployment: str, params: str, wait: bool, timeout_ms: int | None) -> ChildRun:
        raise SubflowError("no core to ask: subflows run only on a Baton agent")


_current: Host = LocalHost(echo=True)


def host() -> Host:
    """The host flows talk to now."""
    return _current


def install(new: Host) -> Host:
    """Makes `new` the host; returns the one it replaces."""
    global _current
    previous, _current = _current, new
    return previous
