"""JSON Schema → Grammar IR.

Lexemes: every JSON string (key or value) is one terminal whose regex includes the quotes, a number is one
terminal, and ``{ } [ ] , :`` and ``true false null`` are literal terminals. Whitespace is an explicit
optional terminal between tokens (never ``%ignore``), so the whitespace policy is exact and bounded.

A schema node is compiled into one rule. Its applicators are first put in disjunctive normal form: each
alternative is a list of *conjuncts* (the node's own keywords, the targets of ``$ref``, ``allOf`` members,
one ``anyOf`` branch...), which :mod:`gdecode.json_schema.merge` intersects into one :class:`Plain`
description per JSON type. Subschemas (property values, items) become rules of their own, memoized per
subschema (or per set of subschemas for intersections), so recursive ``$ref`` becomes recursive rules.

A schema whose alternatives are finite (``enum``/``const``) is compiled by enumerating the candidate values
and keeping those the whole conjunction accepts, checked with ``jsonschema`` itself: exact whatever the
other keywords are.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

from gdecode import _regex_dfa as dfa
from gdecode import deadline, ir
from gdecode.errors import GrammarError, LimitExceededError, SchemaError, UnsupportedFeatureError
from gdecode.json_schema import formats, numbers, strings
from gdecode.json_schema.merge import ALL_TYPES, ANNOTATIONS, Conjunct, Plain, merge, type_set
from gdecode.json_schema.options import Options
from gdecode.json_schema.resolve import Document
from gdecode.regex import analyze_regex

_APPLICATORS = ("$ref", "allOf", "anyOf", "oneOf", "if", "then", "else", "not", "dependentRequired",
                "dependentSchemas", "dependencies")
_NEG_BOUND = {"minimum": "exclusiveMaximum", "maximum": "exclusiveMinimum", "exclusiveMinimum": "maximum",
              "exclusiveMaximum": "minimum"}
_COUNTS = {"minLength": ("string", "maxLength"), "maxLength": ("string", "minLength"), "minItems": ("array", "maxItems"),
           "maxItems": ("array", "minItems"), "minProperties": ("object", "maxProperties"),
           "maxProperties": ("object", "minProperties")}
Part = tuple[Any, str, str]  # (schema, pointer, base URI)


_CHAR_AUTOMATON_STATES = 1_500  # bound of the automaton behind a string written character by character


class _TooComplex(Exception):
    """String constraints with no small plain regex. ``auto``: their automaton, when already built."""

    def __init__(self, parts: list, length: tuple[int, int | None] | None = None, auto: dfa.DFA | None = None
                 ) -> None:
        self.parts = parts
        self.length = length
        self.auto = auto


class SchemaCompiler:
    def __init__(self, root: Any, options: Options) -> None:
        self.doc = Document(root)
        self.opt = options
        self.b = ir.GrammarBuilder(start="start")
        self.warnings: list[str] = []
        self.memo: dict[Any, str] = {}
        self.lit_memo: dict[str, str] = {}
        t = self.b.literal_terminal
        self.t_lbrace, self.t_rbrace = t("{", "LBRACE"), t("}", "RBRACE")
        self.t_lbrack, self.t_rbrack = t("[", "LBRACK"), t("]", "RBRACK")
        self.t_comma = t(options.item_separator, "COMMA")
        self.t_colon = t(options.key_separator, "COLON")
        self.eps = self.b.rule(self.b.fresh("eps"), [()])
        ws = options.whitespace_regex()
        self.ows = self.eps if ws is None else self.b.rule(self.b.fresh("ows"), [(), (self.b.terminal("WS", ws),)])
        self.depth = 0  # nesting depth of the value being compiled (only the indent layout depends on it)
        self._layout_memo: dict[tuple[str, int], str] = {}
        self._any: dict[int, str] = {}
        self._synthetic: list = []  # schemas made here (negations): kept alive, rules are memoized by id
        self._ref_only_memo: dict[int, dict] = {}
        self._multiples_memo: dict[tuple[ir.Regex, int, int], str | None] = {}
        # Ids of the object constraints made here (dependencies, negations). They only constrain keys, so
        # `additional_properties_default=False` must not close them: that would empty the intersection.
        self.constraint_ids: set[int] = set()

    # ------------------------------------------------------------------------------------------ errors
    def fail(self, keyword: str, ptr: str, detail: str = "") -> None:
        """Report a keyword we cannot enforce exactly: an error, or a warning when lenient."""
        msg = f"{keyword} at #{ptr}: " + (detail or "not supported") + " (not enforced exactly)"
        if not self.opt.lenient:
            raise UnsupportedFeatureError(msg)
        self.warnings.append(msg)

    def note(self, msg: str) -> None:
        """A remark that does not change the language (e.g. an unknown keyword ignored): a warning."""
        if msg not in self.warnings:
            self.warnings.append(msg)

    def _check_budget(self) -> None:
        deadline.check("compiling the JSON Schema")
        if len(self.b.grammar.rules) > self.opt.max_rules:
            raise LimitExceededError(f"JSON Schema grammar has more than {self.opt.max_rules} rules")

    # ------------------------------------------------------------------------------------------ layout
    def _dkey(self) -> int:
        """The depth as far as rules differ by it: only the indent layout writes depth-dependent text."""
        return self.depth if self.opt.indent is not None else 0

    def _layout(self, kind: str) -> str:
        """Rule of the text around punctuation at the current depth: ``open`` (after ``{``/``[``), ``close``
        (before ``}``/``]``), ``empty`` (inside ``{}``/``[]``), ``comma`` and ``colon`` (the separators with
        the whitespace that follows them)."""
        key = (kind, self._dkey())
        hit = self._layout_memo.get(key)
        if hit is not None:
            return hit
        b, opt = self.b, self.opt
        if opt.indent is not None:
            d = self.depth

            def newline(level: int) -> str:
                return b.literal_terminal("\n" + opt.indent * level, "NL")

            alts = {"open": [(newline(d + 1),)], "close": [(newline(d),)], "empty": [()],
                    "comma": [(self.t_comma, newline(d + 1))], "colon": [(self.t_colon,)]}[kind]
        elif opt.whitespace == "flexible":
            space = b.literal_terminal(" ", "SP")
            alts = {"open": [(self.ows,)], "close": [(self.ows,)], "empty": [(self.ows,)],
                    "comma": [(self.t_comma, self.ows)], "colon": [(self.t_colon,), (self.t_colon, space)]}[kind]
        else:
            alts = {"comma": [(self.t_comma,)], "colon": [(self.t_colon,)]}.get(kind, [()])
        name = b.rule(b.fresh(kind), alts)
        self._layout_memo[key] = name
        return name

    @property
    def comma(self) -> str:
        return self._layout("comma")

    @property
    def colon(self) -> str:
        return self._layout("colon")

    def _container(self, opener: str, closer: str, body: str | None) -> tuple[str, ...]:
        """``opener body closer`` with the layout's whitespace (``body`` None: the empty container)."""
        if body is None:
            return (opener, self._layout("empty"), closer)
        return (opener, self._layout("open"), body, self._layout("close"), closer)

    def _child(self, fn, *args):
        """Compile a child value (array element or property value) one level deeper."""
        self.depth += 1
        try:
            if self.opt.indent is not None and self.depth > self.opt.max_depth:
                return self._nothing()  # nesting beyond max_depth is not generated (indent layout only)
            return fn(*args)
        finally:
            self.depth -= 1

    # ------------------------------------------------------------------------------------------ entry
    def build(self) -> ir.Grammar:
        root = self.doc.root
        self.b.rule("start", [(self.node(root, "", self.doc.where(root)[1]),)])
        # Not GrammarBuilder.build(): its validation pass would walk every rule again, and compile_grammar
        # words the same errors itself should the encoding find one.
        return self.b.grammar

    # -------------------------------------------------------------------------------------- subschemas
    def node(self, schema: Any, ptr: str, base: str) -> str:
        """The rule of one subschema of the document."""
        return self.conj(((schema, ptr, base),))

    def conj(self, parts: tuple[Part, ...]) -> str:
        """The rule of the intersection of subschemas."""
        parts = tuple((self._ref_only(p[0]), p[1], p[2]) for p in parts if p[0] is not True and p[0] != {})
        if any(p[0] is False for p in parts):
            return self._nothing()
        if not parts:
            return self.any_value()
        # a bare {"$ref": ...} shares the target's rule
        if len(parts) == 1 and isinstance(parts[0][0], dict) and set(parts[0][0]) <= {"$ref", "$comment", "title",
                                                                                     "description"}:
            schema, ptr, base = parts[0]
            if "$ref" in schema:
                target = self.doc.resolve(schema["$ref"], base, ptr)
                if target[0] is not schema:
                    return self.conj((target,))
        key = (self._dkey(), tuple(sorted({id(p[0]) for p in parts})))
        name = self.memo.get(key)
        if name is not None:
            return name
        name = self.b.fresh("s")
        self.memo[key] = name
        self._check_budget()
        if self._finite_conjunction(parts, name) or self._union_of_branches(parts, name):
            return name
        alternatives: list[list[Conjunct]] = [[]]
        for schema, ptr, base in parts:
            alternatives = self._product(alternatives, self.dnf(schema, ptr, base, 0), ptr)
        bodies = []
        for alt in alternatives:
            plain = merge(alt, self)
            if plain is None:
                continue
            sub = self.plain(plain, alt)
            if sub is not None:
                bodies.append((sub,))
        self.b.rule(name, bodies)
        return name

    def _ref_only(self, schema: Any) -> Any:
        """Drafts <= 7: a schema with ``$ref`` is only that reference (its siblings are ignored). Done once
        at the entry of :meth:`conj`, so that no shortcut (``enum`` candidates, say) reads the siblings; the
        reduced dict is cached per schema, as rules are memoized by id."""
        if not (self.doc.old_draft and isinstance(schema, dict) and "$ref" in schema and len(schema) > 1):
            return schema
        got = self._ref_only_memo.get(id(schema))
        if got is None:
            got = self._ref_only_memo[id(schema)] = {"$ref": schema["$ref"]}
            self._synthetic.append(schema)  # kept alive: the memo is keyed by its id
        return got

    def _finite_conjunction(self, parts: tuple[Part, ...], name: str) -> bool:
        """An ``enum`` or ``const`` at the top of a part (or of one of its ``allOf`` members) makes the whole
        intersection finite: the candidates every part accepts, each checked against the parts as they are
        (see :meth:`_finite_values`). Exact, and keywords with no grammar of their own (``not`` of an object
        schema, say) then need none."""
        candidates = None
        for schema, _ptr, _base in parts:
            if not isinstance(schema, dict):
                continue
            members = schema.get("allOf") if isinstance(schema.get("allOf"), list) else []
            for s in (schema, *members):
                if not isinstance(s, dict):
                    continue
                if "const" in s:
                    found = [s["const"]]
                elif isinstance(s.get("enum"), list):
                    found = s["enum"]
                else:
                    continue
                if candidates is None or len(found) < len(candidates):
                    candidates = found
        if candidates is None:
            return False
        keep = self._finite_values(candidates, [Conjunct(schema, ptr, base) for schema, ptr, base in parts])
        self.b.rule(name, [(self.literal(v),) for v in keep])
        return True

    def _union_of_branches(self, parts: tuple[Part, ...], name: str) -> bool:
        """A schema that is only ``anyOf`` (or ``oneOf`` with provably disjoint branches) is the union of its
        branches' own rules: shared with every other use of the branches instead of being re-expanded into
        disjunctive normal form at each site (schemas repeating ``anyOf: [{$ref}, ...]`` stay small)."""
        if len(parts) != 1 or not isinstance(parts[0][0], dict):
            return False
        schema, ptr, base = parts[0]
        keys = set(schema) - ANNOTATIONS
        if keys not in ({"anyOf"}, {"oneOf"}) or {"minContains", "maxContains"} & schema.keys():
            return False
        kw = keys.pop()
        subs = [(sub, f"{ptr}/{kw}/{i}", self.doc.where(sub, "", base)[1]) for i, sub in enumerate(schema[kw])]
        if kw == "oneOf":
            branches = [self.dnf(*sub, 0) for sub in subs]
            if not self._disjoint([[]], branches):
                return False
        self.b.rule(name, [(self.node(*sub),) for sub in subs])
        return True

    def _nothing(self) -> str:
        return self.b.rule(self.b.fresh("nothing"), [])

    def _product(self, a: list[list[Conjunct]], b: list[list[Conjunct]], ptr: str) -> list[list[Conjunct]]:
        if len(a) * len(b) > self.opt.max_alternatives:
            raise LimitExceededError(f"schema at #{ptr} expands to more than {self.opt.max_alternatives} "
                                     f"alternatives (anyOf/oneOf combinations)")
        return [x + y for x in a for y in b]

    def dnf(self, schema: Any, ptr: str, base: str, depth: int) -> list[list[Conjunct]]:
        """Alternatives (each a list of applicator-free conjuncts) whose union is the schema."""
        if schema is True:
            return [[]]
        if schema is False:
            return []
        if not isinstance(schema, dict):
            raise SchemaError(f"schema at #{ptr} is not an object or boolean")
        if depth > 64:
            raise UnsupportedFeatureError(f"$ref at #{ptr}: reference chain deeper than 64 without structure")
        if self.doc.old_draft and "$ref" in schema:
            schema = {"$ref": schema["$ref"]}  # drafts <= 7: $ref overrides its siblings
        own = {k: v for k, v in schema.items() if k not in _APPLICATORS}
        if "unevaluatedProperties" in own or "unevaluatedItems" in own:
            own = _local_unevaluated(own, schema)
        alts: list[list[Conjunct]] = [[Conjunct(own, ptr, base)]]
        if "$ref" in schema:
            target, tptr, tbase = self.doc.resolve(schema["$ref"], base, ptr)
            alts = self._product(alts, self.dnf(target, tptr, tbase, depth + 1), ptr)
        for i, sub in enumerate(schema.get("allOf", ())):
            alts = self._product(alts, self.dnf(sub, f"{ptr}/allOf/{i}", self.doc.where(sub, "", base)[1], depth + 1),
                                 ptr)
        if "anyOf" in schema:
            union: list[list[Conjunct]] = []
            for i, sub in enumerate(schema["anyOf"]):
                union += self.dnf(sub, f"{ptr}/anyOf/{i}", self.doc.where(sub, "", base)[1], depth + 1)
            alts = self._product(alts, union, ptr)
        if "oneOf" in schema:
            subs = [(sub, f"{ptr}/oneOf/{i}", self.doc.where(sub, "", base)[1]) for i, sub in enumerate(schema["oneOf"])]
            branches = [self.dnf(*sub, depth + 1) for sub in subs]
            union = [a for br in branches for a in br]
            if not self._disjoint(alts, branches):
                # exactly one branch: branch i and the complement of every other branch, when each branch's
                # keywords can be negated exactly
                negs = [self._negate(sub[0]) for sub in subs]
                if any(n is None for n in negs):
                    self.fail("oneOf", f"{ptr}/oneOf", "branches that are not provably disjoint and cannot be "
                              "negated exactly")
                else:
                    union = []
                    for i, br in enumerate(branches):
                        part = br
                        for j, neg in enumerate(negs):
                            if j != i:
                                part = self._product(part, [[Conjunct(d, subs[j][1], subs[j][2])] for d in neg], ptr)
                        union += part
            alts = self._product(alts, union, ptr)
        # dependencies: "k absent, or k present with its dependents", an exact union per key
        deps: list[tuple[str, Any, str]] = []
        if "dependencies" in schema and not self.doc.old_draft:
            # no longer a keyword (validators ignore it); enforcing its draft-07 meaning only removes values,
            # and it is what the schema's author meant
            self.note(f"dependencies at #{ptr}/dependencies: a draft-07 keyword, enforced as in draft 7")
        for kw in ("dependentRequired", "dependentSchemas", "dependencies"):
            for k, v in schema.get(kw, {}).items():
                deps.append((k, v, f"{ptr}/{kw}/{k.replace('~', '~0').replace('/', '~1')}"))
        for k, v, dptr in deps:
            absent = {"properties": {k: False}}
            self.constraint_ids.add(id(absent))
            if isinstance(v, list):
                required = {"required": [*v, k]}
                self._synthetic.append(required)
                self.constraint_ids.add(id(required))
                present = [[Conjunct(required, dptr, base)]]
            else:
                required = {"required": [k]}
                self._synthetic.append(required)
                self.constraint_ids.add(id(required))
                present = self._product([[Conjunct(required, dptr, base)]],
                                        self.dnf(v, dptr, self.doc.where(v, "", base)[1], depth + 1), ptr)
            self._synthetic.append(absent)
            alts = self._product(alts, [[Conjunct(absent, dptr, base)]] + present, ptr)
        if "not" in schema:
            neg = self._negate(schema["not"])
            if neg is None:
                self.fail("not", f"{ptr}/not", "not of this schema")
            else:
                alts = self._product(alts, [[Conjunct(d, f"{ptr}/not", base)] for d in neg], ptr)
        if "if" in schema and ("then" in schema or "else" in schema):
            cond = schema["if"]
            neg = self._negate(cond)
            if neg is None:
                self.fail("if", f"{ptr}/if", "if/then/else with this condition")
            else:
                then = self.dnf(schema.get("then", True), f"{ptr}/then", base, depth + 1)
                other = self.dnf(schema.get("else", True), f"{ptr}/else", base, depth + 1)
                branch = self._product(self.dnf(cond, f"{ptr}/if", base, depth + 1), then, ptr)
                branch += self._product([[Conjunct(d, f"{ptr}/if", base)] for d in neg], other, ptr)
                alts = self._product(alts, branch, ptr)
        return alts

    def _negate(self, schema: Any) -> list[dict] | None:
        """Alternatives whose union is the complement of ``schema``, for schemas whose keywords can each be
        negated exactly (a schema is the conjunction of its keywords, so ¬(A ∧ B) = ¬A ∨ ¬B). None if not."""
        if schema is True:
            return []
        if schema is False:
            return [{}]
        if not isinstance(schema, dict):
            return None
        out: list[dict] = []
        for kw, v in schema.items():
            if kw in ANNOTATIONS:
                continue
            if kw == "type":
                out.append({"not": {"type": v}})
            # keywords of one type hold for every value of other types: their negation stays in that type
            elif kw in _NEG_BOUND:
                out.append({"type": "number", _NEG_BOUND[kw]: v})
            elif kw in _COUNTS:
                t, other = _COUNTS[kw]
                if kw.startswith("min"):
                    if v >= 1:
                        out.append({"type": t, other: int(v) - 1})
                else:
                    out.append({"type": t, other: int(v) + 1})
            elif kw == "required":
                out += [{"type": "object", "properties": {k: False}} for k in v]
            elif kw == "properties":
                for k, sub in v.items():
                    if sub is True or sub == {}:
                        continue
                    inner = {"not": sub}
                    self._synthetic.append(inner)
                    out.append({"type": "object", "required": [k], "properties": {k: inner}})
            else:
                return None
        self._synthetic += out
        self.constraint_ids.update(id(d) for d in out)
        return out

    def _disjoint(self, context: list[list[Conjunct]], branches: list[list[list[Conjunct]]]) -> bool:
        """oneOf branches are provably disjoint (so oneOf = anyOf): every pair of alternatives of two branches
        has disjoint types, or one side is finite and none of its values validates against the other, or both
        are objects requiring a property whose const/enum values differ (a discriminator)."""
        ctx: set[str] = set()  # the types the node's other alternatives allow (union over alternatives)
        for alt in context:
            ctx |= _alt_types(alt)
        for bi, bj in itertools.combinations(branches, 2):
            for a in bi:
                for b in bj:
                    if not self._alts_disjoint(ctx, a, b):
                        return False
        return True

    def _alts_disjoint(self, ctx: set[str], a: list[Conjunct], b: list[Conjunct]) -> bool:
        common = ctx & _alt_types(a) & _alt_types(b)
        if not common:
            return True
        for x, y in ((a, b), (b, a)):
            values = _alt_finite(x)
            # a conjunct's own keywords judge membership exactly unless unevaluated* lost their applicators
            if values is not None and not any({"unevaluatedProperties", "unevaluatedItems"} & c.schema.keys()
                                              for c in y):
                try:
                    if not any(all(self.doc.is_valid(v, c.schema, c.base) for c in y) for v in values):
                        return True
                except Exception:  # noqa: BLE001 - cannot check: not provably disjoint
                    pass
        if common <= {"object"}:
            da, db = _discriminators(a), _discriminators(b)
            for k in da.keys() & db.keys():
                if not (da[k] & db[k]):
                    return True
        return False

    # ------------------------------------------------------------------------------------ plain schemas
    def plain(self, p: Plain, conjuncts: list[Conjunct]) -> str | None:
        if p.finite is not None:
            return self._finite(p.finite, conjuncts)
        alts: list[tuple[str, ...]] = []
        t = p.types
        if "null" in t:
            alts.append((self._lit_terminal("null"),))
        if "boolean" in t:
            alts += [(self._lit_terminal("true"),), (self._lit_terminal("false"),)]
        if "integer" in t or "fraction" in t:
            r = self._number(p, t)
            if r is not None:
                alts.append((r,))
        if "string" in t:
            alts.append((self._string(p),))
        if "array" in t:
            alts.append((self._array(p),))
        if "object" in t:
            alts.append((self._object(p),))
        if not alts:
            return None
        return self.b.rule(self.b.fresh("v"), alts)

    def _lit_terminal(self, text: str) -> str:
        return self.b.literal_terminal(text, "LIT")

    def _str_terminal(self, value: str) -> str:
        """The terminal of the JSON string ``value`` (keys, string enums), deduplicated by its text."""
        return self.b.keyed_terminal(("str", value), lambda: strings.literal_string_lexeme(value), "STR")

    # -------------------------------------------------------------------------------------------- enum
    def _finite(self, candidates: list[Any], conjuncts: list[Conjunct]) -> str | None:
        """Literals of the candidates every conjunct accepts."""
        keep = self._finite_values(candidates, conjuncts)
        if not keep:
            return None
        return self.b.rule(self.b.fresh("enum"), [(self.literal(v),) for v in keep])

    def _finite_values(self, candidates: list[Any], conjuncts: list[Conjunct]) -> list[Any]:
        """The candidates every conjunct accepts, each JSON value once. ``enum``/``const`` (and ``type``, when
        it is the only other keyword) are checked here, by value as JSON Schema compares; the other keywords
        with jsonschema."""
        checks = []
        for c in conjuncts:
            schema = c.schema
            allowed = None
            if "enum" in schema:
                allowed = {_canon(v) for v in schema["enum"]}
            if "const" in schema:
                const = {_canon(schema["const"])}
                allowed = const if allowed is None else allowed & const
            if allowed is not None:
                checks.append(lambda v, a=allowed: _canon(v) in a)
            rest = set(schema) - ANNOTATIONS - {"enum", "const"}
            if rest <= {"type"}:
                if rest:
                    t = type_set(schema["type"])
                    checks.append(lambda v, t=t: _json_type(v) in t or (_json_type(v) == "integer" and "integer" in t))
                continue
            # enum/const by set above (jsonschema scans the whole enum for each candidate: quadratic in big
            # enums); every other keyword by jsonschema. Keywords are independent, so this is exact.
            if allowed is not None:
                schema = {k: v for k, v in schema.items() if k not in ("enum", "const")}
            try:
                checks.append(self.doc.validator_for(schema, c.base).is_valid)
            except Exception as e:  # noqa: BLE001 - referencing errors etc.: fail closed
                raise UnsupportedFeatureError(f"enum at #{c.ptr}: cannot check candidates ({e})") from None
        keep, seen = [], set()
        for value in candidates:
            try:
                ok = all(check(value) for check in checks)
            except Exception as e:  # noqa: BLE001
                raise UnsupportedFeatureError(f"enum at #{conjuncts[0].ptr}: cannot check candidates ({e})") from None
            key = _canon(value) if ok else None
            if ok and key not in seen:  # one alternative per JSON value (1 and 1.0 are one)
                seen.add(key)
                keep.append(value)
        return keep

    def _item_values(self, parts: tuple[Part, ...]) -> list[Any] | None:
        """The values the intersection of ``parts`` accepts when they form a finite set (enum/const, booleans,
        null), distinct under JSON Schema equality; None when the set is not known to be finite."""
        parts = tuple(p for p in parts if p[0] is not True and p[0] != {})
        if any(p[0] is False for p in parts):
            return []
        if not parts:
            return None
        alternatives: list[list[Conjunct]] = [[]]
        for schema, ptr, base in parts:
            alternatives = self._product(alternatives, self.dnf(schema, ptr, base, 0), ptr)
        values, seen = [], set()
        for alt in alternatives:
            plain = merge(alt, self)
            if plain is None:
                continue
            if plain.finite is not None:
                vals = self._finite_values(plain.finite, alt)
            elif plain.types <= {"null", "boolean"}:
                vals = [v for v, t in ((None, "null"), (True, "boolean"), (False, "boolean")) if t in plain.types]
            else:
                return None
            for v in vals:
                k = _canon(v)
                if k not in seen:
                    seen.add(k)
                    values.append(v)
        return values

    def _unique_array(self, values: list[Any], lo: int, hi: int | None) -> str:
        """Arrays of distinct elements of the finite set ``values``: one rule per subset already written."""
        b = self.b
        n = len(values)
        lits = [self._child(self.literal, v) for v in values]
        hi = n if hi is None else min(hi, n)
        after = {mask: b.fresh("uniq") for mask in range(1 << n)}
        for mask, name in after.items():
            count = bin(mask).count("1")
            alts: list[tuple[str, ...]] = [()] if count >= lo else []
            if count < hi:
                alts += [(self.comma, lits[i], after[mask | 1 << i]) for i in range(n) if not mask >> i & 1]
            b.rule(name, alts)
        first = [(lits[i], after[1 << i]) for i in range(n)] if hi >= 1 else []
        alts = [self._container(self.t_lbrack, self.t_rbrack, b.rule(b.fresh("elems"), first))] if first else []
        if lo == 0:
            alts.append(self._container(self.t_lbrack, self.t_rbrack, None))
        return b.rule(b.fresh("array"), alts)

    def literal(self, value: Any) -> str:
        """The rule of one JSON value (canonical layout, whitespace per the policy)."""
        key = f"{self._dkey()}:{json.dumps(value, sort_keys=False)}"
        hit = self.lit_memo.get(key)
        if hit is not None:
            return hit
        b = self.b
        if value is None or isinstance(value, bool):
            alts = [(self._lit_terminal(json.dumps(value)),)]
        elif isinstance(value, (int, float)):
            # JSON Schema compares numbers by value: 1 == 1.0
            forms = {json.dumps(value)}
            if isinstance(value, int):
                forms.add(f"{value}.0")
            elif value.is_integer() and abs(value) < 1e16:
                forms |= {str(int(value)), f"{int(value)}.0"}
            alts = [(b.anonymous_terminal(ir.literal(f), "NUM"),) for f in sorted(forms)]
        elif isinstance(value, str):
            alts = [(self._str_terminal(value),)]
        elif isinstance(value, list):
            if not value:
                alts = [self._container(self.t_lbrack, self.t_rbrack, None)]
            else:
                body: list[str] = []
                for i, v in enumerate(value):
                    if i:
                        body.append(self.comma)
                    body.append(self._child(self.literal, v))
                alts = [self._container(self.t_lbrack, self.t_rbrack, b.rule(b.fresh("litbody"), [tuple(body)]))]
        elif isinstance(value, dict):
            if not value:
                alts = [self._container(self.t_lbrace, self.t_rbrace, None)]
            else:
                body = []
                for i, (k, v) in enumerate(value.items()):
                    if i:
                        body.append(self.comma)
                    body += [self._str_terminal(k), self.colon,
                             self._child(self.literal, v)]
                alts = [self._container(self.t_lbrace, self.t_rbrace, b.rule(b.fresh("litbody"), [tuple(body)]))]
        else:
            raise SchemaError(f"not a JSON value: {value!r}")
        name = b.rule(b.fresh("lit"), alts)
        self.lit_memo[key] = name
        return name

    # ------------------------------------------------------------------------------------------ numbers
    def _number(self, p: Plain, types: set[str]) -> str | None:
        lo, hi = None, None
        for kw, value, _ptr in p.bounds:
            v = Fraction(value)
            if kw == "minimum":
                b_lo = math.ceil(v)
            elif kw == "exclusiveMinimum":
                b_lo = math.floor(v) + 1
            elif kw == "maximum":
                b_hi = math.floor(v)
            else:
                b_hi = math.ceil(v) - 1
            if kw in ("minimum", "exclusiveMinimum"):
                lo = b_lo if lo is None else max(lo, b_lo)
            else:
                hi = b_hi if hi is None else min(hi, b_hi)
        # multipleOf m_i = p_i / 10^d_i: x is a multiple of all iff x * 10^d (d = max d_i) is an integer
        # divisible by lcm(p_i * 10^(d - d_i))
        steps = []
        for value, ptr in p.multiple_of:
            v = _decimal_bound(value)
            if v is None or v > 10**6:
                self.fail("multipleOf", f"{ptr}/multipleOf", "multipleOf above 10**6 or with more than 15 digits")
                continue
            steps.append(v)
        d_exp = max((len(numbers.fraction_digits(v)) for v in steps), default=0)
        modulus = 1
        for v in steps:
            modulus = math.lcm(modulus, int(v * 10**d_exp))
        if steps and d_exp == 0 and "integer" in types:
            # a multiple of an integer is an integer: numbers reduce to integers (written without fraction)
            types = {"integer"}
        if "fraction" in types:
            integers = "integer" in types  # else: numbers that are not integers (exponent forms not generated)
            if not p.bounds and not steps and integers:
                return self.b.anonymous_terminal(numbers.NUMBER, "NUMBER")
            low: tuple[Fraction, bool] | None = None
            high: tuple[Fraction, bool] | None = None
            for kw, value, ptr in p.bounds:
                v = _decimal_bound(value)
                if v is None:
                    self.fail(kw, f"{ptr}/{kw}", "a bound with more than 15 significant digits on numbers")
                    continue
                bound = (v, not kw.startswith("exclusive"))
                if kw in ("minimum", "exclusiveMinimum"):
                    if low is None or bound[0] > low[0] or (bound[0] == low[0] and not bound[1]):
                        low = bound
                elif high is None or bound[0] < high[0] or (bound[0] == high[0] and not bound[1]):
                    high = bound
            # Exact for plain decimals; exponent notation is not generated for bounded numbers.
            regex = numbers.decimal_range_regex(low, high, integers)
            if regex == ir.NOTHING:
                return None
            if steps:
                return self._multiples(regex, modulus, d_exp, p.ptr)
            # keyed by the bounds: the range regex is a fresh tree that interning by regex would hash
            return self.b.keyed_terminal(("decimal", low, high, integers), lambda: regex, "NUMBER")
        if lo is not None and hi is not None and lo > hi:
            return None
        if modulus > 1 or d_exp:
            return self._multiples(numbers.integer_range_regex(lo, hi), modulus, d_exp, p.ptr)
        return self.b.keyed_terminal(("integer", lo, hi), lambda: numbers.integer_range_regex(lo, hi), "INT")

    def _multiples(self, regex: ir.Regex, m: int, d: int, ptr: str) -> str | None:
        """The numbers x of ``regex`` (plain decimals) with x * 10^d an integer divisible by ``m``: the product
        of its automaton with (remainder of the digits read so far, fraction digits read), as right-linear
        rules over one-character lexemes (exact). Past d fraction digits only zeros may follow. Memoized:
        schemas repeat the same multipleOf (prices: 0.01) and the automaton costs milliseconds."""
        key = (regex, m, d)
        if key not in self._multiples_memo:
            self._multiples_memo[key] = self._multiples_uncached(regex, m, d, ptr)
        return self._multiples_memo[key]

    def _multiples_uncached(self, regex: ir.Regex, m: int, d: int, ptr: str) -> str | None:
        b = self.b
        digits = d
        try:
            auto = _number_dfa(regex)
        except UnsupportedFeatureError as e:
            self.fail("multipleOf", f"{ptr}/multipleOf", str(e))
            return b.anonymous_terminal(regex, "NUMBER")
        too_big = UnsupportedFeatureError if m > 10_000 else None
        start = (0, 0, -1)  # (automaton state, remainder, fraction digits read; -1: no "." yet)
        names: dict[tuple[int, int, int], str] = {start: b.fresh("mult")}
        todo = [start]
        while todo:
            q, r, k = todo.pop()
            done = q in auto.accepting and (r * 10 ** (digits - max(k, 0))) % m == 0
            alts: list[tuple[str, ...]] = [()] if done else []
            groups: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
            for ranges, target in auto.edges[q]:
                for lo, hi in ranges:
                    for cp in range(lo, hi + 1):
                        if cp == 0x2E:  # "."
                            key = (target, r, 0)
                        elif not 0x30 <= cp <= 0x39:  # "-"
                            key = (target, r, k)
                        elif k < digits:
                            key = (target, (r * 10 + cp - 0x30) % m, -1 if k < 0 else k + 1)
                        elif cp == 0x30:  # past d fraction digits: only zeros
                            key = (target, r, k)
                        else:
                            continue
                        groups.setdefault(key, []).append((cp, cp))
            for key, cps in groups.items():
                if key not in names:
                    names[key] = b.fresh("mult")
                    todo.append(key)
                alts.append((b.anonymous_terminal(ir.char_set(cps), "DIGIT"), names[key]))
            b.rule(names[(q, r, k)], alts)
            if too_big or len(names) > 4_000:
                self.fail("multipleOf", f"{ptr}/multipleOf", "multipleOf with these bounds needs more than 4000 "
                          "automaton states")
                return b.anonymous_terminal(regex, "NUMBER")
        return names[start]

    # ------------------------------------------------------------------------------------------ strings
    def _string(self, p: Plain) -> str:
        try:
            decoded = self._string_regex(p, product_fallback=True)
        except _TooComplex as e:
            return self._string_by_chars(e.parts, p.ptr, e.length, e.auto)
        # keyed by the decoded regex (hashed anyway by string_lexeme's cache): the encoded lexeme is a bigger,
        # fresh tree that interning by regex would hash again
        return self.b.keyed_terminal(("lexeme", decoded), lambda: strings.string_lexeme(decoded), "STR")

    def _string_by_chars(self, parts: list[ir.Regex], ptr: str, length: tuple[int, int | None] | None,
                         auto: dfa.DFA | None = None) -> str:
        """A string whose constraints have no small plain regex: the automaton of their intersection (times a
        character counter for ``length`` = (min, max)) becomes right-linear rules over one-character lexemes
        (JSON character encodings form a prefix code, so longest match splits the string into characters).
        Exact; masks cost one parse step per character. ``auto``: that automaton, when already built."""
        b = self.b
        try:
            d = auto if auto is not None and len(auto.edges) <= _CHAR_AUTOMATON_STATES else dfa.build_dfa(
                dfa.mk_and(parts) if parts else strings.ANYSTAR, max_states=_CHAR_AUTOMATON_STATES,
                max_work=60_000, what=f"string constraints at #{ptr}")
        except UnsupportedFeatureError as e:
            self.fail("pattern", ptr, str(e))
            return b.anonymous_terminal(strings.ANY_STRING, "STR")
        lo, hi = length if length is not None else (0, 0)
        counting = length is not None
        cap = (hi if hi is not None else lo) if counting else 0
        if len(d.edges) * (cap + 1) > 4_000:
            self.fail("pattern", ptr, "pattern with minLength/maxLength needs more than 4000 automaton states")
            return b.anonymous_terminal(strings.ANY_STRING, "STR")
        names: dict[tuple[int, int], str] = {}
        todo = [(0, 0)]
        names[(0, 0)] = b.fresh("chars")
        terms: dict[int, str] = {}
        while todo:
            q, c = todo.pop()
            ok = q in d.accepting and (not counting or c >= lo)
            alts: list[tuple[str, ...]] = [()] if ok else []
            nc = c + 1 if not counting or hi is not None else min(c + 1, cap)
            if not counting or hi is None or c < hi:
                for k, (ranges, target) in enumerate(d.edges[q]):
                    key = (target, nc if counting else 0)
                    if key not in names:
                        names[key] = b.fresh("chars")
                        todo.append(key)
                    term = terms.get((q, k))
                    if term is None:
                        term = terms[(q, k)] = b.anonymous_terminal(strings.encode_chars(tuple(ranges)), "CHAR")
                    alts.append((term, names[key]))
            b.rule(names[(q, c)], alts)
        quote = b.anonymous_terminal(strings.QUOTE, "QUOTE")
        return b.rule(b.fresh("string"), [(quote, names[(0, 0)], quote)])

    def _string_regex(self, p: Plain, product_fallback: bool = False) -> ir.Regex:
        """The decoded-string regex of a Plain's string keywords."""
        if p.max_length is not None and p.min_length > p.max_length:
            return ir.NOTHING
        parts: list[ir.Regex] = []
        limit = self.opt.max_string_length
        if p.min_length > limit:
            raise LimitExceededError(f"minLength at #{p.ptr} above {limit} (max_string_length)")
        if p.max_length is not None and p.max_length > limit:
            # Strings of at most max_string_length characters are valid: a subset, never a false accept.
            self.note(f"maxLength at #{p.ptr}: strings limited to {limit} characters (max_string_length)")
            p.max_length = limit
        for pattern, ptr in p.patterns:
            r = self._search_regex(pattern, f"{ptr}/pattern")
            if r is not None:
                parts.append(r)
        for name, ptr in p.formats:
            if formats.is_supported(name):
                parts.append(formats.format_regex(name))
            elif name in formats.STANDARD:
                self.fail("format", f"{ptr}/format", f"format {name!r}")
            else:  # not a format of the spec: validators ignore it (an annotation), so do we
                self.note(f"format at #{ptr}/format: unknown format {name!r} ignored (as validators do)")
        if p.min_length or p.max_length is not None:
            # length bounds folded into a pattern when its shape allows it (no automaton product needed)
            folded = [_with_length(r, p.min_length, p.max_length) for r in parts]
            hit = next((i for i, r in enumerate(folded) if r is not None), None)
            if hit is not None:
                parts[hit] = folded[hit]
            elif product_fallback and parts:
                # pattern x length: a plain regex only when the product is small, else a character automaton
                try:
                    base = self._intersect(parts, p.ptr, "string constraints", product_fallback)
                except _TooComplex as e:  # the length still applies to the character automaton
                    raise _TooComplex(e.parts, (p.min_length, p.max_length), e.auto) from None
                if base is None:
                    return ir.NOTHING
                states = _dfa_size(base)
                cap = p.max_length if p.max_length is not None else p.min_length
                if states is None or states * (cap + 1) > 400:
                    raise _TooComplex([base], (p.min_length, p.max_length))
                parts = [base, dfa.mk_rep(strings.ANY, p.min_length, p.max_length)]
            else:
                parts.append(dfa.mk_rep(strings.ANY, p.min_length, p.max_length))
        out = self._intersect(parts, p.ptr, "string constraints", product_fallback)
        return ir.NOTHING if out is None else out

    def _search_regex(self, pattern: str, ptr: str) -> ir.Regex | None:
        """JSON Schema ``pattern`` semantics (unanchored search, ECMA-262); None if unsupported (lenient)."""
        try:
            return analyze_regex(pattern, flavor="ecma").search_regex()
        except UnsupportedFeatureError as e:
            self.fail("pattern", ptr, str(e))
        except GrammarError as e:
            raise SchemaError(f"pattern at #{ptr}: {e}") from None
        return None

    def _intersect(self, parts: list[ir.Regex], ptr: str, what: str, product_fallback: bool = False
                   ) -> ir.Regex | None:
        """Plain regex of the intersection (None when empty). Too complex: _TooComplex when the caller has a
        fallback, else an unsupported feature."""
        both = dfa.mk_and(parts)
        if not dfa.has_bool(both):  # one constraint left (the others accept everything): nothing to intersect
            return None if both == ir.NOTHING else both
        out = _affix_intersection(both)
        if out is None:
            auto = None
            try:
                auto = dfa.build_dfa(both, max_states=2_000, max_work=200_000, what=f"{what} at #{ptr}")
                out = dfa.dfa_to_regex(auto, what=f"{what} at #{ptr}")
            except UnsupportedFeatureError as e:
                if product_fallback:
                    raise _TooComplex(parts, None, auto) from None
                self.fail(what.split("/")[0].split(" ")[0], ptr, str(e))  # lenient: a plain part, not exact
                return next((x for x in parts if not dfa.has_bool(x)), strings.ANYSTAR)
        return None if out == ir.NOTHING else out

    def _matches(self, text: str, regex: ir.Regex) -> bool:
        return dfa.matches(regex, text)

    def _minus_names(self, key: ir.Regex, p: Plain) -> ir.Regex:
        """The key class ``key`` without the object's listed names."""
        try:
            return dfa.minus_words(key, p.names)
        except ValueError:  # a name too long to unfold: the product automaton
            out = self._intersect([key, strings.not_in_regex(p.names)], p.ptr, "patternProperties/propertyNames")
            return ir.NOTHING if out is None else out

    def _names_regex(self, part: Part) -> ir.Regex:
        """Decoded regex of the strings a ``propertyNames`` subschema accepts."""
        schema, ptr, base = part
        alts: list[ir.Regex] = []
        for alt in self.dnf(schema, ptr, base, 0):
            q = merge(alt, self)
            if q is None:
                continue
            if q.finite is not None:
                for v in q.finite:
                    if isinstance(v, str) and all(self.doc.is_valid(v, c.schema, c.base) for c in alt):
                        alts.append(ir.literal(v) if v else ir.EPSILON)
            elif "string" in q.types:
                alts.append(self._string_regex(q))
        if not alts:
            return ir.NOTHING
        return alts[0] if len(alts) == 1 else ir.Alt(tuple(alts))

    # ------------------------------------------------------------------------------------------- arrays
    def _array(self, p: Plain) -> str:
        b = self.b
        if p.unique and (p.max_items is None or p.max_items > 1) and (p.prefix_items or p.items is not False):
            values = None
            if not p.prefix_items and not p.contains:
                values = self._item_values(p.items)
            if values is not None and len(values) <= 10:
                return self._unique_array(values, p.min_items, p.max_items)
            self.fail("uniqueItems", f"{p.ptr}/uniqueItems", "uniqueItems unless the items are a finite set of at "
                      "most 10 values (enum, const, boolean, null)")
        if p.contains:
            contains = [c for c in p.contains if c[1] > 0 or c[2] is not None]
            if not contains:
                p.contains = []
            elif len(contains) == 1 and contains[0][2] is None and not p.prefix_items and p.min_items == 0 \
                    and p.max_items is None and contains[0][1] <= 64:
                return self._array_contains(p, contains[0][0], contains[0][1])
            else:
                c = contains[0]
                self.fail("contains", f"{c[3]}/contains", "contains with maxContains, prefixItems, minItems/maxItems "
                          "or several contains")
        lo, hi = p.min_items, p.max_items
        prefix = [self._child(self.conj, parts) for parts in p.prefix_items]
        item = None if p.items is False else self._child(self.conj, p.items)
        n = len(prefix)
        if hi is not None and hi < n:
            prefix, n = prefix[:hi], hi
            item = None
        name = b.fresh("array")
        if hi is not None and lo > hi:
            return b.rule(name, [])

        # rest[j]: what may follow once j >= 1 elements were written (each further element after a comma)
        lo_t = max(0, lo - n)
        hi_t = None if hi is None else hi - n
        if item is None:
            tail = b.rule(b.fresh("tail"), [()] if lo_t == 0 else [])
        else:
            tail = b.repeat((self.comma, item), lo_t, hi_t, hint="items")
        rest = {n: tail}
        for j in range(n - 1, 0, -1):
            alts = [(self.comma, prefix[j], rest[j + 1])]
            if j >= lo:
                alts.append(())
            rest[j] = b.rule(b.fresh("rest"), alts)
        first: list[tuple[str, ...]] = []
        if n >= 1:
            first.append((prefix[0], rest[1] if n > 1 else rest[1]))
        elif item is not None and (hi is None or hi >= 1):
            more = b.repeat((self.comma, item), max(lo - 1, 0), None if hi is None else hi - 1, hint="items")
            first.append((item, more))
        alts = [self._container(self.t_lbrack, self.t_rbrack, b.rule(b.fresh("elems"), first))] if first else []
        if lo == 0:
            alts.append(self._container(self.t_lbrack, self.t_rbrack, None))
        return b.rule(name, alts)

    def _array_contains(self, p: Plain, contains: Part, k: int) -> str:
        """Arrays with at least ``k`` elements matching ``contains`` (every element matching ``items``)."""
        b = self.b
        items = () if p.items is False else p.items
        item = self._nothing() if p.items is False else self._child(self.conj, items)
        match = self._nothing() if p.items is False else self._child(self.conj, items + (contains,))
        need = [b.rule(b.fresh("cont"), [()])]
        need[0] = b.repeat((self.comma, item), 0, None, hint="cont")
        for j in range(1, k + 1):  # need[j]: after some elements, j more matches required
            r = b.fresh("cont")
            b.rule(r, [(self.comma, item, r), (self.comma, match, need[j - 1])])
            need.append(r)
        first = b.rule(b.fresh("cont"), [(match, need[k - 1]), (item, need[k])])
        return b.rule(b.fresh("array"), [self._container(self.t_lbrack, self.t_rbrack, first)])

    # ------------------------------------------------------------------------------------------ objects
    def _object(self, p: Plain) -> str:
        b = self.b
        conjs = p.object_conjuncts
        pats = []  # (search regex, value part, conjunct index)
        for i, (_props, patterns, _add) in enumerate(conjs):
            for pat, pptr, part in patterns:
                r = self._search_regex(pat, pptr)
                if r is not None:
                    pats.append((r, part, i))
        if len(pats) > 4:
            self.fail("patternProperties", p.ptr, "more than 4 patterns in one object")
            pats = []
        name_regs = [self._names_regex(part) for part in p.property_names]
        names = []
        for k in p.names:
            if all(self._matches(k, r) for r in name_regs):
                names.append(k)
            elif k in p.required:
                return self._nothing()

        def value_parts(k: str) -> tuple:
            parts: list = []
            for i, (props, _patterns, add) in enumerate(conjs):
                hit = [part for (r, part, j) in pats if j == i and self._matches(k, r)]
                if k in props:
                    parts.append(props[k])
                parts += hit
                if k not in props and not hit and add is not None:
                    parts.append(add)
            return tuple(parts)

        # keys not listed: one class per set of patterns they match
        members = []
        for mask in range(1 << len(pats)):
            val: list = []
            for i, (_props, _patterns, add) in enumerate(conjs):
                mine = [part for idx, (_r, part, j) in enumerate(pats) if j == i and mask >> idx & 1]
                if mine:
                    val += mine
                elif add is not None:
                    val.append(add)
            if any(v[0] is False for v in val):
                continue
            if p.names and not name_regs and not pats:  # the common case, "any other name": built encoded
                term = b.keyed_terminal(("not in", frozenset(p.names)), lambda: strings.not_in_lexeme(p.names), "STR")
            else:
                key_parts = name_regs + [r if mask >> idx & 1 else dfa.mk_not(r) for idx, (r, _part, _j) in
                                         enumerate(pats)]
                key = self._intersect(key_parts, p.ptr, "patternProperties/propertyNames")
                if key is not None and p.names:  # the listed names come out of the class (no product needed)
                    key = strings.not_in_regex(p.names) if key == strings.ANYSTAR else self._minus_names(key, p)
                if key is None or key == ir.NOTHING:
                    continue
                term = b.anonymous_terminal(strings.string_lexeme(key), "STR")
            members.append((term, self.colon, self._child(self.conj, tuple(val))))
        extra_member = b.rule(b.fresh("member"), members) if members else None
        slots: list[tuple[str, str]] = []
        n_listed_max = 0
        for k in names:
            value = self._child(self.conj, value_parts(k))
            if extra_member is not None and self.opt.extra_keys == "anywhere":
                slots.append(("star", extra_member))
            key = self._str_terminal(k)
            member = b.rule(b.fresh("member"), [(key, self.colon, value)])
            slots.append(("req" if k in p.required else "opt", member))
            n_listed_max += 1
        if extra_member is not None:
            slots.append(("star", extra_member))
        # minProperties/maxProperties: count members along the chain. Duplicate extra keys count twice, which
        # can only reject (maxProperties), so minProperties is counted only when no extra key is possible.
        lo, hi = p.min_properties, p.max_properties
        need_min = lo > len(p.required)
        if need_min and extra_member is not None:
            self.fail("minProperties", f"{p.ptr}/minProperties", "minProperties above the required count with "
                      "additional properties allowed")
            need_min = False
        need_max = hi is not None and (extra_member is not None or len(names) > hi)
        if self.opt.key_order == "any":
            listed = [(k, member) for (kind, member), k in zip([sl for sl in slots if sl[0] != "star"], names,
                                                                strict=True)]
            if need_min or need_max:
                self.fail("minProperties" if need_min else "maxProperties", p.ptr,
                          "property counts with key_order='any'")
            return self._object_any_order(listed, p.required, extra_member)
        cap = hi if need_max else (lo if need_min else 0)
        m = len(slots)
        if (m + 1) * (cap + 1) > 50_000:
            raise LimitExceededError(f"minProperties/maxProperties at #{p.ptr}: too many counting states")

        def inc(c: int) -> int | None:
            if need_max:
                return c + 1 if c + 1 <= cap else None
            return min(c + 1, cap)

        after = {(i, c): b.fresh("obj") for i in range(m + 1) for c in range(cap + 1)}  # something written
        first = {i: b.fresh("obj") for i in range(m + 1)}  # nothing written yet; at least one member follows
        for c in range(cap + 1):
            b.rule(after[(m, c)], [()] if not need_min or c >= lo else [])
        b.rule(first[m], [])
        for i in range(m - 1, -1, -1):
            kind, member = slots[i]
            for c in range(cap, -1, -1):
                n = inc(c)
                alts = [] if kind == "req" else [(after[(i + 1, c)],)]
                if n is not None:
                    alts.append((self.comma, member, after[(i if kind == "star" else i + 1, n)]))
                b.rule(after[(i, c)], alts)
            n = inc(0)
            alts = [] if kind == "req" else [(first[i + 1],)]
            if n is not None:
                alts.append((member, after[(i if kind == "star" else i + 1, n)]))
            b.rule(first[i], alts)
        alts = [self._container(self.t_lbrace, self.t_rbrace, first[0])]
        if not p.required and not (need_min and lo > 0):
            alts.append(self._container(self.t_lbrace, self.t_rbrace, None))
        return b.rule(b.fresh("object"), alts)

    def _object_any_order(self, listed: list[tuple[str, str]], required: set, extra: str | None) -> str:
        """Objects whose listed properties come in any order, each at most once (key_order="any"): one rule
        per set of listed keys already written, so 2^n rules for n listed keys (bounded)."""
        b = self.b
        n = len(listed)
        if n > self.opt.max_any_order_keys:
            raise LimitExceededError(f"key_order='any': object with {n} listed properties (more than "
                                     f"max_any_order_keys={self.opt.max_any_order_keys})")
        req = [i for i, (k, _m) in enumerate(listed) if k in required]
        after = {mask: b.fresh("anyord") for mask in range(1 << n)}
        for mask, name in after.items():
            alts: list[tuple[str, ...]] = [()] if all(mask >> i & 1 for i in req) else []
            alts += [(self.comma, member, after[mask | 1 << i]) for i, (_k, member) in enumerate(listed)
                     if not mask >> i & 1]
            if extra is not None:
                alts.append((self.comma, extra, name))
            b.rule(name, alts)
        first = [(member, after[1 << i]) for i, (_k, member) in enumerate(listed)]
        if extra is not None:
            first.append((extra, after[0]))
        alts = [self._container(self.t_lbrace, self.t_rbrace, b.rule(b.fresh("obj"), first))] if first else []
        if not req:
            alts.append(self._container(self.t_lbrace, self.t_rbrace, None))
        return b.rule(b.fresh("object"), alts)

    # ------------------------------------------------------------------------------------- any value
    def any_value(self) -> str:
        d = self._dkey()
        if d in self._any:
            return self._any[d]
        b = self.b
        value = self._any[d] = b.fresh("any")
        s = b.anonymous_terminal(strings.ANY_STRING, "STR")
        child = self._child(self.any_value)
        member = b.rule(b.fresh("anymember"), [(s, self.colon, child)])
        members = b.fresh("anymembers")
        b.rule(members, [(member,), (members, self.comma, member)])
        elems = b.fresh("anyelems")
        b.rule(elems, [(child,), (elems, self.comma, child)])
        obj = b.rule(b.fresh("anyobj"), [self._container(self.t_lbrace, self.t_rbrace, None),
                                           self._container(self.t_lbrace, self.t_rbrace, members)])
        arr = b.rule(b.fresh("anyarr"), [self._container(self.t_lbrack, self.t_rbrack, None),
                                           self._container(self.t_lbrack, self.t_rbrack, elems)])
        b.rule(value, [(obj,), (arr,), (s,), (b.anonymous_terminal(numbers.NUMBER, "NUMBER"),),
                       (self._lit_terminal("true"),), (self._lit_terminal("false"),), (self._lit_terminal("null"),)])
        return value


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
        return "integer"
    if isinstance(v, float):
        return "fraction"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


