"""Parameter schemas from type hints, and JSON to typed values and back."""

import dataclasses
import datetime
import enum
import unittest
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

from baton._json import ShapeError, docstring_params, from_json, parameters_schema, schema_of, to_json


@dataclasses.dataclass
class Record:
    """A sale.

    Attributes:
        region: Where it was sold.
        amount: How much, in euros.
    """

    region: str
    amount: float
    tags: list[str] = dataclasses.field(default_factory=list)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Options(TypedDict):
    limit: int
    note: NotRequired[str]


class SchemaTest(unittest.TestCase):
    def test_scalars(self):
        self.assertEqual(schema_of(int), {"type": "integer"})
        self.assertEqual(schema_of(float), {"type": "number"})
        self.assertEqual(schema_of(str), {"type": "string"})
        self.assertEqual(schema_of(bool), {"type": "boolean"})
        self.assertEqual(schema_of(Any), {})
        self.assertEqual(schema_of(datetime.datetime), {"type": "string", "format": "date-time"})

    def test_literal_and_enum_are_enums(self):
        self.assertEqual(schema_of(Literal["region", "product"]), {"enum": ["region", "product"], "type": "string"})
        self.assertEqual(schema_of(Colour), {"enum": ["red", "blue"]})

    def test_optional_allows_null(self):
        for hint in (Optional[int], int | None):
            self.assertEqual(schema_of(hint), {"anyOf": [{"type": "integer"}, {"type": "null"}]})

    def test_lists_dicts_tuples(self):
        self.assertEqual(schema_of(list[int]), {"type": "array", "items": {"type": "integer"}})
        self.assertEqual(schema_of(dict[str, float]), {"type": "object", "additionalProperties": {"type": "number"}})
        self.assertEqual(schema_of(tuple[int, ...]), {"type": "array", "items": {"type": "integer"}})
        pair = schema_of(tuple[int, str])
        self.assertEqual(pair["prefixItems"], [{"type": "integer"}, {"type": "string"}])

    def test_dataclass_fields_defaults_and_descriptions(self):
        schema = schema_of(Record)
        self.assertEqual(schema["type"], "object")
        self.assertEqual(schema["title"], "Record")
        self.assertEqual(schema["description"], "A sale.")
        self.assertEqual(schema["required"], ["region", "amount"])
        self.assertEqual(schema["properties"]["region"], {"type": "string", "description": "Where it was sold."})
        self.assertEqual(schema["properties"]["tags"], {"type": "array", "items": {"type": "string"}, "default": []})
        self.assertFalse(schema["additionalProperties"])

    def test_typed_dict_required_keys(self):
        schema = schema_of(Options)
        self.assertEqual(schema["required"], ["limit"])
        self.assertEqual(schema["properties"]["note"], {"type": "string"})

    def test_annotated_describes(self):
        self.assertEqual(schema_of(Annotated[int, "How many"]), {"type": "integer", "description": "How many"})

    def test_a_type_without_json_is_named(self):
        with self.assertRaisesRegex(TypeError, "complex"):
            schema_of(complex)

    def test_parameters_from_the_signature_and_docstring(self):
        def summarise(records: list[Record], threshold: float = 400.0, group_by: Literal["region", "product"] = "region"):
            """Sums sales.

            Args:
                records: The sales.
                threshold (float): Smallest sale counted,
                    in euros.
            """

        schema = parameters_schema(summarise)
        self.assertEqual(schema["required"], ["records"])
        self.assertEqual(schema["properties"]["records"]["items"]["title"], "Record")
        self.assertEqual(
            schema["properties"]["threshold"],
            {"type": "number", "default": 400.0, "description": "Smallest sale counted, in euros."},
        )
        self.assertEqual(schema["properties"]["group_by"]["enum"], ["region", "product"])
        self.assertEqual(schema["properties"]["group_by"]["default"], "region")
        self.assertFalse(schema["additionalProperties"])

    def test_star_args_are_refused(self):
        def f(*args):
            pass

        with self.assertRaisesRegex(TypeError, "named"):
            parameters_schema(f)

    def test_docstring_sections(self):
        doc = "Title.\n\nArgs:\n    a: one\n    b (int): two\n        more\n\nReturns:\n    x: not a parameter\n"
        self.assertEqual(docstring_params(doc), {"a": "one", "b": "two more"})


class ConversionTest(unittest.TestCase):
    def test_json_becomes_typed_values(self):
        records = from_json([{"region": "eu", "amount": 3}], list[Record])
        self.assertEqual(records, [Record("eu", 3.0)])
        self.assertIsInstance(records[0].amount, float)
        self.assertEqual(from_json("red", Colour), Colour.RED)
        self.assertEqual(from_json(None, Optional[int]), None)
        self.assertEqual(from_json("2026-12-01T10:00:00Z", datetime.datetime).tzinfo, datetime.timezone.utc)
        self.assertEqual(from_json([1, "a"], tuple[int, str]), (1, "a"))

    def test_a_misfit_names_its_place(self):
        with self.assertRaisesRegex(ShapeError, r"\$\[0\]\.amount: expected a number, got a string"):
            from_json([{"region": "eu", "amount": "3"}], list[Record])
        with self.assertRaisesRegex(ShapeError, "missing amount"):
            from_json({"region": "eu"}, Record)
        with self.assertRaisesRegex(ShapeError, "no field colour"):
            from_json({"region": "eu", "amount": 1, "colour": "x"}, Record)
        with self.assertRaisesRegex(ShapeError, "expected an integer, got a boolean"):
            from_json(True, int)
        with self.assertRaisesRegex(ShapeError, "one of"):
            from_json("green", Literal["red", "blue"])

    def test_values_become_json(self):
        when = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
        self.assertEqual(
            to_json({"r": Record("eu", 1.5, ["a"]), "c": Colour.BLUE, "t": (1, 2), "w": when}),
            {"r": {"region": "eu", "amount": 1.5, "tags": ["a"]}, "c": "blue", "t": [1, 2], "w": "2026-12-01T00:00:00+00:00"},
        )
        with self.assertRaisesRegex(TypeError, "not JSON"):
            to_json(object())
        with self.assertRaisesRegex(TypeError, "not a JSON number"):
            to_json(float("nan"))


if __name__ == "__main__":
    unittest.main()
