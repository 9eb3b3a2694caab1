"""Bitmask application (gdecode.bitmask, csrc/core/apply_mask.cpp, csrc/cuda/apply_bitmask.cu).

Every backend is compared with a naive per-token Python reference on random masks (mixing all-zero, all-one
and random words) and random logits: V not a multiple of 32, logit width larger than the mask, 1-D logits,
index subsets (with duplicates), strided views, float32 / float16 / bfloat16. Strided cases compare the whole
underlying buffer, so writes outside the view would be caught.

* torch and C++ CPU paths: always.
* CUDA kernel: compiled with nvcc when nvcc is on PATH; its per-thread code is also run on the host over the
  launcher's grid (tests/cuda/emulate_apply_bitmask.cu), which checks the kernel's indexing without a GPU;
  the real kernel is compared with the torch path only when a GPU and gdecode._cuda exist.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import sysconfig
import types
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from gdecode import _core
from gdecode import bitmask as bitmask_mod
from gdecode.bitmask import (
    apply_bitmask_inplace,
    apply_bitmask_with_backend,
    cuda_kernel,
    select_backend,
)

ROOT = Path(__file__).resolve().parents[1]
CUDA_SRC = ROOT / "csrc" / "cuda" / "apply_bitmask.cu"
EMULATOR_SRC = ROOT / "tests" / "cuda" / "emulate_apply_bitmask.cu"
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
DTYPE_CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
NVCC = shutil.which("nvcc")


# ------------------------------------------------------------------------------------------ reference & data


def reference_inplace(logits: torch.Tensor, mask: torch.Tensor, indices=None) -> None:
    """The definition, token by token: column c of row r survives iff c < 32 * words and bit c % 32 of word
    c // 32 of mask row r is set. Only rows in ``indices`` (all rows when None) are touched."""
    rows2d = logits.unsqueeze(0) if logits.dim() == 1 else logits
    mask2d = mask.reshape(1, -1) if mask.dim() == 1 else mask
    words, width = mask2d.shape[1], rows2d.shape[1]
    targets = range(rows2d.shape[0]) if indices is None else sorted({int(i) for i in indices})
    for r in targets:
        mrow = [w & 0xFFFFFFFF for w in mask2d[r].tolist()]
        kill = [not (c // 32 < words and (mrow[c // 32] >> (c % 32)) & 1) for c in range(width)]
        if width:
            rows2d[r, torch.tensor(kill, dtype=torch.bool)] = float("-inf")


def random_mask(rows: int, words: int, rng: np.random.Generator) -> torch.Tensor:
    kind = rng.integers(0, 4, size=(rows, words))
    vals = rng.integers(0, 2**32, size=(rows, words), dtype=np.uint64).astype(np.uint32)
    vals[kind == 0] = 0  # nothing allowed
    vals[kind == 1] = 0xFFFFFFFF  # everything allowed
    return torch.from_numpy(vals.view(np.int32).copy())


def random_logits(shape, dtype, rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(dtype)


# (logit rows, width, mask rows, mask words, indices): V % 32 != 0, width > 32 * words, width < 32 * words,
# tiny widths, more mask rows than logit rows, index subsets with duplicates and empty.
CASES = [
    (1, 1000, 1, 32, None),
    (4, 1000, 4, 32, None),
    (3, 1000, 5, 32, None),
    (4, 400, 4, 10, None),  # width 400 > 10 * 32: columns 320.. are -inf
    (2, 64, 2, 2, None),
    (2, 5, 2, 1, None),
    (2, 33, 2, 1, None),  # one column past the mask
    (3, 100, 3, 8, None),  # mask wider than the logits
    (2, 300, 2, 0, None),  # empty mask: everything -inf
    (5, 777, 5, 25, [3, 0]),
    (5, 777, 5, 25, [1, 1, 4]),
    (5, 777, 6, 25, []),
    (4, 200, 4, 7, [0, 1, 2, 3]),
    (6, 130, 3, 5, [2, 0]),  # fewer mask rows than logit rows is fine with indices
    (1, 0, 1, 0, None),  # zero-width logits
]


def run_backend(backend: str, logits, mask, indices) -> None:
    if backend == "auto":
        apply_bitmask_inplace(logits, mask, indices)
    else:
        apply_bitmask_with_backend(logits, mask, indices, backend=backend)


# ------------------------------------------------------------------------------------------ torch & C++ CPU


@pytest.mark.parametrize("backend", ["torch", "cpu", "auto"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:4])) + f"-idx{c[4]}")
def test_matches_reference(backend, dtype, case):
    rows, width, mask_rows, words, indices = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    mask = random_mask(mask_rows, words, rng)
    logits = random_logits((rows, width), dtype, rng)
    expected = logits.clone()
    reference_inplace(expected, mask, indices)
    run_backend(backend, logits, mask, indices)
    assert torch.equal(logits, expected)


@pytest.mark.parametrize("backend", ["torch", "cpu"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_llama3_width(backend, dtype):
    """A Llama-3 mask (V = 128256, 4008 words) on logits padded to 128320 columns (the tail becomes -inf)."""
    rng = np.random.default_rng(7)
    mask = random_mask(3, (128256 + 31) // 32, rng)
    logits = random_logits((3, 128320), dtype, rng)
    expected = logits.clone()
    reference_inplace(expected, mask)
    run_backend(backend, logits, mask, None)
    assert torch.equal(logits, expected)


@pytest.mark.parametrize("backend", ["torch", "cpu", "auto"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mask_1d", [False, True])
def test_1d_logits(backend, dtype, mask_1d):
    rng = np.random.default_rng(3)
    mask = random_mask(1, 20, rng)
    if mask_1d:
        mask = mask[0]
    logits = random_logits((650,), dtype, rng)
    expected = logits.clone()
    reference_inplace(expected, mask)
    run_backend(backend, logits, mask, None)
    assert torch.equal(logits, expected)
    logits2 = random_logits((650,), dtype, rng)
    before = logits2.clone()
    run_backend(backend, logits2, mask, [])  # empty index list: untouched
    assert torch.equal(logits2, before)


@pytest.mark.parametrize("backend", ["torch", "cpu", "auto"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_strided_views_touch_only_the_view(backend, dtype):
    """Rows of a wider buffer (row stride > width), a mask with every other word, an expanded (stride-0) mask."""
    rng = np.random.default_rng(11)
    base = random_logits((5, 1100), dtype, rng)
    view = base[1:5, 3:1003]  # storage offset, row stride 1100, width 1000
    wide_mask = random_mask(4, 64, rng)
    mask = wide_mask[:, ::2]  # column stride 2
    expected = base.clone()
    reference_inplace(expected[1:5, 3:1003], mask, [0, 2])
    run_backend(backend, view, mask, [0, 2])
    assert torch.equal(base, expected)

    base = random_logits((3, 700), dtype, rng)
    one = random_mask(1, 22, rng)
    mask = one.expand(3, 22)  # row stride 0: one mask for every row
    expected = base.clone()
    reference_inplace(expected, mask)
    run_backend(backend, base, mask, None)
    assert torch.equal(base, expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_core_generic_strided_path(dtype):
    """_core.apply_bitmask_cpu also handles a column stride != 1 (transposed logits); the dispatcher sends
    those to torch, so call the binding directly."""
    rng = np.random.default_rng(5)
    base = random_logits((300, 4), dtype, rng)
    view = base.t()  # [4, 300], column stride 4
    mask = random_mask(4, 9, rng)
    expected = base.clone()
    reference_inplace(expected.t(), mask, [1, 3])
    _core.apply_bitmask_cpu(view, mask, np.array([1, 3], dtype=np.int64))
    assert torch.equal(base, expected)


def test_core_binding_bit_pattern_views():
    """float16 / bfloat16 logits may cross as int16 views with the dtype named (what bitmask.py does)."""
    rng = np.random.default_rng(2)
    mask = random_mask(2, 4, rng)
    for dtype, name in [(torch.float16, "float16"), (torch.bfloat16, "bfloat16")]:
        logits = random_logits((2, 128), dtype, rng)
        expected = logits.clone()
        reference_inplace(expected, mask)
        _core.apply_bitmask_cpu(logits.view(torch.int16).numpy(), mask.numpy(), None, name)
        assert torch.equal(logits, expected)
    with pytest.raises(ValueError, match="dtype='float32'"):
        _core.apply_bitmask_cpu(np.zeros((1, 8), np.int16), mask.numpy(), None, "float32")
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):
        _core.apply_bitmask_cpu(np.zeros((1, 8), np.float64), mask.numpy())
    with pytest.raises(TypeError):  # an int64 mask is refused, never converted
        _core.apply_bitmask_cpu(np.zeros((1, 8), np.float32), np.zeros((1, 1), np.int64))
    with pytest.raises(IndexError):
        _core.apply_bitmask_cpu(np.zeros((1, 8), np.float32), mask.numpy(), np.array([2], np.int64))


def test_index_forms():
    rng = np.random.default_rng(4)
    mask = random_mask(4, 3, rng)
    base = random_logits((4, 90), torch.float32, rng)
    expected = base.clone()
    reference_inplace(expected, mask, [1, 3])
    for indices in ([1, 3], (3, 1), range(1, 4, 2), np.array([1, 3], np.int32), torch.tensor([3, 1]),
                    torch.tensor([1, 3], dtype=torch.int16), np.array([[1], [3]]).reshape(-1)):
        logits = base.clone()
        apply_bitmask_inplace(logits, mask, indices)
        assert torch.equal(logits, expected), indices


def test_numpy_mask_and_other_dtypes_fall_back_to_torch():
    rng = np.random.default_rng(6)
    mask = random_mask(2, 4, rng)
    logits = random_logits((2, 120), torch.float32, rng).double()
    assert select_backend(logits) == "torch"
    expected = logits.clone()
    reference_inplace(expected, mask)
    apply_bitmask_inplace(logits, mask.numpy())
    assert torch.equal(logits, expected)


def test_select_backend():
    assert select_backend(torch.zeros(2, 64)) == "cpu"
    assert select_backend(torch.zeros(64, dtype=torch.bfloat16)) == "cpu"
    assert select_backend(torch.zeros(2, 64, dtype=torch.float64)) == "torch"
    assert select_backend(torch.zeros(64, 2).t()) == "torch"  # column stride 2
    assert select_backend(torch.zeros(1, 64).expand(3, 64)) == "torch"  # overlapping rows
    assert select_backend(torch.zeros(2, 64, requires_grad=True)) == "torch"


def test_validation_errors():
    logits = torch.zeros(3, 64)
    mask = torch.zeros(3, 2, dtype=torch.int32)
    with pytest.raises(TypeError, match="int32"):
        apply_bitmask_inplace(logits, mask.long())
    with pytest.raises(TypeError, match="int32"):
        apply_bitmask_inplace(logits, mask.numpy().astype(np.int64))
    with pytest.raises(TypeError, match="floating-point"):
        apply_bitmask_inplace(torch.zeros(3, 64, dtype=torch.int32), mask)
    with pytest.raises(TypeError, match="torch.Tensor"):
        apply_bitmask_inplace(np.zeros((3, 64), np.float32), mask)
    with pytest.raises(ValueError, match="2 rows for 3 logit rows"):
        apply_bitmask_inplace(logits, mask[:2])
    with pytest.raises(ValueError, match="1-D"):
        apply_bitmask_inplace(torch.zeros(1, 3, 64), mask)
    with pytest.raises(ValueError, match="1-D"):
        apply_bitmask_inplace(logits, torch.zeros(1, 3, 2, dtype=torch.int32))
    with pytest.raises(IndexError, match="index 3 out of range"):
        apply_bitmask_inplace(logits, mask, [0, 3])
    with pytest.raises(IndexError, match="index -1 out of range"):
        apply_bitmask_inplace(logits, mask, [-1])
    with pytest.raises(IndexError, match="index 2 out of range"):  # within the logits, past the mask
        apply_bitmask_inplace(logits, mask[:2], [2])
    with pytest.raises(TypeError, match="integers"):
        apply_bitmask_inplace(logits, mask, [0.5])
    with pytest.raises(TypeError, match="integers"):
        apply_bitmask_inplace(logits, mask, torch.tensor([True, False]))
    with pytest.raises(ValueError, match="backend"):
        apply_bitmask_with_backend(logits, mask, backend="gpu")
    with pytest.raises(ValueError, match="cannot handle"):
        apply_bitmask_with_backend(logits.double(), mask, backend="cpu")
    with pytest.raises(ValueError, match="cannot handle"):
        apply_bitmask_with_backend(logits, mask, backend="cuda")
    assert torch.equal(logits, torch.zeros(3, 64))  # nothing was written by the failed calls


# ------------------------------------------------------------------------------------------ CUDA kernel


def _nvcc_or_skip() -> str:
    if NVCC is None:
        pytest.skip("nvcc not found: CUDA kernel not compiled here")
    return NVCC


def test_cuda_kernel_compiles(tmp_path):
    nvcc = _nvcc_or_skip()
    out = tmp_path / "apply_bitmask.o"
    proc = subprocess.run([nvcc, "-std=c++17", "-arch=sm_80", "-Xcompiler", "-Wall,-Wextra", "-c", str(CUDA_SRC),
                           "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
    assert "warning" not in proc.stderr.lower(), proc.stderr


def test_cuda_binding_compiles():
    """csrc/cuda/bindings.cpp is plain C++ (no CUDA or torch headers): a syntax check with nanobind suffices."""
    cxx = shutil.which(os.environ.get("CXX", "c++"))
    if cxx is None:
        pytest.skip("no C++ compiler")
    import nanobind

    proc = subprocess.run([cxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", f"-I{nanobind.include_dir()}",
                           f"-I{sysconfig.get_paths()['include']}", str(ROOT / "csrc" / "cuda" / "bindings.cpp")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    nvcc = _nvcc_or_skip()
    exe = tmp_path_factory.mktemp("cuda") / "emulate_apply_bitmask"
    proc = subprocess.run([nvcc, "-std=c++17", "-arch=sm_80", "-o", str(exe), str(EMULATOR_SRC)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return exe


def run_emulator(exe: Path, workdir: Path, base: torch.Tensor, view: torch.Tensor, mask_base: torch.Tensor,
                 mask: torch.Tensor, indices) -> tuple[int, torch.Tensor]:
    """Runs the kernel's thread code over its grid on the host; returns (exit code, new contents of base)."""
    assert base.is_contiguous() and mask_base.is_contiguous() and mask.storage_offset() == 0
    bits = torch.int32 if base.dtype == torch.float32 else torch.int16
    view2d = view.unsqueeze(0) if view.dim() == 1 else view
    mask2d = mask.reshape(1, -1) if mask.dim() == 1 else mask
    base.view(bits).numpy().tofile(workdir / "logits.bin")
    mask_base.numpy().tofile(workdir / "mask.bin")
    idx = np.asarray([] if indices is None else indices, dtype=np.int64)
    idx.tofile(workdir / "idx.bin")
    args = [DTYPE_CODE[base.dtype], *view2d.shape, *view2d.stride(), view.storage_offset(), *mask2d.shape,
            *mask2d.stride(), int(indices is not None), idx.size]
    proc = subprocess.run([str(exe), *map(str, args), str(workdir / "logits.bin"), str(workdir / "mask.bin"),
                           str(workdir / "idx.bin")], capture_output=True, text=True, timeout=60)
    out = torch.from_numpy(np.fromfile(workdir / "logits.bin", dtype=np.int32 if bits == torch.int32 else np.int16))
    return proc.returncode, out.view(base.dtype).reshape(base.shape)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:4])) + f"-idx{c[4]}")
def test_cuda_kernel_emulated_matches_reference(emulator, tmp_path, dtype, case):
    rows, width, mask_rows, words, indices = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    mask = random_mask(mask_rows, words, rng)
    base = random_logits((rows, width), dtype, rng)
    expected = base.clone()
    reference_inplace(expected, mask, indices)
    rc, out = run_emulator(emulator, tmp_path, base, base, mask, mask, indices)
    assert rc == 0
    assert torch.equal(out, expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_kernel_emulated_strided_and_guards(emulator, tmp_path, dtype):
    rng = np.random.default_rng(12)
    # A view inside a wider buffer, a mask with every other word, 3000 columns (several column blocks).
    base = random_logits((5, 3100), dtype, rng)
    view = base[1:5, 7:3007]
    mask_base = random_mask(4, 190, rng)
    mask = mask_base[:, ::2]
    expected = base.clone()
    reference_inplace(expected[1:5, 7:3007], mask, [3, 1])
    rc, out = run_emulator(emulator, tmp_path, base, view, mask_base, mask, [3, 1])
    assert rc == 0 and torch.equal(out, expected)
    # Transposed logits (column stride != 1) and a 1-D view.
    base = random_logits((300, 3), dtype, rng)
    mask_base = random_mask(3, 10, rng)
    expected = base.clone()
    reference_inplace(expected.t(), mask_base)
    rc, out = run_emulator(emulator, tmp_path, base, base.t(), mask_base, mask_base, None)
    assert rc == 0 and torch.equal(out, expected)
    # The kernel itself never writes out of bounds: out-of-range indices are skipped (the Python API
    # refuses them before launching).
    base = random_logits((3, 100), dtype, rng)
    mask_base = random_mask(3, 4, rng)
    expected = base.clone()
    reference_inplace(expected, mask_base, [1])
    rc, out = run_emulator(emulator, tmp_path, base, base, mask_base, mask_base, [1, 3, -1, 1 << 40])
    assert rc == 0 and torch.equal(out, expected)
    short = mask_base[:2].contiguous()  # row 2 exists in the logits but not in the mask: skipped
    expected = base.clone()
    reference_inplace(expected, short, [0])
    rc, out = run_emulator(emulator, tmp_path, base, base, short, short, [2, 0])
    assert rc == 0 and torch.equal(out, expected)
    # Host-side validation: too few mask rows without indices.
    rc, _ = run_emulator(emulator, tmp_path, base, base, short, short, None)
    assert rc == 3


@pytest.mark.slow
def test_cuda_extension_builds(tmp_path):
    """Configures the project with GDECODE_CUDA=ON and builds the _cuda module (the CMake block, nanobind
    binding and link against the static CUDA runtime); imports it. Launching needs a GPU."""
    _nvcc_or_skip()
    cmake, ninja = shutil.which("cmake"), shutil.which("ninja")
    if cmake is None or ninja is None:
        pytest.skip("cmake/ninja not found")
    build = tmp_path / "build"
    cfg = subprocess.run([cmake, "-S", str(ROOT), "-B", str(build), "-G", "Ninja", "-DGDECODE_CUDA=ON",
                          "-DGDECODE_CUDA_ARCHITECTURES=80", f"-DPython_EXECUTABLE={sys.executable}"],
                         capture_output=True, text=True, timeout=600)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    assert "building the CUDA bitmask kernel" in cfg.stdout
    bld = subprocess.run([cmake, "--build", str(build), "--target", "_cuda", "-j2"], capture_output=True,
                         text=True, timeout=1200)
    assert bld.returncode == 0, bld.stdout + bld.stderr
    code = ("import _cuda; assert (_cuda.FLOAT32, _cuda.FLOAT16, _cuda.BFLOAT16) == (0, 1, 2);"
            "_cuda.apply_bitmask(0, 0, 0, 8, 8, 1, 0, 0, 1, 1, 1, False, 0, 0, 0)")  # nothing to launch
    run = subprocess.run([sys.executable, "-c", code], cwd=build, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


# ------------------------------------------------------------------------------------------ CUDA dispatch


class HostKernel:
    """Stands in for gdecode._cuda: reads the raw pointers, shapes and strides it is given as host memory and
    applies the mask with numpy, so the arguments bitmask.py passes to the real kernel are checked here."""

    def __init__(self):
        self.streams = []

    @staticmethod
    def _array(ptr, dtype, shape, strides):
        itemsize = np.dtype(dtype).itemsize
        span = 1 + sum((n - 1) * st for n, st in zip(shape, strides, strict=True)) if all(shape) else 0
        base = np.frombuffer((ctypes.c_char * (span * itemsize)).from_address(ptr), dtype=dtype)
        return np.lib.stride_tricks.as_strided(base, shape, [st * itemsize for st in strides])

    def apply_bitmask(self, logits, dtype, logit_rows, width, logit_row_stride, logit_col_stride, bitmask,
                      mask_rows, mask_words, mask_row_stride, mask_col_stride, has_indices, indices, num_indices,
                      stream):
        self.streams.append(stream)
        bits, neg_inf = [(np.uint32, 0xFF800000), (np.uint16, 0xFC00), (np.uint16, 0xFF80)][dtype]
        out = self._array(logits, bits, (logit_rows, width), (logit_row_stride, logit_col_stride))
        mask = self._array(bitmask, np.uint32, (mask_rows, mask_words), (mask_row_stride, mask_col_stride))
        rows = self._array(indices, np.int64, (num_indices,), (1,)) if has_indices else range(logit_rows)
        covered = np.arange(min(width, 32 * mask_words))
        for r in rows:
            keep = np.zeros(width, dtype=bool)
            keep[: covered.size] = (mask[r][covered // 32] >> (covered % 32).astype(np.uint32)) & 1 > 0
            out[r][~keep] = neg_inf


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_dispatch_passes_pointers_shapes_strides(monkeypatch, dtype):
    """No GPU needed: _apply_cuda on CPU tensors with a host stand-in for the kernel."""
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: types.SimpleNamespace(cuda_stream=77))
    rng = np.random.default_rng(21)
    for indices in (None, [2, 0], torch.tensor([1])):
        base = random_logits((4, 1000), dtype, rng)
        view = base[1:4, 5:905]
        mask_base = random_mask(3, 60, rng)
        mask = mask_base[:, ::2]
        expected = base.clone()
        reference_inplace(expected[1:4, 5:905], mask, indices)
        kernel = HostKernel()
        logits2d, mask2d, idx = bitmask_mod._prepare(view, mask, indices)
        bitmask_mod._apply_cuda(kernel, logits2d, mask2d, idx)
        assert kernel.streams == [77]
        assert torch.equal(base, expected)


def test_cuda_launch_failure_falls_back_to_torch(monkeypatch):
    class Failing:
        def apply_bitmask(self, *args):
            raise RuntimeError("apply_bitmask: kernel launch failed: no kernel image is available")

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: types.SimpleNamespace(cuda_stream=0))
    monkeypatch.setattr(bitmask_mod, "_cuda_kernel", Failing())
    rng = np.random.default_rng(22)
    logits = random_logits((2, 100), torch.float32, rng)
    mask = random_mask(2, 4, rng)
    expected = logits.clone()
    reference_inplace(expected, mask)
    with pytest.warns(RuntimeWarning, match="no kernel image"):
        bitmask_mod._run("cuda", logits, mask, None)
    assert torch.equal(logits, expected)
    assert bitmask_mod.cuda_kernel() is None  # disabled from now on


# ------------------------------------------------------------------------------------------ real GPU


def _gpu_or_skip():
    if not torch.cuda.is_available():
        pytest.skip("no GPU")
    if cuda_kernel() is None:
        pytest.skip("gdecode._cuda not built (install with GDECODE_CUDA=1)")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:4])) + f"-idx{c[4]}")
def test_cuda_kernel_matches_torch_path(dtype, case):
    _gpu_or_skip()
    rows, width, mask_rows, words, indices = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    mask = random_mask(mask_rows, words, rng)
    logits = random_logits((rows, width), dtype, rng)
    expected = logits.clone()
    reference_inplace(expected, mask, indices)
    on_gpu = logits.cuda()
    via_torch = on_gpu.clone()
    apply_bitmask_with_backend(on_gpu, mask.cuda(), indices, backend="cuda")
    apply_bitmask_with_backend(via_torch, mask.cuda(), indices, backend="torch")
    assert select_backend(on_gpu) == "cuda"
    torch.cuda.synchronize()
    assert torch.equal(on_gpu, via_torch)
    assert torch.equal(on_gpu.cpu(), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_kernel_strided_host_mask_and_device_indices(dtype):
    _gpu_or_skip()
    rng = np.random.default_rng(13)
    base = random_logits((5, 130000), dtype, rng)
    mask_base = random_mask(4, 8020, rng)
    expected = base.clone()
    reference_inplace(expected[1:5, 7:128263], mask_base[:, :4008], [3, 1])
    gpu = base.cuda()
    apply_bitmask_inplace(gpu[1:5, 7:128263], mask_base[:, :4008], torch.tensor([3, 1], device="cuda"))
    torch.cuda.synchronize()
    assert torch.equal(gpu.cpu(), expected)
