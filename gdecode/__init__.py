"""gdecode: structured generation for LLMs (Lark, GBNF, regex -> token masks)."""

from gdecode import _core
from gdecode.bitmask import apply_bitmask_inplace
from gdecode.compiler import (
    CompiledGrammar,
    Limits,
    compile_gbnf,
    compile_grammar,
    compile_lark,
    compile_regex,
)
from gdecode.errors import (
    AssetError,
    GDecodeError,
    GrammarError,
    LimitExceededError,
    SchemaError,
    TokenizerError,
    UnsupportedFeatureError,
)
from gdecode.generate import generate
from gdecode.json_schema import compile_json_schema
from gdecode.matcher import Matcher, allocate_bitmask, fill_bitmasks
from gdecode.tokenizer import TokenizerInfo

__version__ = "0.1.0"

__all__ = [
    "_core",
    "AssetError",
    "CompiledGrammar",
    "GDecodeError",
    "GrammarError",
    "LimitExceededError",
    "Limits",
    "Matcher",
    "SchemaError",
    "TokenizerError",
    "TokenizerInfo",
    "UnsupportedFeatureError",
    "allocate_bitmask",
    "apply_bitmask_inplace",
    "compile_gbnf",
    "compile_grammar",
    "compile_json_schema",
    "compile_lark",
    "compile_regex",
    "fill_bitmasks",
    "generate",
]
