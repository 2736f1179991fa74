"""Type hints to JSON schemas, and JSON values to and from typed Python values.

A flow's parameters are described by the JSON schema of its function's type
hints, so the core can check a run's parameters and the UI can draw a form;
the JSON a run is given becomes the typed values the function asks for
(dataclasses, enums, datetimes...), and what a flow or task returns becomes
JSON again.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import inspect
import re
import types
import typing
from typing import Any

__all__ = ["schema_of", "parameters_schema", "from_json", "to_json", "docstring_params", "ShapeError"]

_NONE_TYPE = type(None)


def _is_typed_dict(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__total__")


def _description(hint: Any) -> str | None:
    """The first paragraph of a class's own docstring (not one inherited,
    nor the signature a dataclass is given when it has none)."""
    doc = hint.__dict__.get("__doc__") if isinstance(hint, type) else None
    if not doc or doc.startswith(f"{hint.__name__}("):
        return None
    return inspect.cleandoc(doc).split("\n\n")[0].strip()


def docstring_params(doc: str | None) -> dict[str, str]:
    """Descriptions of names in a docstring's `Args:` (or `Parameters`,
    `Attributes:`) section, Google style: `name: text` or `name (type):
    text`, continued on more deeply indented lines."""
    found: dict[str, str] = {}
    section = False
    entry_indent = None
    current = None
    for line in inspect.cleandoc(doc or "").splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if re.fullmatch(r"(Args|Arguments|Parameters|Params|Attributes|Fields):?", stripped):
            section, entry_indent, current = True, None, None
        elif not section or not stripped or set(stripped) == {"-"}:
            continue
        elif indent == 0:
            section = False  # the next section
        elif entry := re.match(r"\*{0,2}([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:\s*(.*)$", stripped):
            if entry_indent is None or indent <= entry_indent:
                entry_indent = indent
                current = entry.group(1)
                found[current] = entry.group(2).strip()
            elif current is not None:
                found[current] = f"{found[current]} {stripped}".strip()
        elif current is not None:
            found[current] = f"{found[current]} {stripped}".strip()
    return {name: text for name, text in found.items() if text}


def schema_of(hint: Any) -> dict[str, Any]:
    """The JSON schema of values of type `hint`."""
    if hint is Any or hint is inspect.Parameter.empty or hint is object:
        return {}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        schema = schema_of(args[0])
        text = next((a for a in args[1:] if isinstance(a, str)), None)
        if text:
            schema = {**schema, "description": text}
        return schema
    if hint is None or hint is _NONE_TYPE:
        return {"type": "null"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is str:
        return {"type": "string"}
    if hint is datetime.datetime:
        return {"type": "string", "format": "date-time"}
    if hint is datetime.date:
        return {"type": "string", "format": "date"}
    if origin is typing.Literal:
        values = list(args)
        kinds = {type(v) for v in values}
        schema: dict[str, Any] = {"enum": values}
        if kinds == {str}:
            schema["type"] = "string"
        elif kinds <= {int}:
            schema["type"] = "integer"
        return schema
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not _NONE_TYPE]
        inner = schema_of(options[0]) if len(options) == 1 else {"anyOf": [schema_of(a) for a in options]}
        if len(options) < len(args):
            return {"anyOf": [inner, {"type": "null"}]}
        return inner
    if origin in (list, set, frozenset) or hint in (list, set, frozenset) or origin is typing.Sequence or _is_abc(origin, "Sequence"):
        schema = {"type": "array"}
        if args:
            schema["items"] = schema_of(args[0])
        if origin in (set, frozenset):
            schema["uniqueItems"] = True
        return schema
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": schema_of(args[0])}
        return {
            "type": "array",
            "prefixItems": [schema_of(a) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin is dict or hint is dict or _is_abc(origin, "Mapping"):
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = schema_of(args[1])
        return schema
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        schema = {"enum": [member.value for member in hint]}
        description = _description(hint)
        if description:
            schema["description"] = description
        return schema
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint, include_extras=True)
        docs = docstring_params(hint.__dict__.get("__doc__"))
        properties = {}
        required = []
        for field in dataclasses.fields(hint):
            prop = schema_of(hints.get(field.name, Any))
            if field.default is not dataclasses.MISSING:
                prop = _with_default(prop, field.default)
            elif field.default_factory is not dataclasses.MISSING:
                prop = _with_default(prop, field.default_factory())
            else:
                required.append(field.name)
            if field.name in docs and "description" not in prop:
                prop = {**prop, "description": docs[field.name]}
            properties[field.name] = prop
        return _object(hint, properties, required)
    if _is_typed_dict(hint):
        hints = typing.get_type_hints(hint, include_extras=True)
        docs = docstring_params(hint.__dict__.get("__doc__"))
        required_keys = getattr(hint, "__required_keys__", frozenset(hints))
        properties = {}
        for name, field_hint in hints.items():
            # `Required[...]`/`NotRequired[...]` are read by TypedDict itself.
            if typing.get_origin(field_hint) in (typing.Required, typing.NotRequired):
                field_hint = typing.get_args(field_hint)[0]
            prop = schema_of(field_hint)
            if name in docs and "description" not in prop:
                prop = {**prop, "description": docs[name]}
            properties[name] = prop
        return _object(hint, properties, [n for n in hints if n in required_keys])
    raise TypeError(f"a flow cannot take or return {_name(hint)}: no JSON schema for it")


def _is_abc(origin: Any, name: str) -> bool:
    import collections.abc

    return origin is getattr(collections.abc, name)


def _object(hint: type, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "title": hint.__name__, "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    description = _description(hint)
    if description:
        schema["description"] = description
    return schema


def _with_default(schema: dict[str, Any], default: Any) -> dict[str, Any]:
    try:
        return {**schema, "default": to_json(default)}
    except TypeError:
        return schema


def _name(hint: Any) -> str:
    return getattr(hint, "__qualname__", None) or repr(hint)


def parameters_schema(function: Any) -> dict[str, Any]:
    """The JSON schema of a function's keyword arguments: an object with a
    property per parameter, described by the docstring's `Args:` section."""
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function, include_extras=True)
    docs = docstring_params(inspect.getdoc(function))
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"a flow's parameters are named: `*{name}` cannot be given in JSON")
        prop = schema_of(hints.get(name, Any))
        if parameter.default is not parameter.empty:
            prop = _with_default(prop, parameter.default)
        else:
            required.append(name)
        if name in docs and "description" not in prop:
            prop = {**prop, "description": docs[name]}
        properties[name] = prop
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


