"""Rasa checks every answer of the action server with `jsonschema.validate`, which first
validates the schema itself against the JSON Schema meta-schema, on every call. For the
action-response schema (every event type) that is 6 of the 7 ms a custom action costs
Rasa in jsonschema 3.2.0 (4.17 is slower), for a schema that never changes.

`install()` replaces `jsonschema.validate` with the same function that checks each
distinct schema only once; the answer itself is still validated on every call, and an
invalid schema still raises `SchemaError`. Rasa imports `validate` from jsonschema at
each call, so it picks this one up. Installed by `runtime.install()`.
"""
from __future__ import annotations

import copy
from typing import Any, List, Tuple, Type

import jsonschema
from jsonschema import exceptions, validators

MAX_SCHEMAS = 32  # Rasa validates a handful of schemas; beyond that, check every time
_checked: List[Tuple[Type[Any], Any]] = []  # (validator class, schema) known valid


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """`jsonschema.validate`, checking the schema only the first time it is seen."""
    if cls is None:
        cls = validators.validator_for(schema)
    if not any(known_cls is cls and known == schema for known_cls, known in _checked):
        cls.check_schema(schema)
        if len(_checked) < MAX_SCHEMAS:
            _checked.append((cls, copy.deepcopy(schema)))
    error = exceptions.best_match(cls(schema, *args, **kwargs).iter_errors(instance))
    if error is not None:
        raise error


def install() -> None:
    jsonschema.validate = validate
