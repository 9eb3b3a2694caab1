"""Applying packed int32 token bitmasks to logits, in place.

Mask layout: int32 ``[rows, ceil(V/32)]``; token t of a row is allowed iff ``(mask[row, t // 32] >> (t % 32)) & 1``.

Three implementations, chosen per call by :func:`select_backend`:

* ``"cuda"``: the CUDA kernel (``gdecode._cuda``, csrc/cuda/), for float32/float16/bfloat16 logits on a GPU, when
  the package was built with ``GDECODE_CUDA=1``;
* ``"cpu"``: the C++ core (``_core.apply_bitmask_cpu``, csrc/core/apply_mask.cpp), for float32/float16/bfloat16
  logits on the CPU; single-threaded SIMD-friendly C++ on zero-copy numpy views of the tensors, GIL released;
* ``"torch"``: vectorized torch ops, for everything else (other dtypes or devices, CUDA without the kernel,
  tensors that require grad or whose rows overlap in memory).

All three give identical results; tests/test_bitmask.py checks them against a naive reference.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch

from gdecode import _core

BACKENDS = ("cuda", "cpu", "torch")

_FAST_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}  # dtype codes of csrc/cuda/apply_bitmask.h

_cuda_kernel = None  # the gdecode._cuda module once imported; False when unavailable or disabled


def cuda_kernel():
    """The ``gdecode._cuda`` extension module, or None when it was not built (or failed at run time)."""
    global _cuda_kernel
    if _cuda_kernel is None:
        try:
            from gdecode import _cuda  # built only with GDECODE_CUDA=1 and nvcc present
        except ImportError:
            _cuda_kernel = False
        else:
            _cuda_kernel = _cuda
    return _cuda_kernel or None


def _fast_path_layout(logits: torch.Tensor) -> bool:
    """True when the C++/CUDA code may write ``logits`` (2-D view) in place: unit column stride, rows that do
    not overlap in memory, no autograd."""
    if logits.requires_grad or logits.dtype not in _FAST_DTYPES or logits.is_neg():
        return False
    rows, width = logits.shape
    if rows == 0 or width == 0:
        return True  # nothing to write
    return logits.stride(1) == 1 and (rows <= 1 or logits.stride(0) >= width)


def select_backend(logits: torch.Tensor) -> str:
    """The backend :func:`apply_bitmask_inplace` uses for these logits: ``"cuda"``, ``"cpu"`` or ``"torch"``."""
    view = logits.unsqueeze(0) if logits.dim() == 1 else logits
    if view.dim() != 2 or not _fast_path_layout(view):
        return "torch"
    if view.device.type == "cpu":
        return "cpu"
    if view.device.type == "cuda" and cuda_kernel() is not None:
        return "cuda"
    return "torch"


# ---------------------------------------------------------------------------------------------- validation


def _prepare(logits, bitmask, indices):
    """Checks the arguments; returns 2-D views ``(logits, bitmask)`` and the indices (None, an int64 1-D numpy
    array, or an int64 tensor on a GPU). Raises TypeError / ValueError / IndexError naming the problem."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got {logits.dtype}")
    if logits.dim() not in (1, 2):
        raise ValueError(f"logits must be 1-D [V] or 2-D [batch, V], got shape {tuple(logits.shape)}")
    if isinstance(bitmask, np.ndarray):
        if bitmask.dtype != np.int32:
            raise TypeError(f"bitmask must be int32, got numpy {bitmask.dtype}")
        bitmask = torch.from_numpy(bitmask)
    if not isinstance(bitmask, torch.Tensor):
        raise TypeError(f"bitmask must be an int32 torch.Tensor or numpy array, got {type(bitmask).__name__}")
    if bitmask.dtype != torch.int32:
        raise TypeError(f"bitmask must be int32, got {bitmask.dtype}")
    if bitmask.dim() not in (1, 2):
        raise ValueError(f"bitmask must be 1-D [words] or 2-D [rows, words], got shape {tuple(bitmask.shape)}")
    if logits.dim() == 1:
        logits = logits.unsqueeze(0)
    if bitmask.dim() == 1:
        bitmask = bitmask.unsqueeze(0)
    rows, mask_rows = logits.shape[0], bitmask.shape[0]
    if indices is None:
        if mask_rows < rows:
            raise ValueError(f"bitmask has {mask_rows} rows for {rows} logit rows")
        return logits, bitmask, None
    return logits, bitmask, _checked_indices(indices, rows, mask_rows)


