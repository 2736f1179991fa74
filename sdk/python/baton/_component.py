"""The component's side of the `baton:flow` contract: the host that calls
its imports, and the `Flow` export that runs the module's `@flow`.

Imported only inside a component build (`baton flow build` writes an entry
module that imports the project's flow module, then this one), where
componentize-py has generated the `wit_world` bindings.
"""

from __future__ import annotations

import linecache
import os
import sys

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import host as wit
from wit_world.imports import subflows, task_cache, types

from . import _host
from ._flow import Failed, the_flow

_LEVELS = {
    "trace": types.Level.TRACE,
    "debug": types.Level.DEBUG,
    "info": types.Level.INFO,
    "warn": types.Level.WARN,
    "error": types.Level.ERROR,
}


def _access(kind: str, name: str, error: Err) -> _host.AccessError:
    if error.value == wit.AccessError.NOT_GRANTED:
        return _host.AccessError(f"{kind} `{name}` is not granted to this flow: its deployment's capabilities list it")
    return _host.AccessError(f"{kind} `{name}` is granted but has no value")


class ComponentHost:
    """The host behind the component's imports."""

    def log(self, level: str, message: str) -> None:
        wit.log(_LEVELS.get(level, types.Level.INFO), message)

    def start_task(self, name, attempt, max_attempts, cache_key):
        started = wit.start_task(wit.TaskSpec(name, attempt, max_attempts, cache_key))
        if isinstance(started, wit.TaskStart_Cached):
            return _host.TaskStart(cached=started.value)
        return _host.TaskStart(task_id=started.value)

    def start_uncached(self, name, attempt, max_attempts, cache_key):
        return task_cache.start_uncached(wit.TaskSpec(name, attempt, max_attempts, cache_key))

    def finish_task(self, task_id, output, error):
        wit.finish_task(task_id, Err(error) if error is not None else Ok(output))

    def expire_after(self, task_id, milliseconds):
        task_cache.expire_after(task_id, milliseconds)

    def variable(self, name):
        try:
            return wit.variable(name)
        except Err as error:
            raise _access("variable", name, error) from None

    def secret(self, name):
        try:
            return wit.secret(name)
        except Err as error:
            raise _access("secret", name, error) from None

    def emit_event(self, name, resource, payload):
        wit.emit_event(name, resource, payload)

    def progress(self, fraction, message):
        wit.progress(fraction, message)

    def run_deployment(self, deployment, params, wait, timeout_ms):
        try:
            child = subflows.run_deployment(deployment, params, wait, timeout_ms)
        except Err as error:
            raise _host.SubflowError(str(error.value)) from None
        return _host.ChildRun(child.id, child.deployment, child.state, child.message, child.output)


_host.install(ComponentHost())


def _keep_sources() -> None:
    """Keeps the source lines of the flow's modules (not the standard
    library's) in the component, so tracebacks show them: the sandbox has
    no files to read them from when a run fails. Entries without a time
    are never checked against the (missing) file."""
    stdlib = os.path.dirname(os.__file__)
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py") or path.startswith(stdlib):
            continue
        try:
            with open(path, encoding="utf-8") as source:
                lines = source.readlines()
        except (OSError, UnicodeDecodeError):
            continue
        linecache.cache[path] = (sum(map(len, lines)), None, lines, path)


# Run at build time, when the flow's modules are imported and readable.
_keep_sources()


class Flow(exports.Flow):
    """What the host calls: `describe` and `run`."""

    def describe(self) -> types.FlowInfo:
        info = the_flow().info()
        return types.FlowInfo(info["name"], info["version"], info["description"], info["parameters"])

    def run(self, params: str) -> str:
        outcome = the_flow().run_json(params)
        if isinstance(outcome, Failed):
            raise Err(types.FlowError(outcome.message, outcome.details))
        return outcome
