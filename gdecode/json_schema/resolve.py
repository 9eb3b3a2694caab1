"""The schema document: meta-validation, JSON pointers of subschemas, ``$id``/``$anchor`` and ``$ref``.

Only references inside the document are resolved (``#...`` pointers, anchors and ``$id`` resources it
defines); anything else raises UnsupportedFeatureError. Every indexed subschema knows its JSON pointer
(for error messages) and its base URI (for relative references).
"""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from gdecode.errors import SchemaError, UnsupportedFeatureError
from gdecode.json_schema import formats
from gdecode.json_schema.meta import surely_valid

DEFAULT_BASE = "https://gdecode.invalid/schema.json"
_MAP_KWS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_ONE_KWS = ("additionalProperties", "additionalItems", "items", "contains", "propertyNames", "not", "if", "then",
            "else", "unevaluatedItems", "unevaluatedProperties", "contentSchema")
_LIST_KWS = ("prefixItems", "allOf", "anyOf", "oneOf", "items")
_OLD_DRAFTS = ("draft-03", "draft-04", "draft-06", "draft-07")


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def load_schema(schema: Any) -> Any:
    """A dict/bool schema from a dict, JSON text or a Pydantic model class."""
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    if isinstance(schema, (str, bytes)):
        try:
            schema = json.loads(schema)
        except ValueError as e:  # JSONDecodeError, or UnicodeDecodeError for bytes that are not UTF-8
            raise SchemaError(f"schema is not valid JSON: {e}") from None
        if not isinstance(schema, (dict, bool)):  # e.g. "5" or "null": jsonschema would raise TypeError
            raise SchemaError(f"a schema must be a JSON object or boolean, not {type(schema).__name__}")
        return schema
    if isinstance(schema, (dict, bool)):
        return schema
    raise SchemaError(f"a schema must be a dict, a bool, JSON text or a Pydantic model, not {type(schema).__name__}")


def format_checker() -> jsonschema.FormatChecker:
    """A format checker for exactly the formats gdecode enforces (same patterns as the grammar)."""
    fc = jsonschema.FormatChecker(formats=())
    for name in formats.PATTERNS:
        fc.checks(name)(lambda v, _n=name: not isinstance(v, str) or formats.check(_n, v))
    return fc


@functools.lru_cache(maxsize=16)
def _meta_validator(cls):
    """One meta-schema validator per draft (building one costs more than validating a small schema)."""
    return cls(cls.META_SCHEMA)


@functools.lru_cache(maxsize=1)
def _format_checker() -> jsonschema.FormatChecker:
    return format_checker()


def _urljoin(base: str, ref: str, ptr: str) -> str:
    try:
        return urljoin(base, ref)
    except ValueError as e:  # malformed URI (urllib raises, e.g. "Invalid IPv6 URL")
        raise SchemaError(f"invalid schema at #{ptr}: {ref!r} is not a valid URI ({e})") from None


