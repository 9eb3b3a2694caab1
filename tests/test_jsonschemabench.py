"""JSONSchemaBench (issue 4): 13 splits, 8397 real-world schemas, each with valid and invalid instances.

For every schema gdecode compiles (Llama-3 tokenizer, per-schema limits), every valid instance must be
accepted token by token and every invalid one rejected. The text is what a model constrained by our
default grammar writes: ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` (compact; the
default ``"flexible"`` whitespace accepts it, and non-ASCII characters are written literally since the
grammar only produces ``\\u00XX`` escapes for control characters), tokenized by the Llama-3 tokenizer.
Object keys are put in schema order first (the default ``key_order="schema"``: a model writes listed
properties in the order of ``properties``); the instance's own order is tried too. When neither is accepted,
:func:`search_serialization` looks for a key order per object that the grammar takes (one schema-wide order
cannot follow subschemas that list the same names in different orders); such instances count as
**valid reordered**, accepted.

* **false accept** (an *invalidation error*): an instance labelled invalid, which ``jsonschema`` also finds
  invalid, is accepted. Must be zero.
* **valid rejected**: no serialization of a valid instance is accepted (a completeness gap, e.g. numbers in
  exponent notation under bounds, or a key order the greedy search misses). Ratcheted.
* Instances the labels and ``jsonschema`` disagree on, or that cannot be encoded (lone surrogates), are
  counted apart and not judged.

The full run is ``slow``; the default suite runs a few records per split. ``python
tests/test_jsonschemabench.py`` prints the per-split table with llguidance's compile share on the same
records (llguidance is optional).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import jsonschema
import pytest

import gdecode as gd
from gdecode.compiler import Limits
from gdecode.errors import GDecodeError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from conftest import skip_unless_ci  # noqa: E402

# Bounds per schema: compiling all 8397 schemas must stay within minutes. The NFA limit is the default one
# users get (with 200k states, 50 Kubernetes schemas with hundreds of open-object key sets did not fit).
LIMITS = Limits(max_dfa_states=20_000)  # the default NFA limit (500k states), fewer DFA states
OPTIONS = {"max_rules": 20_000}


def data_dir() -> Path:
    from gdecode.assets import shared_assets_dir

    shared = shared_assets_dir()
    return (shared.parent if shared else ROOT.parent / "shared") / "datasets" / "jsonschemabench"


def records(split: str, limit: int | None = None, stride: int = 1, max_chars: int | None = None) -> list[dict]:
    out = []
    with (data_dir() / f"{split}.jsonl").open() as f:
        for i, line in enumerate(f):
            if i % stride == 0:
                rec = json.loads(line)
                if max_chars is None or len(json.dumps(rec["schema"])) <= max_chars:
                    out.append(rec)
            if limit is not None and len(out) >= limit:
                break
    return out


def splits() -> list[str]:
    return sorted(p.stem for p in data_dir().glob("*.jsonl"))


def dump(value) -> str:
    """Compact JSON, non-ASCII written literally: what a model under the default grammar writes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def key_order(schema) -> dict[str, int]:
    """Property names in document order (``properties`` keys, then ``required`` entries), first seen wins."""
    order: dict[str, int] = {}
    stack = [schema]
    seen = 0
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                for k in props:
                    order.setdefault(k, len(order))
            req = node.get("required")
            if isinstance(req, list):
                for k in req:
                    if isinstance(k, str):
                        order.setdefault(k, len(order))
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
        seen += 1
    return order


def reorder(value, order: dict[str, int]):
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (order.get(k, len(order)), list(value).index(k)))
        return {k: reorder(value[k], order) for k in keys}
    if isinstance(value, list):
        return [reorder(v, order) for v in value]
    return value


def texts(value, schema) -> list[str]:
    """The serializations tried: schema key order, then the instance's own order (when different)."""
    out = [dump(reorder(value, key_order(schema)))]
    own = dump(value)
    if own != out[0]:
        out.append(own)
    return out


