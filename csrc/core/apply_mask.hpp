// Applying packed token bitmasks to CPU logits in place (plain C++17, no Python or torch types).
//
// Mask layout: 32-bit words, token t of a row is allowed iff (word[t / 32] >> (t % 32)) & 1. Disallowed
// logits become -inf; allowed ones are left untouched. Logit columns past the mask (logit width larger
// than words * 32) are disallowed. float16 / bfloat16 logits are handled as their 16-bit patterns, so no
// half-precision arithmetic is needed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gdecode {

enum class LogitDType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Strides are in elements (not bytes) and may be any non-negative value.
struct LogitsView {
  void* data = nullptr;
  LogitDType dtype = LogitDType::kFloat32;
  int64_t rows = 0;
  int64_t width = 0;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
};

struct BitmaskView {
  const uint32_t* data = nullptr;
  int64_t rows = 0;
  int64_t words = 0;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
};

// Without indices (indices == nullptr): mask row i applies to logit row i, for every logit row (the mask
// needs at least as many rows). With indices: only logit rows indices[k] are masked, each by the mask row of
// the same index; other rows are untouched. Throws std::invalid_argument / std::out_of_range on bad shapes
// or indices, before writing anything.
void apply_bitmask_cpu(const LogitsView& logits, const BitmaskView& mask, const int64_t* indices,
                       size_t num_indices);

}  // namespace gdecode
