// CUDA kernel: apply packed int32 token bitmasks to logits in place (see apply_bitmask.h).
//
// Grid: x = column blocks of kColsPerBlock logits, y = launched rows (one per request, or one per entry of
// `indices`; rows past 65535 are strided). Within a block, thread t handles columns
// block_start + t + i * kThreads (i < kItems), so a warp touches 32 consecutive logits: one broadcast load of
// a mask word, one coalesced (predicated) store. The kernel only writes: allowed logits are never read or
// rewritten. float16 / bfloat16 are handled as 16-bit patterns, so no cuda_fp16 arithmetic is involved.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "apply_bitmask.h"

#if defined(__CUDACC__)
#define GDECODE_HD __host__ __device__
#else
#define GDECODE_HD
#endif

namespace gdecode::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kItems = 4;
constexpr int64_t kColsPerBlock = int64_t(kThreads) * kItems;
constexpr int64_t kMaxGridY = 65535;

template <typename Bits>
struct Params {
  Bits* logits;
  int64_t logit_rows, width, logit_row_stride, logit_col_stride;
  const uint32_t* mask;
  int64_t mask_rows, mask_words, mask_row_stride, mask_col_stride;
  const int64_t* indices;  // nullptr: slot k is row k
  int64_t num_slots;       // launched rows
  Bits neg_inf;
};

GDECODE_HD inline uint32_t load_word(const uint32_t* p) {
#if defined(__CUDA_ARCH__)
  return __ldg(p);
#else
  return *p;
#endif
}

// The work of thread `thread_x` of block (block_x, slot). Host-callable so tests can emulate the grid on a
// machine without a GPU (tests/cuda/emulate_apply_bitmask.cu).
template <typename Bits>
GDECODE_HD inline void apply_block_thread(const Params<Bits>& p, int64_t slot, int64_t block_x, int thread_x) {
  const int64_t row = p.indices != nullptr ? p.indices[slot] : slot;
  if (row < 0 || row >= p.logit_rows || row >= p.mask_rows) return;  // callers validate; never write OOB
  Bits* out = p.logits + row * p.logit_row_stride;
  const uint32_t* mrow = p.mask + row * p.mask_row_stride;
  const int64_t first = block_x * kColsPerBlock + thread_x;
  for (int i = 0; i < kItems; ++i) {
    const int64_t col = first + int64_t(i) * kThreads;
    if (col >= p.width) return;
    const int64_t word = col >> 5;
    const uint32_t bits = word < p.mask_words ? load_word(mrow + word * p.mask_col_stride) : 0u;
    if (!((bits >> (col & 31)) & 1u)) out[col * p.logit_col_stride] = p.neg_inf;
  }
}

template <typename Bits>
__global__ void __launch_bounds__(kThreads) apply_bitmask_kernel(Params<Bits> p) {
  for (int64_t slot = blockIdx.y; slot < p.num_slots; slot += gridDim.y)
    apply_block_thread<Bits>(p, slot, blockIdx.x, int(threadIdx.x));
}

struct Grid {
  int64_t x, y;
};

inline Grid grid_for(int64_t num_slots, int64_t width) {
  return Grid{(width + kColsPerBlock - 1) / kColsPerBlock, num_slots < kMaxGridY ? num_slots : kMaxGridY};
}

template <typename Bits>
Params<Bits> make_params(const ApplyBitmaskArgs& a, Bits neg_inf) {
  Params<Bits> p;
  p.logits = reinterpret_cast<Bits*>(a.logits);
  p.logit_rows = a.logit_rows;
  p.width = a.width;
  p.logit_row_stride = a.logit_row_stride;
  p.logit_col_stride = a.logit_col_stride;
  p.mask = reinterpret_cast<const uint32_t*>(a.bitmask);
  p.mask_rows = a.mask_rows;
  p.mask_words = a.mask_words;
  p.mask_row_stride = a.mask_row_stride;
  p.mask_col_stride = a.mask_col_stride;
  p.indices = a.has_indices ? reinterpret_cast<const int64_t*>(a.indices) : nullptr;
  p.num_slots = a.has_indices ? a.num_indices : a.logit_rows;
  p.neg_inf = neg_inf;
  return p;
}

template <typename Bits>
void launch(const ApplyBitmaskArgs& a, Bits neg_inf) {
  const Params<Bits> p = make_params<Bits>(a, neg_inf);
  const Grid g = grid_for(p.num_slots, p.width);
  if (g.x > 0x7FFFFFFF) throw std::invalid_argument("apply_bitmask: logits too wide for one launch");
  dim3 grid(static_cast<unsigned>(g.x), static_cast<unsigned>(g.y));
  apply_bitmask_kernel<Bits><<<grid, kThreads, 0, reinterpret_cast<cudaStream_t>(a.stream)>>>(p);
}

// Calls f(neg_inf) where neg_inf is the -inf bit pattern of `dtype` in its storage type (uint32_t / uint16_t).
template <typename F>
void with_dtype(int dtype, F&& f) {
  switch (dtype) {
    case kFloat32:
      f(uint32_t(0xFF800000u));  // binary32 -inf
      return;
    case kFloat16:
      f(uint16_t(0xFC00u));  // binary16 -inf
      return;
    case kBFloat16:
      f(uint16_t(0xFF80u));  // bfloat16 -inf
      return;
  }
  throw std::invalid_argument("apply_bitmask: dtype code must be 0 (float32), 1 (float16) or 2 (bfloat16)");
}

void validate(const ApplyBitmaskArgs& a) {
  if (a.logit_rows < 0 || a.width < 0 || a.mask_rows < 0 || a.mask_words < 0 || a.num_indices < 0)
    throw std::invalid_argument("apply_bitmask: negative shape");
  if (a.logit_row_stride < 0 || a.logit_col_stride < 0 || a.mask_row_stride < 0 || a.mask_col_stride < 0)
    throw std::invalid_argument("apply_bitmask: negative strides are not supported");
  if (a.dtype != kFloat32 && a.dtype != kFloat16 && a.dtype != kBFloat16)
    throw std::invalid_argument("apply_bitmask: dtype code must be 0 (float32), 1 (float16) or 2 (bfloat16)");
  if (!a.has_indices && a.mask_rows < a.logit_rows)
    throw std::invalid_argument("apply_bitmask: bitmask has " + std::to_string(a.mask_rows) + " rows for " +
                                std::to_string(a.logit_rows) + " logit rows");
  if (a.has_indices && a.num_indices > 0 && a.indices == 0)
    throw std::invalid_argument("apply_bitmask: null indices pointer");
}

}  // namespace

void launch_apply_bitmask(const ApplyBitmaskArgs& a) {
  validate(a);
  const int64_t slots = a.has_indices ? a.num_indices : a.logit_rows;
  if (slots == 0 || a.width == 0) return;
  if (a.logits == 0 || (a.bitmask == 0 && a.mask_words > 0))
    throw std::invalid_argument("apply_bitmask: null data pointer");
  with_dtype(a.dtype, [&](auto neg_inf) { launch(a, neg_inf); });
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("apply_bitmask: kernel launch failed: ") + cudaGetErrorString(err));
}

}  // namespace gdecode::cuda
