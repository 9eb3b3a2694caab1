"""gdecode.regex: differential tests against Python's ``re`` (and node's ECMAScript engine when present),
over the IR with the tiny matcher of tests/ir_match.py."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import time
import unicodedata
import warnings
from collections import Counter
from pathlib import Path

import pytest
from conftest import IN_CI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ir_match import fullmatch, prefixes, sample

from gdecode import ir
from gdecode.errors import GrammarError, LimitExceededError, UnsupportedFeatureError
from gdecode.regex import (
    MAX_REPEAT,
    _case_table,
    _cased_candidates,
    analyze_regex,
    literal_regex,
    parse_regex,
)

DATASET = Path("/work/shared/datasets/regex/genlm_pattern_matching.jsonl")

# Python-flavor patterns that `re` accepts; each is checked with re.fullmatch on many strings.
PY_PATTERNS = [
    r"abc", r"a|b|cd", r"(ab)*c", r"a{2,3}", r"a{,2}b", r"a{3}", r"[a-c]+\d?", r"[^a-c\s]*", r"\w+", r"\W\S\D",
    r"\s", r"[\d\s]+", r"\d{3}-\d{4}", r"[\w.-]+@[\w-]+\.\w+", r"(?:a|ab)(?:c|bcd)", r"a{0}", r"(a{2}){2}",
    r"(?:a?){3}", r"()", r"(|a)", r"a||b", r"", r"x{2}y{1,}z{0,1}",
    # case-insensitivity (Python's simple case folding closure, incl. ſ/s, K/k, ß/ẞ, σ/ς/Σ, ı/i/İ)
    r"(?i)abc", r"(?i)[a-f]+", r"(?i)[^k]", r"(?i)ſ", r"(?i)K", r"(?i)ß", r"(?i)\w", r"(?i)[\Wa]", r"(?ai)k",
    r"(?i)[à-ÿ]+", r"(?i)σ", r"(?i)[α-ω]", r"(?i)i", r"(?i)ı", r"(?i)İ", r"(?i:a)b", r"(?-i:a)", r"(?i)a(?-i:b)c",
    r"(?a)\w+", r"(?a)\s\d",
    # dot, escapes, classes
    r".", r"(?s).", r"a.c", r"[\s\S]", r"\x41\u00e9\U0001F600", r"\N{LATIN SMALL LETTER A}", r"\0\07\101",
    r"[\101-\103]", r"[\b]", r"\.\*\+\?", r"[-a]", r"[a-]", r"[]a]", r"[^]a]", r"[\u0100-\u017f]", r"\t\n\r\f\v\a",
    # literal braces, verbose mode, groups
    r"a{", r"a{1", r"a{x}", r"{", r"}", r"(?x) a b # comment" "\n" r" c", r"(?x)[ ]a\ b", r"(?P<n>a)b",
    r"(?#comment)a", r"(?m)a",
    # lazy / possessive (same language in a full match)
    r"a*?b", r"a+?", r"a??b", r"a{2,3}?", r"[a-z]++\d*+", r"(?:ab)++c", r"a?+b",
    # anchors at the edges, lookarounds inside the match
    r"^abc$", r"^a|b$", r"(^a)", r"a(?=b)b", r"a(?!b)[a-z]", r"(?<=a)b", r"a(?<=a)b", r"x(?<!y)z", r"(?=.*\d)\w{3}",
    r"((?!ab).)*", r"(?:a(?!b))*b", r"((?!ab)[abx])*", r"(a(?=b)|b)*", r"x(?:(?!ab).)*?y",
]

# search (re.search / JSON Schema `pattern`) semantics
SEARCH_PATTERNS = [
    r"abc", r"^abc", r"abc$", r"^abc$", r"^a|b$", r"(^|,)x", r"x(,|$)", r"(?m)^ab$", r"(?m)^a", r"b$", r"\Aab\Z",
    r"^(?=.*\d)(?=.*[a-z]).{3,5}$", r"^(?!.*ab).*$", r"a(?!b)", r"(?<!a)b", r"(?<=a)b", r"^(?:(?!ab).)*$",
    r"^\d+(?=x)", r"^[a-z]+$", r"", r"^$", r"a*?", r"^(a|b)*?$", r"(?=a)", r"(?!a)", r"^(?=ab)a", r"^.*(?<=x)$",
    r"(?<![a-z])\d+(?![a-z])", r"^a++b", r"(?i)^ab$", r"x$|^y", r"^(?:a$|b)", r"(?:(?!ab).)+x", r"^(a(?=b)|b)*$",
]

# lexer-token semantics: the lexeme is what re.match returns (lazy = stop at the first closing delimiter)
TOKEN_PATTERNS = [
    r'".*?(?<!\\)(\\\\)*?"', r"/\*(.|\n)*?\*/", r"\/\*[\s\S]*?\*\/", r'"(?:[^"\\]|\\.)*?"', r"#[^\n]*", r"a+",
    r"x.*?y[ab]*", r"'''.*?(?<!\\)(\\\\)*?'''", r'(?s)""".*?(?<!\\)(\\\\)*?"""', r'(?:"[^"]*"|x)+?',
    r"/\*(\*(?!/)|[^*])*\*/", r"(a(?!b)|b)*c",
]

ALPHABET = list("abcdkxyzK ſßẞσςΣıİiIàÀé0123٣\n\t-._@,\"\\/*'😀\x08")


def _candidates(regex, rng: random.Random, n_random: int = 250, n_sampled: int = 60, alphabet=ALPHABET):
    out = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 7))) for _ in range(n_random)]
    for _ in range(n_sampled):
        s = sample(regex, rng)
        if s is not None:
            out.append(s)
    return out


@pytest.mark.parametrize("pattern", PY_PATTERNS)
def test_fullmatch_matches_python_re(pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cre = re.compile(pattern)
    regex = parse_regex(pattern, flavor="python")
    rng = random.Random(pattern)
    for s in _candidates(regex, rng):
        assert bool(cre.fullmatch(s)) == fullmatch(regex, s), (pattern, s)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PY_PATTERNS), st.text(alphabet=st.sampled_from(ALPHABET), max_size=8))
def test_fullmatch_hypothesis(pattern, text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = bool(re.fullmatch(pattern, text))
    assert fullmatch(parse_regex(pattern, flavor="python"), text) == expected


@pytest.mark.parametrize("pattern", SEARCH_PATTERNS)
def test_search_matches_python_re(pattern):
    parsed = analyze_regex(pattern, flavor="python")
    regex = parsed.search_regex()
    rng = random.Random(pattern)
    alphabet = list("abxy,\n0123 ")
    for s in _candidates(parsed.fullmatch_regex(), rng, 500, 40, alphabet):
        assert bool(re.search(pattern, s)) == fullmatch(regex, s), (pattern, s)


@pytest.mark.parametrize("pattern", TOKEN_PATTERNS)
def test_token_semantics_match_re_match(pattern):
    """The lexer takes the longest prefix in the token language; it must equal what re.match consumes."""
    regex = analyze_regex(pattern, flavor="python").token_regex()
    rng = random.Random(pattern)
    alphabet = list("\"\\a\n*/xy'bc")
    for _ in range(1500):
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        if rng.random() < 0.5 and pattern[0] not in "\\(":
            t = pattern[0] + t
        m = re.match(pattern, t)
        ends = prefixes(regex, t)
        assert (max(ends) if ends else None) == (m.end() if m else None), (pattern, t)


def test_token_semantics_reject_what_depends_on_backtracking_or_context():
    for pattern in [
        r"/(?!/)(\\/|\\\\|[^/])*?/[imslux]*",  # ambiguous lazy body: Python's backtracking decides
        r"[+*]|[?](?![a-z])",  # lookahead past the end of the token
        r"(?<!a)b",  # lookbehind before the start of the token
        r"(a*?)*b",  # lazy not in the top-level sequence
        r"^a",
    ]:
        with pytest.raises(UnsupportedFeatureError):
            analyze_regex(pattern, flavor="python").token_regex()


def test_anchoring_info():
    p = analyze_regex(r"^\d+$")
    assert p.anchored_start and p.anchored_end
    assert [(b.start, b.end) for b in p.branches] == [("text", "text")]
    p = analyze_regex(r"^\d+$", flavor="python")
    assert [(b.start, b.end) for b in p.branches] == [("text", "text_or_final_newline")]
    p = analyze_regex(r"^a|b")
    assert not p.anchored_start and not p.anchored_end
    assert sorted((b.start or "", b.end or "") for b in p.branches) == [("", ""), ("text", "")]
    p = analyze_regex(r"(?m)^a$")
    assert [(b.start, b.end) for b in p.branches] == [("line", "line")]
    p = analyze_regex("abc")
    assert not p.has_anchors
    assert fullmatch(p.search_regex(), "xxabcx") and not fullmatch(p.fullmatch_regex(), "xxabcx")


def test_anchors_inside_the_pattern():
    """Anchors away from the edges are zero-width assertions (exact, or refused)."""
    assert parse_regex("a^b", flavor="python") == ir.NOTHING  # can never match
    p = analyze_regex("^$[a-z]*$")  # ECMA: `$` then a nullable tail = the empty string only
    assert fullmatch(p.search_regex(), "") and not fullmatch(p.search_regex(), "a")
    p = analyze_regex(r"^([^,]+(,|$)){3,}$")
    for s, ok in [("a,b,c", True), ("a,b", False), ("a,b,c,", True), ("a,,b", False), ("ab,c,d,e", True)]:
        assert fullmatch(p.search_regex(), s) == ok, s
    p = analyze_regex(r"^(?!\s*$).+")  # anchor inside a lookahead
    assert fullmatch(p.search_regex(), " a") and not fullmatch(p.search_regex(), "  ")
    p = analyze_regex(r"^(?!.*\/)^(.*[^.]+.*)$")
    assert fullmatch(p.search_regex(), "ab.c") and not fullmatch(p.search_regex(), "a/b")


def test_search_end_anchor_flavors():
    """ECMA `$` is the strict end; Python `$` also matches before a final newline."""
    assert not fullmatch(analyze_regex("a$", flavor="ecma").search_regex(), "a\n")
    assert fullmatch(analyze_regex("a$", flavor="python").search_regex(), "a\n")
    assert fullmatch(analyze_regex("a$", flavor="ecma").search_regex(), "xa")
    assert not fullmatch(analyze_regex(r"a\Z", flavor="python").search_regex(), "a\n")


def test_ecma_semantics():
    def fm(p, s, flags=""):
        return fullmatch(parse_regex(p, flavor="ecma", flags=flags), s)

    assert fm(r"\d", "5") and not fm(r"\d", "٣")  # ASCII digits only
    assert fm(r"\w", "_") and not fm(r"\w", "é")
    assert fm(r"\s", "\ufeff") and fm(r"\s", "\u3000") and not fm(r"\s", "\x85")
    assert not fm(".", "\r") and not fm(".", "\u2028") and fm(".", "\x85") and fm(".", "\n", "s")
    assert not fm("[]", "a") and fm("[^]", "\n")
    assert fm(r"\u{1F600}", "😀") and fm(r"\uD83D\uDE00", "😀") and fm(r"[\uD83D\uDE00-\uD83D\uDE4F]", "🙂")
    assert fm(r"\cJ", "\n") and fm(r"\0", "\0") and fm(r"(?<year>\d{4})", "2024")
    assert fm(r"\p{Lu}\p{Ll}", "Ab") and not fm(r"\p{Lu}", "a") and fm(r"\P{L}", "1")
    assert fm(r"\p{Lu}", "a", "i")  # ECMA /iu folds property classes too
    assert fm(r"\w", "ſ", "i") and fm(r"\w", "\u212a", "i") and not fm(r"\W", "ſ", "i")
    assert fm(r"(?i)abc", "ABC") and fm(r"(?i:a)b", "Ab") and not fm(r"(?i:a)b", "AB")
    assert not fm("ı", "I", "i") and not fm("i", "İ", "i")  # simple case folding keeps them apart
    assert fm(r"\p{gc=Nd}+", "٣٤") and fm(r"\p{General_Category=Letter}", "ж") and fm(r"\p{L}", "ж")


def test_python_unicode_classes():
    assert fullmatch(parse_regex(r"\d", flavor="python"), "٣")
    assert not fullmatch(parse_regex(r"\d", flavor="python", flags="a"), "٣")
    assert fullmatch(parse_regex(r"\w", flavor="python"), "é")
    assert fullmatch(parse_regex(r"\s", flavor="python"), "\x85")
    assert not fullmatch(parse_regex(r".", flavor="python"), "\n")
    assert fullmatch(parse_regex(r".", flavor="python"), "\r")


def test_python_case_folding_equals_re_on_all_cased_characters():
    keys, table = _case_table("python")
    cands = sorted(set(_cased_candidates()) | set(keys))
    text = "".join(map(chr, cands))
    for cp in cands:
        got = {cands[m.start()] for m in re.finditer("(?i)" + re.escape(chr(cp)), text)}
        assert got == set(table.get(cp, (cp,))) & set(cands), hex(cp)
    for word in ["Kk", "ſs", "İı", "ßẞ", "x\ud800"]:
        assert literal_regex(word, ignore_case=True) == parse_regex(re.escape(word), flavor="python", flags="i")


def test_general_categories_agree_with_unicodedata():
    rng = random.Random(7)
    for gc in ["Lu", "Ll", "Nd", "Zs", "Sc", "Pd", "Mn", "Co", "Cn"]:
        regex = parse_regex(rf"\p{{{gc}}}")
        for _ in range(300):
            cp = rng.randrange(0x30000)
            if 0xD800 <= cp <= 0xDFFF:
                continue
            assert fullmatch(regex, chr(cp)) == (unicodedata.category(chr(cp)) == gc), (gc, hex(cp))
    letter = parse_regex(r"\p{L}")
    assert fullmatch(letter, "ǅ") and fullmatch(letter, "ʰ") and not fullmatch(letter, "1")


def test_repeat_kept_as_repeat_and_bounds():
    r = parse_regex("a{1000}")
    assert r == ir.Repeat(ir.Chars(((97, 97),)), 1000, 1000)
    assert parse_regex("(?:ab){2,5}") == ir.Repeat(ir.Seq((ir.Chars(((97, 97),)), ir.Chars(((98, 98),)))), 2, 5)
    with pytest.raises(LimitExceededError):
        parse_regex(f"a{{{MAX_REPEAT + 1}}}")
    with pytest.raises(LimitExceededError):
        parse_regex("a" * 200_000)
    with pytest.raises(LimitExceededError):
        parse_regex("(" * 500 + ")" * 500)


def test_no_surrogates_in_char_sets():
    for p in [r"[^a]", r".", r"\P{L}", r"[\ud800-\udfff]", r"\W", r"[\s\S]"]:
        r = parse_regex(p, flavor="python", flags="s")
        assert isinstance(r, ir.Chars)
        assert all(hi < 0xD800 or lo > 0xDFFF for lo, hi in r.ranges), p


@pytest.mark.parametrize(
    "pattern, what",
    [
        (r"(a)\1", "backreference"), (r"(?P<x>a)(?P=x)", "backreference"), (r"\k<x>", "backreference"),
        (r"\bword\b", "word boundary"), (r"a\B", "word boundary"), (r"(?>a+)b", "atomic"),
        (r"(a)?(?(1)b|c)", "conditional"), (r"(a|\((?R)\))", "recursion"), (r"(?1)", "recursion"),
        (r"(?|(a)|(b))", "branch-reset"), (r"\p{Script=Greek}", "property"), (r"\p{Alphabetic}", "property"),
        (r"[\p{L}&&[^\p{Lu}]]", "set operation"), (r"[\w--\d]", "set operation"), (r"[[:alpha:]]", "POSIX"),
        (r"(?m)a^b", "anchor"), (r"a$b", "anchor"), (r"(^a)*", "anchor"), (r"(?L)a", "locale"),
        (r"(?:a|ab)++b", "possessive"), (r"(?:ab)*+a", "possessive"), (r"\Gx", "\\G"),
        (r"^(?:(?<!a)b|a)*$", "lookbehind"), (r"(?=(?=a))a", "nested"),
    ],
)
def test_unsupported_features(pattern, what):
    with pytest.raises(UnsupportedFeatureError) as exc:
        parse_regex(pattern, flavor="python")
    assert what.lower() in str(exc.value).lower()
    assert "position" in str(exc.value) or "(regex feature)" in str(exc.value)


@pytest.mark.parametrize(
    "pattern",
    [r"(ab", r"ab)", r"[abc", r"a**", r"*a", r"a{3,2}", r"\x4", r"\u12", r"[z-a]", r"\q", r"(?P<1>a)", r"\N{NOPE}",
     "\\", r"(?<", r"a{2}{3}", r"(?#x", r"[\w-z]", r"(?z)", r"(?", r"a\8"],
)
def test_malformed_patterns(pattern):
    with pytest.raises(GrammarError) as exc:
        parse_regex(pattern, flavor="python")
    assert not isinstance(exc.value, UnsupportedFeatureError)
    assert "position" in str(exc.value) or "flag" in str(exc.value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(re.error):
            re.compile(pattern)


def test_flags_argument():
    assert fullmatch(parse_regex("abc", flavor="python", flags="i"), "AbC")
    assert fullmatch(parse_regex("a b", flavor="python", flags="x"), "ab")
    assert fullmatch(parse_regex("a.b", flags="s"), "a\nb")
    with pytest.raises(GrammarError):
        parse_regex("a", flavor="ecma", flags="q")
    with pytest.raises(ValueError):
        parse_regex("a", flavor="perl")


# ---------------------------------------------------------------------------------------- ECMA oracle
ECMA_PATTERNS = [
    r"abc", r"a|b|cd", r"(ab)*c", r"a{2,3}", r"[a-c]+\d?", r"[^a-c\s]*", r"\w+", r"\W\S\D", r"\s+", r".", r"a.c",
    r"(?:ab)?c", r"[]", r"[^]", r"[\b]", r"\u{1F600}", r"\uD83D\uDE00", r"[\uD83D\uDE00-\uD83D\uDE4F]", r"\cJ",
    r"\0", r"\x41", r"(?<n>a)b", r"\p{Lu}", r"\p{L}+\p{N}", r"[\p{Ll}\d]", r"^a$", r"^a|b$", r"a$", r"^$",
    r"(^|,)x", r"(?=.*\d)\w{3}", r"a(?!b)", r"(?<!a)b", r"^(?:(?!ab).)*$", r"[\w.-]+@[\w-]+\.\w+", r"[-a]",
    r"[a-]", r"[\-\]]", r"ſ|K", r"^\S+$", r"\t\n\v\f\r", r"a*?b", r"[\s\S]", r"(?:)", r"a||b",
]


@pytest.mark.skipif(shutil.which("node") is None, reason="node (ECMAScript oracle) not installed")
def test_ecma_flavor_matches_node():
    rng = random.Random(3)
    alphabet = list("abcdkK ſßσςΣıİiIàÀ0123٣\n\r\t\u2028\ufeff\xa0-._@xyz😀ABé\x08,")
    cases = []
    for p in ECMA_PATTERNS:
        parsed = analyze_regex(p, flavor="ecma")
        cases.append((p, _candidates(parsed.fullmatch_regex(), rng, 200, 40, alphabet), parsed))
    js = r"""
