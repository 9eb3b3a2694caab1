"""A fast first pass of meta-validation: proves that a schema conforms to its draft's meta-schema.

``jsonschema``'s meta-validation is exact but generic (reference resolution, validator objects per
subschema) and took about a third of the compile time of a typical schema. :func:`surely_valid` walks the
schema once with the meta-schemas' constraints written out by hand. It is *at least as strict* as the
meta-schemas: ``True`` means the meta-schema accepts the document, ``False`` only means "not proven", and
the caller then asks ``jsonschema``, which decides and words the error. So a gap or an over-strict rule
here can cost time, never correctness; ``tests/test_json_schema_meta.py`` checks the implication
differentially on the test suite, JSONSchemaBench and mutated schemas.

Drafts 4, 6, 7, 2019-09 and 2020-12 are covered; anything else (draft 3, unknown ``$schema``) is never
proven here.
"""

from __future__ import annotations

import re
from typing import Any

_TYPES = frozenset(("array", "boolean", "integer", "null", "number", "object", "string"))
# Where the drafts' patterns differ, both must hold (2019-09 allows ":" in anchors, 2020-12 "_" first).
_ANCHOR = re.compile(r"[A-Za-z][-A-Za-z0-9._]*\Z")
_ID = re.compile(r"[^#]*#?\Z")

_SCHEMA = "schema"  # a subschema
_SCHEMA_MAP = "schema_map"  # an object of subschemas
_SCHEMA_LIST = "schema_list"  # a non-empty array of subschemas
_STRING = "string"
_BOOL = "bool"
_NUMBER = "number"
_COUNT = "count"  # a non-negative integer
_STRINGS = "strings"  # an array of unique strings

_KEYWORDS = {
    # applicators
    "not": _SCHEMA, "if": _SCHEMA, "then": _SCHEMA, "else": _SCHEMA, "contains": _SCHEMA,
    "propertyNames": _SCHEMA, "unevaluatedItems": _SCHEMA, "unevaluatedProperties": _SCHEMA,
    "contentSchema": _SCHEMA, "additionalProperties": _SCHEMA, "additionalItems": _SCHEMA,
    "properties": _SCHEMA_MAP, "patternProperties": _SCHEMA_MAP, "definitions": _SCHEMA_MAP,
    "$defs": _SCHEMA_MAP, "dependentSchemas": _SCHEMA_MAP,
    "allOf": _SCHEMA_LIST, "anyOf": _SCHEMA_LIST, "oneOf": _SCHEMA_LIST, "prefixItems": _SCHEMA_LIST,
    # validation
    "maximum": _NUMBER, "minimum": _NUMBER,
    "maxLength": _COUNT, "minLength": _COUNT, "maxItems": _COUNT, "minItems": _COUNT,
    "maxProperties": _COUNT, "minProperties": _COUNT, "maxContains": _COUNT, "minContains": _COUNT,
    "uniqueItems": _BOOL, "required": _STRINGS, "pattern": _STRING, "format": _STRING,
    # core and annotations
    "$schema": _STRING, "$ref": _STRING, "$dynamicRef": _STRING, "$recursiveRef": _STRING, "$comment": _STRING,
    "title": _STRING, "description": _STRING, "contentMediaType": _STRING, "contentEncoding": _STRING,
    "readOnly": _BOOL, "writeOnly": _BOOL, "deprecated": _BOOL, "$recursiveAnchor": _BOOL,
}
# Keywords whose values are free (any JSON value) in every draft.
_FREE = frozenset(("default", "const"))

_DRAFTS = {
    "http://json-schema.org/draft-04/schema": 4,
    "http://json-schema.org/draft-06/schema": 6,
    "http://json-schema.org/draft-07/schema": 7,
    "https://json-schema.org/draft/2019-09/schema": 2019,
    "https://json-schema.org/draft/2020-12/schema": 2020,
}


def draft_of(root: Any) -> int | None:
    """The draft a document declares (2020 when it declares none), or None for one not covered here."""
    uri = root.get("$schema") if isinstance(root, dict) else None
    if uri is None:
        return 2020
    if not isinstance(uri, str):
        return None
    return _DRAFTS.get(uri[:-1] if uri.endswith("#") else uri)


