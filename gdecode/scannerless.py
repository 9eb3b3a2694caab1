"""Scannerless rewrite: turn a grammar's terminals into character-level rules.

The engine lexes with longest match (Lark's contextual lexer). Grammars written for a character-level
Earley parser (Lark's default ``lexer="dynamic"``, genlm's SQL grammars) may rely on a terminal ending
*before* the longest match, e.g. a value literal ``"COUNTRY"`` next to a keyword ``count``. Rewriting
every terminal as rules over one-character terminals gives exactly the context-free language of the
grammar: a one-character lexeme can never be extended, so longest match loses nothing. Ignored
terminals become optional ``ignore*`` slots before every terminal occurrence and at the end of the input.

The price is parsing speed (one Earley step per character), so this is an opt-in mode.
"""

from __future__ import annotations

from gdecode import ir


class _Rewriter:
    def __init__(self, grammar: ir.Grammar) -> None:
        self.src = grammar
        self.b = ir.GrammarBuilder(start=grammar.start)
        self.char_terminal: dict[ir.Regex, str] = {}
        self.terminal_rule: dict[str, str] = {}

    def atom(self, node: ir.Chars | ir.Bytes) -> str:
        name = self.char_terminal.get(node)
        if name is None:
            name = self.b.fresh("CH")
            self.b.grammar.terminals[name] = ir.Terminal(name, node)
            self.char_terminal[node] = name
        return name

    def regex_rule(self, node: ir.Regex, hint: str) -> tuple[str, ...]:
        """Symbols deriving exactly the strings of ``node`` (a sequence, possibly empty)."""
        if isinstance(node, (ir.Chars, ir.Bytes)):
            return (self.atom(node),) if node.ranges else (self._nothing(),)
        if isinstance(node, ir.Seq):
            out: tuple[str, ...] = ()
            for item in node.items:
                out += self.regex_rule(item, hint)
            return out
        if isinstance(node, ir.Alt):
            if not node.items:
                return (self._nothing(),)
            name = self.b.fresh(hint)
            self.b.rule(name, [self.regex_rule(item, hint) for item in node.items])
            return (name,)
        if isinstance(node, ir.Repeat):
            body = self.regex_rule(node.item, hint)
            return (self.b.repeat(body, node.min, node.max, hint),)
        raise TypeError(f"unknown regex node {type(node).__name__}")

    def _nothing(self) -> str:
        # A rule with no alternatives derives nothing; compile-time trimming removes what depends on it.
        name = self.b.fresh("nothing")
        self.b.grammar.rules[name] = []
        return name

    def rewrite(self) -> ir.Grammar:
        src = self.src
        ignore_alts = []
        for name, t in src.terminals.items():
            if t.special_token is not None:
                self.b.grammar.terminals[name] = t
                self.terminal_rule[name] = name
            elif t.ignore:
                ignore_alts.append(self.regex_rule(t.regex, f"ign_{name}"))
            else:
                rule = self.b.fresh(f"tok_{name}")
                self.b.rule(rule, [self.regex_rule(t.regex, f"tok_{name}")])
                self.terminal_rule[name] = rule
        ign = None
        if ignore_alts:
            one = self.b.fresh("ignore")
            self.b.rule(one, ignore_alts)
            ign = self.b.repeat((one,), 0, None, "ignore")

        for name, alts in src.rules.items():
            new_alts = []
            for alt in alts:
                out: list[str] = []
                for sym in alt:
                    if sym in src.terminals:
                        if ign is not None:
                            out.append(ign)
                        out.append(self.terminal_rule[sym])
                    else:
                        out.append(sym)
                new_alts.append(tuple(out))
            self.b.rule(name, new_alts)
        if ign is not None:
            start = self.b.fresh("start")
            self.b.rule(start, [(src.start, ign)])
            self.b.grammar.start = start
        return self.b.build()


def to_character_level(grammar: ir.Grammar) -> ir.Grammar:
    """The same language, with every byte-level terminal expanded into rules over single characters."""
    grammar.validate()
    return _Rewriter(grammar).rewrite()
