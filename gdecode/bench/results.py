"""Resumable JSONL result files: one line per (schema, engine), appended as soon as it is known."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    # One write of a whole line, flushed at once: a killed run loses at most the line being written. A torn
    # last line from such a run is closed first, so the new record starts on a line of its own.
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    path = Path(path)
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                line = "\n" + line
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()


def read_results(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a result file; a torn last line (run killed mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "id" in rec and "engine" in rec:
                yield rec


def done_keys(path: Path) -> set[tuple[str, str]]:
    """(schema id, engine) pairs already measured. ``unavailable`` records are retried on the next run."""
    return {(r["id"], r["engine"]) for r in read_results(path) if r.get("status") != "unavailable"}


def latest(path: Path) -> list[dict[str, Any]]:
    """One record per (schema id, engine): the last one written (reruns after a fix replace old lines)."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for r in read_results(path):
        by_key[(r["id"], r["engine"])] = r
    return list(by_key.values())
