"""Crash and timeout isolation: one task at a time in a spawned subprocess that is replaced when it dies.

A worker is built from two importable functions given as ``"module:function"``: ``init(*init_args)`` runs
once per process (loading a tokenizer or a model, which is expensive) and returns a state; ``handle(state,
task)`` runs per task and returns a picklable result. A task that segfaults, aborts or exceeds its timeout
kills only the worker: the caller gets ``{"status": "crash"}`` or ``{"status": "timeout"}`` and the next
task starts a fresh process. A Python exception inside ``handle`` is returned as ``{"status": "error"}``
without a restart.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import time
import traceback
from typing import Any


def _resolve(path: str):
    mod, _, fn = path.partition(":")
    return getattr(importlib.import_module(mod), fn)


def _loop(conn, init: str, handle: str, init_args: tuple) -> None:
    parent = os.getppid()
    try:
        state = _resolve(init)(*init_args)
        handler = _resolve(handle)
    except BaseException as e:  # reported to the parent, which raises it
        conn.send({"status": "init_error", "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()})
        return
    conn.send({"status": "ready"})
    while True:
        while not conn.poll(1.0):
            if os.getppid() != parent:  # the benchmark was killed: do not linger as an orphan
                return
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            result = handler(state, task)
        except Exception as e:
            result = {"status": "error", "error": f"{type(e).__name__}: {str(e)[:2000]}"}
        conn.send(result)


class WorkerInitError(RuntimeError):
    """The worker could not even start (e.g. an engine that is not installed)."""


class IsolatedWorker:
    def __init__(self, init: str, handle: str, init_args: tuple = (), *, init_timeout: float = 600.0) -> None:
        self.init, self.handle, self.init_args, self.init_timeout = init, handle, init_args, init_timeout
        self._proc = None
        self._conn = None
        self.restarts = 0

    def _start(self) -> None:
        ctx = mp.get_context("spawn")  # fork would copy torch/tokenizer threads into the child
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_loop, args=(child, self.init, self.handle, self.init_args), daemon=True)
        proc.start()
        child.close()
        if not parent.poll(self.init_timeout):
            proc.kill()
            proc.join()
            raise WorkerInitError(f"worker {self.init} did not start within {self.init_timeout:.0f} s")
        try:
            msg = parent.recv()
        except EOFError:
            proc.join()
            raise WorkerInitError(f"worker {self.init} died while starting (exit code {proc.exitcode})") from None
        if msg.get("status") != "ready":
            proc.join()
            raise WorkerInitError(f"worker {self.init} failed to start: {msg.get('error')}")
        self._proc, self._conn = proc, parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
            self._conn.close()
        self._proc = self._conn = None

    def run(self, task: Any, timeout: float) -> dict[str, Any]:
        """Result of ``handle(state, task)``, or a crash/timeout record. Starting the worker is not timed."""
        if self._proc is None:
            self._start()
        t0 = time.perf_counter()
        try:
            self._conn.send(task)
            if self._conn.poll(timeout):
                return self._conn.recv()
            status = "timeout"
        except (EOFError, BrokenPipeError, ConnectionResetError):
            status = "crash"
        proc = self._proc
        if status == "crash":
            proc.join(2)  # let a dying worker finish, so its exit code is known
        code = proc.exitcode
        self._kill()
        self.restarts += 1
        res = {"status": status, "seconds": round(time.perf_counter() - t0, 3)}
        if status == "crash":
            res["error"] = f"worker died (exit code {code})"
        else:
            res["error"] = f"no answer within {timeout:g} s"
        return res

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._conn.send(None)
                self._proc.join(5)
            except (BrokenPipeError, OSError):
                pass
            self._kill()

    def __enter__(self) -> IsolatedWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
