"""Lark and GBNF frontends: every dataset grammar converts (or fails for a stated reason), and the IR has
the right language (checked with the reference recognizer of tests/reference.py and, for Lark, against
lark's own Earley parser on sentences sampled from the IR)."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
from conftest import IN_CI, skip_unless_ci
from reference import Reference, sample_sentence

from gdecode import ir
from gdecode.errors import GrammarError, UnsupportedFeatureError
from gdecode.frontends import gbnf_to_ir, lark_to_ir

DATA = Path("/work/shared/datasets/grammars")
MANIFEST = DATA / "MANIFEST.json"

# start rules of grammars whose start rule is not called "start"
LARK_START = {
    "lark/lark-parser/example_fruitflies.lark": "sentence",
    "lark/lark-parser/python.lark": "file_input",
    "lark/lark-parser/python2.lark": "file_input",
    "lark/ligurio-lark-grammars/python3.lark": "file_input",
}
# grammars we refuse, and a word the reason must contain
LARK_EXPECTED_FAILURES = {
    "lark/lark-parser/common.lark": (GrammarError, "start rule"),  # library, no start rule
    "lark/lark-parser/unicode.lark": (GrammarError, "start rule"),
    "lark/outlines/common.lark": (GrammarError, "start rule"),
    "lark/llguidance/rfc.lark": (GrammarError, "empty"),  # llguidance dialect: "" literals
    # post-lexer tokens (indentation)
    "lark/lark-parser/example_indented_tree.lark": (UnsupportedFeatureError, "%declare"),
    "lark/lark-parser/python.lark": (UnsupportedFeatureError, "%declare"),
    "lark/lark-parser/python2.lark": (UnsupportedFeatureError, "%declare"),
    "lark/ligurio-lark-grammars/python3.lark": (UnsupportedFeatureError, "%declare"),
    "lark/syncode/python.lark": (UnsupportedFeatureError, "%declare"),
    # OP: /[+*]|[?](?![a-z])/ looks at the character after the token (context-dependent lexing)
    "lark/lark-parser/lark.lark": (UnsupportedFeatureError, "lookahead"),
    "lark/lark-parser/template_lark.lark": (UnsupportedFeatureError, "lookahead"),
    # REGEXP: /\/(\\\/|\\\\|[^\/])+?\/[imslux]*/ : where the lazy body stops depends on backtracking
    "lark/llguidance/lark.lark": (UnsupportedFeatureError, "lazy"),
}
SLOW_LARK = {"lark/genlm/spider-dev/wta_1.lark"}  # ~8 s, almost all of it in lark's own loader

_SUMMARY: dict[str, tuple[str, str, str, float]] = {}


def _manifest() -> list[dict]:
    if not MANIFEST.exists():
        return []
    return json.loads(MANIFEST.read_text())


def _lark_entries():
    out = []
    for e in _manifest():
        if e["format"] != "lark":
            continue
        marks = [pytest.mark.slow] if e["path"] in SLOW_LARK else []
        out.append(pytest.param(e, id=e["path"].removeprefix("lark/"), marks=marks))
    return out


def _gbnf_files():
    return sorted((DATA / "gbnf").glob("**/*.gbnf")) if DATA.exists() else []


def _convert_lark_file(rel: str) -> ir.Grammar:
    path = DATA / rel
    return lark_to_ir(path.read_text(), start=LARK_START.get(rel, "start"), import_paths=[str(path.parent)])


@pytest.mark.parametrize("entry", _lark_entries())
def test_lark_dataset_file(entry):
    rel = entry["path"]
    lark_status = (entry.get("python_lark_load") or {}).get("earley", "-")
    t0 = time.monotonic()
    expected = LARK_EXPECTED_FAILURES.get(rel)
    try:
        g = _convert_lark_file(rel)
    except GrammarError as e:
        _SUMMARY[rel] = (lark_status, type(e).__name__, str(e), time.monotonic() - t0)
        assert expected is not None, f"{rel}: unexpected {type(e).__name__}: {e}"
        assert isinstance(e, expected[0]) and expected[1].lower() in str(e).lower(), str(e)
        return
    _SUMMARY[rel] = (lark_status, "ok", f"{len(g.terminals)} terminals, {len(g.rules)} rules", time.monotonic() - t0)
    assert expected is None, f"{rel} was expected to fail with {expected}"
    g.validate()
    for t in g.terminals.values():
        assert t.regex is not None


def test_lark_dataset_summary(capsys):
    """Prints the per-file table (run after the parametrized conversions)."""
    if not _SUMMARY:
        skip_unless_ci("grammar dataset not available")
    lines = [f"{'file':58s} {'lark':18s} {'result':24s} time  detail"]
    for rel, (lark_status, result, detail, dt) in sorted(_SUMMARY.items()):
        lines.append(f"{rel:58s} {lark_status:18s} {result:24s} {dt:4.1f}s {detail[:110]}")
    ok = sum(1 for v in _SUMMARY.values() if v[1] == "ok")
    lines.append(f"converted {ok} of {len(_SUMMARY)} Lark files")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    lark_ok = [rel for rel, v in _SUMMARY.items() if v[0] == "ok"]
    assert ok >= len(lark_ok) - 9  # the refusals listed in LARK_EXPECTED_FAILURES


# ------------------------------------------------------------------------- Lark: language checks
LARK_DIFF = [
    "lark/genlm/goal_inference.lark", "lark/genlm/smiles.lark", "lark/lark-parser/composition/csv.lark",
    "lark/lark-parser/composition/storage.lark", "lark/lark-parser/example_calc.lark",
    "lark/lark-parser/example_fruitflies.lark", "lark/lark-parser/example_json_parser.lark",
    "lark/lark-parser/example_turtle_dsl.lark", "lark/lark-parser/verilog.lark", "lark/ligurio-lark-grammars/bc.lark",
    "lark/ligurio-lark-grammars/iso-8601.lark", "lark/ligurio-lark-grammars/palindrome.lark",
    "lark/ligurio-lark-grammars/regex.lark", "lark/ligurio-lark-grammars/robotstxt.lark",
    "lark/ligurio-lark-grammars/tap13.lark", "lark/outlines/arithmetic.lark", "lark/outlines/json.lark",
    "lark/syncode/c.lark", "lark/syncode/calc.lark", "lark/syncode/invariants.lark", "lark/syncode/json.lark",
]


@pytest.mark.skipif(not DATA.exists() and not IN_CI, reason="grammar dataset not available")
@pytest.mark.parametrize("rel", LARK_DIFF)
def test_lark_sentences_sampled_from_ir_parse_with_lark(rel):
    """Soundness of the conversion: sentences our IR accepts are accepted by lark's Earley parser."""
    from lark import Lark

    path = DATA / rel
    start = LARK_START.get(rel, "start")
    g = _convert_lark_file(rel)
    parser = Lark(path.read_text(), start=start, parser="earley", import_paths=[str(path.parent)])
    ref = Reference(g)
    rng = random.Random(rel)
    n = 0
    for _ in range(12):
        s = sample_sentence(g, rng, 50, ref=ref, tries=20)
        if s is None:
            continue
        n += 1
        parser.parse(s.decode())
    assert n > 0


