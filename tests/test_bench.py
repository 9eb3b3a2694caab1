"""The benchmark package (issue 7): metrics, resumable results, isolation, a tiny mask run, reports."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from conftest import skip_unless_ci

from gdecode.bench import masks, metrics, report, results
from gdecode.bench.data import Record, load, sample
from gdecode.bench.engines import installed_engines
from gdecode.bench.worker import IsolatedWorker, WorkerInitError

TOKENIZER = "gpt2"  # small and already cached: worker start-up stays short

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
TESTS = [
    {"valid": True, "data": {"name": "Ada", "age": 36}},
    {"valid": True, "data": {"name": "Bob", "age": -1}},
    {"valid": False, "data": {"name": "Ada"}},                      # missing required key
    {"valid": False, "data": {"name": "Ada", "age": "36"}},         # wrong type
    {"valid": False, "data": {"name": "Ada", "age": 36, "x": 1}},   # extra key
]
ENUM_SCHEMA = {"enum": ["red", "green", 3]}
ENUM_TESTS = [{"valid": True, "data": "green"}, {"valid": True, "data": 3}, {"valid": False, "data": "blue"}]


# ---------------------------------------------------------------------------------------------- metrics
def test_bootstrap_mean_on_known_data():
    assert metrics.bootstrap_mean([1.0] * 20) == (1.0, 1.0, 1.0)
    m, lo, hi = metrics.bootstrap_mean([0.0, 1.0] * 200, n_boot=2000, seed=1)
    assert abs(m - 0.5) < 0.01 and lo < 0.5 < hi
    # The 95% CI of a proportion p=0.5 over n=400 is about ±1.96*sqrt(.25/400) = ±0.049.
    assert 0.08 < hi - lo < 0.12
    assert metrics.bootstrap_mean([0.0, 1.0] * 200, seed=1) == metrics.bootstrap_mean([0.0, 1.0] * 200, seed=1)
    assert all(np.isnan(metrics.bootstrap_mean([])))


def test_bootstrap_ratio_is_compliance():
    declared = [1.0] * 8 + [0.0] * 2
    empirical = [1.0] * 6 + [0.0] * 4
    m, lo, hi = metrics.bootstrap_ratio(empirical, declared, n_boot=2000)
    assert abs(m - 0.75) < 0.03 and lo <= 0.75 <= hi
    assert all(np.isnan(metrics.bootstrap_ratio([0.0], [0.0])))


def test_percentiles():
    p = metrics.percentiles(list(range(1, 101)))
    assert p["p50"] == pytest.approx(50.5) and p["max"] == 100 and p["p99"] == pytest.approx(99.01)


# ---------------------------------------------------------------------------------------------- results
def test_jsonl_resume_skips_done_and_torn_lines(tmp_path):
    path = tmp_path / "masks.jsonl"
    results.append_jsonl(path, {"id": "a/1", "engine": "gdecode", "status": "ok"})
    results.append_jsonl(path, {"id": "a/1", "engine": "xgrammar", "status": "unavailable"})
    results.append_jsonl(path, {"id": "a/2", "engine": "gdecode", "status": "timeout"})
    with open(path, "a") as f:
        f.write('{"id": "a/3", "engine": "gdec')  # a run killed mid-write
    assert results.done_keys(path) == {("a/1", "gdecode"), ("a/2", "gdecode")}
    results.append_jsonl(path, {"id": "a/1", "engine": "gdecode", "status": "crash"})
    assert {r["status"] for r in results.latest(path) if r["id"] == "a/1" and r["engine"] == "gdecode"} == {"crash"}


def test_data_loading_and_seeded_sampling(tmp_path):
    for split in ("S1", "S2"):
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            for i in range(10):
                f.write(json.dumps({"id": f"{split}/{i}", "split": split, "schema": {"type": "integer"},
                                    "tests": [] if i % 2 else [{"valid": True, "data": i}]}) + "\n")
    recs = load(tmp_path, "all", 3, seed=7)
    assert [r.split for r in recs] == ["S1", "S2"] * 3  # round-robin: a partial run covers every split
    assert [r.id for r in recs] == [r.id for r in load(tmp_path, "all", 3, seed=7)]
    assert len(load(tmp_path, "S2", None, with_tests=True)) == 5
    assert sample(recs, None, 0) == recs
    small, big = load(tmp_path, "S1", 3, seed=7), load(tmp_path, "S1", 6, seed=7)
    assert {r.id for r in small} <= {r.id for r in big}  # growing --per-split keeps measured schemas
    with pytest.raises(Exception, match="unknown split"):
        load(tmp_path, "S3", None)


# --------------------------------------------------------------------------------------------- isolation
def fake_init(tag: str, *rest) -> dict:
    return {"tag": tag, "pid": os.getpid()}


def fake_handle(state: dict, task: dict) -> dict:
    if task.get("mode") == "crash":
        os.abort()  # like a segfault in native code: no Python exception, the process dies
    if task.get("mode") == "hang":
        time.sleep(60)
    if task.get("mode") == "raise":
        raise ValueError("bad schema")
    return {"status": "ok", "pid": state["pid"], "tag": state["tag"]}


def fake_init_fails(tag: str) -> dict:
    raise ImportError(f"engine {tag} is not installed")


def test_worker_survives_crash_and_timeout():
    with IsolatedWorker(f"{__name__}:fake_init", f"{__name__}:fake_handle", ("t",)) as w:
        a = w.run({"mode": "ok"}, timeout=30)
        assert a["status"] == "ok" and a["pid"] != os.getpid()
        assert w.run({"mode": "raise"}, timeout=30) == {"status": "error", "error": "ValueError: bad schema"}
        assert w.run({"mode": "ok"}, timeout=30)["pid"] == a["pid"]  # an exception does not restart
        c = w.run({"mode": "crash"}, timeout=30)
        assert c["status"] == "crash" and "exit code" in c["error"]
        b = w.run({"mode": "ok"}, timeout=30)
        assert b["status"] == "ok" and b["pid"] != a["pid"]  # a fresh worker took over
        t0 = time.monotonic()
        h = w.run({"mode": "hang"}, timeout=1.5)
        assert h["status"] == "timeout" and time.monotonic() - t0 < 20
        assert w.run({"mode": "ok"}, timeout=30)["status"] == "ok"
        assert w.restarts == 2


def test_worker_init_failure_is_reported():
    w = IsolatedWorker(f"{__name__}:fake_init_fails", f"{__name__}:fake_handle", ("zz",))
    with pytest.raises(WorkerInitError, match="engine zz is not installed"):
        w.run({"mode": "ok"}, timeout=10)


def fake_mask_handle(state: dict, task: dict) -> dict:
    if task["schema"].get("crash"):
        os.abort()
    if task["schema"].get("hang"):
        time.sleep(60)
    return {"status": "ok", "compile_us": 5.0, "ttfm_us": 6.0, "mask_us": [1.0, 2.0], "valid_total": 0,
            "valid_rejected": 0, "invalid_total": 0, "invalid_accepted": 0, "inconsistent": 0, "tokens": 1}


def test_mask_run_isolates_crashing_and_hanging_schemas(tmp_path):
    recs = [Record("S/0", "S", {"type": "integer"}), Record("S/1", "S", {"crash": True}),
            Record("S/2", "S", {"hang": True}), Record("S/3", "S", {"type": "string"})]
    path = masks.run(recs, ["fake"], tmp_path, timeout=2, progress=False,
                     worker_init=f"{__name__}:fake_init", worker_handle=f"{__name__}:fake_mask_handle")
    got = {r["id"]: r["status"] for r in results.read_results(path)}
    assert got == {"S/0": "ok", "S/1": "crash", "S/2": "timeout", "S/3": "ok"}
    # Resume: nothing left to do, the file is unchanged.
    before = path.read_text()
    masks.run(recs, ["fake"], tmp_path, timeout=2, progress=False,
              worker_init=f"{__name__}:fake_init", worker_handle=f"{__name__}:fake_mask_handle")
    assert path.read_text() == before


# ---------------------------------------------------------------------------------------- tiny mask run
@pytest.mark.parametrize("engine", ["gdecode", "llguidance", "xgrammar", "outlines-core"])
def test_tiny_mask_run_in_process(engine):
    if engine != "gdecode" and engine not in installed_engines([engine]):
        skip_unless_ci(f"peer {engine} not installed (pip install '.[bench]')")
    state = masks.init_worker(engine, TOKENIZER)
    tests = [{"valid": t["valid"], "text": masks.instance_text(t["data"])} for t in TESTS]
    r = masks.run_schema(state, {"schema": SCHEMA, "tests": tests})
    assert r["status"] == "ok", r
    assert (r["valid_total"], r["invalid_total"]) == (2, 3)
    assert r["valid_rejected"] == 0 and r["invalid_accepted"] == 0 and r["inconsistent"] == 0
    assert r["compile_us"] > 0 and r["ttfm_us"] >= r["compile_us"]
    # One mask per token position plus one after the last token, for the valid instances at least.
    assert len(r["mask_us"]) >= sum(len(state["hf"].encode(t["text"])) + 1 for t in tests if t["valid"])
    e = masks.run_schema(state, {"schema": ENUM_SCHEMA, "tests": [
        {"valid": t["valid"], "text": masks.instance_text(t["data"])} for t in ENUM_TESTS]})
    assert e["status"] == "ok" and e["valid_rejected"] == 0 and e["invalid_accepted"] == 0


def test_cpu_clock_times_masks_and_compiles():
    state = masks.init_worker("gdecode", TOKENIZER)
    tests = [{"valid": t["valid"], "text": masks.instance_text(t["data"])} for t in TESTS]
    r = masks.run_schema(state, {"schema": SCHEMA, "tests": tests, "clock": "cpu"})
    assert r["status"] == "ok" and r["compile_us"] > 0 and len(r["mask_us"]) > 5
    with pytest.raises(ValueError, match="clock"):
        masks.run([], ["gdecode"], "unused", clock="sundial")


def test_gdecode_unsupported_schema_is_a_compile_error():
    state = masks.init_worker("gdecode", TOKENIZER)
    r = masks.run_schema(state, {"schema": {"type": "string", "minLength": 100000}, "tests": []})
    assert r["status"] == "compile_error" and "Error" in r["error"]


@pytest.mark.slow  # one worker process per engine, each loading a tokenizer
def test_mask_run_end_to_end_with_subprocess_workers(tmp_path):
    engines = installed_engines()  # gdecode always; peers when installed
    recs = [Record("T/0", "T", SCHEMA, [dict(t) for t in TESTS]), Record("T/1", "T", ENUM_SCHEMA, ENUM_TESTS)]
    path = masks.run(recs, engines, tmp_path, tokenizer=TOKENIZER, timeout=120, progress=False)
    recs_out = results.latest(path)
    assert {(r["id"], r["engine"]) for r in recs_out} == {(r.id, e) for r in recs for e in engines}
    for r in recs_out:
        assert r["status"] == "ok", r
        assert r["invalid_accepted"] == 0 and r["valid_rejected"] == 0
    summ = report.mask_summary(recs_out)
    assert summ["gdecode"]["valid_total"] == 4 and summ["gdecode"]["invalid_total"] == 4


# ------------------------------------------------------------------------------------------------ report
def _fake_mask_records() -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for e, scale in (("gdecode", 1.0), ("llguidance", 3.0)):
        for i in range(20):
            ok = not (e == "llguidance" and i == 0)
            r = {"id": f"S{i % 2}/{i}", "split": f"S{i % 2}", "engine": e, "status": "ok" if ok else "compile_error"}
            if ok:
                r.update(compile_us=100.0 * scale, ttfm_us=110.0 * scale,
                         mask_us=list(np.round(rng.exponential(scale, 50), 2)), valid_total=2, valid_rejected=0,
                         invalid_total=1, invalid_accepted=0, inconsistent=0, tokens=50)
            out.append(r)
    return out


def test_report_markdown_and_plots(tmp_path):
    for r in _fake_mask_records():
        results.append_jsonl(tmp_path / "masks.jsonl", r)
    for i, (e, valid) in enumerate([("gdecode", True), ("gdecode", False), ("xgrammar", True),
                                    ("xgrammar", True)]):
        results.append_jsonl(tmp_path / "model.jsonl", {
            "id": f"S/{i % 2}", "split": "S", "engine": e, "status": "ok", "valid": valid, "gct_s": 0.01,
            "ttft_s": 0.2, "tpot_s": 0.04, "tokens": 10})
    path = report.write_report(tmp_path, command="gdecode bench masks --test")
    text = path.read_text()
    assert "gdecode bench masks --test" in text
    assert "| gdecode | 20/20 |" in text and "| llguidance | 19/20 | 1 |" in text
    assert "| llguidance | 3.00x |" in text  # compile p50 ratio peer/gdecode
    # gdecode: both schemas compiled, one output valid: declared 100%, empirical about 50% (a bootstrap mean).
    row = next(line for line in text.splitlines() if line.startswith("| **overall** | gdecode |"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[3:5] == ["2", "100.0 [100.0, 100.0]"] and 35 < float(cells[5].split()[0]) < 65
    assert cells[5].endswith("[0.0, 100.0]")
    for png in ("mask_time_cdf.png", "compile_time_cdf.png", "ttfm_cdf.png", "mask_coverage_by_split.png",
                "model_empirical_coverage_by_split.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_report_without_matplotlib_still_writes_the_tables(tmp_path, monkeypatch, capsys):
    for r in _fake_mask_records():
        results.append_jsonl(tmp_path / "masks.jsonl", r)
    monkeypatch.setattr(report, "_have_matplotlib", lambda: False)
    text = report.write_report(tmp_path).read_text()
    assert "| gdecode | 20/20 |" in text and ".png" not in text
    assert not list(tmp_path.glob("*.png"))
    assert "matplotlib is not installed" in capsys.readouterr().err


def test_cli_masks_on_a_tiny_directory(tmp_path):
    from gdecode.bench.cli import main

    data = tmp_path / "data"
    data.mkdir()
    with open(data / "Tiny.jsonl", "w") as f:
        f.write(json.dumps({"id": "Tiny/a", "split": "Tiny", "schema": SCHEMA, "tests": TESTS}) + "\n")
        f.write(json.dumps({"id": "Tiny/b", "split": "Tiny", "schema": {"type": "integer"}, "tests": []}) + "\n")
    out = tmp_path / "out"
    args = ["masks", "--data", str(data), "--engines", "gdecode", "--tokenizer", TOKENIZER, "--out", str(out),
            "--no-progress"]
    assert main(args) == 0
    recs = list(results.read_results(out / "masks.jsonl"))
    assert [(r["id"], r["status"]) for r in recs] == [("Tiny/a", "ok")]  # schemas without instances are skipped
    assert "| gdecode | 1/1 |" in (out / "report.md").read_text()
    assert main(["masks", "--data", str(data), "--splits", "Nope", "--out", str(out)]) == 2


# ------------------------------------------------------------------------------------------------- model
@pytest.mark.slow
@pytest.mark.model
def test_model_run_two_schemas(tmp_path):
    from gdecode.bench import model_run

    recs = [Record("M/0", "M", {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
                                "additionalProperties": False}),
            Record("M/1", "M", {"type": "string", "minLength": 100000})]
    engines = installed_engines()
    # A peer may try to unroll minLength 100000 for minutes: the per-schema timeout keeps the run bounded.
    path = model_run.run(recs, engines, tmp_path, max_new_tokens=24, timeout=60, progress=False)
    by = {(r["id"], r["engine"]): r for r in results.latest(path)}
    assert set(by) == {(r.id, e) for r in recs for e in engines}
    g = by[("M/0", "gdecode")]
    assert g["status"] == "ok" and g["tokens"] > 0 and g["gct_s"] >= 0 and g["ttft_s"] >= g["gct_s"]
    assert g["valid"] == model_run.validate_output(g["output"], recs[0].schema)[0]
    assert by[("M/1", "gdecode")]["status"] == "compile_error"
    for e in engines:
        assert by[("M/0", e)]["status"] == "ok", by[("M/0", e)]
        assert by[("M/1", e)]["status"] in ("ok", "compile_error", "timeout"), by[("M/1", e)]
    summ = report.model_summary(results.latest(path))
    assert summ[("overall", "gdecode")]["declared"][0] == pytest.approx(0.5, abs=0.1)


@pytest.mark.slow
@pytest.mark.model
def test_model_run_shared_prefill_matches_one_by_one(tmp_path):
    """The shared-prefill batch writes what each engine writes alone (greedy), and a schema that makes one
    engine hang is rerun engine by engine, so the others keep their result."""
    from gdecode.bench import model_run

    recs = [Record("S/0", "S", {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                                                 "n": {"type": "integer"}}, "required": ["name"]}),
            Record("S/1", "S", {"type": "string", "minLength": 100000})]
    engines = installed_engines()
    one = model_run.run(recs[:1], engines, tmp_path / "one", max_new_tokens=24, timeout=60, progress=False)
    shared = model_run.run(recs, engines, tmp_path / "shared", max_new_tokens=24, timeout=20, progress=False,
                           shared_prefill=True)
    by_one = {r["engine"]: r for r in results.latest(one)}
    by_shared = {(r["id"], r["engine"]): r for r in results.latest(shared)}
    assert set(by_shared) == {(r.id, e) for r in recs for e in engines}
    for e in engines:
        a, b = by_one[e], by_shared[("S/0", e)]
        assert b["status"] == "ok" and b["shared_prefill"], b
        assert (b["output"], b["tokens"], b["valid"]) == (a["output"], a["tokens"], a["valid"]), (e, a, b)
        assert b["ttft_s"] >= b["gct_s"] and (b["tpot_s"] is None or b["tpot_s"] > 0)
        assert by_shared[("S/1", e)]["status"] in ("ok", "compile_error", "timeout")
    assert by_shared[("S/1", "gdecode")]["status"] == "compile_error"
