"""Options of the JSON Schema compiler: the layout (whitespace, separators) and key order of the JSON text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gdecode import ir

_INDENT_CHARS = ir.Chars(((0x09, 0x09), (0x20, 0x20)))
_NEWLINE = ir.Seq((ir.Repeat(ir.literal("\r"), 0, 1), ir.literal("\n")))


@dataclass
class Options:
    """How the generated JSON text is laid out, and how unsupported keywords are treated.

    ``whitespace``:

    * ``"flexible"`` (default): the layouts of ``json.dumps`` (compact, default separators, or any
      ``indent``) and similar hand-written styles, but nothing pathological. Whitespace may follow ``{ [ ,``
      and precede ``} ]``: either up to ``max_whitespace`` spaces/tabs, or one newline followed by up to
      ``max_whitespace`` spaces/tabs of indentation. After ``:`` at most one space. Never whitespace before
      ``,`` or ``:``, never blank lines, never at the start or end of the document. Bounded, so a model cannot
      loop on whitespace.
    * ``"compact"``: no whitespace at all (``json.dumps(v, separators=(",", ":"))``).
    * ``{"indent": n}`` (or a string of spaces/tabs): exactly ``json.dumps(v, indent=n)``: a newline and the
      depth's indentation after ``{ [ ,`` and before ``} ]``, ``": "`` between key and value, empty containers
      as ``{}``/``[]``. Nesting deeper than ``max_depth`` is not generated.

    ``separators``: ``(item, key)`` strings such as ``(", ", ": ")``; they replace ``,`` and ``:`` (the
    whitespace policy still adds its own whitespace after them). ``json.dumps(v)`` is
    ``whitespace="compact", separators=(", ", ": ")``.

    ``key_order``: ``"schema"`` (default): listed properties appear in the order of ``properties`` (then
    ``required``). ``"any"``: listed properties in any order, each at most
    once (objects with more than ``max_any_order_keys`` listed properties raise LimitExceededError, and
    ``minProperties``/``maxProperties`` counting is not supported in this mode).

    ``extra_keys``: where keys not listed in ``properties`` (allowed by ``additionalProperties`` or
    ``patternProperties``) may appear when ``key_order="schema"``: ``"last"`` (default), after the listed
    properties, as llguidance does: a model must write the schema's own keys before inventing others (a
    small model prompted with a schema otherwise tends to copy it, ``"properties": {...}``, as an extra
    key); ``"anywhere"``: also between listed properties, which accepts more of the valid JSON texts.

    ``max_string_length``: strings are generated with at most this many characters: a larger ``maxLength``
    is lowered to it (a subset of the valid strings, with a warning); a larger ``minLength`` raises
    LimitExceededError. ``max_depth``: nesting limit of the indent layout.

    ``additional_properties_default``: what an absent ``additionalProperties`` means (the spec says
    ``True``). ``string_escapes``: ``"standard"``: strings may use the escapes ``json.dumps`` emits with
    ``ensure_ascii=False``. ``lenient``: keywords that cannot be enforced exactly become warnings (the grammar
    then over- or under-approximates them) instead of errors.
    """

    whitespace: Any = "flexible"
    max_whitespace: int = 64
    separators: tuple[str, str] | None = None
    key_order: str = "schema"
    extra_keys: str = "last"
    max_any_order_keys: int = 10
    max_depth: int = 32
    additional_properties_default: bool = True
    string_escapes: str = "standard"
    lenient: bool = False
    max_string_length: int = 1000
    max_alternatives: int = 256
    max_rules: int = 200_000

    def __post_init__(self) -> None:
        ws = self.whitespace
        self.indent: str | None = None
        if isinstance(ws, dict):
            if set(ws) != {"indent"}:
                raise ValueError(f"whitespace dict must be {{'indent': n}}, got {ws!r}")
            n = ws["indent"]
            if isinstance(n, bool) or not isinstance(n, (int, str)):
                raise ValueError(f"indent must be an int or a string of spaces/tabs, got {n!r}")
            self.indent = " " * n if isinstance(n, int) else n
            if isinstance(n, int) and not 0 <= n <= 16 or set(self.indent) - {" ", "\t"}:
                raise ValueError(f"indent must be 0..16 or a string of spaces/tabs, got {n!r}")
        elif ws not in ("flexible", "compact"):
            raise ValueError(f"whitespace must be 'flexible', 'compact' or {{'indent': n}}, got {ws!r}")
        if self.separators is not None:
            item, key = self.separators
            if item.strip(" ") != "," or key.strip(" ") != ":":
                raise ValueError(f"separators must be (item, key) like (', ', ': '), got {self.separators!r}")
        if self.key_order not in ("schema", "any"):
            raise ValueError(f"key_order must be 'schema' or 'any', got {self.key_order!r}")
        if self.extra_keys not in ("last", "anywhere"):
            raise ValueError(f"extra_keys must be 'last' or 'anywhere', got {self.extra_keys!r}")
        if self.string_escapes != "standard":
            raise ValueError(f"string_escapes must be 'standard', got {self.string_escapes!r}")
        if not 1 <= int(self.max_whitespace) <= 10_000:
            raise ValueError("max_whitespace must be between 1 and 10000")
        if not 1 <= int(self.max_depth) <= 1000:
            raise ValueError("max_depth must be between 1 and 1000")

    @property
    def item_separator(self) -> str:
        return self.separators[0] if self.separators else ","

    @property
    def key_separator(self) -> str:
        if self.separators:
            return self.separators[1]
        return ": " if self.indent is not None else ":"

    def whitespace_regex(self) -> ir.Regex | None:
        """The regex of one flexible whitespace lexeme (None: not the flexible policy)."""
        if self.whitespace != "flexible":
            return None
        n = int(self.max_whitespace)
        return ir.Alt((ir.Repeat(_INDENT_CHARS, 1, n), ir.Seq((_NEWLINE, ir.Repeat(_INDENT_CHARS, 0, n)))))
