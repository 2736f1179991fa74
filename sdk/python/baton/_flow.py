"""`@flow`: a function that is a Baton flow, and how the host runs it."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import sys
import traceback
import typing
from dataclasses import dataclass
from typing import Any, Callable

from . import _host
from ._json import ShapeError, from_json, parameters_schema, to_json

_registered: list["Flow"] = []


@dataclass
class Failed:
    """A run that ended FAILED: the message and, if any, the traceback."""

    message: str
    details: str | None = None


class Flow:
    """A function registered as the component's flow."""

    def __init__(self, function: Callable[..., Any], name: str, version: str, description: str | None):
        self.function = function
        self.name = name
        self.version = version
        doc = inspect.getdoc(function) or ""
        # The first paragraph; the rest (such as `Args:`) describes parameters.
        self.description = description if description is not None else doc.split("\n\n")[0].strip()
        self.schema = parameters_schema(function)
        self.hints = typing.get_type_hints(function)
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def info(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "parameters": json.dumps(self.schema),
        }

    def run_json(self, params: str) -> str | Failed:
        """Runs the flow with parameters as JSON text: its output as JSON
        text, or why it failed. A `MemoryError` is not caught: the host sees
        the run out of memory, as it is."""
        with _logs_to_host():
            try:
                given = json.loads(params)
                if not isinstance(given, dict):
                    return Failed(f"parameters must be a JSON object, not {type(given).__name__}")
                arguments = {}
                for name, value in given.items():
                    if name not in self.schema["properties"]:
                        return Failed(f"`{name}`: no such parameter of flow {self.name}")
                    arguments[name] = from_json(value, self.hints.get(name, Any), name)
            except (ValueError, ShapeError) as error:
                return Failed(f"parameters: {error}")
            try:
                output = self.function(**arguments)
            except MemoryError:
                raise
            except SystemExit as stop:
                code = stop.code
                if code is None or code == 0:
                    output = None
                else:
                    message = f"the flow exited with status {code}" if isinstance(code, int) else str(code)
                    _host.host().log("error", message)
                    return Failed(message)
            except BaseException as error:  # noqa: BLE001: every failure of user code ends the run FAILED
                details = _traceback(error)
                message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                _host.host().log("error", details.rstrip())
                return Failed(message, details)
            try:
                return json.dumps(to_json(output), ensure_ascii=False)
            except (TypeError, ValueError) as error:
                return Failed(f"the flow's result is not JSON: {error}")


def _traceback(error: BaseException) -> str:
    """The error's traceback, its files named from the directory they were
    imported from (in a component those are mounts called `/0`, `/1`...,
    which mean nothing to the flow's author)."""
    details = "".join(traceback.format_exception(error))
    roots = sorted({p.rstrip("/") for p in sys.path if p.strip("/")}, key=len, reverse=True)
    for root in roots:
        details = details.replace(f'File "{root}/', 'File "')
    return details


def flow(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    version: str = "0.1.0",
    description: str | None = None,
) -> Any:
    """Makes `function` the component's flow. Its parameters' type hints are
    its parameter schema; its docstring's first paragraph its description,
    and its `Args:` section the parameters' descriptions.

        @flow(name="sales-summary", version="1.2.0")
        def summarise(records: list[Record], threshold: float = 400.0) -> Summary: ...
    """

    def register(function: Callable[..., Any]) -> Flow:
        made = Flow(function, name or function.__name__.replace("_", "-"), version, description)
        _registered.append(made)
        return made

    return register(function) if function is not None else register


def the_flow() -> Flow:
    """The one flow this component exports."""
    if len(_registered) != 1:
        names = ", ".join(f.name for f in _registered) or "none"
        raise RuntimeError(f"a Baton component exports exactly one @flow; this one has {names}")
    return _registered[0]


_LEVELS = ((logging.ERROR, "error"), (logging.WARNING, "warn"), (logging.INFO, "info"), (logging.DEBUG, "debug"))


class HostHandler(logging.Handler):
    """Python's `logging` into the run's log, at the record's level."""

    def emit(self, record: logging.LogRecord) -> None:
        level = next((name for at, name in _LEVELS if record.levelno >= at), "trace")
        try:
            message = self.format(record)
        except Exception:  # noqa: BLE001: a bad format string must not end the run
            message = str(record.msg)
        _host.host().log(level, message)


class _logs_to_host:
    """While a run goes: `logging` records at INFO and above go to its log."""

    def __enter__(self) -> None:
        self.handler = HostHandler()
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        root = logging.getLogger()
        self.level = root.level
        root.addHandler(self.handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)

    def __exit__(self, *_: Any) -> None:
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.level)
        sys.stdout.flush()
        sys.stderr.flush()
