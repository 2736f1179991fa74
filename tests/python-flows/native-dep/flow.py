"""Test flow: never built, since its dependency is a native extension."""

from baton import flow


@flow(name="py-native-dep")
def native() -> int:
    return 1
