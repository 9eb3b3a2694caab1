"""The core's regex flattening (``_core.flatten_regexes``, used by every compile) must produce exactly the
array of the Python reference ``compiler._RegexFlattener``: same nodes, same order, same dedup, same
"matches a non-empty string" flags. Grammars: the shipped Lark/GBNF grammars, JSON schemas and regexes
(including empty languages, byte classes and bounded/unbounded/zero repeats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gdecode import _core, ir
from gdecode.compiler import _RegexFlattener
from gdecode.errors import GrammarError
from gdecode.frontends.gbnf import gbnf_to_ir
from gdecode.frontends.lark import lark_to_ir
from gdecode.json_schema import schema_to_ir
from gdecode.regex import parse_regex

GRAMMARS = Path(__file__).resolve().parents[1] / "grammars"


def reference(roots: list[ir.Regex]):
    f = _RegexFlattener()
    idx = [f.add(r) for r in roots]
    return f.flat, idx, [f.nonempty(i) for i in idx]


def regexes_of(grammar: ir.Grammar) -> list[ir.Regex]:
    return [t.regex for t in grammar.terminals.values() if t.special_token is None]


def grammars():
    yield "json.lark", lark_to_ir((GRAMMARS / "json.lark").read_text())
    yield "sql.lark", lark_to_ir((GRAMMARS / "sql.lark").read_text())
    yield "smiles.lark", lark_to_ir((GRAMMARS / "smiles.lark").read_text())
    yield "json.gbnf", gbnf_to_ir((GRAMMARS / "json.gbnf").read_text())
    schemas = [{"type": "object", "properties": {"a": {"type": "string", "maxLength": 5}, "b": {"enum": [1, "x"]}},
                "additionalProperties": {"type": "number", "minimum": -3, "maximum": 17.5}},
               {"type": "array", "items": {"type": "string", "format": "date-time"}, "maxItems": 3},
               {"type": "string", "pattern": "^(ab|a)*[^x-z]{2,}$"}, {"anyOf": [{"type": "integer"}, {"const": None}]}]
    for i, s in enumerate(schemas):
        yield f"schema{i}", schema_to_ir(s)[0]


@pytest.mark.parametrize("name,grammar", list(grammars()), ids=lambda v: v if isinstance(v, str) else "")
def test_core_flattening_equals_reference(name, grammar):
    roots = regexes_of(grammar)
    assert roots
    assert _core.flatten_regexes(roots) == reference(roots)


def test_core_flattening_edge_cases():
    a = ir.Chars(((97, 97),))
    b = ir.Bytes(((0, 255),))
    roots = [ir.NOTHING, ir.EPSILON, ir.Repeat(a, 0, 0), ir.Repeat(a, 2, None), ir.Repeat(ir.NOTHING, 0, 3),
             ir.Seq((a, ir.NOTHING)), ir.Alt((ir.EPSILON, b)), ir.Seq((ir.Chars(((97, 97),)), a)),  # equal leaves
             parse_regex("(x|y){0,4}z+", flavor="python"), ir.Chars(())]
    roots = [getattr(r, "regex", r) for r in roots]
    flat, idx, nonempty = _core.flatten_regexes(roots)
    assert (flat, idx, nonempty) == reference(roots)
    assert nonempty == [False, False, False, True, False, False, True, True, True, False]
    deep = a
    for _ in range(20_000):  # no recursion: nesting this deep must not crash (the reference would)
        deep = ir.Seq((deep, a))
    assert _core.flatten_regexes([deep])[1] == [20_000]


def test_core_flattening_rejects_bad_nodes():
    with pytest.raises(GrammarError, match="unknown regex node"):
        _core.flatten_regexes([ir.Seq((ir.EPSILON, "not a regex"))])
    with pytest.raises(GrammarError, match="range"):
        _core.flatten_regexes([ir.Chars(((5, 2),))])
    with pytest.raises(GrammarError, match="repeat"):
        _core.flatten_regexes([ir.Repeat(ir.EPSILON, 3, 1)])


def test_keyed_terminals_dedupe_by_key_build_once_and_never_hash():
    """A key names the terminal instead of the regex (JSON keys by their text): equal keys share one
    terminal, the regex is built the first time only and never hashed; anonymous terminals still share
    one per equal regex."""
    b = ir.GrammarBuilder()
    built: list[ir.Regex] = []

    def make(text: str):
        def build():
            built.append(ir.literal(text))
            return built[-1]
        return build

    t1 = b.keyed_terminal(("str", "name"), make('"name"'), "STR")
    assert b.keyed_terminal(("str", "name"), make('"name"'), "STR") == t1 and len(built) == 1
    assert "_hash" not in built[0].__dict__ and b.grammar.terminals[t1].regex is built[0]
    assert b.keyed_terminal(("str", "other"), make('"other"'), "STR") != t1 and len(built) == 2
    plain = b.anonymous_terminal(ir.literal("x"))
    assert b.anonymous_terminal(ir.literal("x")) == plain
