"""Benchmarks (issue 7): the JSONSchemaBench model run and a MaskBench-style engine benchmark, with reports.

Modules: :mod:`.data` (JSONL records, splits, sampling), :mod:`.engines` (one adapter per engine),
:mod:`.worker` (crash/timeout isolation), :mod:`.masks`, :mod:`.model_run`, :mod:`.metrics` (metric
definitions, bootstrap CIs), :mod:`.results` (resumable JSONL), :mod:`.report` (Markdown + PNG), :mod:`.cli`.
"""
