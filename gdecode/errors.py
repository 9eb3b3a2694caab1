"""The exceptions gdecode raises. All derive from GDecodeError so callers can catch one type."""


class GDecodeError(Exception):
    """Base class of every gdecode error."""


class TokenizerError(GDecodeError, ValueError):
    """A tokenizer or vocabulary could not be read, or is inconsistent (e.g. logit width too small)."""


class GrammarError(GDecodeError, ValueError):
    """A grammar (Lark, GBNF, regex or IR) is malformed; the message names the rule and position."""


class SchemaError(GrammarError):
    """A JSON Schema is invalid; the message carries the JSON pointer of the problem."""


class UnsupportedFeatureError(GrammarError):
    """The input uses a feature gdecode cannot enforce exactly (named in the message). Never ignored silently."""


class LimitExceededError(GDecodeError):
    """Compilation or matching hit a configured bound (states, items, time, memory, rollback depth)."""


class AssetError(GDecodeError, RuntimeError):
    """A tokenizer or model could not be provisioned (no local copy and the package download failed)."""
