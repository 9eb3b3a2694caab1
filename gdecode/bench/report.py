"""Reports of the benchmarks: Markdown tables and PNG plots (CDFs of mask and compile time per engine,
coverage by split), written to an output directory."""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gdecode.bench.metrics import bootstrap_mean, bootstrap_ratio, percentiles
from gdecode.bench.results import latest

ENGINE_ORDER = ("gdecode", "llguidance", "xgrammar", "outlines-core")


def _engines(recs: Sequence[dict[str, Any]]) -> list[str]:
    seen = {r["engine"] for r in recs}
    return [e for e in ENGINE_ORDER if e in seen] + sorted(seen - set(ENGINE_ORDER))


def _f(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def _pct(m: tuple[float, float, float]) -> str:
    if math.isnan(m[0]):
        return "–"
    return f"{100 * m[0]:.1f} [{100 * m[1]:.1f}, {100 * m[2]:.1f}]"


# ------------------------------------------------------------------------------------------------ masks
def mask_summary(recs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per engine: schema counts by status, instance counts, and percentiles of compile, TTFM and mask times."""
    out: dict[str, dict[str, Any]] = {}
    for e in _engines(recs):
        rs = [r for r in recs if r["engine"] == e]
        ok = [r for r in rs if r.get("status") == "ok"]
        s: dict[str, Any] = {"schemas": len(rs), "compiled": len(ok)}
        for st in ("compile_error", "timeout", "crash", "error", "unavailable"):
            s[st] = sum(r.get("status") == st for r in rs)
        for k in ("valid_total", "valid_rejected", "invalid_total", "invalid_accepted", "inconsistent", "tokens"):
            s[k] = sum(r.get(k, 0) for r in ok)
        masks = [t for r in ok for t in r.get("mask_us", [])]
        s["mask_us"] = percentiles(masks)
        s["n_masks"] = len(masks)
        s["compile_us"] = percentiles([r["compile_us"] for r in ok])
        s["ttfm_us"] = percentiles([r["ttfm_us"] for r in ok if r.get("ttfm_us") is not None])
        out[e] = s
    return out


def masks_markdown(recs: Sequence[dict[str, Any]], *, title: str = "Mask benchmark") -> str:
    summ = mask_summary(recs)
    splits = sorted({r["split"] for r in recs})
    n_schemas = len({r["id"] for r in recs})
    lines = [f"### {title}", "",
             f"{n_schemas} schemas from {len(splits)} splits ({', '.join(splits)}). Times in µs; compile and "
             "TTFM (time to first mask = compile + first mask) over the schemas each engine compiled; mask "
             "time over every token position of every test instance walked.", "",
             "| engine | compiled | compile errors | timeouts | crashes | compile p50 | compile p99 | TTFM p50 | "
             "TTFM p99 | mask p50 | mask p90 | mask p99 | mask max | masks | valid rejected | invalid accepted |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for e, s in summ.items():
        lines.append(
            f"| {e} | {s['compiled']}/{s['schemas']} | {s['compile_error']} | {s['timeout']} | {s['crash'] + s['error']} | "
            f"{_f(s['compile_us']['p50'])} | {_f(s['compile_us']['p99'])} | {_f(s['ttfm_us']['p50'])} | "
            f"{_f(s['ttfm_us']['p99'])} | {_f(s['mask_us']['p50'], 1)} | {_f(s['mask_us']['p90'], 1)} | "
            f"{_f(s['mask_us']['p99'])} | {_f(s['mask_us']['max'])} | {s['n_masks']:,} | "
            f"{s['valid_rejected']}/{s['valid_total']} | {s['invalid_accepted']}/{s['invalid_total']} |")
    if "gdecode" in summ:
        g = summ["gdecode"]
        lines += ["", "Ratios peer / gdecode (> 1: gdecode faster). Each engine's figures are over the schemas "
                  "it compiled, so the sets differ; see the common-schema table below for a like-for-like view.",
                  "", "| peer | compile p50 | mask p50 | mask p99 |", "| --- | ---: | ---: | ---: |"]
        for e, s in summ.items():
            if e != "gdecode":
                lines.append(f"| {e} | {_ratio(s['compile_us']['p50'], g['compile_us']['p50'])} | "
                             f"{_ratio(s['mask_us']['p50'], g['mask_us']['p50'])} | "
                             f"{_ratio(s['mask_us']['p99'], g['mask_us']['p99'])} |")
        lines += ["", *common_schema_table(recs)]
    lines += ["", *split_coverage_table(recs)]
    return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    if any(math.isnan(x) for x in (a, b)) or b == 0:
        return "–"
    return f"{a / b:.2f}x"


def common_schema_table(recs: Sequence[dict[str, Any]]) -> list[str]:
    """Compile and mask percentiles over the schemas that every engine compiled (a like-for-like view)."""
    engines = _engines(recs)
    ok_by: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in recs:
        if r.get("status") == "ok":
            ok_by[r["engine"]][r["id"]] = r
    common = set.intersection(*(set(ok_by[e]) for e in engines)) if engines else set()
    lines = [f"Over the {len(common)} schemas that all {len(engines)} engines compiled:", "",
             "| engine | compile p50 | compile p99 | mask p50 | mask p99 | mask max |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for e in engines:
        rs = [ok_by[e][i] for i in sorted(common)]
        c = percentiles([r["compile_us"] for r in rs])
        m = percentiles([t for r in rs for t in r.get("mask_us", [])])
        lines.append(f"| {e} | {_f(c['p50'])} | {_f(c['p99'])} | {_f(m['p50'], 1)} | {_f(m['p99'])} | {_f(m['max'])} |")
    return lines


def split_coverage_table(recs: Sequence[dict[str, Any]]) -> list[str]:
    """Share of schemas each engine compiled, per split (mask benchmark's declared coverage)."""
    engines = _engines(recs)
    splits = sorted({r["split"] for r in recs})
    lines = ["Schemas compiled per split (declared coverage of the mask run):", "",
             "| split | schemas | " + " | ".join(engines) + " |", "| --- | ---: |" + " ---: |" * len(engines)]
    for sp in splits:
        row = [sp, str(len({r["id"] for r in recs if r["split"] == sp}))]
        for e in engines:
            rs = [r for r in recs if r["split"] == sp and r["engine"] == e]
            row.append(f"{100 * sum(r.get('status') == 'ok' for r in rs) / max(1, len(rs)):.0f}%")
        lines.append("| " + " | ".join(row) + " |")
    return lines


# ------------------------------------------------------------------------------------------------ model
def model_summary(recs: Sequence[dict[str, Any]], *, n_boot: int = 1000) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (split or "overall", engine): declared/empirical coverage and compliance (bootstrap with 95% CIs),
    median GCT/TTFT/TPOT."""
    out = {}
    splits = sorted({r["split"] for r in recs}) + ["overall"]
    for sp in splits:
        for e in _engines(recs):
            rs = [r for r in recs if r["engine"] == e and (sp == "overall" or r["split"] == sp)]
            if not rs:
                continue
            declared = [float(r.get("status") == "ok") for r in rs]
            empirical = [float(r.get("status") == "ok" and bool(r.get("valid"))) for r in rs]
            ok = [r for r in rs if r.get("status") == "ok"]

            def med(key: str, rows: list = ok) -> float:
                xs = [r[key] for r in rows if r.get(key) is not None]
                return float(np.median(xs)) if xs else float("nan")

            out[(sp, e)] = {"n": len(rs), "declared": bootstrap_mean(declared, n_boot=n_boot),
                            "empirical": bootstrap_mean(empirical, n_boot=n_boot),
                            "compliance": bootstrap_ratio(empirical, declared, n_boot=n_boot),
                            "gct_s": med("gct_s", [r for r in rs if r.get("gct_s") is not None]),
                            "ttft_s": med("ttft_s"), "tpot_s": med("tpot_s"),
                            "timeouts": sum(r.get("status") in ("timeout", "crash") for r in rs),
                            "hit_limit": sum(bool(r.get("hit_limit")) for r in ok)}
    return out


def model_markdown(recs: Sequence[dict[str, Any]], *, title: str = "Model benchmark") -> str:
    summ = model_summary(recs)
    lines = [f"### {title}", "",
             "Coverage in % as bootstrap mean [95% CI] over schemas; GCT, TTFT (includes GCT) and TPOT are "
             "medians. \"at limit\": generations that used all max_new_tokens (their output is cut, so usually "
             "invalid).", "",
             "| split | engine | schemas | declared | empirical | compliance | GCT ms | TTFT ms | TPOT ms | "
             "timeouts/crashes | at limit |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for (sp, e), s in summ.items():
        name = f"**{sp}**" if sp == "overall" else sp
        lines.append(f"| {name} | {e} | {s['n']} | {_pct(s['declared'])} | {_pct(s['empirical'])} | "
                     f"{_pct(s['compliance'])} | {_f(s['gct_s'] * 1e3, 1)} | {_f(s['ttft_s'] * 1e3)} | "
                     f"{_f(s['tpot_s'] * 1e3, 1)} | {s['timeouts']} | {s['hit_limit']} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ plots
def _cdf(ax, values: Sequence[float], label: str) -> None:
    x = np.sort(np.asarray(values, dtype=float))
    if x.size:
        ax.plot(x, np.arange(1, x.size + 1) / x.size, label=label)


def plot_masks(recs: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    engines = _engines(recs)
    for key, fname, xlabel in (("mask_us", "mask_time_cdf.png", "mask time per token (µs, log)"),
                               ("compile_us", "compile_time_cdf.png", "compile time per schema (µs, log)"),
                               ("ttfm_us", "ttfm_cdf.png", "time to first mask: compile + first mask (µs, log)")):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for e in engines:
            ok = [r for r in recs if r["engine"] == e and r.get("status") == "ok"]
            vals = [t for r in ok for t in r.get("mask_us", [])] if key == "mask_us" else \
                [r[key] for r in ok if r.get(key) is not None]
            _cdf(ax, [max(v, 0.01) for v in vals], e)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fraction")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / fname, dpi=110)
        plt.close(fig)
        paths.append(out_dir / fname)
    paths.append(_coverage_bars(recs, out_dir / "mask_coverage_by_split.png", "schemas compiled (%)",
                                lambda rs: 100 * sum(r.get("status") == "ok" for r in rs) / max(1, len(rs))))
    return paths


def plot_model(recs: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    return [_coverage_bars(recs, Path(out_dir) / "model_empirical_coverage_by_split.png", "empirical coverage (%)",
                           lambda rs: 100 * sum(r.get("status") == "ok" and bool(r.get("valid")) for r in rs)
                           / max(1, len(rs)))]


def _coverage_bars(recs, path: Path, ylabel: str, value) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    engines = _engines(recs)
    splits = sorted({r["split"] for r in recs})
    fig, ax = plt.subplots(figsize=(max(7, 0.9 * len(splits) + 2), 4.2))
    width = 0.8 / max(1, len(engines))
    for k, e in enumerate(engines):
        ys = [value([r for r in recs if r["engine"] == e and r["split"] == sp]) for sp in splits]
        ax.bar(np.arange(len(splits)) + k * width - 0.4 + width / 2, ys, width, label=e)
    ax.set_xticks(np.arange(len(splits)))
    ax.set_xticklabels(splits, rotation=35, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _have_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def write_report(out_dir: Path, *, command: str = "") -> Path:
    """``report.md`` (and PNGs) in ``out_dir`` from whichever of masks.jsonl / model.jsonl it holds."""
    out_dir = Path(out_dir)
    parts = ["# gdecode benchmark report", ""]
    if command:
        parts += [f"Command: `{command}`", ""]
    can_plot = _have_matplotlib()
    if not can_plot:
        print("[gdecode bench] matplotlib is not installed: report without plots (pip install 'gdecode[bench]')",
              file=sys.stderr)
    masks = latest(out_dir / "masks.jsonl")
    if masks:
        parts += [masks_markdown(masks), ""]
        if can_plot:
            plot_masks(masks, out_dir)
            parts += ["![mask time CDF](mask_time_cdf.png) ![compile time CDF](compile_time_cdf.png)", ""]
    model = latest(out_dir / "model.jsonl")
    if model:
        parts += [model_markdown(model), ""]
        if can_plot:
            plot_model(model, out_dir)
            parts += ["![empirical coverage](model_empirical_coverage_by_split.png)", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(parts))
    return path
