"""gdecode: structured generation for LLMs (JSON Schema, Lark, GBNF, regex -> token masks)."""

from gdecode import _core
from gdecode.errors import (
    AssetError,
    GDecodeError,
    GrammarError,
    LimitExceededError,
    SchemaError,
    TokenizerError,
    UnsupportedFeatureError,
)

__version__ = "0.1.0"

__all__ = [
    "_core",
    "AssetError",
    "GDecodeError",
    "GrammarError",
    "LimitExceededError",
    "SchemaError",
    "TokenizerError",
    "UnsupportedFeatureError",
]
