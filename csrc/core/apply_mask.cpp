// See apply_mask.hpp. The contiguous path works on 32-element groups (one mask word): all-allowed words are
// skipped without touching the logits, all-disallowed words are plain stores, and mixed words are blended
// branch-free, 16 bytes at a time.
#include "core/apply_mask.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace gdecode {
namespace {

constexpr uint32_t kNegInfF32 = 0xFF800000u;   // IEEE binary32 -inf
constexpr uint16_t kNegInfF16 = 0xFC00u;       // IEEE binary16 -inf
constexpr uint16_t kNegInfBF16 = 0xFF80u;      // bfloat16 -inf

// One mask word against 32 logits: element k keeps its value iff bit k of `word` is set.
template <typename Bits>
inline void apply_word(Bits* __restrict p, uint32_t word, Bits neg_inf) {
  if (word == 0) {  // nothing allowed: plain stores, no loads
    for (int k = 0; k < 32; ++k) p[k] = neg_inf;
    return;
  }
#if defined(__GNUC__) || defined(__clang__)
  // 16-byte generic vectors: SSE2 on x86-64, NEON on aarch64 (no -march flags needed). Per lane: broadcast
  // the word, test the lane's bit, blend the old value with -inf.
  if constexpr (sizeof(Bits) == 4) {
    typedef uint32_t V __attribute__((vector_size(16)));
    const V ninf = {neg_inf, neg_inf, neg_inf, neg_inf};
    const V w = {word, word, word, word};
    for (int g = 0; g < 8; ++g) {
      const V sel = {1u << (4 * g), 1u << (4 * g + 1), 1u << (4 * g + 2), 1u << (4 * g + 3)};
      const V keep = (V)((w & sel) == sel);
      V x;
      __builtin_memcpy(&x, p + 4 * g, sizeof x);
      x = (x & keep) | (ninf & ~keep);
      __builtin_memcpy(p + 4 * g, &x, sizeof x);
    }
  } else {
    typedef uint16_t V __attribute__((vector_size(16)));
    const V ninf = {neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf};
    for (int h = 0; h < 2; ++h) {
      const uint16_t half = uint16_t(word >> (16 * h));
      const V w = {half, half, half, half, half, half, half, half};
      for (int g = 0; g < 2; ++g) {
        const int b = 8 * g;
        const V sel = {uint16_t(1u << b),       uint16_t(1u << (b + 1)), uint16_t(1u << (b + 2)),
                       uint16_t(1u << (b + 3)), uint16_t(1u << (b + 4)), uint16_t(1u << (b + 5)),
                       uint16_t(1u << (b + 6)), uint16_t(1u << (b + 7))};
        const V keep = (V)((w & sel) == sel);
        V x;
        __builtin_memcpy(&x, p + 16 * h + b, sizeof x);
        x = (x & keep) | (ninf & ~keep);
        __builtin_memcpy(p + 16 * h + b, &x, sizeof x);
      }
    }
  }
#else
  for (int k = 0; k < 32; ++k)
    if (!((word >> k) & 1u)) p[k] = neg_inf;
#endif
}

template <typename Bits>
void apply_row(Bits* out, const LogitsView& lv, const uint32_t* mrow, const BitmaskView& mv, Bits neg_inf) {
  const int64_t width = lv.width;
  const int64_t covered = std::min<int64_t>(width, mv.words * 32);  // columns the mask has bits for
  int64_t col = 0;
  if (lv.col_stride == 1 && mv.col_stride == 1) {
    const int64_t full_words = covered / 32;
    for (int64_t w = 0; w < full_words; ++w) {
      uint32_t word = mrow[w];
      if (word == ~0u) continue;  // all allowed: no write at all
      apply_word<Bits>(out + w * 32, word, neg_inf);
    }
    col = full_words * 32;
    for (; col < covered; ++col)
      if (!((mrow[col >> 5] >> (col & 31)) & 1u)) out[col] = neg_inf;
    for (; col < width; ++col) out[col] = neg_inf;
    return;
  }
  // Generic strided path (rare: transposed or sliced views).
  for (; col < covered; ++col)
    if (!((mrow[(col >> 5) * mv.col_stride] >> (col & 31)) & 1u)) out[col * lv.col_stride] = neg_inf;
  for (; col < width; ++col) out[col * lv.col_stride] = neg_inf;
}

template <typename Bits>
void apply_rows(const LogitsView& lv, const BitmaskView& mv, const int64_t* indices, size_t num_indices,
                Bits neg_inf) {
  Bits* base = static_cast<Bits*>(lv.data);
  if (indices == nullptr) {
    for (int64_t r = 0; r < lv.rows; ++r)
      apply_row<Bits>(base + r * lv.row_stride, lv, mv.data + r * mv.row_stride, mv, neg_inf);
    return;
  }
  for (size_t k = 0; k < num_indices; ++k) {
    int64_t r = indices[k];
    apply_row<Bits>(base + r * lv.row_stride, lv, mv.data + r * mv.row_stride, mv, neg_inf);
  }
}

}  // namespace

void apply_bitmask_cpu(const LogitsView& logits, const BitmaskView& mask, const int64_t* indices,
                       size_t num_indices) {
  if (logits.rows < 0 || logits.width < 0 || mask.rows < 0 || mask.words < 0)
    throw std::invalid_argument("apply_bitmask: negative shape");
  if (logits.row_stride < 0 || logits.col_stride < 0 || mask.row_stride < 0 || mask.col_stride < 0)
    throw std::invalid_argument("apply_bitmask: negative strides are not supported");
  if (indices == nullptr) {
    if (mask.rows < logits.rows)
      throw std::invalid_argument("apply_bitmask: bitmask has " + std::to_string(mask.rows) + " rows for " +
                                  std::to_string(logits.rows) + " logit rows");
  } else {
    for (size_t k = 0; k < num_indices; ++k) {
      int64_t r = indices[k];
      if (r < 0 || r >= logits.rows || r >= mask.rows)
        throw std::out_of_range("apply_bitmask: index " + std::to_string(r) + " out of range for " +
                                std::to_string(logits.rows) + " logit rows and " + std::to_string(mask.rows) +
                                " bitmask rows");
    }
  }
  if (logits.width == 0 || (indices == nullptr ? logits.rows == 0 : num_indices == 0)) return;
  if (logits.data == nullptr || (mask.data == nullptr && mask.words > 0))
    throw std::invalid_argument("apply_bitmask: null data pointer");
  switch (logits.dtype) {
    case LogitDType::kFloat32:
      apply_rows<uint32_t>(logits, mask, indices, num_indices, kNegInfF32);
      return;
    case LogitDType::kFloat16:
      apply_rows<uint16_t>(logits, mask, indices, num_indices, kNegInfF16);
      return;
    case LogitDType::kBFloat16:
      apply_rows<uint16_t>(logits, mask, indices, num_indices, kNegInfBF16);
      return;
  }
  throw std::invalid_argument("apply_bitmask: unsupported logits dtype");
}

}  // namespace gdecode
