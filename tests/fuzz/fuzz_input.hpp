// Decoding of fuzzer inputs into core objects. Every byte string decodes to *something* (reads past the
// end give 0), so the fuzzer never wastes time on rejected framing; the core itself must reject bad specs.
//
// Numbers are LEB128 varints (signed ones zigzag-encoded). Layout, shared with make_corpus.py:
//   grammar: n_flat, flat[n_flat] (signed) | n_terminals, per terminal: regex root (signed), ignored (u8),
//            n_special, special ids | num_nonterminals | n_prods, per prod: lhs, n_rhs, rhs | start symbol
//   vocab:   n_tokens, per token: length, bytes | extra logit width | n_eos, eos ids
//   ops:     the remaining bytes (interpreted by each target)
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/grammar.hpp"
#include "core/vocab.hpp"

namespace gdfuzz {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }
  uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
  uint64_t u() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = byte();
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    return v;
  }
  int64_t s() {
    uint64_t z = u();
    return int64_t(z >> 1) ^ -int64_t(z & 1);
  }
  // A count, clamped so one input cannot ask for gigabytes (the clamp is the fuzzer's, not the core's).
  size_t count(size_t cap) {
    uint64_t n = u();
    return n > cap ? cap : size_t(n);
  }
  std::string bytes(size_t n) {
    size_t avail = size_t(end_ - p_);
    if (n > avail) n = avail;
    std::string out(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return out;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

struct Caps {
  size_t flat = 1 << 16, terminals = 1 << 12, specials = 4, nonterminals = 1 << 14, prods = 1 << 15,
         rhs = 64, tokens = 4096, token_len = 64, extra_width = 64, eos = 4;
};

inline gdecode::GrammarSpec read_spec(Reader& r, const Caps& caps = Caps()) {
  gdecode::GrammarSpec spec;
  size_t n = r.count(caps.flat);
  spec.regex_flat.reserve(n);
  for (size_t i = 0; i < n; ++i) spec.regex_flat.push_back(r.s());
  size_t nt = r.count(caps.terminals);
  for (size_t t = 0; t < nt; ++t) {
    spec.terminal_regex.push_back(r.s());
    spec.terminal_ignored.push_back(r.byte() & 1);
    std::vector<uint32_t> special;
    size_t ns = r.count(caps.specials);
    for (size_t k = 0; k < ns; ++k) special.push_back(uint32_t(r.u()));
    spec.terminal_tokens.push_back(std::move(special));
  }
  spec.num_nonterminals = uint32_t(r.count(caps.nonterminals));
  size_t np = r.count(caps.prods);
  for (size_t p = 0; p < np; ++p) {
    spec.prod_lhs.push_back(uint32_t(r.u()));
    size_t len = r.count(caps.rhs);
    std::vector<uint32_t> rhs;
    for (size_t k = 0; k < len; ++k) rhs.push_back(uint32_t(r.u()));
    spec.prod_rhs.push_back(std::move(rhs));
  }
  spec.start_symbol = uint32_t(r.u());
  return spec;
}

// Special-token ids never carry grammar bytes (gdecode.TokenizerInfo.excluded_ids does the same), and are
// kept apart from EOS, as the tokenizer layer guarantees.
inline std::shared_ptr<gdecode::Vocabulary> read_vocab(Reader& r, const gdecode::GrammarSpec& spec,
                                                       const Caps& caps = Caps()) {
  std::vector<std::string> tokens;
  size_t n = r.count(caps.tokens);
  for (size_t i = 0; i < n; ++i) tokens.push_back(r.bytes(r.count(caps.token_len)));
  size_t width = tokens.size() + r.count(caps.extra_width);
  std::vector<uint32_t> eos;
  size_t ne = r.count(caps.eos);
  for (size_t i = 0; i < ne; ++i) eos.push_back(uint32_t(r.u() % (width + 1)));  // may be out of range
  std::vector<uint32_t> excluded;
  for (const auto& ids : spec.terminal_tokens)
    for (uint32_t id : ids) excluded.push_back(id);
  std::vector<uint32_t> kept;
  for (uint32_t e : eos)
    if (std::find(excluded.begin(), excluded.end(), e) == excluded.end()) kept.push_back(e);
  eos.swap(kept);
  return std::make_shared<gdecode::Vocabulary>(std::move(tokens), width, std::move(eos), std::move(excluded));
}

inline gdecode::Limits fuzz_limits() {
  gdecode::Limits l;
  l.max_nfa_states = 20'000;
  l.max_dfa_states = 2'000;
  l.max_items_per_set = 20'000;
  l.max_chart_items = 400'000;
  l.max_rollback = 16;
  l.mask_cache_bytes = 8u << 20;
  l.state_cache_bytes = 8u << 20;
  l.max_compile_seconds = 5;
  return l;
}

}  // namespace gdfuzz
