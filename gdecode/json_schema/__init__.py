"""JSON Schema → Grammar IR (issue 4).

Modules: :mod:`.resolve` (the document: meta-validation, pointers, ``$id``/``$anchor``/``$ref``),
:mod:`.compile` (the walker: applicators in disjunctive normal form, one rule per subschema), :mod:`.merge`
(intersection of the conjuncts of one alternative), :mod:`.strings` (JSON string lexemes and escapes),
:mod:`.numbers` (exact integer and decimal ranges), :mod:`.formats`, :mod:`.options`.

Enforced exactly: ``type`` (incl. lists), ``enum``/``const`` (any value; candidates are filtered by the whole
schema with jsonschema), ``properties``/``required``/``additionalProperties``/``patternProperties``/
``propertyNames``, ``maxProperties`` (and ``minProperties`` when no extra key is possible),
``dependentRequired``/``dependentSchemas``, ``prefixItems``/``items``/``minItems``/``maxItems``, ``uniqueItems``
(items from a finite set of at most 10 values), ``contains`` + ``minContains`` (without prefixItems/size
bounds), ``anyOf``, ``allOf``, ``oneOf`` (disjoint branches, or branches that can be negated), ``not`` and ``if``/``then``/``else``
(conditions whose keywords can be negated), local ``$ref`` incl. recursion, ``unevaluated*`` without
in-place applicators, string ``minLength``/``maxLength``/``pattern``/``format`` (see :mod:`.formats`),
integer and number bounds and ``multipleOf`` with decimal values of at most 15 significant digits (numbers
as plain decimals, at most 15 digits with a fraction, no exponent; ``multipleOf`` on the decimal values as
the spec says, not on doubles; non-integral numbers from ``not: {type: integer}``). Keywords of no JSON Schema draft are ignored, as validators do (with a
warning). Everything else raises UnsupportedFeatureError (a warning with ``lenient=True``).

Documented subsets (valid values never generated, never a false accept): numbers in exponent notation or
with more than 15 digits under bounds; ``1.0`` is not an integer lexeme; strings longer than
``max_string_length`` (1000); formats as listed in :mod:`.formats`. Listed properties appear in
``properties`` order unless ``key_order="any"``, and keys not listed come after them unless
``extra_keys="anywhere"``. Patterns follow ECMA-262
(``$`` is the strict end) while the ``jsonschema`` oracle uses Python's ``re``.
"""

from __future__ import annotations

from typing import Any

from gdecode import deadline, gc_pause, ir
from gdecode.errors import LimitExceededError
from gdecode.json_schema.options import Options

__all__ = ["Options", "compile_json_schema", "schema_to_ir"]


def schema_to_ir(schema: Any, **options: Any) -> tuple[ir.Grammar, list[str]]:
    """(Grammar IR, warnings) of a JSON Schema given as a dict, JSON text or Pydantic model class."""
    from gdecode.json_schema.compile import SchemaCompiler
    from gdecode.json_schema.resolve import load_schema

    opts = Options(**options)
    try:
        c = SchemaCompiler(load_schema(schema), opts)
        return c.build(), c.warnings
    except RecursionError:
        raise LimitExceededError("JSON Schema nested too deeply (Python recursion limit)") from None


def compile_json_schema(schema: Any, tokenizer, *, limits=None, **options: Any):
    """Compile a JSON Schema (Draft 2020-12; dict, JSON text or Pydantic model class) for ``tokenizer``.

    Options: see :class:`Options` (``whitespace``, ``max_whitespace``, ``key_order``, ``extra_keys``,
    ``additional_properties_default``, ``string_escapes``, ``lenient``, ...). Raises SchemaError for invalid
    schemas (with the JSON pointer) and UnsupportedFeatureError for keywords not enforced exactly (unless
    ``lenient=True``: then they are listed in the compiled grammar's ``warnings``).
    """
    from gdecode.compiler import Limits, compile_grammar

    limits = limits or Limits()
    # One budget for the walk and the core; no garbage collection in between (see gc_pause).
    with deadline.compile_budget(limits.max_compile_seconds), gc_pause.paused():
        grammar, warnings = schema_to_ir(schema, **options)
        return compile_grammar(grammar, tokenizer, limits=limits, warnings=warnings)
