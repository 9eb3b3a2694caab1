"""Grammar IR -> C++ CompiledGrammar for one tokenizer.

The Python side does the cheap, structural work (trimming useless rules, numbering symbols, flattening
regexes); the C++ core builds the lexer automata and parser tables from the flat arrays sent here.

Regex flat encoding (decoded by ``RegexPool::decode`` in csrc/core/regex.cpp), one record per node,
children before parents, nodes numbered in order:

    Chars:  0, n, lo1, hi1, ..., lon, hin        (code points)
    Bytes:  1, n, lo1, hi1, ...                  (raw bytes)
    Seq:    2, n, child1, ..., childn
    Alt:    3, n, child1, ..., childn
    Repeat: 4, child, min, max                   (max = -1: unbounded)
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, fields

from gdecode import _core, deadline, gc_pause, ir
from gdecode.errors import GrammarError, LimitExceededError
from gdecode.tokenizer import TokenizerInfo


@dataclass
class Limits:
    """Bounds that keep compiling and matching finite; exceeding one raises LimitExceededError.

    ``max_compile_seconds`` bounds the wall-clock time of one ``compile_*`` call (Python front end and
    C++ construction together; <= 0 disables it). Lexer DFA states are built lazily while matching and
    are bounded by ``max_dfa_states``; a matcher's memory by ``max_chart_items`` (12 bytes each) and
    ``max_rollback``; a grammar's caches by ``mask_cache_bytes`` and ``state_cache_bytes``.
    """

    max_nfa_states: int = 500_000
    max_dfa_states: int = 50_000
    max_items_per_set: int = 200_000
    max_chart_items: int = 20_000_000
    max_rollback: int = 1_024
    mask_cache_bytes: int = 512 << 20
    state_cache_bytes: int = 256 << 20
    max_compile_seconds: float = 300.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Limits.{f.name} must be a number, got {value!r}")
            if f.name != "max_compile_seconds" and (value < 0 or value != int(value)):
                raise ValueError(f"Limits.{f.name} must be a non-negative integer, got {value!r}")

    def to_core(self) -> _core.Limits:
        out = _core.Limits()
        for f in fields(self):
            if f.name != "max_compile_seconds":
                setattr(out, f.name, int(getattr(self, f.name)))
        # The core gets what is left of the budget the Python front end opened (if any).
        left = deadline.remaining()
        out.max_compile_seconds = float(left if left is not None else self.max_compile_seconds)
        return out


class CompiledGrammar:
    """A grammar compiled for one tokenizer. Immutable and thread-safe: share it between matchers."""

    def __init__(self, core: _core.CompiledGrammar, tokenizer: TokenizerInfo, grammar: ir.Grammar,
                 limits: Limits, warnings: list[str] | None = None) -> None:
        self._core = core
        self.tokenizer = tokenizer
        self._ir = grammar
        self._trimmed: ir.Grammar | None = None
        self.limits = limits
        self.warnings = list(warnings or [])

    @property
    def grammar(self) -> ir.Grammar:
        """The grammar IR as the core uses it: productive, reachable parts only (trimmed on first use)."""
        if self._trimmed is None:
            self._trimmed = trim(self._ir, dict(self.tokenizer.special_tokens))
        return self._trimmed

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def __repr__(self) -> str:
        g = self.grammar
        return (f"<CompiledGrammar {len(g.rules)} rules, {len(g.terminals)} terminals, "
                f"vocab_size={self.vocab_size}>")


# ------------------------------------------------------------------------------ vocabulary (per tokenizer)
_VOCAB_CACHE: collections.OrderedDict[str, _core.Vocabulary] = collections.OrderedDict()
_VOCAB_LOCK = threading.Lock()


def core_vocabulary(tok: TokenizerInfo) -> _core.Vocabulary:
    """The C++ view of a tokenizer (bytes + trie), built once per tokenizer fingerprint."""
    key = tok.fingerprint
    with _VOCAB_LOCK:
        vocab = _VOCAB_CACHE.get(key)
        if vocab is not None:
            _VOCAB_CACHE.move_to_end(key)
            return vocab
    n = tok.tokenizer_size
    tokens = tok.all_token_bytes[:n]
    vocab = _core.Vocabulary(tokens, tok.vocab_size, list(tok.eos_token_ids), sorted(tok.excluded_ids()))
    with _VOCAB_LOCK:
        _VOCAB_CACHE[key] = vocab
        while len(_VOCAB_CACHE) > 8:
            _VOCAB_CACHE.popitem(last=False)
    return vocab


# --------------------------------------------------------------------------------------------- trimming
def trim(grammar: ir.Grammar, special_ids: dict[str, int],
         nonempty: dict[str, bool] | None = None) -> ir.Grammar:
    """Drops alternatives that can never derive a string and rules unreachable from the start, so every
    state the matcher reaches has a continuation. Raises GrammarError if the language is empty. The core
    trims the same way by itself when it compiles (this is its reference, compared in
    tests/test_engine_differential.py); :attr:`CompiledGrammar.grammar` is this function's result.
    ``nonempty``: whether each regex terminal matches a non-empty string, when already known."""
    grammar.validate()
    if nonempty is None:
        named = [(name, t.regex) for name, t in grammar.terminals.items() if t.special_token is None]
        _flat, _roots, flags = _core.flatten_regexes([r for _name, r in named])
        nonempty = {name: ne for (name, _r), ne in zip(named, flags, strict=True)}
    productive: set[str] = set()
    for name, t in grammar.terminals.items():
        if t.special_token is not None:
            if t.special_token in special_ids:
                productive.add(name)
        elif nonempty[name]:
            productive.add(name)
    # Worklist, linear in the grammar: each alternative counts its symbols not yet known to be productive,
    # and a rule becomes productive when one of its alternatives reaches zero. (Sweeping all rules until
    # nothing changes took one sweep per level of a deep schema.)
    waiting: dict[str, list[list]] = {}  # symbol -> the [count, rule] of each alternative that uses it
    todo = list(productive)
    for name, alts in grammar.rules.items():
        for alt in alts:
            unknown = {s for s in alt if s not in productive}
            if not unknown:
                if name not in productive:
                    productive.add(name)
                    todo.append(name)
                continue
            entry = [len(unknown), name]
            for sym in unknown:
                waiting.setdefault(sym, []).append(entry)
    deadline.check("trimming the grammar")
    while todo:
        for entry in waiting.pop(todo.pop(), ()):
            entry[0] -= 1
            if entry[0] == 0 and entry[1] not in productive:
                productive.add(entry[1])
                todo.append(entry[1])
    if grammar.start not in productive:
        raise GrammarError(f"the grammar matches no string (start rule {grammar.start!r} derives nothing)")
    rules = {name: [alt for alt in alts if all(s in productive for s in alt)]
             for name, alts in grammar.rules.items() if name in productive}
    reachable, stack = {grammar.start}, [grammar.start]
    while stack:
        for alt in rules[stack.pop()]:
            for sym in alt:
                if sym not in reachable:
                    reachable.add(sym)
                    if sym in rules:
                        stack.append(sym)
    terminals = {name: t for name, t in grammar.terminals.items()
                 if name in reachable or (t.ignore and name in productive)}
    return ir.Grammar(terminals=terminals, rules={n: a for n, a in rules.items() if n in reachable},
                      start=grammar.start)


# ----------------------------------------------------------------------------------------- flattening
class _RegexFlattener:
    """Regex trees into the flat int array the core reads (one node = a tag, then its fields; children by
    index). Structurally equal subtrees are emitted once; per node it also records whether it matches
    something and whether it matches a non-empty string (what :func:`trim` needs). This is the reference
    of the core's ``flatten_regexes``, which compiling uses (same array, tested in tests/test_flatten.py);
    the fuzz corpus builder uses it too."""

    def __init__(self) -> None:
        self.flat: list[int] = []
        self.count = 0
        self.steps = 0
        self.memo: dict[ir.Regex, int] = {}  # structural: equal trees built apart share one index
        self.ids: dict[int, int] = {}  # id(node) -> index: the fast path (the trees are alive meanwhile)
        self.props: list[tuple[bool, bool]] = []  # per index: (matches something, matches non-empty)

    def add(self, node: ir.Regex) -> int:
        # Iterative post-order, so deeply nested regexes cannot overflow Python's stack.
        ids, memo = self.ids, self.memo
        stack: list[tuple[ir.Regex, bool]] = [(node, False)]
        while stack:
            self.steps += 1
            if self.steps & 0x3FF == 0:
                deadline.check("flattening regexes")
            cur, ready = stack.pop()
            if id(cur) in ids:
                continue
            if not ready:
                idx = memo.get(cur)
                if idx is not None:
                    ids[id(cur)] = idx
                    continue
                pending = [c for c in ir.children(cur) if id(c) not in ids]
                if pending:
                    stack.append((cur, True))
                    stack.extend((c, False) for c in pending)
                    continue
            self._emit(cur)
        return ids[id(node)]

    def nonempty(self, index: int) -> bool:
        return self.props[index][1]

    def _emit(self, node: ir.Regex) -> None:
        f, ids, props = self.flat, self.ids, self.props
        if isinstance(node, (ir.Chars, ir.Bytes)):
            f += [0 if isinstance(node, ir.Chars) else 1, len(node.ranges)]
            for lo, hi in node.ranges:
                f += [lo, hi]
            out = (bool(node.ranges), bool(node.ranges))
        elif isinstance(node, (ir.Seq, ir.Alt)):
            kids = [ids[id(c)] for c in node.items]
            f += [2 if isinstance(node, ir.Seq) else 3, len(kids)]
            f += kids
            if isinstance(node, ir.Seq):
                some = all(props[k][0] for k in kids)
                out = (some, some and any(props[k][1] for k in kids))
            else:
                out = (any(props[k][0] for k in kids), any(props[k][1] for k in kids))
        elif isinstance(node, ir.Repeat):
            k = ids[id(node.item)]
            f += [4, k, node.min, -1 if node.max is None else node.max]
            some, nonempty = props[k]
            out = (True, False) if node.max == 0 else (node.min == 0 or some, some and nonempty)
        elif isinstance(node, ir.Minus):
            k = ids[id(node.item)]
            f += [5, k, len(node.words)]
            for w in node.words:
                data = w.encode()
                f += [len(data), *data]
            out = _minus_props(node)
        else:
            raise GrammarError(f"unknown regex node {type(node).__name__}")
        self.memo[node] = ids[id(node)] = self.count
        props.append(out)
        self.count += 1


def _minus_props(node: ir.Minus) -> tuple[bool, bool]:
    """(matches something, matches a non-empty string) of a Minus node, the slow exact way: its plain regex
    (code point items only), flattened."""
    from gdecode import _regex_dfa

    plain = _regex_dfa.minus_words(node.item, node.words)
    f = _RegexFlattener()
    return f.props[f.add(plain)]


def compile_grammar(grammar: ir.Grammar, tokenizer: TokenizerInfo, *, limits: Limits | None = None,
                    warnings: list[str] | None = None) -> CompiledGrammar:
    """Compiles a Grammar IR for `tokenizer`. Raises GrammarError / LimitExceededError."""
    if not isinstance(tokenizer, TokenizerInfo):
        raise TypeError(f"tokenizer must be a gdecode.TokenizerInfo, got {type(tokenizer).__name__}")
    limits = limits or Limits()
    try:
        with deadline.compile_budget(limits.max_compile_seconds), gc_pause.paused():
            return _compile(grammar, tokenizer, limits, warnings)
    except RecursionError:
        # Regex ASTs are nested dataclasses: absurd nesting must fail cleanly, not take the process down.
        raise LimitExceededError("grammar or regex nesting is too deep to compile") from None


def _compile(grammar: ir.Grammar, tokenizer: TokenizerInfo, limits: Limits,
             warnings: list[str] | None) -> CompiledGrammar:
    # The core trims the grammar itself (productive and reachable parts only; `trim` below is its
    # reference), so the whole IR is encoded as it is. Grammar.validate runs only when the encoding finds
    # something wrong, to word the error (a separate pass over every symbol was a tenth of this function).
    special_ids = tokenizer.special_tokens  # read-only mapping: no copy of a few hundred entries per compile
    terminal_names = list(grammar.terminals)
    named = [name for name in terminal_names if grammar.terminals[name].special_token is None]
    flat, roots, _nonempty = _core.flatten_regexes([grammar.terminals[name].regex for name in named])
    regex_of = dict(zip(named, roots, strict=True))
    rule_names = list(grammar.rules)
    symbol = {name: i for i, name in enumerate(terminal_names)}
    symbol.update({name: len(terminal_names) + i for i, name in enumerate(rule_names)})

    terminal_regex, terminal_ignored, terminal_tokens = [], [], []
    for name in terminal_names:
        t = grammar.terminals[name]
        if t.special_token is not None:
            terminal_regex.append(-1)
            terminal_tokens.append([special_ids[t.special_token]] if t.special_token in special_ids else [])
        else:
            terminal_regex.append(regex_of[name])
            terminal_tokens.append([])
        terminal_ignored.append(1 if t.ignore else 0)

    prod_lhs, prod_rhs = [], []
    try:
        for name in rule_names:
            lhs = symbol[name]
            for alt in grammar.rules[name]:
                prod_lhs.append(lhs)
                prod_rhs.append([symbol[s] for s in alt])
    except KeyError:  # an undefined symbol
        grammar.validate()
        raise
    ignored = {i for i, flag in enumerate(terminal_ignored) if flag}
    if len(symbol) != len(terminal_names) + len(rule_names) or grammar.start not in grammar.rules or \
            (ignored and any(s in ignored for rhs in prod_rhs for s in rhs)):
        grammar.validate()  # raises: a name clash, no start rule, or an ignored terminal used in a rule

    core = _core.CompiledGrammar(
        core_vocabulary(tokenizer), flat, terminal_regex, terminal_ignored, terminal_tokens,
        len(rule_names), prod_lhs, prod_rhs, symbol[grammar.start], limits.to_core())
    return CompiledGrammar(core, tokenizer, grammar, limits, warnings)


# ------------------------------------------------------------------------------------- frontends
def compile_lark(text: str, tokenizer: TokenizerInfo, *, start: str = "start", import_paths=(),
                 lexer: str = "contextual", limits: Limits | None = None) -> CompiledGrammar:
    """Compile a Lark grammar (read with lark's own loader: ``%import common.*``, templates, ``%ignore``).

    ``lexer="contextual"`` (default): terminals are lexed with longest match, like Lark's contextual lexer
    and llguidance; fast. ``lexer="dynamic"``: the exact context-free language, like Lark's Earley parser
    with its dynamic lexer, for grammars written for character-level parsing (every terminal is expanded
    into one-character rules; slower masks).
    """
    from gdecode.frontends.lark import lark_to_ir

    if lexer not in ("contextual", "dynamic"):
        raise ValueError(f"lexer must be 'contextual' or 'dynamic', got {lexer!r}")
    limits = limits or Limits()
    with deadline.compile_budget(limits.max_compile_seconds), gc_pause.paused():
        grammar = lark_to_ir(text, start=start, import_paths=import_paths)
        if lexer == "dynamic":
            from gdecode.scannerless import to_character_level

            grammar = to_character_level(grammar)
        return compile_grammar(grammar, tokenizer, limits=limits)


def compile_gbnf(text: str, tokenizer: TokenizerInfo, *, start: str = "root",
                 limits: Limits | None = None) -> CompiledGrammar:
    """Compile a llama.cpp GBNF grammar (character-level: its exact language is kept)."""
    from gdecode.frontends.gbnf import gbnf_to_ir

    limits = limits or Limits()
    with deadline.compile_budget(limits.max_compile_seconds), gc_pause.paused():
        return compile_grammar(gbnf_to_ir(text, start=start), tokenizer, limits=limits)


def compile_regex(pattern: str, tokenizer: TokenizerInfo, *, flavor: str = "python", flags: str = "",
                  limits: Limits | None = None) -> CompiledGrammar:
    """Compile a regex: the whole output must match it (full match, as if anchored at both ends)."""
    from gdecode.regex import parse_regex

    limits = limits or Limits()
    with deadline.compile_budget(limits.max_compile_seconds), gc_pause.paused():
        parsed = parse_regex(pattern, flavor=flavor, flags=flags)
        regex = getattr(parsed, "regex", parsed)
        builder = ir.GrammarBuilder()
        builder.terminal("REGEX", regex)
        builder.rule("start", [("REGEX",)])
        return compile_grammar(builder.build(), tokenizer, limits=limits)
