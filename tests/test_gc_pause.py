"""The garbage collector is paused while a grammar compiles (gdecode/gc_pause.py), and its state restored."""

from __future__ import annotations

import gc
import threading

import pytest
from test_grammars import tokenizer

import gdecode as gd
from gdecode import gc_pause
from gdecode.errors import SchemaError

# Big enough that an unpaused compile allocates far more than a young-generation collection's threshold.
SCHEMA = {"type": "object", "properties": {f"p{i}": {"type": "string", "maxLength": i % 7 + 1} for i in range(200)}}


def test_no_collection_while_compiling():
    _, info = tokenizer("gpt2")
    during: list[str] = []

    def watch(phase, _info):
        if phase == "start" and gc_pause._depth > 0:
            during.append(phase)

    gc.callbacks.append(watch)
    try:
        gd.compile_json_schema(SCHEMA, info)
    finally:
        gc.callbacks.remove(watch)
    assert during == []
    assert gc.isenabled()


def test_state_restored_after_errors_and_when_already_disabled():
    _, info = tokenizer("gpt2")
    with pytest.raises(SchemaError):
        gd.compile_json_schema({"type": 5}, info)
    assert gc.isenabled() and gc_pause._depth == 0
    gc.disable()
    try:
        gd.compile_json_schema({"type": "string"}, info)
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        gc.enable()


def test_concurrent_compiles_leave_the_collector_on():
    _, info = tokenizer("gpt2")
    errors: list[BaseException] = []

    def work():
        try:
            for _ in range(3):
                gd.compile_json_schema(SCHEMA, info)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert gc.isenabled() and gc_pause._depth == 0