def search_serialization(g, value, order: dict[str, int], budget: int = 50_000) -> str | None:
    """A compact serialization of ``value`` that grammar ``g`` accepts byte by byte, with the keys of each
    object in an order the grammar takes, or None. The key order of one object can depend on where it sits
    (``properties`` of two subschemas list the same names in different orders), which a schema-wide order
    cannot follow; the grammar can. Greedy per object: the next key is one that no other candidate must
    precede; when its value fails there, the other candidates. ``budget`` bounds the feeds."""
    spent = 0
    written: dict[int, str] = {}  # id(value) -> its text as last written (the values are alive meanwhile)

    def feed(m, text: str):
        nonlocal spent
        spent += 1
        if spent > budget:
            raise TimeoutError
        m2 = m.fork()
        return m2 if m2.consume_bytes(text) else None

    def write(m, v):  # (matcher after v, text of v) or None
        if isinstance(v, dict):
            got = write_object(m, v)
            if got is not None:
                written[id(v)] = got[1]
            return got
        if isinstance(v, list):
            m, parts = feed(m, "["), []
            for i, item in enumerate(v):
                if m is not None and i:
                    m = feed(m, ",")
                got = None if m is None else write(m, item)
                if got is None:
                    return None
                m, text = got
                parts.append(text)
            m = None if m is None else feed(m, "]")
            return None if m is None else (m, "[" + ",".join(parts) + "]")
        m = feed(m, dump(v))
        return None if m is None else (m, dump(v))

    def probe(m, v):
        """The matcher after ``v`` as last written anywhere, else after writing it here."""
        if id(v) in written:
            return feed(m, written[id(v)])
        got = write(m, v)
        return None if got is None else got[0]

    def write_object(m, v: dict):
        m, parts = feed(m, "{"), []
        left = sorted(v, key=lambda k: order.get(k, len(order)))
        while m is not None and left:
            sep = "," if parts else ""
            cands = [(k, m2) for k in left if (m2 := feed(m, sep + dump(k) + ":")) is not None]
            if not cands:
                return None
            # One pass for a key no other candidate must precede (in an object whose keys come in
            # `properties` order, the next one in that order).
            best, after = 0, probe(cands[0][1], v[cands[0][0]])
            for i in range(1, len(cands)):
                k, m2 = cands[i]
                if after is not None and feed(after, "," + dump(k) + ":") is not None:
                    continue
                after_k = probe(m2, v[k])
                if after is None or (after_k is not None and feed(after_k, "," + dump(cands[best][0]) + ":")):
                    best, after = i, after_k
            for k, m2 in cands[best:best + 1] + cands[:best] + cands[best + 1:]:
                got = write(m2, v[k])
                if got is not None:
                    m, text = got
                    parts.append(dump(k) + ":" + text)
                    left.remove(k)
                    break
            else:
                return None
        m = None if m is None else feed(m, "}")
        return None if m is None else (m, "{" + ",".join(parts) + "}")

    try:
        got = write(gd.Matcher(g), value)
    except TimeoutError:
        return None
    return got[1] if got is not None and got[0].is_accepting() else None


def _exact_multiple_of(validator, m, instance, schema):
    """``multipleOf`` on the decimal values of the JSON text (the spec), not on doubles: jsonschema finds
    0.07 not a multiple of 0.01 because 0.07 / 0.01 == 7.000000000000001."""
    if validator.is_type(instance, "number") and not isinstance(instance, bool):
        x = Fraction(repr(instance)) if isinstance(instance, float) else Fraction(instance)
        d = Fraction(repr(m)) if isinstance(m, float) else Fraction(m)
        if (x / d).denominator != 1:
            yield jsonschema.ValidationError(f"{instance!r} is not a multiple of {m}")


def oracle_for(schema):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    exact = jsonschema.validators.extend(cls, {"multipleOf": _exact_multiple_of})
    return exact(schema, format_checker=jsonschema.FormatChecker())


class Checker:
    def __init__(self) -> None:
        from gdecode.assets import load_hf_tokenizer

        self.hf = load_hf_tokenizer("llama3")
        self.tok = gd.TokenizerInfo.from_huggingface(self.hf)

    def compile(self, schema):
        return gd.compile_json_schema(schema, self.tok, limits=LIMITS, **OPTIONS)

    def accepts(self, g, text: str) -> bool:
        ids = self.hf.encode(text, add_special_tokens=False)
        m = gd.Matcher(g)
        return m.consume_tokens(ids) == len(ids) and m.is_accepting()

    def check(self, rec: dict, counts: Counter, problems: list) -> None:
        schema = rec["schema"]
        counts["schemas"] += 1
        t = time.perf_counter()
        try:
            g = self.compile(schema)
        except GDecodeError as e:
            counts["not_compiled"] += 1
            counts["error:" + type(e).__name__] += 1
            return
        finally:
            counts["compile_ms"] += int((time.perf_counter() - t) * 1e3)
        counts["compiled"] += 1
        try:
            validator = oracle_for(schema)
        except Exception:  # noqa: BLE001 - the oracle cannot read the schema: instances not judged
            validator = None
        for test in rec["tests"]:
            try:
                cands = texts(test["data"], schema)
                for c in cands:
                    c.encode("utf-8")
            except (UnicodeEncodeError, ValueError):
                counts["unencodable"] += 1
                continue
            try:
                oracle = None if validator is None else validator.is_valid(test["data"])
            except Exception:  # noqa: BLE001 - e.g. Python re cannot read an ECMA pattern
                oracle = None
            if oracle is not test["valid"]:
                counts["label_disagrees"] += 1
                continue
            got = [self.accepts(g, c) for c in cands]
            if test["valid"]:
                counts["valid"] += 1
                if not any(got):
                    found = search_serialization(g, test["data"], key_order(schema))
                    if found is not None and self.accepts(g, found):
                        counts["valid_reordered"] += 1
                        continue
                    counts["valid_rejected"] += 1
                    problems.append(("valid_rejected", rec["id"], cands[0][:200]))
            else:
                counts["invalid"] += 1
                if any(got):
                    counts["false_accept"] += 1
                    problems.append(("false_accept", rec["id"], cands[0][:200]))


