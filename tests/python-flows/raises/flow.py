"""Test flow: ends as asked, so each outcome of a Python flow can be seen
end to end: an uncaught exception, `sys.exit(n)`, or a result."""

import sys
from typing import Literal

from baton import flow, log


def lookup(table: dict[str, int], key: str) -> int:
    return table[key]


@flow(name="py-raises")
def raises(mode: Literal["raise", "exit", "succeed"] = "raise") -> str:
    """Fails or succeeds as asked.

    Args:
        mode: How the run ends.
    """
    log.info(f"ending with {mode}")
    if mode == "raise":
        return str(lookup({}, "missing-key"))
    if mode == "exit":
        sys.exit(3)
    return "fine"
