"""`@task`: a step of a flow, with retries and a cache key, shown as a task
run (its attempts, and whether the cache answered) on the run's page."""

from __future__ import annotations

import datetime
import functools
import json
import time
import typing
from typing import Any, Callable

from . import _host
from ._json import ShapeError, from_json, to_json


class Task:
    """A function that runs as a task each time it is called."""

    def __init__(
        self,
        function: Callable[..., Any],
        name: str,
        retries: int,
        retry_delay_seconds: float,
        cache_key_fn: Callable[..., str] | None,
        cache_expiration: datetime.timedelta | float | None,
    ):
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.function = function
        self.name = name
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.cache_key_fn = cache_key_fn
        if isinstance(cache_expiration, datetime.timedelta):
            cache_expiration = cache_expiration.total_seconds()
        self.cache_expiration_ms = None if cache_expiration is None else max(0, round(cache_expiration * 1000))
        self.returns = typing.get_type_hints(function).get("return", Any)
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        host = _host.host()
        key = None
        if self.cache_key_fn is not None:
            key = self.cache_key_fn(*args, **kwargs)
            if not isinstance(key, str):
                raise TypeError(f"task `{self.name}`: cache_key_fn returned {type(key).__name__}, not a string")
        max_attempts = self.retries + 1
        for attempt in range(1, max_attempts + 1):
            started = host.start_task(self.name, attempt, max_attempts, key)
            if started.cached is not None:
                try:
                    return from_json(json.loads(started.cached), self.returns)
                except (ValueError, ShapeError) as error:
                    host.log(
                        "warn",
                        f"task `{self.name}`: the cached result is not what the task returns now ({error}); "
                        "running it and replacing that result",
                    )
                    task_id = host.start_uncached(self.name, attempt, max_attempts, key)
            else:
                task_id = started.task_id
            assert task_id is not None
            if key is not None and self.cache_expiration_ms is not None:
                host.expire_after(task_id, self.cache_expiration_ms)
            try:
                result = self.function(*args, **kwargs)
                output = json.dumps(to_json(result), ensure_ascii=False)
            except MemoryError:
                raise
            except Exception as error:  # noqa: BLE001: a task's failure is reported, then retried or raised
                message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                host.finish_task(task_id, None, message)
                if attempt == max_attempts:
                    raise
                host.log("warn", f"task `{self.name}` attempt {attempt}/{max_attempts} failed: {message}; retrying")
                if self.retry_delay_seconds > 0:
                    time.sleep(self.retry_delay_seconds)
                continue
            host.finish_task(task_id, output, None)
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")


def task(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay_seconds: float = 0,
    cache_key_fn: Callable[..., str] | None = None,
    cache_expiration: datetime.timedelta | float | None = None,
) -> Any:
    """Makes `function` a task: each call is a task run, retried up to
    `retries` times `retry_delay_seconds` apart. With `cache_key_fn` (given
    the call's arguments, it returns a key), a result stored under the same
    key by this run or an earlier run of the deployment is returned instead
    of running it, typed as the function's return hint says, for
    `cache_expiration` (a timedelta or seconds) or until the deployment's
    cache budget pushes it out.

        @task(retries=2, retry_delay_seconds=0.5, cache_key_fn=lambda region: f"fx-{region}")
        def fetch_rate(region: str) -> float: ...
    """

    def make(function: Callable[..., Any]) -> Task:
        return Task(function, name or function.__name__, retries, retry_delay_seconds, cache_key_fn, cache_expiration)

    return make(function) if function is not None else make
