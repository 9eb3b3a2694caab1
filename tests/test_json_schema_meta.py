"""The hand-written meta-validation fast path (``gdecode.json_schema.meta``) must never call a schema valid
that ``jsonschema``'s meta-validation rejects (it may only be stricter), and it must prove the common case.

Sources: the JSON Schema Test Suite's schemas under each draft's ``$schema``, a sample of JSONSchemaBench,
and seeded random mutations of both (a keyword's value replaced by an odd JSON value)."""

from __future__ import annotations

import copy
import json
import random
import sys
from pathlib import Path

import jsonschema
import pytest

from gdecode.json_schema.meta import draft_of, surely_valid
from gdecode.json_schema.resolve import _meta_validator

sys.path.insert(0, str(Path(__file__).parent))
from conftest import skip_unless_ci  # noqa: E402
from test_json_schema import SUITE  # noqa: E402
from test_jsonschemabench import data_dir  # noqa: E402

SUITE_ROOT = SUITE.parent
DRAFT_URIS = {"draft4": "http://json-schema.org/draft-04/schema#", "draft6": "http://json-schema.org/draft-06/schema#",
              "draft7": "http://json-schema.org/draft-07/schema#",
              "draft2019-09": "https://json-schema.org/draft/2019-09/schema",
              "draft2020-12": "https://json-schema.org/draft/2020-12/schema"}
ODD_VALUES = [-1, 0, 1.5, 2, True, False, None, "x", "#frag", "a#b", "", [], {}, [1, 1.0], [True, 1], ["a", "a"],
              ["a"], [{}], [{"a": 1}, {"a": 1.0}], {"a": 1}, {"a": True}, {"a": []}, {"a": ["b"]}, ["string"],
              ["integer", "integer"], "number", "nonsense", 1e400, [[]], "9abc", "_a", "a:b", "a.b"]


def meta_valid(schema) -> bool:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return _meta_validator(cls).is_valid(schema)


def suite_schemas() -> list:
    out = []
    for d, uri in DRAFT_URIS.items():
        for path in sorted((SUITE_ROOT / d).glob("*.json")):
            for group in json.loads(path.read_text()):
                s = group["schema"]
                out.append({"$schema": uri, **s} if isinstance(s, dict) and "$schema" not in s else s)
    return out


def bench_schemas(stride: int = 25) -> list:
    out = []
    for path in sorted(data_dir().glob("*.jsonl")):
        with path.open() as f:
            out += [json.loads(line)["schema"] for i, line in enumerate(f) if i % stride == 0]
    return out


def mutations(schema, rng: random.Random, n: int):
    """Copies of ``schema`` with one keyword value (at any depth) replaced by an odd value."""
    sites = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            sites += [(node, k) for k in node]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    for _ in range(min(n, len(sites))):
        node, key = rng.choice(sites)
        saved = node[key]
        node[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        yield copy.deepcopy(schema)
        node[key] = saved


@pytest.fixture(scope="module")
def corpus():
    if not SUITE_ROOT.is_dir() or not data_dir().is_dir():
        skip_unless_ci("JSON Schema Test Suite or JSONSchemaBench not found")
    return suite_schemas() + bench_schemas()


def test_fast_path_never_accepts_what_jsonschema_rejects(corpus):
    rng = random.Random(7)
    checked = proven = 0
    for schema in corpus:
        for s in [schema, *mutations(copy.deepcopy(schema), rng, 3)]:
            if surely_valid(s):
                proven += 1
                assert meta_valid(s), json.dumps(s)[:500]
            checked += 1
    assert checked > 5000 and proven > checked // 3


def test_fast_path_proves_the_common_case(corpus):
    valid = [s for s in corpus if meta_valid(s) and draft_of(s) is not None]
    assert len(valid) > 1000
    proven = sum(surely_valid(s) for s in valid)
    assert proven >= 0.97 * len(valid), (proven, len(valid))


@pytest.mark.parametrize("schema", [
    {"$schema": DRAFT_URIS["draft4"], "properties": {"a": True}},  # boolean schemas arrived in draft 6
    {"$schema": DRAFT_URIS["draft4"], "exclusiveMaximum": True},  # draft 4: needs "maximum" beside it
    {"$schema": DRAFT_URIS["draft4"], "required": []},
    {"$schema": DRAFT_URIS["draft6"], "exclusiveMaximum": True},
    {"$schema": DRAFT_URIS["draft2020-12"], "items": [{}]},  # prefixItems since 2020-12
    {"$id": "http://x/y#frag"}, {"$anchor": "9a"}, {"$schema": DRAFT_URIS["draft4"], "enum": [1, 1.0]},
    {"$schema": DRAFT_URIS["draft4"], "enum": [{"a": [1]}, {"a": [1.0]}]}, {"type": ["string", "string"]},
    {"type": "int"}, {"minLength": -1}, {"multipleOf": 0}, {"required": ["a", "a"]}, {"allOf": []},
    {"dependentRequired": {"a": [1]}}, {"properties": {"a": {"minItems": "1"}}}, {"$defs": {"a": 3}},
])
def test_fast_path_rejects_meta_invalid(schema):
    assert not meta_valid(schema) and not surely_valid(schema)


def test_fast_path_leaves_unknown_drafts_to_jsonschema():
    for uri in (4, "http://json-schema.org/draft-03/schema#", "http://example.com/my-meta"):
        assert draft_of({"$schema": uri}) is None and not surely_valid({"$schema": uri})


@pytest.mark.parametrize("schema", [
    {"enum": [1, True, "1", None, [1], {"a": 1}, {"a": True}]}, {"$anchor": "a.b-c"}, {"$id": "http://x/y#"},
    {"$schema": DRAFT_URIS["draft4"], "maximum": 3, "exclusiveMaximum": True}, True, {"x-unknown": [1, 1]},
    {"items": [{}], "$schema": DRAFT_URIS["draft7"]}, {"const": [1, 1]}, {"default": {"type": 3}},
])
def test_fast_path_proves_valid(schema):
    assert meta_valid(schema) and surely_valid(schema)
