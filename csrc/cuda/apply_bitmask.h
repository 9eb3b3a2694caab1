// Host-side interface of the CUDA bitmask kernel (csrc/cuda/apply_bitmask.cu). Plain C++: includes neither
// CUDA nor torch headers, so the nanobind binding (bindings.cpp) is compiled by the host compiler alone.
//
// All pointers are raw device addresses passed as integers (torch: tensor.data_ptr()); strides are in
// elements. Token t of a mask row is allowed iff (word[t / 32] >> (t % 32)) & 1; disallowed logits and logit
// columns past words * 32 become -inf, allowed logits are left untouched.
#pragma once

#include <cstdint>

namespace gdecode::cuda {

enum DTypeCode : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

struct ApplyBitmaskArgs {
  uintptr_t logits = 0;  // float32 / float16 / bfloat16 [logit_rows, width]
  int dtype = kFloat32;
  int64_t logit_rows = 0;
  int64_t width = 0;
  int64_t logit_row_stride = 0;
  int64_t logit_col_stride = 1;
  uintptr_t bitmask = 0;  // int32 [mask_rows, mask_words]
  int64_t mask_rows = 0;
  int64_t mask_words = 0;
  int64_t mask_row_stride = 0;
  int64_t mask_col_stride = 1;
  // has_indices == false: mask row i applies to logit row i, for every logit row. Otherwise only logit rows
  // indices[k] (int64, device memory) are masked, each by the mask row of the same index.
  bool has_indices = false;
  uintptr_t indices = 0;
  int64_t num_indices = 0;
  uintptr_t stream = 0;  // cudaStream_t as an integer; 0 = the legacy default stream
};

// Validates the arguments (std::invalid_argument), launches on args.stream (asynchronous) and reports launch
// errors (std::runtime_error). Indices are not range-checked on the host (they live on the device); the kernel
// skips out-of-range rows instead of writing out of bounds.
void launch_apply_bitmask(const ApplyBitmaskArgs& args);

}  // namespace gdecode::cuda
