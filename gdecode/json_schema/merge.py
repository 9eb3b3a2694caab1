"""Intersecting applicator-free schemas (the conjuncts of one alternative) into one :class:`Plain`.

JSON Schema keywords only constrain values of their own type, so an intersection is computed keyword by
keyword: types intersect, lower bounds take the maximum, patterns and formats accumulate (the string regex
intersects them), property and item schemas intersect per position (``properties[k]`` of one conjunct
meets ``additionalProperties`` of another when that one does not list ``k``). Subschemas are kept as
*parts*: tuples of ``(schema, pointer, base URI)`` whose intersection the compiler turns into one rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ALL_TYPES = frozenset({"null", "boolean", "object", "array", "string", "integer", "fraction"})
ANNOTATIONS = frozenset({
    "title", "description", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly", "$schema",
    "$id", "$anchor", "$defs", "definitions", "contentEncoding", "contentMediaType", "contentSchema",
    "$vocabulary", "$dynamicAnchor", "minContains", "maxContains",
})  # fmt: skip
# Keywords of drafts 3 to 2020-12 that this module does not handle itself: never silently ignored.
KNOWN_KEYWORDS = frozenset({
    "$dynamicRef", "$recursiveRef", "$recursiveAnchor", "extends", "disallow", "divisibleBy", "$ref", "allOf", "anyOf",
    "oneOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "dependencies", "optional",
})  # fmt: skip
_NUMBER_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
ARRAY_KWS = frozenset({"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains",
                       "unevaluatedItems"})
OBJECT_KWS = frozenset({"properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                        "minProperties", "maxProperties", "unevaluatedProperties"})

Part = tuple[Any, str, str]


@dataclass
class Conjunct:
    schema: dict
    ptr: str
    base: str


@dataclass
class Plain:
    ptr: str = ""
    types: set = field(default_factory=lambda: set(ALL_TYPES))
    finite: list | None = None
    bounds: list = field(default_factory=list)  # (keyword, value, pointer)
    multiple_of: list = field(default_factory=list)
    min_length: int = 0
    max_length: int | None = None
    patterns: list = field(default_factory=list)
    formats: list = field(default_factory=list)
    prefix_items: list = field(default_factory=list)  # list of parts
    items: tuple | bool = ()  # parts, or False: no items past the prefix
    min_items: int = 0
    contains: list = field(default_factory=list)  # (part, minContains, maxContains or None, pointer)
    max_items: int | None = None
    unique: bool = False
    names: list = field(default_factory=list)  # listed property names (properties, then required), in order
    object_conjuncts: list = field(default_factory=list)  # (properties {name: part}, [(pattern, ptr, part)], add)
    property_names: list = field(default_factory=list)  # parts
    required: set = field(default_factory=set)
    min_properties: int = 0
    max_properties: int | None = None


def type_set(t: Any) -> set[str]:
    out: set[str] = set()
    for name in [t] if isinstance(t, str) else t:
        if name == "number":
            out |= {"integer", "fraction"}
        else:
            out.add(name)
    return out


def _int(v: Any) -> int:
    return int(v)  # the meta-schema guarantees a non-negative integer (1.0 allowed)


def merge(alt: list[Conjunct], compiler) -> Plain | None:
    """The Plain intersection of ``alt``, or None when it is empty."""
    p = Plain(ptr=alt[0].ptr if alt else "")
    finite = [c.schema["enum"] if "enum" in c.schema else [c.schema["const"]]
              for c in alt if "enum" in c.schema or "const" in c.schema]
    if finite:
        # Candidates from the first list; the compiler keeps those every conjunct accepts (checked by jsonschema).
        seen, values = set(), []
        for v in finite[0]:
            key = json.dumps(v, sort_keys=True)
            if key not in seen:
                seen.add(key)
                values.append(v)
        p.finite = values
        return p
    fail = compiler.fail
    old = compiler.doc.old_draft
    arrays, objects = [], []
    for c in alt:
        s, ptr = c.schema, c.ptr
        for kw, v in s.items():
            if kw in ANNOTATIONS:
                continue
            if kw == "type":
                p.types &= type_set(v)
            elif kw in _NUMBER_BOUNDS:
                if old and kw.startswith("exclusive") and isinstance(v, bool):
                    fail(kw, f"{ptr}/{kw}", "draft-04 boolean exclusive bounds")
                else:
                    p.bounds.append((kw, v, ptr))
            elif kw == "multipleOf":
                p.multiple_of.append((v, ptr))
            elif kw == "minLength":
                p.min_length = max(p.min_length, _int(v))
            elif kw == "maxLength":
                p.max_length = _int(v) if p.max_length is None else min(p.max_length, _int(v))
            elif kw == "pattern":
                p.patterns.append((v, ptr))
            elif kw == "format":
                p.formats.append((v, ptr))
            elif kw == "not":  # only from negations built by the compiler: {"not": {"type": ...}}
                if not _merge_not(p, v, ptr, fail):
                    return None
            elif kw in ARRAY_KWS:
                continue
            elif kw in OBJECT_KWS:
                continue
            elif kw in KNOWN_KEYWORDS:
                fail(kw, f"{ptr}/{kw}", "unsupported keyword")
            else:
                # Not a keyword of any JSON Schema draft: validators ignore it, so ignoring it is exact.
                compiler.note(f"{kw} at #{ptr}/{_esc(kw)}: unknown keyword, ignored (as validators do)")
        if ARRAY_KWS & s.keys():
            arrays.append(c)
        if OBJECT_KWS & s.keys():
            objects.append(c)
    if not p.types:
        return None
    if "array" in p.types:
        _merge_arrays(p, arrays, compiler)
    if "object" in p.types:
        _merge_objects(p, objects, compiler)
    return p


def _merge_not(p: Plain, sub: Any, ptr: str, fail) -> bool:
    """``not``: exact for a type-only subschema. False when the result is empty."""
    if sub is True or sub == {}:
        return False
    if sub is False:
        return True
    if isinstance(sub, dict) and set(sub) - ANNOTATIONS == {"type"}:
        p.types -= type_set(sub["type"])
        return True
    fail("not", f"{ptr}/not", "not of a schema other than a type")
    return True


def _where(compiler, sub: Any, ptr: str, base: str) -> Part:
    return (sub, ptr, compiler.doc.where(sub, ptr, base)[1])


def _merge_arrays(p: Plain, arrays: list[Conjunct], compiler) -> None:
    fail = compiler.fail
    tuple_items = compiler.doc.tuple_items
    prefixes: list[list[Part]] = []
    items: list[Part] = []
    for c in arrays:
        s, ptr = c.schema, c.ptr
        prefix = s.get("prefixItems", [])
        prefix_ptr = f"{ptr}/prefixItems"
        it, it_ptr = s.get("items"), f"{ptr}/items"
        if isinstance(it, list):  # drafts <= 2019-09: items as a list is the prefix
            prefix, prefix_ptr = it, f"{ptr}/items"
            it, it_ptr = s.get("additionalItems"), f"{ptr}/additionalItems"
        elif "additionalItems" in s and not tuple_items:
            fail("additionalItems", f"{ptr}/additionalItems", "additionalItems is not a 2020-12 keyword")
        prefixes.append([_where(compiler, sub, f"{prefix_ptr}/{j}", c.base) for j, sub in enumerate(prefix)])
        items.append(None if it is None else _where(compiler, it, it_ptr, c.base))
        if "minItems" in s:
            p.min_items = max(p.min_items, _int(s["minItems"]))
        if "maxItems" in s:
            p.max_items = _int(s["maxItems"]) if p.max_items is None else min(p.max_items, _int(s["maxItems"]))
        if "contains" in s:
            p.contains.append((_where(compiler, s["contains"], f"{ptr}/contains", c.base), _int(s.get("minContains", 1)),
                               s.get("maxContains"), ptr))
        if "unevaluatedItems" in s:
            fail("unevaluatedItems", f"{ptr}/unevaluatedItems")
    p.unique = any(c.schema.get("uniqueItems") is True for c in arrays)  # enforced (or refused) by the compiler
    n = max((len(x) for x in prefixes), default=0)
    for j in range(n):
        parts = []
        for pre, it in zip(prefixes, items, strict=True):
            if j < len(pre):
                parts.append(pre[j])
            elif it is not None:
                parts.append(it)
        p.prefix_items.append(tuple(parts))
    rest = tuple(it for it in items if it is not None)
    p.items = False if any(x[0] is False for x in rest) else rest


def _merge_objects(p: Plain, objects: list[Conjunct], compiler) -> None:
    """Collects each object conjunct's ``properties``/``patternProperties``/``additionalProperties`` (the
    compiler intersects them per key), the union of ``required`` and the ``propertyNames`` parts."""
    fail = compiler.fail
    default_add = compiler.opt.additional_properties_default
    names: list[str] = []
    seen: set[str] = set()
    for c in objects:
        s, ptr = c.schema, c.ptr
        props = {k: _where(compiler, v, f"{ptr}/properties/{_esc(k)}", c.base)
                 for k, v in s.get("properties", {}).items()}
        patterns = [(pat, f"{ptr}/patternProperties/{_esc(pat)}",
                     _where(compiler, v, f"{ptr}/patternProperties/{_esc(pat)}", c.base))
                    for pat, v in s.get("patternProperties", {}).items()]
        closed = not default_add and id(s) not in compiler.constraint_ids
        add = s.get("additionalProperties", False if closed else None)
        add_part = None if add is None else _where(compiler, add, f"{ptr}/additionalProperties", c.base)
        p.object_conjuncts.append((props, patterns, add_part))
        for k in list(props) + list(s.get("required", [])):
            if k not in seen:
                seen.add(k)
                names.append(k)
        p.required |= set(s.get("required", []))
        if "propertyNames" in s:
            p.property_names.append(_where(compiler, s["propertyNames"], f"{ptr}/propertyNames", c.base))
        if "minProperties" in s:
            p.min_properties = max(p.min_properties, _int(s["minProperties"]))
        if "maxProperties" in s:
            v = _int(s["maxProperties"])
            p.max_properties = v if p.max_properties is None else min(p.max_properties, v)
        if s.get("unevaluatedProperties") not in (None, True, {}):
            fail("unevaluatedProperties", f"{ptr}/unevaluatedProperties")
    p.names = names


def _esc(k: str) -> str:
    return k.replace("~", "~0").replace("/", "~1")