const data = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(data.map(([p, strs]) => {
  const f = new RegExp('^(?:' + p + ')$', 'u'), s = new RegExp(p, 'u');
  return strs.map(x => [f.test(x), s.test(x)]); })));
"""
    proc = subprocess.run(["node", "-e", js], input=json.dumps([(p, s) for p, s, _ in cases]),
                          capture_output=True, text=True, timeout=60, check=True)
    for (p, strs, parsed), results in zip(cases, json.loads(proc.stdout), strict=True):
        full, search = parsed.fullmatch_regex(), parsed.search_regex()
        for s, (js_full, js_search) in zip(strs, results, strict=True):
            assert fullmatch(full, s) == js_full, (p, s)
            assert fullmatch(search, s) == js_search, (p, s)


# ------------------------------------------------------------------------------------------- dataset
@pytest.mark.skipif(not DATASET.exists() and not IN_CI, reason="regex dataset not available")
def test_genlm_pattern_dataset():
    """Every pattern parses or raises UnsupportedFeatureError/GrammarError, quickly, in both flavors."""
    counts: Counter = Counter()
    reasons: Counter = Counter()
    for line in DATASET.read_text().splitlines():
        pattern = json.loads(line)["pattern"]
        for flavor in ("python", "ecma"):
            t0 = time.monotonic()
            try:
                parsed = analyze_regex(pattern, flavor=flavor)
                parsed.fullmatch_regex()
                parsed.search_regex()
                counts[flavor, "ok"] += 1
            except UnsupportedFeatureError as e:
                counts[flavor, "unsupported"] += 1
                reasons[str(e).split(" is not supported")[0]] += 1
            except GrammarError:
                counts[flavor, "malformed"] += 1
            assert time.monotonic() - t0 < 1.0, pattern
    print("\nregex dataset:", dict(counts))
    print("top unsupported reasons:", reasons.most_common(8))
    assert counts["python", "ok"] >= 90


# ------------------------------------------------------------------------------------- random patterns
def _random_pattern(rng: random.Random, depth: int = 0) -> str:
    r = rng.random()
    if depth > 3 or r < 0.35:
        return rng.choice(["a", "b", "c", ".", "[ab]", "[^a]", r"\d", r"\w", r"\s", "x", "[a-c]", "(?i:A)", r"\W", ""])
    if r < 0.55:
        return _random_pattern(rng, depth + 1) + _random_pattern(rng, depth + 1)
    if r < 0.65:
        return "(" + _random_pattern(rng, depth + 1) + "|" + _random_pattern(rng, depth + 1) + ")"
    if r < 0.85:
        q = rng.choice(["*", "+", "?", "{2}", "{1,2}", "{0,}", "*?", "+?", "??", "{1,3}?", "*+", "++"])
        return "(?:" + _random_pattern(rng, depth + 1) + ")" + q
    if r < 0.95:
        body = rng.choice(["a", "b", "ab", "[ab]", "a|b", ".", "a$", ".*$", "b|$", r"\d*$"])
        return rng.choice(["(?=", "(?!", "(?<=", "(?<!"]) + body + ")"
    return rng.choice(["^", "$"])


def test_random_patterns_against_re():
    """Random patterns (lookarounds, lazy/possessive, anchors anywhere): we agree with re.fullmatch and
    re.search, or refuse with UnsupportedFeatureError; never another exception."""
    rng = random.Random(11)
    supported = 0
    for _ in range(400):
        pattern = _random_pattern(rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cre = re.compile(pattern)
            except re.error:
                continue
        try:
            parsed = analyze_regex(pattern, flavor="python")
            full, search = parsed.fullmatch_regex(), parsed.search_regex()
        except UnsupportedFeatureError:
            continue
        supported += 1
        for _ in range(25):
            s = "".join(rng.choice("abcx1 \n") for _ in range(rng.randint(0, 6)))
            assert bool(cre.fullmatch(s)) == fullmatch(full, s), (pattern, s)
            assert bool(cre.search(s)) == fullmatch(search, s), (pattern, s)
    assert supported > 250


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab()[]{}|*+?^$\\.-,:=!<>PpdwsbuxK0129iaA{}#")), max_size=14),
       st.sampled_from(["python", "ecma"]))
def test_arbitrary_pattern_text_never_crashes(pattern, flavor):
    try:
        parsed = analyze_regex(pattern, flavor=flavor)
        parsed.fullmatch_regex()
        parsed.search_regex()
    except (GrammarError, LimitExceededError):
        pass