def _require_data() -> None:
    if not data_dir().is_dir():
        skip_unless_ci(f"JSONSchemaBench not found at {data_dir()}")


@pytest.fixture(scope="module")
def checker():
    _require_data()
    return Checker()


def test_sampled_records(checker):
    """A few records of every split (default suite): no false accept, valid instances accepted."""
    counts: Counter = Counter()
    problems: list = []
    for split in splits():
        for rec in records(split, limit=2, stride=53, max_chars=3000):  # small schemas: a fast default run
            checker.check(rec, counts, problems)
    assert counts["compiled"] >= 16, counts
    assert counts["valid"] >= 12 and counts["invalid"] >= 8, counts
    assert counts["false_accept"] == 0, problems
    assert counts["valid_rejected"] <= 2, problems


def test_search_serialization_follows_each_subschemas_key_order(checker):
    """The same names in two orders: no schema-wide order fits both objects, the search finds one per
    object; a value the grammar does not take gives None."""
    schema = {"type": "object", "properties": {
        "p": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
              "required": ["a", "b"]},
        "q": {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "integer"}},
              "required": ["a", "b"]}}}
    g = checker.compile(schema)
    value = {"q": {"a": 1, "b": 2}, "p": {"b": 3, "a": 4}}
    assert not any(checker.accepts(g, t) for t in texts(value, schema))
    found = search_serialization(g, value, key_order(schema))
    assert found == '{"p":{"a":4,"b":3},"q":{"b":2,"a":1}}' and checker.accepts(g, found)
    assert search_serialization(g, {"p": {"a": 1}}, key_order(schema)) is None  # "b" is required
    assert search_serialization(g, {"p": {"a": 1, "b": 2}}, key_order(schema), budget=3) is None
    short = {"type": "array", "items": {"type": "integer"}, "maxItems": 1}  # no "," after the first item
    assert search_serialization(checker.compile(short), [1, 2], {}) is None
    assert search_serialization(checker.compile(short), [1], {}) == "[1]"


@pytest.mark.slow
def test_full_benchmark(checker):
    counts, per_split, problems = run_all(checker)
    assert counts["false_accept"] == 0, [p for p in problems if p[0] == "false_accept"]
    # ratchets (raise as support grows)
    assert counts["compiled"] >= int(os.environ.get("GDECODE_JSB_MIN_COMPILED", "7735")), counts
    # 2: both accepted by the grammar with a hand-made key order (Github_hard/o67291: Monster order;
    # JsonSchemaStore/execution-environment: the v3 branch's order), missed by the greedy key-order search.
    assert counts["valid_rejected"] <= 2, [p for p in problems if p[0] == "valid_rejected"][:50]


def run_all(checker: Checker, llg=None, out=None):
    counts: Counter = Counter()
    per_split: dict[str, tuple[Counter, Counter]] = {}
    problems: list = []
    for split in splits():
        c: Counter = Counter()
        lc: Counter = Counter()
        for rec in records(split):
            checker.check(rec, c, problems)
            if llg is not None:
                lc["compiled"] += llg(rec["schema"])
        per_split[split] = (c, lc)
        counts += c
        if out:
            out(split, c, lc)
    return counts, per_split, problems


def _llguidance(checker: Checker):
    import llguidance
    import llguidance.hf

    tok = llguidance.hf.from_tokenizer(checker.hf)

    def compiles(schema) -> int:
        try:
            m = llguidance.LLMatcher(tok, llguidance.LLMatcher.grammar_from_json_schema(schema))
            return int(not m.is_error())
        except Exception:  # noqa: BLE001
            return 0

    return compiles


def main() -> None:
    checker = Checker()
    try:
        llg = _llguidance(checker)
    except ImportError:
        llg = None
    print("| split | schemas | gdecode compiled | llguidance compiled | valid ok | invalid rejected | "
          "false accepts | gdecode compile s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def row(split, c, lc):
        n = c["schemas"]
        llg_s = f"{lc['compiled']} ({lc['compiled'] / n:.1%})" if llg else "-"
        print(f"| {split} | {n} | {c['compiled']} ({c['compiled'] / n:.1%}) | {llg_s} | "
              f"{c['valid'] - c['valid_rejected']}/{c['valid']} | {c['invalid'] - c['false_accept']}/{c['invalid']} "
              f"| {c['false_accept']} | {c['compile_ms'] / 1e3:.1f} |", flush=True)

    t = time.time()
    counts, per_split, problems = run_all(checker, llg, row)
    lc_total = sum((lc for _c, lc in per_split.values()), Counter())
    row("**total**", counts, lc_total)
    print(f"\n{dict(counts)}\n{time.time() - t:.0f} s")
    for p in problems:
        print(*p)


if __name__ == "__main__":
    main()