_IN_PLACE = ("$ref", "$dynamicRef", "allOf", "anyOf", "oneOf", "not", "if", "dependentSchemas")


def _local_unevaluated(own: dict, schema: dict) -> dict:
    """Without in-place applicators, ``unevaluatedProperties``/``unevaluatedItems`` only see this schema's own
    keywords, so they are ``additionalProperties``/``items`` (or nothing, when those are present). With
    applicators they are left in place, and merging reports them as unsupported."""
    if any(k in schema for k in _IN_PLACE):
        return own
    own = dict(own)
    if "unevaluatedProperties" in own:
        u = own.pop("unevaluatedProperties")
        if "additionalProperties" not in own:
            own["additionalProperties"] = u
    if "unevaluatedItems" in own and "contains" not in own:
        u = own.pop("unevaluatedItems")
        if isinstance(own.get("items"), list):
            own.setdefault("additionalItems", u)
        elif "items" not in own:
            own["items"] = u
    return own


def _canon(v: Any) -> str:
    """Canonical text of a JSON value under JSON Schema equality (1 == 1.0, key order ignored)."""
    def norm(x: Any) -> Any:
        if isinstance(x, float) and x.is_integer():
            return int(x)
        if isinstance(x, list):
            return [norm(y) for y in x]
        if isinstance(x, dict):
            return {k: norm(y) for k, y in x.items()}
        return x
    return json.dumps(norm(v), sort_keys=True)


