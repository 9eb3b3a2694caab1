// Test harness (tests/test_bitmask.py): runs the CUDA kernel's per-thread code on the host, block by block and
// thread by thread over the same grid the launcher uses, so the kernel's indexing is checked on machines
// without a GPU. No CUDA API is called.
//
// usage: emulate_apply_bitmask DTYPE LOGIT_ROWS WIDTH LOGIT_ROW_STRIDE LOGIT_COL_STRIDE LOGIT_OFFSET
//            MASK_ROWS MASK_WORDS MASK_ROW_STRIDE MASK_COL_STRIDE HAS_INDICES NUM_INDICES
//            LOGITS_FILE MASK_FILE INDICES_FILE
// LOGITS_FILE (the whole underlying buffer; the view starts LOGIT_OFFSET elements in) is rewritten in place.
#include "../../csrc/cuda/apply_bitmask.cu"

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

std::vector<char> read_file(const char* path) {
  std::vector<char> data;
  FILE* f = std::fopen(path, "rb");
  if (!f) return data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + n);
  std::fclose(f);
  return data;
}

template <typename Bits>
void emulate(gdecode::cuda::ApplyBitmaskArgs a, std::vector<char>& logits, int64_t offset, Bits neg_inf) {
  using namespace gdecode::cuda;
  a.logits = reinterpret_cast<uintptr_t>(reinterpret_cast<Bits*>(logits.data()) + offset);
  const Params<Bits> p = make_params<Bits>(a, neg_inf);
  const Grid g = grid_for(p.num_slots, p.width);
  for (int64_t by = 0; by < g.y; ++by)
    for (int64_t bx = 0; bx < g.x; ++bx)
      for (int64_t slot = by; slot < p.num_slots; slot += g.y)  // the kernel's grid-stride loop over rows
        for (int t = 0; t < kThreads; ++t) apply_block_thread<Bits>(p, slot, bx, t);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 16) {
    std::fprintf(stderr, "expected 15 arguments, got %d\n", argc - 1);
    return 2;
  }
  gdecode::cuda::ApplyBitmaskArgs a;
  a.dtype = std::atoi(argv[1]);
  a.logit_rows = std::atoll(argv[2]);
  a.width = std::atoll(argv[3]);
  a.logit_row_stride = std::atoll(argv[4]);
  a.logit_col_stride = std::atoll(argv[5]);
  const int64_t offset = std::atoll(argv[6]);
  a.mask_rows = std::atoll(argv[7]);
  a.mask_words = std::atoll(argv[8]);
  a.mask_row_stride = std::atoll(argv[9]);
  a.mask_col_stride = std::atoll(argv[10]);
  a.has_indices = std::atoi(argv[11]) != 0;
  a.num_indices = std::atoll(argv[12]);
  std::vector<char> logits = read_file(argv[13]);
  std::vector<char> mask = read_file(argv[14]);
  std::vector<char> indices = read_file(argv[15]);
  a.bitmask = reinterpret_cast<uintptr_t>(mask.data());
  a.indices = reinterpret_cast<uintptr_t>(indices.data());
  try {
    gdecode::cuda::validate(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 3;
  }
  gdecode::cuda::with_dtype(a.dtype, [&](auto neg_inf) { emulate(a, logits, offset, neg_inf); });
  FILE* f = std::fopen(argv[13], "wb");
  if (!f || std::fwrite(logits.data(), 1, logits.size(), f) != logits.size()) return 4;
  std::fclose(f);
  return 0;
}
