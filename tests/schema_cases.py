"""JSONSchemaBench schemas for the end-to-end tests with the real model (HF in test_hf.py, vLLM in test_vllm.py).

The list is fixed for reproducibility. How it was chosen: for every split, the records whose schema is at most
1,200 characters of JSON, that gdecode compiles (strict mode) for SmolLM2, and that have a valid instance of
at most 100 tokens; then three per split drawn with ``random.Random(0)`` (Github_hard: the few that qualify).
Schemas with no ``required`` keys are kept: an empty object is a valid answer there, as the schema says.
Dropped after a run: ``JsonSchemaStore/tenants`` (its objects nest without bound, and SmolLM2 nested
``{"key1":{"key2":...`` until max_tokens, greedy and sampled) and ``JsonSchemaStore/pathfinder-policy-yml-schema``
(an unbounded array: sampled at T=0.7 through vLLM, SmolLM2 repeated ``"log"`` until max_tokens). Both
outputs were valid prefixes cut by the token limit, not grammar violations.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCHEMA_IDS = [
    "BFCL/BFCL_simple_339",
    "BFCL/BFCL_parallel_4",
    "BFCL/BFCL_simple_252",
    "Github_easy/o76742",
    "Github_easy/o13985",
    "Github_easy/o57041",
    "Github_hard/o41379",
    "Github_hard/o41349",
    "Github_medium/o62761",
    "Github_medium/o42282",
    "Github_medium/o70375",
    "Github_trivial/o44006",
    "Github_trivial/o83326",
    "Github_trivial/o30423",
    "Glaiveai2K/calculate_gross_salary_4b0ebccc",
    "Glaiveai2K/calculate_area_8ca6f690",
    "Glaiveai2K/calculate_area_553d1c2e",
    "Kubernetes/kb_984_Normalized",
    "Kubernetes/kb_157_Normalized",
    "Synthesized/draft2019_09_valid_enum_id12_subschema1_not_2",
    "Synthesized/draft2019_09_valid_properties_id18_subschema1_not_2",
    "WashingtonPost/wp_50_Normalized",
    "WashingtonPost/wp_60_Normalized",
]

# Enough for every schema above with SmolLM2 (greedy and sampled); an output cut at this length fails.
MAX_NEW_TOKENS = 256
# Sampled runs use this temperature (seeded); greedy runs use 0.
SAMPLE_TEMPERATURE = 0.7
# Compiler options of these tests: objects admit only their listed properties and no whitespace is allowed
# between JSON tokens (both a subset of what the schema allows, so every output still validates against the
# unchanged schema); this keeps a small model from inventing keys or emitting whitespace until it runs out of
# tokens. The validity check itself always uses the original schema.
OPTIONS = {"additional_properties_default": False, "whitespace": "compact"}
# Schemas that keep open objects (none at present; Github_medium/o62761 was one while a draft-4
# ``dependencies`` keyword emptied the closed language, see
# test_json_schema.py::test_closed_objects_option_keeps_dependencies_satisfiable).
DEFAULT_OPTIONS_IDS: set[str] = set()


def options_for(case_id: str) -> dict:
    if case_id in DEFAULT_OPTIONS_IDS:
        return {"whitespace": "compact"}
    return dict(OPTIONS)


def dataset_dir() -> Path:
    from gdecode.assets import shared_assets_dir

    shared = shared_assets_dir()
    return (shared.parent if shared else ROOT.parent / "shared") / "datasets" / "jsonschemabench"


def load_schemas() -> list[tuple[str, dict, object]] | None:
    """[(id, schema, example)] in SCHEMA_IDS order (example: the record's first valid instance), or None when
    the dataset is not there."""
    d = dataset_dir()
    if not d.is_dir():
        return None
    wanted = {i.split("/")[0] for i in SCHEMA_IDS}
    found: dict[str, dict] = {}
    for split in wanted:
        with open(d / f"{split}.jsonl") as f:
            for line in f:
                rec = json.loads(line)
                if rec["id"] in SCHEMA_IDS:
                    found[rec["id"]] = rec
    missing = [i for i in SCHEMA_IDS if i not in found]
    if missing:
        raise LookupError(f"JSONSchemaBench records not found: {missing}")
    return [(i, found[i]["schema"], next(t["data"] for t in found[i]["tests"] if t["valid"])) for i in SCHEMA_IDS]


def user_message(schema: dict, example: object) -> str:
    """The prompt: one valid example to imitate. With the schema itself in the prompt, a 135M model tends to
    copy the schema's text into open objects or repeat a key until it runs out of tokens."""
    del schema  # the grammar carries the schema; the model only sees the example
    return ("Reply with one JSON value of the same shape as this example, and nothing else:\n"
            + json.dumps(example))


def check_output(schema: dict, text: str) -> str | None:
    """None when ``text`` parses as JSON and validates against ``schema``; otherwise the reason."""
    import jsonschema

    try:
        value = json.loads(text)
    except ValueError as e:
        return f"not JSON ({e})"
    cls = jsonschema.validators.validator_for(schema)
    errors = sorted(cls(schema).iter_errors(value), key=str)
    return f"invalid: {errors[0].message}" if errors else None


def load_schemas_or_skip() -> list:
    """load_schemas() for a test fixture: skips on a user's machine without the dataset, fails in CI."""
    cases = load_schemas()
    if cases is None:
        from conftest import skip_unless_ci

        skip_unless_ci(f"{dataset_dir()} not present")
    return cases