def _ref(text: str, **kw) -> Reference:
    return Reference(lark_to_ir(text, **kw))


JSON_VALID = [b'{"a": [1, -2.5e3, "x\\"y\\\\", true, null], "b": {}}', b"[]", b'"\\\\"', b" 12 ", b'[1,"a\\u00e9"]']
JSON_INVALID = [b'{"a" 1}', b"[1,]", b'"a" "b"', b'"abc', b'"a"b"', b"01x", b'["a\\\\"b"]']


@pytest.mark.skipif(not DATA.exists() and not IN_CI, reason="grammar dataset not available")
@pytest.mark.parametrize("rel", ["lark/lark-parser/example_json_parser.lark", "lark/outlines/json.lark",
                                 "lark/lark-parser/standalone_json.lark"])
def test_lark_json_grammars_accept_json(rel):
    ref = Reference(_convert_lark_file(rel))
    for s in JSON_VALID:
        assert ref.accepts(s), s
    for s in JSON_INVALID:
        assert not ref.accepts(s), s


@pytest.mark.skipif(not DATA.exists() and not IN_CI, reason="grammar dataset not available")
def test_lark_json_terminals():
    g = _convert_lark_file("lark/lark-parser/example_json_parser.lark")
    assert {"ESCAPED_STRING", "SIGNED_NUMBER", "WS"} <= set(g.terminals)
    assert g.terminals["WS"].ignore and not g.terminals["ESCAPED_STRING"].ignore


