"""JSONSchemaBench records: loading a directory of JSONL files, choosing splits, seeded sampling.

The record format is the one of ``../shared/datasets/jsonschemabench`` (one JSON object per line):
``{"id": "<split>/<file stem>", "split": ..., "schema": {...}, "tests": [{"description", "valid", "data"}]}``.
``tests`` are the MaskBench instances; the model benchmark only needs ``schema``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gdecode.errors import AssetError

# The ten splits of the JSONSchemaBench paper (the HF dataset's subsets). The directory also holds MaskBench's
# extra files (BFCL, Handwritten, Synthesized), which ``--splits all`` includes.
PAPER_SPLITS = ("Glaiveai2K", "Github_trivial", "Github_easy", "Github_medium", "Github_hard", "Github_ultra",
                "Kubernetes", "Snowplow", "WashingtonPost", "JsonSchemaStore")
HF_DATASET = "epfl-dlab/JSONSchemaBench"


@dataclass
class Record:
    id: str
    split: str
    schema: Any
    tests: list[dict[str, Any]] = field(default_factory=list)


def default_data_dir() -> Path:
    """``$GDECODE_JSONSCHEMABENCH``, else ``datasets/jsonschemabench`` in the shared assets or ``../shared``."""
    env = os.environ.get("GDECODE_JSONSCHEMABENCH")
    if env:
        return Path(env)
    from gdecode.assets import shared_assets_dir

    candidates = []
    shared = shared_assets_dir()
    if shared is not None:
        candidates.append(shared.parent / "datasets" / "jsonschemabench")
    root = Path(__file__).resolve().parents[2]
    candidates += [root.parent / "shared" / "datasets" / "jsonschemabench", Path.cwd() / "jsonschemabench"]
    for c in candidates:
        if c.is_dir():
            return c
    raise AssetError("no JSONSchemaBench directory found: pass --data DIR (JSONL files, one per split) "
                     "or set $GDECODE_JSONSCHEMABENCH")


def available_splits(data_dir: Path) -> list[str]:
    return sorted(p.stem for p in Path(data_dir).glob("*.jsonl"))


def resolve_splits(data_dir: Path, splits: str | Sequence[str]) -> list[str]:
    """``"all"``, ``"paper"`` (the ten paper splits present) or a comma list; unknown names are an error."""
    have = available_splits(data_dir)
    if isinstance(splits, str):
        if splits == "all":
            return have
        if splits == "paper":
            return [s for s in PAPER_SPLITS if s in have]
        splits = [s.strip() for s in splits.split(",") if s.strip()]
    missing = [s for s in splits if s not in have]
    if missing:
        raise AssetError(f"unknown split(s) {', '.join(missing)} in {data_dir}; available: {', '.join(have)}")
    return list(splits)


def read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise AssetError(f"{path}:{n}: not a JSON record ({e})") from None


def load_split(data_dir: Path, split: str) -> list[Record]:
    out = []
    for r in read_jsonl(Path(data_dir) / f"{split}.jsonl"):
        if "schema" not in r:
            raise AssetError(f"{split}: record {r.get('id')!r} has no 'schema'")
        out.append(Record(id=str(r.get("id") or f"{split}/{len(out)}"), split=r.get("split", split),
                          schema=r["schema"], tests=list(r.get("tests") or [])))
    return out


def sample(records: list[Record], n: int | None, seed: int) -> list[Record]:
    """``n`` records drawn with a seeded RNG, in file order (all of them when ``n`` is None or too large).
    The draw takes a prefix of one seeded permutation, so a larger ``n`` with the same seed is a superset:
    growing a run with a larger ``--per-split`` reuses the results already measured."""
    if n is None or n >= len(records):
        return list(records)
    order = list(range(len(records)))
    random.Random(f"{seed}:{records[0].split}").shuffle(order)
    return [records[i] for i in sorted(order[:n])]


def load(data_dir: Path | None, splits: str | Sequence[str], per_split: int | None, seed: int = 0,
         *, with_tests: bool = False) -> list[Record]:
    """Records of the chosen splits; ``with_tests`` keeps only schemas that have MaskBench instances."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    per: list[list[Record]] = []
    for split in resolve_splits(data_dir, splits):
        recs = load_split(data_dir, split)
        if with_tests:
            recs = [r for r in recs if r.tests]
        per.append(sample(recs, per_split, seed))
    return interleave(per)


def interleave(groups: Sequence[Sequence[Record]]) -> list[Record]:
    """Round-robin over the splits, so a run stopped early still covers every split about equally."""
    out: list[Record] = []
    for k in range(max((len(g) for g in groups), default=0)):
        out += [g[k] for g in groups if k < len(g)]
    return out


def load_hf(splits: Sequence[str], per_split: int | None, seed: int = 0, hf_split: str = "test") -> list[Record]:
    """The official dataset from a reachable hub (needs the ``datasets`` package and network access)."""
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise AssetError("loading the official dataset needs `pip install datasets`; or pass --data DIR") from None
    from datasets import load_dataset

    per: list[list[Record]] = []
    for split in splits:
        try:
            ds = load_dataset(HF_DATASET, split, split=hf_split)
        except Exception as e:  # no network, unknown subset, ...
            raise AssetError(f"cannot load {HF_DATASET}/{split} from the hub: {type(e).__name__}: {e}") from e
        recs = [Record(id=f"{split}/{row.get('unique_id', i)}", split=split, schema=json.loads(row["json_schema"]))
                for i, row in enumerate(ds)]
        per.append(sample(recs, per_split, seed))
    return interleave(per)
