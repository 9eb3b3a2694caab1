"""llama.cpp GBNF → Grammar IR.

GBNF is a character-level context-free grammar (no lexer)::

    root  ::= "{" ws pair ("," ws pair)* "}"      # comments run to the end of the line
    pair  ::= [a-z]+ ":" ws [0-9]{1,3}
    ws    ::= [ \\t\\n]*

Syntax accepted: ``name ::= alternatives`` (names of letters, digits, ``-`` and ``_``; a rule runs until the
next ``name ::=``, so rules may span lines), string literals ``"..."`` with escapes ``\\n \\t \\r \\\\ \\"
\\[ \\] \\xHH \\uHHHH \\UHHHHHHHH``, character classes ``[...]`` / ``[^...]`` with ranges and the same
escapes, ``.`` (any character), grouping ``( )``, postfix ``* + ? {m} {m,} {m,n} {,n}``, ``|``, comments
``#``.

To keep GBNF's exact language under the IR's lexer (contextual, longest match), every character position
becomes its own single-character terminal: each literal character and each character class is one
terminal (identical ones interned), so every lexeme is exactly one character and the rules see the text
character by character. Bounded repetition uses :meth:`gdecode.ir.GrammarBuilder.repeat` (O(log n) rules).
"""

from __future__ import annotations

from dataclasses import dataclass

from gdecode import _regex_dfa as dfa
from gdecode import ir
from gdecode.errors import GrammarError, LimitExceededError

__all__ = ["gbnf_to_ir"]

MAX_REPEAT = 100_000
MAX_NESTING = 200

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_HEX = set("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = {"n": 0x0A, "t": 0x09, "r": 0x0D, "\\": 0x5C, '"': 0x22, "[": 0x5B, "]": 0x5D,
                   "-": 0x2D, "^": 0x5E, "/": 0x2F, "'": 0x27, "0": 0x00, "f": 0x0C, "v": 0x0B}


@dataclass
class _Tok:
    kind: str  # name, defn, lit, class, any, lpar, rpar, bar, quant, eof
    value: object
    line: int
    col: int