class Document:
    def __init__(self, root: Any) -> None:
        self.root = root
        if isinstance(root, dict) and not isinstance(root.get("$schema", ""), str):  # validator_for would crash
            raise SchemaError("invalid schema at #/$schema: must be a string (a meta-schema URI)")
        try:
            cls = jsonschema.validators.validator_for(root, default=jsonschema.Draft202012Validator)
        except ValueError as e:  # urllib on a malformed URI, e.g. "http://a[b"
            raise SchemaError(f"invalid schema at #/$schema: {e}") from None
        # Meta-validation without format checks: "regex" would be checked with Python's re, not ECMA-262.
        # The hand-written first pass proves most schemas valid at a fraction of the cost; jsonschema decides
        # (and words the error) for the rest.
        meta = _meta_validator(cls)
        try:
            e = None if surely_valid(root) or meta.is_valid(root) else \
                jsonschema.exceptions.best_match(meta.iter_errors(root))
        except TypeError as err:  # jsonschema's own error ranking fails on some draft-03 documents
            raise SchemaError(f"invalid schema (meta-validation failed: {err})") from None
        if e is not None:
            ptr = "".join("/" + escape_pointer(str(p)) for p in e.absolute_path)
            raise SchemaError(f"invalid schema at #{ptr}: {e.message}") from None
        schema_uri = root.get("$schema", "") if isinstance(root, dict) else ""
        self.old_draft = any(d in schema_uri for d in _OLD_DRAFTS)
        self.tuple_items = self.old_draft or "2019-09" in schema_uri  # items: [...] + additionalItems
        self._validator_cls = cls
        self.info: dict[int, tuple[str, str]] = {}  # id(node) -> (pointer, base URI)
        self.resources: dict[str, tuple[Any, str]] = {}
        self.anchors: dict[tuple[str, str], tuple[Any, str]] = {}
        self._index(root, "", DEFAULT_BASE)

    # ----------------------------------------------------------------------------------------- indexing
    def _index(self, node: Any, ptr: str, base: str) -> None:
        stack = [(node, ptr, base)]
        while stack:
            node, ptr, base = stack.pop()
            if not isinstance(node, dict):
                continue
            if isinstance(node.get("$id"), str) and not (self.old_draft and "$ref" in node):
                ident = node["$id"]
                if ident.startswith("#") and self.old_draft:  # draft-06/07 anchor spelled as $id
                    self.anchors[(base, ident[1:])] = (node, ptr)
                else:
                    base = urldefrag(_urljoin(base, ident, ptr + "/$id"))[0]
                    self.resources.setdefault(base, (node, ptr))
            if ptr == "":
                self.resources.setdefault(base, (node, ptr))
            for kw in ("$anchor", "$dynamicAnchor"):  # a $dynamicAnchor is also a plain-name fragment
                if isinstance(node.get(kw), str):
                    self.anchors.setdefault((base, node[kw]), (node, ptr))
            self.info.setdefault(id(node), (ptr, base))
            for kw in _MAP_KWS:
                sub = node.get(kw)
                if isinstance(sub, dict):
                    for k, v in sub.items():
                        stack.append((v, f"{ptr}/{kw}/{escape_pointer(k)}", base))
            for kw in _ONE_KWS:
                if isinstance(node.get(kw), (dict, bool)):
                    stack.append((node[kw], f"{ptr}/{kw}", base))
            for kw in _LIST_KWS:
                if isinstance(node.get(kw), list):
                    for i, v in enumerate(node[kw]):
                        stack.append((v, f"{ptr}/{kw}/{i}", base))

    def where(self, node: Any, default_ptr: str = "", default_base: str = DEFAULT_BASE) -> tuple[str, str]:
        return self.info.get(id(node), (default_ptr, default_base))

    # ------------------------------------------------------------------------------------------ $ref
    def resolve(self, ref: str, base: str, ptr: str) -> tuple[Any, str, str]:
        """(target schema, its pointer, its base URI) of ``$ref`` written at ``ptr`` under ``base``."""
        if ref.startswith("#"):  # also right for bases urljoin does not understand (urn:...)
            uri, fragment = urldefrag(base)[0], ref[1:]
        else:
            uri, fragment = urldefrag(_urljoin(base, ref, ptr + "/$ref"))
        res = self.resources.get(uri)
        if res is None:
            raise UnsupportedFeatureError(f"$ref at #{ptr}/$ref: {ref!r} is outside the document (remote refs "
                                          f"are not supported)")
        node, rptr = res
        fragment = unquote(fragment)
        if fragment and not fragment.startswith("/"):
            hit = self.anchors.get((uri, fragment))
            if hit is None:
                raise SchemaError(f"$ref at #{ptr}/$ref: anchor {fragment!r} not found")
            node, rptr = hit
            return node, rptr, self.where(node, rptr, uri)[1]
        for token in fragment.split("/")[1:] if fragment else []:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise SchemaError(f"$ref at #{ptr}/$ref: {ref!r} does not resolve")
            rptr = f"{rptr}/{escape_pointer(token)}"
        if not isinstance(node, (dict, bool)):
            raise SchemaError(f"$ref at #{ptr}/$ref: {ref!r} does not point at a schema")
        known = self.info.get(id(node))
        if known is None:
            self._index(node, rptr, uri)
            known = self.info.get(id(node), (rptr, uri))
        return node, known[0], known[1]

    # ------------------------------------------------------------------------------------- validation
    @functools.cached_property
    def validator(self):
        """A jsonschema validator of the whole document, made on first use: most schemas never need one
        (only enum candidates are checked with it), and making it was a tenth of a small schema's walk."""
        return self._validator_cls(self.root, format_checker=_format_checker())

    def validator_for(self, node: Any, base: str):
        """A jsonschema validator of the subschema ``node`` (refs resolved from ``base``)."""
        v = self.validator
        if base != DEFAULT_BASE and base in self.resources and self.resources[base][1] != "":
            resolver = v._resolver.lookup(base).resolver
            return v.evolve(schema=node, _resolver=resolver)
        return v.evolve(schema=node)

    def is_valid(self, value: Any, node: Any, base: str) -> bool:
        """Does ``value`` validate against the subschema ``node`` (refs resolved from ``base``)?"""
        return self.validator_for(node, base).is_valid(value)
