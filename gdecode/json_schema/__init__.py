"""JSON Schema → Grammar IR (issue 4).

Modules: :mod:`.resolve` (the document: meta-validation, pointers, ``$id``/``$anchor``/``$ref``),
:mod:`.compile` (the walker: applicators in disjunctive normal form, one rule per subschema), :mod:`.merge`
(intersection of the conjuncts of one alternative), :mod:`.strings` (JSON string lexemes and escapes),
:mod:`.numbers` (exact integer and decimal ranges), :mod:`.formats`, :mod:`.options`.

Enforced exactly: ``type`` (incl. lists), ``enum``/``const`` (any value; candidates are filtered by the whole
schema with jsonschema), ``properties``/``required``/``additionalProperties``/``patternProperties``/
``propertyNames``, ``maxProperties`` (and ``minProperties`` when no extra key is possible),
``dependentRequired``/``dependentSchemas``, ``prefixItems``/``items``/``minItems``/``maxItems``, ``contains`` +
``minContains`` (without prefixItems/size bounds), ``anyOf``, ``allOf``, ``oneOf`` (provably disjoint
branches), ``not`` and ``if``/``then``/``else`` (conditions whose keywords can be negated), local ``$ref``
incl. recursion, ``unevaluated*`` without in-place applicators, string ``minLength``/``maxLength``/``pattern``/
``format`` (date, time, date-time, uuid, ipv4), integer bounds (``multipleOf`` 1 only), number bounds with
integer values (plain decimals, at most 15 digits with a fraction, no exponent). Everything else raises
UnsupportedFeatureError (a warning with ``lenient=True``).

Known limits: listed properties appear in ``properties`` order (extra keys may interleave); ``1.0`` is not
an integer lexeme; patterns follow ECMA-262 (``$`` is the strict end) while the ``jsonschema`` oracle uses
Python's ``re``.
"""

from __future__ import annotations

from typing import Any

from gdecode import deadline, ir
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

    Options: see :class:`Options` (``whitespace``, ``max_whitespace``, ``key_order``,
    ``additional_properties_default``, ``string_escapes``, ``lenient``, ...). Raises SchemaError for invalid
    schemas (with the JSON pointer) and UnsupportedFeatureError for keywords not enforced exactly (unless
    ``lenient=True``: then they are listed in the compiled grammar's ``warnings``).
    """
    from gdecode.compiler import Limits, compile_grammar

    limits = limits or Limits()
    with deadline.compile_budget(limits.max_compile_seconds):  # one budget for the walk and the core
        grammar, warnings = schema_to_ir(schema, **options)
        return compile_grammar(grammar, tokenizer, limits=limits, warnings=warnings)