class _Lexer:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.line_start = 0

    def err(self, msg: str, pos: int | None = None) -> GrammarError:
        pos = self.i if pos is None else pos
        line = self.s.count("\n", 0, pos) + 1
        col = pos - (self.s.rfind("\n", 0, pos) + 1) + 1
        return GrammarError(f"GBNF: {msg} at line {line}, column {col}")

    def where(self, pos: int) -> tuple[int, int]:
        line = self.s.count("\n", 0, pos) + 1
        col = pos - (self.s.rfind("\n", 0, pos) + 1) + 1
        return line, col

    def tokens(self) -> list[_Tok]:
        s, out = self.s, []
        n = len(s)
        while True:
            while self.i < n:
                c = s[self.i]
                if c in " \t\r\n\f\v":
                    self.i += 1
                elif c == "#":
                    while self.i < n and s[self.i] != "\n":
                        self.i += 1
                else:
                    break
            if self.i >= n:
                line, col = self.where(self.i)
                out.append(_Tok("eof", None, line, col))
                return out
            start = self.i
            line, col = self.where(start)
            c = s[self.i]
            if c in _NAME_CHARS:
                j = self.i
                while j < n and s[j] in _NAME_CHARS:
                    j += 1
                out.append(_Tok("name", s[self.i : j], line, col))
                self.i = j
            elif s.startswith("::=", self.i):
                out.append(_Tok("defn", None, line, col))
                self.i += 3
            elif c == '"':
                out.append(_Tok("lit", self.literal(), line, col))
            elif c == "[":
                out.append(_Tok("class", self.char_class(), line, col))
            elif c == ".":
                self.i += 1
                out.append(_Tok("any", None, line, col))
            elif c == "(":
                self.i += 1
                out.append(_Tok("lpar", None, line, col))
            elif c == ")":
                self.i += 1
                out.append(_Tok("rpar", None, line, col))
            elif c == "|":
                self.i += 1
                out.append(_Tok("bar", None, line, col))
            elif c in "*+?":
                self.i += 1
                out.append(_Tok("quant", {"*": (0, None), "+": (1, None), "?": (0, 1)}[c], line, col))
            elif c == "{":
                out.append(_Tok("quant", self.brace(), line, col))
            else:
                raise self.err(f"unexpected character {c!r}")

    def escape(self) -> int:
        """At a backslash; returns the code point."""
        pos = self.i
        self.i += 1
        if self.i >= len(self.s):
            raise self.err("unterminated escape", pos)
        c = self.s[self.i]
        self.i += 1
        width = {"x": 2, "u": 4, "U": 8}.get(c)
        if width:
            digits = self.s[self.i : self.i + width]
            if len(digits) != width or not set(digits) <= _HEX:
                raise self.err(f"\\{c} escape needs {width} hex digits", pos)
            self.i += width
            cp = int(digits, 16)
            if cp > ir.MAX_CODE_POINT:
                raise self.err("escape beyond U+10FFFF", pos)
            return cp
        if c in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[c]
        if c.isascii() and c.isalnum():
            raise self.err(f"unknown escape \\{c}", pos)
        return ord(c)

    def literal(self) -> list[int]:
        start = self.i
        self.i += 1
        out = []
        while True:
            if self.i >= len(self.s) or self.s[self.i] == "\n":
                raise self.err("unterminated string literal", start)
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return out
            if c == "\\":
                out.append(self.escape())
            else:
                out.append(ord(c))
                self.i += 1

    def class_char(self, start: int) -> int:
        if self.i >= len(self.s):
            raise self.err("unterminated character class", start)
        c = self.s[self.i]
        if c == "\\":
            return self.escape()
        self.i += 1
        return ord(c)

    def char_class(self) -> ir.Chars:
        start = self.i
        self.i += 1
        negate = False
        if self.i < len(self.s) and self.s[self.i] == "^":
            negate = True
            self.i += 1
        ranges = []
        while True:
            if self.i >= len(self.s):
                raise self.err("unterminated character class", start)
            if self.s[self.i] == "]":
                self.i += 1
                break
            lo = self.class_char(start)
            hi = lo
            if self.s.startswith("-", self.i) and self.i + 1 < len(self.s) and self.s[self.i + 1] != "]":
                self.i += 1
                hi = self.class_char(start)
                if hi < lo:
                    raise self.err("character range is out of order", start)
            ranges.append((lo, hi))
        rng = dfa.r_norm(ranges)
        return ir.Chars(dfa.r_not(rng) if negate else rng)

    def brace(self) -> tuple[int, int | None]:
        start = self.i
        end = self.s.find("}", self.i)
        if end < 0:
            raise self.err("unterminated {m,n} repetition", start)
        body = self.s[self.i + 1 : end].replace(" ", "")
        lo_s, comma, hi_s = body.partition(",")
        if (lo_s and not lo_s.isdigit()) or (hi_s and not hi_s.isdigit()) or (not lo_s and not comma):
            raise self.err(f"malformed repetition {{{body}}}", start)
        if not lo_s and not hi_s:
            raise self.err(f"malformed repetition {{{body}}}", start)
        lo = int(lo_s) if lo_s else 0
        hi = (int(hi_s) if hi_s else None) if comma else lo
        for v in (lo, hi):
            if v is not None and v > MAX_REPEAT:
                raise LimitExceededError(f"GBNF repetition count {v} exceeds {MAX_REPEAT} at {self.where(start)}")
        if hi is not None and hi < lo:
            raise self.err(f"repetition {{{body}}} has max < min", start)
        self.i = end + 1
        return lo, hi


