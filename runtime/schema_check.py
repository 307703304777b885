"""Rasa checks every answer of the action server with `jsonschema.validate`. Two costs of
that, for a schema that never changes:

- `validate` first checks the schema itself against the JSON Schema meta-schema, on every
  call: 6 of the 7 ms a custom action cost Rasa (jsonschema 3.2.0; 4.17 is slower).
- Each event of the answer must match exactly one of the schema's 22 event types
  (`oneOf`), so jsonschema validates every event against all 22 and builds an error for
  each of the 21 that fail: then about 6% of our Rasa CPU per message.

`install()` replaces `jsonschema.validate` with one that checks each distinct schema only
once, and validates against a copy of it in which such a `oneOf`, whose alternatives are
told apart by the constant value of one required property (`event`), goes straight to the
alternative with that value: valid exactly when the `oneOf` is (the other alternatives
fail on the constant). When that copy finds any error, the original schema is used, so
Rasa gets jsonschema's own error. An invalid schema still raises `SchemaError`. Rasa
imports `validate` from jsonschema at each call, so it picks this one up. Installed by
`runtime.install()`.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type

import jsonschema
from jsonschema import exceptions, validators

MAX_SCHEMAS = 32  # Rasa validates a handful of schemas; beyond that, check every time
# (validator class, schema as given, its copy with direct dispatch or None) known valid
_checked: List[Tuple[Type[Any], Any, Optional[Tuple[Type[Any], Any]]]] = []


def _dispatch(validator: Any, dispatch: Dict[str, Any], instance: Any, _: Any
              ) -> Iterator[exceptions.ValidationError]:
    """The `oneOf` alternative whose constant matches the instance's value, alone."""
    if not isinstance(instance, dict):
        return  # "type" reports it
    alternative = dispatch["alternatives"].get(instance.get(dispatch["key"]))
    if not isinstance(alternative, dict):
        yield exceptions.ValidationError("no alternative for this value")
        return
    yield from validator.descend(instance, alternative)


def _discriminator(schema: Dict[str, Any]) -> Optional[Tuple[str, Dict[Any, Any]]]:
    """(key, alternative by constant) if `schema`'s oneOf is told apart by one property."""
    alternatives = schema.get("oneOf")
    if not isinstance(alternatives, list) or not alternatives:
        return None
    for key in schema.get("required", []):
        constants = [alternative.get("properties", {}).get(key, {}).get("const", ...)
                     if isinstance(alternative, dict) else ... for alternative in alternatives]
        hashable = all(isinstance(c, (str, int, float, bool)) for c in constants)
        if hashable and len(set(constants)) == len(constants):
            return key, dict(zip(constants, alternatives))
    return None


def _with_dispatch(schema: Any) -> Tuple[Any, bool]:
    """A copy of `schema` with each discriminated `oneOf` turned into a dispatch; and
    whether there was any."""
    if isinstance(schema, list):
        parts = [_with_dispatch(item) for item in schema]
        return [part for part, _ in parts], any(found for _, found in parts)
    if not isinstance(schema, dict):
        return schema, False
    copied, found = {}, False
    for key, value in schema.items():
        copied[key], inner = _with_dispatch(value)
        found = found or inner
    discriminator = _discriminator(copied)
    if discriminator is not None:
        key, alternatives = discriminator
        del copied["oneOf"]
        copied["x-dispatch"] = {"key": key, "alternatives": alternatives}
        found = True
    return copied, found


def _fast(cls: Type[Any], schema: Any) -> Optional[Tuple[Type[Any], Any]]:
    dispatching, found = _with_dispatch(schema)
    if not found:
        return None
    return validators.extend(cls, {"x-dispatch": _dispatch}), dispatching


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """`jsonschema.validate`, checking the schema only the first time it is seen and
    dispatching discriminated `oneOf`s (see the module docstring)."""
    if cls is None:
        cls = validators.validator_for(schema)
    known = next((fast for known_cls, known, fast in _checked
                  if known_cls is cls and known == schema), ())
    if known == ():
        cls.check_schema(schema)
        known = _fast(cls, schema)
        if len(_checked) < MAX_SCHEMAS:
            _checked.append((cls, copy.deepcopy(schema), known))
    if known is not None and not args and not kwargs:
        fast_cls, dispatching = known
        if next(fast_cls(dispatching).iter_errors(instance), None) is None:
            return
    error = exceptions.best_match(cls(schema, *args, **kwargs).iter_errors(instance))
    if error is not None:
        raise error


def install() -> None:
    jsonschema.validate = validate
