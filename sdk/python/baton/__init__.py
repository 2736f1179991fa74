"""Write Baton flows in Python.

    from baton import flow, task, log, variable, secret, emit_event, progress

    @task(retries=2, retry_delay_seconds=0.5, cache_key_fn=lambda region: f"fx-{region}")
    def fetch_rate(region: str) -> float: ...

    @flow(name="sales-summary", version="1.2.0")
    def summarise(records: list[Record], threshold: float = 400.0) -> Summary: ...

`baton flow build DIR` builds the project into a WebAssembly component that
runs on any Baton agent. Only what is imported when the flow's module is
imported is in the component (the sandbox has no files to import from
later): import what you use at the top of your modules.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from . import _host
from ._flow import Flow, flow
from ._host import AccessError, ChildRun, LocalHost, SubflowError
from ._task import Task, task
from ._json import to_json

__all__ = [
    "AccessError",
    "ChildRun",
    "Flow",
    "LocalHost",
    "SubflowError",
    "Task",
    "emit_event",
    "flow",
    "log",
    "progress",
    "run_deployment",
    "secret",
    "task",
    "variable",
]

log = logging.getLogger("baton.flow")
"""The run's log: `log.info(...)`, `log.warning(...)`. Any `logging` logger
and `print` reach the run's log too."""


def variable(name: str) -> str:
    """A variable the deployment grants (`capabilities.variables`);
    `AccessError` if it is not granted or has no value."""
    return _host.host().variable(name)


def secret(name: str) -> str:
    """A secret the deployment grants (`capabilities.secrets`). The host
    removes its value from log lines."""
    return _host.host().secret(name)


def emit_event(name: str, resource: str, payload: Any = None) -> None:
    """Emits an event on the core's event feed, which automations watch."""
    _host.host().emit_event(name, resource, json.dumps(to_json(payload)))


def progress(fraction: float, message: str = "") -> None:
    """Reports how far the run is (0 to 1), shown live on its page."""
    _host.host().progress(min(1.0, max(0.0, float(fraction))), message)


def run_deployment(
    deployment: str, parameters: dict[str, Any] | None = None, *, wait: bool = True, timeout_seconds: float | None = None
) -> ChildRun:
    """Starts a run of `deployment` (`flow/name`) as a subflow of this run;
    with `wait`, returns once it has ended (or after `timeout_seconds`)."""
    timeout_ms = None if timeout_seconds is None else max(0, round(timeout_seconds * 1000))
    return _host.host().run_deployment(deployment, json.dumps(to_json(parameters or {})), wait, timeout_ms)