def _alt_types(alt: list[Conjunct]) -> set[str]:
    t = set(ALL_TYPES)
    for c in alt:
        if "type" in c.schema:
            t &= type_set(c.schema["type"])
        if "const" in c.schema:
            t &= {_json_type(c.schema["const"])}
        if "enum" in c.schema:
            t &= {_json_type(v) for v in c.schema["enum"]}
    return t


def _alt_finite(alt: list[Conjunct]) -> list | None:
    for c in alt:
        if "const" in c.schema:
            return [c.schema["const"]]
        if "enum" in c.schema:
            return list(c.schema["enum"])
    return None


def _discriminators(alt: list[Conjunct]) -> dict[str, set[str]]:
    """Required properties whose value is restricted to a const/enum, with the allowed values."""
    required: set[str] = set()
    for c in alt:
        required |= set(c.schema.get("required", ()))
    out: dict[str, set[str]] = {}
    for c in alt:
        for k, sub in c.schema.get("properties", {}).items():
            if k in required and isinstance(sub, dict) and ("const" in sub or "enum" in sub):
                vals = {_canon(v) for v in ([sub["const"]] if "const" in sub else sub["enum"])}
                out[k] = out[k] & vals if k in out else vals
    return out


def _decimal_bound(value: Any) -> Fraction | None:
    """The value a validator compares numbers with: an int exactly; a float as its shortest decimal (the
    JSON text), which orders like the double against decimals of <= 15 significant digits when it has at
    most 15 itself (None otherwise). Doubles >= 2**53 are integers: taken exactly."""
    if isinstance(value, int) or abs(value) >= 2**53:
        return Fraction(value)
    d = Decimal(repr(value)).normalize()
    if len(d.as_tuple().digits) > 15:
        return None
    return Fraction(d)