def surely_valid(root: Any) -> bool:
    """True only if the meta-schema of the document's draft accepts it (see the module docstring)."""
    draft = draft_of(root)
    if draft is None:
        return False
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, bool):
            if draft == 4:  # boolean schemas arrived in draft 6
                return False
            continue
        if not isinstance(node, dict) or not _node_ok(node, draft, stack):
            return False
    return True


def _node_ok(node: dict, draft: int, stack: list) -> bool:
    for key, value in node.items():
        kind = _KEYWORDS.get(key)
        if kind is None:
            if key not in _FREE and not _special_ok(node, key, value, draft, stack):
                return False
            continue
        if kind == _SCHEMA:
            if draft == 4 and isinstance(value, bool):  # draft 4 allows true/false only in additional*
                if key not in ("additionalProperties", "additionalItems"):
                    return False
                continue
            stack.append(value)
        elif kind == _SCHEMA_MAP:
            if not isinstance(value, dict):
                return False
            stack.extend(value.values())
        elif kind == _SCHEMA_LIST:
            if not isinstance(value, list) or not value:
                return False
            stack.extend(value)
        elif kind == _STRING:
            if not isinstance(value, str):
                return False
        elif kind == _BOOL:
            if not isinstance(value, bool):
                return False
        elif kind == _NUMBER:
            if not _is_number(value):
                return False
        elif kind == _COUNT:
            # draft 4 counts only ints as integers; later drafts also 2.0
            if type(value) is not int and (draft == 4 or type(value) is not float or not value.is_integer()):
                return False
            if value < 0:
                return False
        elif kind == _STRINGS:
            if not _unique_strings(value) or draft == 4 and not value:
                return False
    return True


def _special_ok(node: dict, key: str, value: Any, draft: int, stack: list) -> bool:
    """Keywords whose shape depends on the draft or on a pattern; True also for keywords no draft defines."""
    if key == "type":
        if isinstance(value, str):
            return value in _TYPES
        return isinstance(value, list) and bool(value) and _unique_strings(value) and all(v in _TYPES for v in value)
    if key == "enum":
        return isinstance(value, list) and bool(value) and _unique_values(value)
    if key == "examples":
        return isinstance(value, list)
    if key == "items":
        if isinstance(value, list):
            if draft == 2020 or not value:
                return False
            stack.extend(value)
            return True
        if draft == 4 and isinstance(value, bool):
            return False
        stack.append(value)
        return True
    if key in ("exclusiveMaximum", "exclusiveMinimum"):
        if draft == 4:  # a boolean modifier that needs its bound beside it
            return isinstance(value, bool) and (key.replace("exclusiveM", "m")) in node
        return _is_number(value)
    if key == "multipleOf":
        return _is_number(value) and value > 0
    if key in ("dependencies", "dependentRequired"):
        if not isinstance(value, dict):
            return False
        for dep in value.values():
            if isinstance(dep, list):
                if not _unique_strings(dep) or draft == 4 and not dep:
                    return False
            elif key == "dependentRequired" or draft == 4 and isinstance(dep, bool):
                return False
            else:
                stack.append(dep)
        return True
    if key in ("$id", "id"):  # no fragment allowed since 2019-09; earlier drafts only ask for a string
        return isinstance(value, str) and (draft < 2019 or _ID.match(value) is not None)
    if key in ("$anchor", "$dynamicAnchor"):
        return isinstance(value, str) and _ANCHOR.match(value) is not None
    if key == "$vocabulary":
        return isinstance(value, dict) and all(isinstance(v, bool) for v in value.values())
    return True  # not a keyword of any draft: the meta-schemas allow it


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _unique_strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v) and len(set(v)) == len(v)


def _unique_values(values: list) -> bool:
    """JSON equality as the meta-schemas' uniqueItems means it: 1 == 1.0, true != 1, keys unordered."""
    try:
        keys = [_canon(v) for v in values]
    except (TypeError, RecursionError):
        return False
    return len(set(keys)) == len(keys)


def _canon(v: Any) -> Any:
    if isinstance(v, bool) or v is None:
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", v)  # Python already has 1 == 1.0 with equal hashes
    if isinstance(v, str):
        return ("s", v)
    if isinstance(v, list):
        return ("l", tuple(_canon(x) for x in v))
    if isinstance(v, dict):
        return ("d", frozenset((k, _canon(x)) for k, x in v.items()))
    raise TypeError(type(v).__name__)