class ShapeError(TypeError):
    """A JSON value is not of the type asked for; says where."""


def from_json(value: Any, hint: Any, path: str = "$") -> Any:
    """`value` (decoded JSON) as a value of type `hint`: dataclasses built,
    enums and datetimes read; `ShapeError` names the first place it does
    not fit."""
    if hint is Any or hint is inspect.Parameter.empty or hint is object:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return from_json(value, args[0], path)
    if hint is None or hint is _NONE_TYPE:
        if value is not None:
            raise ShapeError(f"{path}: expected null, got {_kind(value)}")
        return None
    if origin in (typing.Union, types.UnionType):
        if value is None and _NONE_TYPE in args:
            return None
        problems = []
        for option in (a for a in args if a is not _NONE_TYPE):
            try:
                return from_json(value, option, path)
            except ShapeError as problem:
                problems.append(str(problem))
        raise ShapeError("; ".join(problems) or f"{path}: unexpected {_kind(value)}")
    if origin is typing.Literal:
        if value not in args:
            raise ShapeError(f"{path}: expected one of {list(args)}, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ShapeError(f"{path}: expected a boolean, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ShapeError(f"{path}: expected an integer, got {_kind(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ShapeError(f"{path}: expected a number, got {_kind(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ShapeError(f"{path}: expected a string, got {_kind(value)}")
        return value
    if hint in (datetime.datetime, datetime.date):
        if not isinstance(value, str):
            raise ShapeError(f"{path}: expected an ISO 8601 string, got {_kind(value)}")
        try:
            return hint.fromisoformat(value.replace("Z", "+00:00") if hint is datetime.datetime else value)
        except ValueError as error:
            raise ShapeError(f"{path}: {error}") from None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise ShapeError(
                f"{path}: expected one of {[m.value for m in hint]}, got {value!r}"
            ) from None
    if origin in (list, set, frozenset, tuple) or hint in (list, set, frozenset, tuple) or _is_abc(origin, "Sequence"):
        if not isinstance(value, list):
            raise ShapeError(f"{path}: expected a list, got {_kind(value)}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ShapeError(f"{path}: expected {len(args)} items, got {len(value)}")
            return tuple(from_json(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [from_json(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        if origin in (set, frozenset) or hint in (set, frozenset):
            return (origin or hint)(items)
        return tuple(items) if origin is tuple or hint is tuple else items
    if origin is dict or hint is dict or _is_abc(origin, "Mapping") or _is_typed_dict(hint):
        if not isinstance(value, dict):
            raise ShapeError(f"{path}: expected an object, got {_kind(value)}")
        if _is_typed_dict(hint):
            hints = typing.get_type_hints(hint)
            missing = [k for k in getattr(hint, "__required_keys__", ()) if k not in value]
            if missing:
                raise ShapeError(f"{path}: missing {', '.join(missing)}")
            return {k: from_json(v, hints.get(k, Any), f"{path}.{k}") for k, v in value.items()}
        item = args[1] if len(args) == 2 else Any
        return {k: from_json(v, item, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ShapeError(f"{path}: expected an object, got {_kind(value)}")
        hints = typing.get_type_hints(hint)
        fields = {f.name: f for f in dataclasses.fields(hint)}
        unknown = [k for k in value if k not in fields]
        if unknown:
            raise ShapeError(f"{path}: no field {', '.join(unknown)} in {hint.__name__}")
        given = {}
        for name, field in fields.items():
            if name in value:
                given[name] = from_json(value[name], hints.get(name, Any), f"{path}.{name}")
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ShapeError(f"{path}: missing {name}")
        return hint(**given)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def to_json(value: Any) -> Any:
    """`value` as decoded JSON: dataclasses as objects, enums as their
    values, datetimes in ISO 8601, tuples and sets as lists."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError(f"{value} is not a JSON number")
        return value
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"an object's keys are strings in JSON, not {type(key).__name__}")
            out[key] = to_json(item)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not JSON (return dataclasses, dicts, lists, numbers or strings)")