def _affix_intersection(node: Any) -> ir.Regex | None:
    """``P·Σ* ∧ R`` (a pattern anchored at the start only, like ``^https?://``, beside a format) with P finite:
    derivatives of P and R together (``dfa.prefix_product``) instead of the product automaton; ``Σ*·S ∧ R``
    (anchored at the end only) the same way on the reversed regexes. None when ``node`` has neither shape
    or the derivatives run over their budget."""
    if not isinstance(node, dfa.And) or len(node.items) != 2:
        return None
    for affixed, other in (node.items, node.items[::-1]):
        if not isinstance(affixed, ir.Seq) or len(affixed.items) < 2 or dfa.has_bool(affixed) or \
                dfa.has_bool(other):
            continue
        if affixed.items[-1] == strings.ANYSTAR:
            out = dfa.prefix_product(dfa.mk_seq(affixed.items[:-1]), other)
            if out is not None:
                return out
        if affixed.items[0] == strings.ANYSTAR:
            suffix, whole = dfa.reverse(dfa.mk_seq(affixed.items[1:])), dfa.reverse(other)
            out = None if suffix is None or whole is None else dfa.prefix_product(suffix, whole)
            if out is not None:
                return dfa.reverse(out)
    return None


@functools.lru_cache(maxsize=64)
def _number_dfa(regex: ir.Regex) -> dfa.DFA:
    """The automaton of a number range, for multipleOf. Cached across compiles: the ranges come from a few
    bounds (most often none: 15 ms for the unbounded range, whose fractions are capped at 15 digits)."""
    return dfa.build_dfa(regex, max_states=400, what="number range")