def _checked_indices(indices, rows: int, mask_rows: int):
    """Indices as an int64 1-D numpy array (or a torch tensor when given one on a GPU), range-checked."""
    if isinstance(indices, torch.Tensor):
        if indices.dtype == torch.bool or indices.is_floating_point() or indices.is_complex():
            raise TypeError(f"indices must be integers, got {indices.dtype}")
        if indices.dim() > 1:
            raise ValueError(f"indices must be 1-D, got shape {tuple(indices.shape)}")
        idx = indices.reshape(-1).to(torch.int64)
        if idx.device.type == "cpu":
            arr = idx.numpy()
        else:  # checked on the device: one sync
            if idx.numel():
                lo, hi = (int(v) for v in torch.aminmax(idx))
                _check_range(lo, hi, rows, mask_rows)
            return idx.contiguous()
    else:
        arr = np.asarray(indices)
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got {arr.dtype}")
        if arr.ndim > 1:
            raise ValueError(f"indices must be 1-D, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr.reshape(-1), dtype=np.int64)
    if arr.size:
        _check_range(int(arr.min()), int(arr.max()), rows, mask_rows)
    return arr


def _check_range(lo: int, hi: int, rows: int, mask_rows: int) -> None:
    if lo < 0 or hi >= min(rows, mask_rows):
        bad = lo if lo < 0 else hi
        raise IndexError(f"index {bad} out of range for {rows} logit rows and {mask_rows} bitmask rows")


# ---------------------------------------------------------------------------------------------- backends


@functools.lru_cache(maxsize=16)
def _bit_positions(device: torch.device) -> torch.Tensor:
    return torch.arange(32, dtype=torch.int32, device=device)


def unpack_bitmask(bitmask: torch.Tensor, width: int) -> torch.Tensor:
    """Bool ``[rows, width]``: True where the token is allowed. Columns past the mask are False."""
    words = bitmask.shape[-1]
    bits = (bitmask.unsqueeze(-1) >> _bit_positions(bitmask.device)) & 1
    allowed = bits.reshape(*bitmask.shape[:-1], words * 32).bool()
    if width <= words * 32:
        return allowed[..., :width]
    pad = torch.zeros(*allowed.shape[:-1], width - words * 32, dtype=torch.bool, device=allowed.device)
    return torch.cat([allowed, pad], dim=-1)


def _index_tensor(idx, device: torch.device) -> torch.Tensor:
    if isinstance(idx, np.ndarray):
        idx = torch.from_numpy(idx)
    return idx.to(device, non_blocking=True)


def _apply_torch(logits: torch.Tensor, bitmask: torch.Tensor, idx) -> None:
    bitmask = bitmask.to(logits.device, non_blocking=True)
    width = logits.shape[-1]
    if idx is None:
        allowed = unpack_bitmask(bitmask[: logits.shape[0]], width)
        logits.masked_fill_(~allowed, float("-inf"))
        return
    idx = _index_tensor(idx, logits.device)
    allowed = unpack_bitmask(bitmask.index_select(0, idx), width)
    rows = logits.index_select(0, idx)
    rows.masked_fill_(~allowed, float("-inf"))
    logits.index_copy_(0, idx, rows)


def _apply_cpu(logits: torch.Tensor, bitmask: torch.Tensor, idx) -> None:
    # numpy views cross into C++ faster than DLPack capsules (~0.5 vs ~2 us each); bfloat16 has no numpy
    # dtype, so it goes as its int16 bit patterns with the dtype named.
    if bitmask.device.type != "cpu":
        bitmask = bitmask.cpu()
    if isinstance(idx, torch.Tensor):
        idx = idx.cpu().numpy()
    if logits.dtype == torch.bfloat16:
        _core.apply_bitmask_cpu(logits.view(torch.int16).numpy(), bitmask.numpy(), idx, "bfloat16")
    else:
        _core.apply_bitmask_cpu(logits.numpy(), bitmask.numpy(), idx)


def _apply_cuda(kernel, logits: torch.Tensor, bitmask: torch.Tensor, idx) -> None:
    device = logits.device
    if bitmask.device != device:
        bitmask = bitmask.to(device, non_blocking=True)
    if idx is not None:
        idx = _index_tensor(idx, device)  # pageable host memory: copied before this returns
    rows, width = logits.shape
    args = (logits.data_ptr(), _FAST_DTYPES[logits.dtype], rows, width, logits.stride(0), logits.stride(1),
            bitmask.data_ptr(), bitmask.shape[0], bitmask.shape[1], bitmask.stride(0), bitmask.stride(1),
            idx is not None, 0 if idx is None else idx.data_ptr(), 0 if idx is None else idx.numel())
    if device.index is None or device.index == torch.cuda.current_device():
        kernel.apply_bitmask(*args, torch.cuda.current_stream(device).cuda_stream)
    else:
        with torch.cuda.device(device):
            kernel.apply_bitmask(*args, torch.cuda.current_stream(device).cuda_stream)


def _run(backend: str, logits: torch.Tensor, bitmask: torch.Tensor, idx) -> None:
    global _cuda_kernel
    if logits.numel() == 0 or (idx is not None and len(idx) == 0):
        return
    if backend == "torch":
        _apply_torch(logits, bitmask, idx)
    elif backend == "cpu":
        _apply_cpu(logits, bitmask, idx)
    else:
        try:
            _apply_cuda(cuda_kernel(), logits, bitmask, idx)
        except RuntimeError as e:  # e.g. driver older than the CUDA runtime, no kernel image for this GPU
            if "kernel launch failed" not in str(e):
                raise
            warnings.warn(f"gdecode: CUDA bitmask kernel unavailable ({e}); using the torch path from now on",
                          RuntimeWarning, stacklevel=3)
            _cuda_kernel = False
            _apply_torch(logits, bitmask, idx)


# ---------------------------------------------------------------------------------------------- public API


def apply_bitmask_inplace(logits: torch.Tensor, bitmask: torch.Tensor, indices=None) -> None:
    """Set disallowed logits to -inf, in place.

    ``logits``: float ``[batch, V]`` (or ``[V]``); ``bitmask``: int32 ``[rows, ceil(V'/32)]`` (torch tensor or numpy
    array, any device; also 1-D). Without ``indices`` row i of the mask applies to row i of the logits (the mask
    needs at least as many rows). With ``indices`` (ints: list, numpy array or tensor), only those rows are
    masked, each by the mask row of the same index, and other rows are untouched (mixed constrained/unconstrained
    batches; the same convention as XGrammar and vLLM). Logit columns beyond the mask (logit width larger than
    the tokenizer) are disallowed. Runs the CUDA kernel, the C++ CPU code or torch ops (see the module doc).
    """
    logits2d, mask2d, idx = _prepare(logits, bitmask, indices)
    _run(select_backend(logits2d), logits2d, mask2d, idx)


def apply_bitmask_with_backend(logits: torch.Tensor, bitmask: torch.Tensor, indices=None, *,
                               backend: str) -> None:
    """:func:`apply_bitmask_inplace` with an explicit backend (``"cuda"``, ``"cpu"``, ``"torch"``); for tests and
    benchmarks. Raises ValueError when that backend cannot handle these logits."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    logits2d, mask2d, idx = _prepare(logits, bitmask, indices)
    if backend != "torch":
        fits = _fast_path_layout(logits2d) and logits2d.device.type == backend
        if not fits or (backend == "cuda" and cuda_kernel() is None):
            raise ValueError(f"backend {backend!r} cannot handle {logits.dtype} logits on {logits.device} "
                             f"with strides {tuple(logits.stride())}"
                             + (" (gdecode._cuda not built)" if backend == "cuda" and cuda_kernel() is None else ""))
    if backend == "cuda":
        # No silent fallback here: errors propagate.
        if logits2d.numel() and (idx is None or len(idx)):
            _apply_cuda(cuda_kernel(), logits2d, mask2d, idx)
        return
    _run(backend, logits2d, mask2d, idx)