@pytest.mark.skipif(not (DATA / "samples/smiles_gdb17_sample.json").exists() and not IN_CI, reason="no samples")
def test_lark_smiles_samples():
    data = json.loads((DATA / "samples/smiles_gdb17_sample.json").read_text())
    samples = data["smiles"]
    ref = Reference(_convert_lark_file("lark/genlm/smiles.lark"))
    strings = [s for s in samples if isinstance(s, str)]
    assert len(strings) >= 10
    for s in strings:
        assert ref.accepts((" " + s).encode()), s


def test_lark_lazy_comments_stop_at_first_close():
    ref = _ref('start: "a"+\n%import common.C_COMMENT\n%ignore C_COMMENT\n%ignore " "')
    assert ref.accepts(b"a /* x */ a /* y */ a")
    assert not ref.accepts(b"a /* x */ a */ a")
    assert ref.accepts(b"a /* ** / */a")


def test_lark_escaped_string():
    ref = _ref("start: ESCAPED_STRING (\",\" ESCAPED_STRING)*\n%import common.ESCAPED_STRING")
    assert ref.accepts(b'"a","b\\"c"')
    assert ref.accepts(b'"\\\\","x"')
    assert not ref.accepts(b'"a"b"')
    assert not ref.accepts(b'"\\\\"b"')


def test_lark_features():
    g = lark_to_ir(
        """
        start: _sep{item, ","} NAME?
        _sep{x, sep}: x (sep x)*
        item: "select"i | RANGE | KW
        RANGE: "a".."c"
        KW.3: "kw"
        NAME: /[a-z]+/
        %ignore " "
        """
    )
    assert g.terminals["KW"].priority == 3
    ref = Reference(g)
    assert ref.accepts(b"SeLeCt, b,kw")
    assert ref.accepts(b"a , c x")
    assert not ref.accepts(b"d")


def test_lark_nullable_terminal_keeps_language():
    ref = _ref('start: A "x"\nA: /a*/')
    assert ref.accepts(b"x") and ref.accepts(b"aax") and not ref.accepts(b"ax a")


def test_lark_errors():
    with pytest.raises(GrammarError, match="start rule 'begin'"):
        lark_to_ir('start: "a"', start="begin")
    with pytest.raises(GrammarError):
        lark_to_ir("start: a b c")  # undefined rules
    with pytest.raises(GrammarError):
        lark_to_ir('start: "a" |||| (')  # syntax
    with pytest.raises(UnsupportedFeatureError, match="_INDENT"):
        lark_to_ir('start: "a" _INDENT "b"\n%declare _INDENT')
    with pytest.raises(GrammarError, match="import"):
        lark_to_ir("start: X\n%import nonexistent_lib.X")
    with pytest.raises(GrammarError, match="(?i)empty"):
        lark_to_ir('start: "a" ""')
    with pytest.raises(UnsupportedFeatureError, match="backreference"):
        lark_to_ir("start: X\nX: /(a)\\1/")
    with pytest.raises(UnsupportedFeatureError, match="anchor"):
        lark_to_ir("start: X\nX: /^a/")
    with pytest.raises(UnsupportedFeatureError, match="ignore"):
        lark_to_ir('start: "a" WS "b"\n%import common.WS\n%ignore WS')


def test_lark_relative_import_needs_import_paths():
    rel = "lark/lark-parser/composition/storage.lark"
    if not (DATA / rel).exists():
        skip_unless_ci("grammar dataset not available")
    g = _convert_lark_file(rel)
    assert any("csv" in n for n in g.rules) and any("json" in n for n in g.rules)
    cwd = os.getcwd()
    try:
        os.chdir("/")
        with pytest.raises(GrammarError, match="import"):
            lark_to_ir((DATA / rel).read_text())
    finally:
        os.chdir(cwd)


