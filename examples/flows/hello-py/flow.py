"""A Python flow that adds two integers: the Rust `hello`'s twin."""

from baton import flow, log


@flow(name="hello-py", version="0.1.0")
def hello(a: int, b: int) -> int:
    """Adds two integers and returns the sum.

    Args:
        a: First addend.
        b: Second addend.
    """
    log.info(f"adding {a} and {b}")
    total = a + b
    log.info(f"the sum is {total}")
    return total