class _Parser:
    def __init__(self, text: str, start: str) -> None:
        self.lexer = _Lexer(text)
        self.toks = self.lexer.tokens()
        self.k = 0
        self.b = ir.GrammarBuilder(start=start)
        self.defined: dict[str, tuple[int, int]] = {}
        self.used: dict[str, tuple[int, int]] = {}
        self.rule_name = ""
        self.depth = 0

    def tok(self, d: int = 0) -> _Tok:
        return self.toks[min(self.k + d, len(self.toks) - 1)]

    def err(self, msg: str, t: _Tok | None = None) -> GrammarError:
        t = t or self.tok()
        return GrammarError(f"GBNF: {msg} at line {t.line}, column {t.col}")

    def at_rule_start(self) -> bool:
        return self.tok().kind == "name" and self.tok(1).kind == "defn"

    def parse(self) -> ir.Grammar:
        if self.tok().kind == "eof":
            raise self.err("empty grammar")
        while self.tok().kind != "eof":
            t = self.tok()
            if not self.at_rule_start():
                raise self.err("expected a rule definition 'name ::= ...'", t)
            name = t.value
            if name in self.defined:
                line, col = self.defined[name]
                raise self.err(f"rule {name!r} is defined twice (first at line {line}, column {col})", t)
            self.defined[name] = (t.line, t.col)
            self.rule_name = name
            self.k += 2
            alts = self.alternatives(top=True)
            self.b.rule(name, alts)
        for name, (line, col) in self.used.items():
            if name not in self.defined:
                raise GrammarError(f"GBNF: undefined rule {name!r} used at line {line}, column {col}")
        if self.b.grammar.start not in self.defined:
            raise GrammarError(f"GBNF: start rule {self.b.grammar.start!r} is not defined")
        return self.b.build()

    def alternatives(self, top: bool) -> list[tuple[str, ...]]:
        alts = [self.sequence(top)]
        while self.tok().kind == "bar":
            self.k += 1
            alts.append(self.sequence(top))
        return alts

    def sequence(self, top: bool) -> tuple[str, ...]:
        out: list[str] = []
        while True:
            t = self.tok()
            if t.kind in ("eof", "bar", "rpar") or (t.kind == "name" and self.at_rule_start()):
                if t.kind == "rpar" and top:
                    raise self.err("unbalanced ')'", t)
                return tuple(out)
            if t.kind == "defn":
                raise self.err("unexpected '::='", t)
            if t.kind == "quant":
                raise self.err("repetition operator without an element before it", t)
            elem = self.element()
            while self.tok().kind == "quant":
                lo, hi = self.tok().value
                self.k += 1
                elem = (self.b.repeat(elem, lo, hi, hint=f"{self.rule_name}~rep"),)
            out.extend(elem)

    def element(self) -> tuple[str, ...]:
        t = self.tok()
        self.k += 1
        if t.kind == "name":
            self.used.setdefault(t.value, (t.line, t.col))
            return (t.value,)
        if t.kind == "lit":
            return tuple(self.b.anonymous_terminal(ir.Chars(((cp, cp),)), "CHAR") for cp in t.value)
        if t.kind == "class":
            return (self.b.anonymous_terminal(t.value, "CLASS"),)
        if t.kind == "any":
            return (self.b.anonymous_terminal(ir.Chars(dfa.ANY_RANGES), "ANY"),)
        if t.kind == "lpar":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise LimitExceededError(f"GBNF: parentheses nested deeper than {MAX_NESTING} at line {t.line}")
            alts = self.alternatives(top=False)
            if self.tok().kind != "rpar":
                raise self.err(f"missing ')' to close the '(' of line {t.line}, column {t.col}")
            self.k += 1
            self.depth -= 1
            if len(alts) == 1:
                return alts[0]
            return (self.b.rule(self.b.fresh(f"{self.rule_name}~grp"), alts),)
        raise self.err(f"unexpected {t.kind}", t)


def gbnf_to_ir(text: str, *, start: str = "root") -> ir.Grammar:
    """Convert a GBNF grammar (llama.cpp syntax) to the IR; ``start`` names the start rule."""
    return _Parser(text, start).parse()