# -------------------------------------------------------------------------------------------- GBNF
@pytest.mark.parametrize("path", _gbnf_files(), ids=lambda p: p.name)
def test_gbnf_dataset_file(path):
    g = gbnf_to_ir(path.read_text())
    g.validate()
    for t in g.terminals.values():  # one character per lexeme
        assert isinstance(t.regex, ir.Chars)


def test_gbnf_json_language():
    path = DATA / "gbnf/llama.cpp/json.gbnf"
    if not path.exists():
        skip_unless_ci("grammar dataset not available")
    ref = Reference(gbnf_to_ir(path.read_text()))
    for s in [b'{"a": [1, -2.5e3, "x\\"y", true, null], "b": {}}', b"{}", b'{"k":"\\u00e9"}']:
        assert ref.accepts(s), s
    for s in [b'{"a" 1}', b"[]", b'{"a":[1,]}', b'{"a":01}', b'{"a":"\x01"}']:
        assert not ref.accepts(s), s


def test_gbnf_syntax_and_semantics():
    g = gbnf_to_ir(
        r"""
        # comment line
        root ::= item-list ws
        item-list ::= item ("," ws item)*   # trailing comment
        item ::=
            "x\x41\u00e9\U0001F600" | [a-c]{2,3} | [^a-z\n] | "q" .? | num2
        num2 ::= [0-9]{2} | "" "-"
        ws ::= [ \t]*
        """
    )
    ref = Reference(g)
    for s in ["xAé😀", "ab", "abc", "Z", "q", "q!", "12", "-", "ab, abc,Z  ", "xAé😀,12"]:
        assert ref.accepts(s.encode()), s
    for s in ["a", "abcd", "z", "123", "ab,", "\n", "xAé"]:
        assert not ref.accepts(s.encode()), s


def test_gbnf_exact_character_level_language():
    """GBNF has no lexer: "a" "ab" must not be read as longest-match tokens."""
    ref = Reference(gbnf_to_ir('root ::= ("a" | "ab") "b"'))
    assert ref.accepts(b"ab") and ref.accepts(b"abb") and not ref.accepts(b"a")


def test_gbnf_start_and_repeat():
    ref = Reference(gbnf_to_ir('top ::= "a"{3} "b"{0,2} "c"{2,}', start="top"))
    assert ref.accepts(b"aaacc") and ref.accepts(b"aaabbccc")
    assert not ref.accepts(b"aacc") and not ref.accepts(b"aaabbbcc") and not ref.accepts(b"aaac")


@pytest.mark.parametrize(
    "text, what, line",
    [
        ("root ::= foo", "undefined rule 'foo'", 1),
        ('root ::= "a"\nx ::= y', "undefined rule 'y'", 2),
        ('root ::= "abc', "unterminated string", 1),
        ("root ::= [a-", "unterminated character class", 1),
        ('root ::= ("a"\n  "b"', "missing ')'", 2),
        ('root ::= "a" )', "unbalanced", 1),
        ('root ::= * "a"', "repetition", 1),
        ('\n\nroot ::= "\\q"', "unknown escape", 3),
        ('root ::= "a"{3,1}', "max < min", 1),
        ('root ::= "a" ::= "b"', "::=", 1),
        ('root ::= "a"\nroot ::= "b"', "defined twice", 2),
        ("root ::= [z-a]", "out of order", 1),
        ('root ::= "a" @', "unexpected character", 1),
        ('root ::= "a"{x}', "malformed repetition", 1),
        ('root ::= "\\x4"', "hex digits", 1),
    ],
)
def test_gbnf_malformed(text, what, line):
    with pytest.raises(GrammarError) as exc:
        gbnf_to_ir(text)
    msg = str(exc.value)
    assert what in msg and f"line {line}" in msg, msg


def test_gbnf_missing_start():
    with pytest.raises(GrammarError, match="start rule 'root'"):
        gbnf_to_ir('x ::= "a"')
    with pytest.raises(GrammarError, match="empty"):
        gbnf_to_ir("# nothing\n")
