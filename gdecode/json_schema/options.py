"""Options of the JSON Schema compiler and the whitespace they allow between JSON tokens."""

from __future__ import annotations

from dataclasses import dataclass

from gdecode import ir

_WS_CHARS = ir.Chars(((0x09, 0x0A), (0x0D, 0x0D), (0x20, 0x20)))


@dataclass
class Options:
    """``whitespace``: ``"flexible"`` (between any two JSON tokens, up to ``max_whitespace`` characters of
    ``[ \\t\\n\\r]``: bounded so a model cannot loop on whitespace forever) or ``"compact"`` (none).

    ``key_order``: ``"schema"``: listed properties appear in the order of ``properties`` (extra keys may
    sit between them). ``additional_properties_default``: what an absent ``additionalProperties`` means
    (the spec says ``True``). ``string_escapes``: ``"standard"``: strings may use the escapes ``json.dumps``
    emits with ``ensure_ascii=False`` (``\\" \\\\ \\/ \\b \\f \\n \\r \\t`` and ``\\u00XX`` for control
    characters); other characters appear literally. ``lenient``: keywords that cannot be enforced exactly
    become warnings (the grammar then over- or under-approximates them) instead of errors.
    """

    whitespace: str = "flexible"
    max_whitespace: int = 64
    key_order: str = "schema"
    additional_properties_default: bool = True
    string_escapes: str = "standard"
    lenient: bool = False
    max_string_length: int = 1000
    max_alternatives: int = 256
    max_rules: int = 200_000

    def __post_init__(self) -> None:
        if self.whitespace not in ("flexible", "compact"):
            raise ValueError(f"whitespace must be 'flexible' or 'compact', got {self.whitespace!r}")
        if self.key_order != "schema":
            raise ValueError(f"key_order must be 'schema' (the only order implemented), got {self.key_order!r}")
        if self.string_escapes != "standard":
            raise ValueError(f"string_escapes must be 'standard', got {self.string_escapes!r}")
        if not 1 <= int(self.max_whitespace) <= 10_000:
            raise ValueError("max_whitespace must be between 1 and 10000")

    def whitespace_regex(self) -> ir.Regex | None:
        """The regex of one whitespace lexeme (None: no whitespace allowed)."""
        if self.whitespace == "compact":
            return None
        return ir.Repeat(_WS_CHARS, 1, int(self.max_whitespace))