def _dfa_size(r: ir.Regex) -> int | None:
    """Number of DFA states of ``r`` (None when over a small bound)."""
    try:
        return len(dfa.build_dfa(r, max_states=400, max_work=20_000, what="size estimate").edges)
    except UnsupportedFeatureError:
        return None


def _length_range(r: ir.Regex) -> tuple[int, int | None]:
    if isinstance(r, (ir.Chars, ir.Bytes)):
        return (1, 1)
    if isinstance(r, ir.Seq):
        lo, hi = 0, 0
        for x in r.items:
            a, b = _length_range(x)
            lo += a
            hi = None if hi is None or b is None else hi + b
        return lo, hi
    if isinstance(r, ir.Alt):
        if not r.items:
            return (0, 0)
        ranges = [_length_range(x) for x in r.items]
        his = [b for _a, b in ranges]
        return min(a for a, _b in ranges), None if None in his else max(his)
    if isinstance(r, ir.Repeat):
        a, b = _length_range(r.item)
        return a * r.min, None if r.max is None or b is None else b * r.max
    return (0, None)


def _with_length(r: ir.Regex, lo: int, hi: int | None) -> ir.Regex | None:
    """``r`` restricted to lengths lo..hi when that is a structural edit: ``r`` already within the bounds,
    a repeat of one character class, or a sequence where only one item has a variable length (applied
    recursively). None otherwise."""
    a, b = _length_range(r)
    if a >= lo and (hi is None or (b is not None and b <= hi)):
        return r
    if hi is not None and a > hi or (b is not None and b < lo):
        return ir.NOTHING
    if isinstance(r, ir.Repeat) and isinstance(r.item, ir.Chars):
        new_lo = max(r.min, lo)
        new_hi = hi if r.max is None else (r.max if hi is None else min(r.max, hi))
        if new_hi is not None and new_lo > new_hi:
            return ir.NOTHING
        return ir.Repeat(r.item, new_lo, new_hi)
    if isinstance(r, ir.Seq):
        ranges = [_length_range(x) for x in r.items]
        variable = [i for i, (x, y) in enumerate(ranges) if x != y]
        if len(variable) == 1:
            i = variable[0]
            fixed = sum(x for j, (x, _y) in enumerate(ranges) if j != i)
            inner = _with_length(r.items[i], max(0, lo - fixed), None if hi is None else hi - fixed)
            if inner is None:
                return None
            return ir.Seq(r.items[:i] + (inner,) + r.items[i + 1:])
    if isinstance(r, ir.Alt):
        items = [_with_length(x, lo, hi) for x in r.items]
        if any(x is None for x in items):
            return None
        return ir.Alt(tuple(items))
    return None
