"""Flows and tasks against the in-memory host: outcomes, logs, retries,
the task cache and the host's other calls."""

import dataclasses
import json
import logging
import sys
import unittest

import baton
from baton import _flow, _host


@dataclasses.dataclass
class Rate:
    region: str
    value: float


class WithHost(unittest.TestCase):
    def setUp(self):
        self.host = baton.LocalHost(variables={"region": "eu"}, secrets={"token": "s3cr3t"})
        self.previous = _host.install(self.host)
        self.registered = list(_flow._registered)

    def tearDown(self):
        _host.install(self.previous)
        _flow._registered[:] = self.registered


class FlowTest(WithHost):
    def test_a_flow_describes_itself_and_runs_with_typed_parameters(self):
        @baton.flow(name="sum-rates", version="1.2.0")
        def sum_rates(rates: list[Rate], scale: float = 1.0) -> dict:
            """Adds rates up.

            Args:
                rates: The rates.
            """
            baton.log.info("adding %d rates", len(rates))
            return {"total": sum(r.value for r in rates) * scale, "first": rates[0]}

        info = sum_rates.info()
        self.assertEqual((info["name"], info["version"], info["description"]), ("sum-rates", "1.2.0", "Adds rates up."))
        self.assertEqual(json.loads(info["parameters"])["properties"]["rates"]["description"], "The rates.")
        output = sum_rates.run_json(json.dumps({"rates": [{"region": "eu", "value": 2}], "scale": 2}))
        self.assertEqual(json.loads(output), {"total": 4.0, "first": {"region": "eu", "value": 2.0}})
        self.assertIn(("info", "adding 1 rates"), self.host.logs)
        self.assertIs(_flow.the_flow(), sum_rates)

    def test_an_exception_fails_the_run_with_its_traceback_in_the_log(self):
        @baton.flow
        def breaks() -> None:
            raise ValueError("no data for eu")

        failed = breaks.run_json("{}")
        self.assertIsInstance(failed, _flow.Failed)
        self.assertEqual(failed.message, "ValueError: no data for eu")
        self.assertIn("Traceback (most recent call last)", failed.details)
        # Named from where it was imported from, not by a full path.
        self.assertIn('File "tests/test_flow.py", line', failed.details)
        errors = [m for level, m in self.host.logs if level == "error"]
        self.assertTrue(errors and "raise ValueError" in errors[0] and errors[0].endswith("ValueError: no data for eu"))

    def test_sys_exit_fails_with_its_status_and_zero_completes(self):
        @baton.flow
        def exits(code: int) -> None:
            sys.exit(code)

        self.assertEqual(exits.run_json('{"code": 3}').message, "the flow exited with status 3")
        self.assertEqual(exits.run_json('{"code": 0}'), "null")

    def test_memory_error_is_not_swallowed(self):
        @baton.flow
        def hogs() -> None:
            raise MemoryError()

        with self.assertRaises(MemoryError):
            hogs.run_json("{}")

    def test_bad_parameters_and_results_are_named(self):
        @baton.flow
        def takes(n: int) -> object:
            return object()

        self.assertEqual(takes.run_json('{"n": "x"}').message, "parameters: n: expected an integer, got a string")
        self.assertEqual(takes.run_json('{"m": 1}').message, "`m`: no such parameter of flow takes")
        self.assertIn("the flow's result is not JSON", takes.run_json('{"n": 1}').message)

    def test_logging_reaches_the_run_log_at_its_level(self):
        @baton.flow
        def logs() -> None:
            logging.getLogger("mine").warning("careful")
            logging.getLogger("mine").error("bad %s", "thing")
            logging.getLogger("mine").debug("hidden")

        logs.run_json("{}")
        self.assertEqual(self.host.logs, [("warn", "careful"), ("error", "bad thing")])
        self.assertFalse(any(isinstance(h, _flow.HostHandler) for h in logging.getLogger().handlers))

    def test_one_flow_per_component(self):
        _flow._registered.clear()
        with self.assertRaisesRegex(RuntimeError, "exactly one @flow; this one has none"):
            _flow.the_flow()


class TaskTest(WithHost):
    def test_a_task_retries_then_succeeds(self):
        calls = []

        @baton.task(retries=2)
        def flaky(n: int) -> int:
            calls.append(n)
            if len(calls) < 3:
                raise ConnectionError("try again")
            return n * 2

        self.assertEqual(flaky(4), 8)
        self.assertEqual([t["state"] for t in self.host.tasks], ["FAILED", "FAILED", "COMPLETED"])
        self.assertEqual([t["attempt"] for t in self.host.tasks], [1, 2, 3])
        self.assertEqual(self.host.tasks[0]["error"], "ConnectionError: try again")

    def test_a_task_out_of_retries_raises_its_error(self):
        @baton.task(retries=1)
        def broken() -> None:
            raise KeyError("x")

        with self.assertRaises(KeyError):
            broken()
        self.assertEqual(len(self.host.tasks), 2)

    def test_a_cached_result_comes_back_typed(self):
        runs = []

        @baton.task(cache_key_fn=lambda region: f"fx-{region}", cache_expiration=60)
        def fetch_rate(region: str) -> Rate:
            runs.append(region)
            return Rate(region, 1.5)

        self.assertEqual(fetch_rate("eu"), Rate("eu", 1.5))
        self.assertEqual(fetch_rate("eu"), Rate("eu", 1.5))
        self.assertEqual(runs, ["eu"])
        self.assertEqual(self.host.tasks[0]["expire_after_ms"], 60_000)
        self.assertEqual(self.host.tasks[1]["state"], "CACHED")

    def test_a_cached_result_of_another_shape_is_replaced(self):
        self.host.cache["fx-eu"] = '"not a rate"'

        @baton.task(cache_key_fn=lambda region: f"fx-{region}")
        def fetch_rate(region: str) -> Rate:
            return Rate(region, 2.0)

        self.assertEqual(fetch_rate("eu"), Rate("eu", 2.0))
        self.assertEqual(json.loads(self.host.cache["fx-eu"]), {"region": "eu", "value": 2.0})
        self.assertTrue(any("the cached result is not what the task returns now" in m for _, m in self.host.logs))

    def test_memory_error_in_a_task_is_not_retried(self):
        @baton.task(retries=3)
        def hogs() -> None:
            raise MemoryError()

        with self.assertRaises(MemoryError):
            hogs()
        self.assertEqual(len(self.host.tasks), 1)


class HostCallsTest(WithHost):
    def test_variables_secrets_events_progress(self):
        self.assertEqual(baton.variable("region"), "eu")
        self.assertEqual(baton.secret("token"), "s3cr3t")
        with self.assertRaisesRegex(baton.AccessError, "variable `other` is not granted"):
            baton.variable("other")
        baton.emit_event("sales.summarised", "sales/eu", {"total": 3, "rate": Rate("eu", 1.0)})
        self.assertEqual(json.loads(self.host.events[0][2]), {"total": 3, "rate": {"region": "eu", "value": 1.0}})
        baton.progress(1.5, "done")
        self.assertEqual(self.host.progress_reports, [(1.0, "done")])
        with self.assertRaises(baton.SubflowError):
            baton.run_deployment("etl/default")


if __name__ == "__main__":
    unittest.main()
