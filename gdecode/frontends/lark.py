"""Lark grammar text → Grammar IR, using lark's own grammar loader.

Lark does the heavy lifting: ``%import`` (``common.*`` from lark's standard library, files on
``import_paths``, relative ``%import .file`` resolved against ``import_paths``), templates, ``%override``
/ ``%extend``, EBNF expansion (``?``, ``*``, ``+``, ``[]``, ``~n..m``), terminal composition and priorities.
We take its compiled result — terminal definitions (``PatternStr`` / ``PatternRE`` with flags), BNF rules,
``%ignore`` names — and translate:

* ``PatternStr`` → literal (flag ``i`` → case-insensitive, Python semantics);
* ``PatternRE`` → :meth:`gdecode.regex.ParsedRegex.token_regex` with the Python flavor: a terminal is a
  *lexeme*, so lazy quantifiers in the terminal's top-level sequence mean "stop at the first closing
  delimiter" (``"/*" /(.|\\n)*?/ "*/"``, lark's ``ESCAPED_STRING``), lookarounds must stay inside the
  lexeme, anchors are rejected;
* terminal priorities → :attr:`gdecode.ir.Terminal.priority` (rule priorities only steer Lark's tree
  choice, not the language, and are dropped);
* a terminal that can match the empty string (Lark's lexers refuse those) becomes its non-empty part plus
  an optional rule, so the language is kept.

Not supported (UnsupportedFeatureError): ``%declare``d terminals that rules use (they come from a
post-lexer, e.g. Python's ``_INDENT``/``_DEDENT``), terminals both ``%ignore``d and used in rules (Lark's
lexers and its dynamic Earley lexer disagree on them), and the regex features listed in
:mod:`gdecode.regex` (e.g. a lookahead past the end of the token, ``/[?](?![a-z])/``). Lark's own grammar
errors (syntax, undefined symbols, missing imports, an unknown start rule, llguidance's empty ``""``
literals) become GrammarError.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

from gdecode import _regex_dfa as dfa
from gdecode import ir
from gdecode.errors import GrammarError, UnsupportedFeatureError
from gdecode.regex import analyze_regex, literal_regex

__all__ = ["lark_to_ir"]


def _load(text: str, start: str, import_paths: Sequence[str]):
    try:
        from lark.exceptions import LarkError
        from lark.load_grammar import load_grammar
    except ImportError as e:  # pragma: no cover - lark is a dependency
        raise GrammarError(f"reading Lark grammars needs the 'lark' package: {e}") from e
    paths = [os.fspath(p) for p in import_paths]
    # lark resolves relative imports against the directory of the grammar's "file name"
    name = os.path.join(paths[0], "<grammar>") if paths else "<grammar>"
    try:
        grammar, _files = load_grammar(text, name, paths, False)
    except LarkError as e:
        msg = str(e).strip()
        if '""' in text and ("empty" in msg.lower() or "Unexpected" in msg):
            msg += ' (note: empty string literals "" are an llguidance extension; use an optional instead)'
        raise GrammarError(f"Lark grammar could not be loaded: {msg}") from None
    except OSError as e:
        raise GrammarError(
            f"Lark %import failed: {e} (pass import_paths=[directory] for relative or custom imports)"
        ) from None
    except (AssertionError, KeyError, ValueError, TypeError, RecursionError) as e:
        raise GrammarError(f"Lark grammar could not be loaded: {type(e).__name__}: {e}") from None

    rule_names = [d[0] for d in grammar.rule_defs]
    templates = {d[0] for d in grammar.rule_defs if d[1]}
    if start not in rule_names or start in templates:
        shown = ", ".join(n for n in rule_names if not n.startswith("_") and n not in templates)[:300]
        raise GrammarError(f"start rule {start!r} is not defined in the Lark grammar (rules: {shown or 'none'})")
    declared = {n for n, (tree, _prio) in grammar.term_defs if tree is None}
    try:
        terminals, rules, ignore = grammar.compile([start], set())
    except LarkError as e:
        raise GrammarError(f"Lark grammar could not be compiled: {e}") from None
    except (AssertionError, KeyError, ValueError, TypeError, RecursionError) as e:
        raise GrammarError(f"Lark grammar could not be compiled: {type(e).__name__}: {e}") from None
    return terminals, rules, ignore, declared


@functools.lru_cache(maxsize=4096)
def _token_regex(pattern: str, flags: str):
    return analyze_regex(pattern, flavor="python", flags=flags).token_regex()


def _terminal_regex(term) -> object:
    from lark.lexer import PatternRE, PatternStr

    pat = term.pattern
    flags = "".join(sorted(pat.flags))
    try:
        if isinstance(pat, PatternStr):
            if pat.value == "":
                raise GrammarError(
                    f'terminal {term.name} is the empty string "" (an llguidance extension); '
                    "write the rule with an optional instead"
                )
            return literal_regex(pat.value, ignore_case="i" in flags)
        if isinstance(pat, PatternRE):
            return _token_regex(pat.value, flags)
    except UnsupportedFeatureError as e:
        raise UnsupportedFeatureError(f"Lark terminal {term.name}: {e}") from None
    except GrammarError as e:
        raise GrammarError(f"Lark terminal {term.name}: {e}") from None
    raise GrammarError(f"Lark terminal {term.name} has an unknown pattern type {type(pat).__name__}")


def _nullable(regex) -> bool:
    return dfa._Deriv().nullable(regex)


def lark_to_ir(text: str, *, start: str = "start", import_paths: Sequence[str] = ()) -> ir.Grammar:
    """Convert a Lark grammar to the IR. ``start`` names the start rule; ``import_paths`` are directories
    searched by ``%import`` (the first one also anchors relative imports like ``%import .csv``)."""
    terminals, rules, ignore, declared = _load(text, start, import_paths)

    used_terms = {str(s.name) for r in rules for s in r.expansion if s.is_term}
    missing = sorted(used_terms - {str(t.name) for t in terminals})
    if missing:
        dec = [n for n in missing if n in declared]
        if dec:
            raise UnsupportedFeatureError(
                f"Lark terminals declared with %declare (produced by a post-lexer such as an indenter) are "
                f"not supported: {', '.join(dec)}"
            )
        raise GrammarError(f"Lark rules use undefined terminals: {', '.join(missing)}")

    builder = ir.GrammarBuilder(start=start)
    ignore_set = set(ignore)
    rule_names = {str(r.origin.name) for r in rules}
    optional_terms: dict[str, str] = {}  # nullable terminal -> rule "T?" standing for it in rules
    for term in terminals:
        name = str(term.name)
        if name in rule_names:
            raise GrammarError(f"Lark name {name!r} is used both as a terminal and as a rule")
        regex = _terminal_regex(term)
        ignored = name in ignore_set
        if ignored and name in used_terms:
            # Lark's lexer-based parsers drop it before the parser sees it (so those rules are dead), its
            # dynamic Earley lexer does not: the intended language is unclear.
            raise UnsupportedFeatureError(
                f"Lark terminal {name} is both %ignore'd and used in rules (Lark's lexers drop it, "
                "its dynamic Earley lexer keeps it, so the language is ambiguous)"
            )
        if _nullable(regex):
            # Lark's lexers refuse zero-width terminals; keep the language with a non-empty terminal
            # and an optional in the rules.
            regex = dfa.to_plain_regex(dfa.mk_and((regex, dfa.mk_seq((dfa.ANY, dfa.ANYSTAR)))),
                                       what=f"Lark terminal {name}")
            if not ignored:
                optional_terms[name] = f"{name}?"
        builder.terminal(name, regex, ignore=ignored, priority=term.priority)

    for name, opt in optional_terms.items():
        builder.rule(opt, [(), (name,)])

    for r in rules:
        expansion = tuple(optional_terms.get(str(s.name), str(s.name)) for s in r.expansion)
        builder.rule(str(r.origin.name), [expansion])
    return builder.build()
