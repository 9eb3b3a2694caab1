// Token slices: fixed sets of tokens that many lexer states accept whole (an idea from llguidance).
//
// Most of a vocabulary is plain text: no `"`, no `\`, no control character. Inside a free JSON string
// every such token keeps the lexeme going, so walking the whole trie to find that out is wasted work
// (milliseconds at 128k tokens, on every first visit of a lexer state). A slice is one such token set,
// bounded by a character count so that `maxLength` counters can use it too. A lexer state that keeps
// every string of the slice alive (CompiledGrammar::slice_fits) takes the slice's bits at once and walks
// only the trie of the other tokens.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/token_trie.hpp"

namespace gdecode {

// The UTF-8 byte automaton of "slice characters": Unicode scalar values other than `"`, `\`,
// U+0000-U+001F and U+007F. State kStart is "between characters"; other states wait for continuation bytes.
struct SliceChars {
  static constexpr uint8_t kStart = 0;
  static constexpr uint8_t kNumStates = 8;
  static constexpr uint8_t kReject = 0xff;
  static uint8_t step(uint8_t state, uint8_t byte);
  // The bytes `step` can accept in `state`, as one inclusive range (every state's set is one range,
  // minus the few excluded ASCII bytes at kStart).
  static std::pair<uint8_t, uint8_t> byte_range(uint8_t state);
  // Characters in `bytes` if it is a non-empty string of slice characters, else -1.
  static int32_t count(const std::string& bytes);
};

struct TokenSlice {
  uint32_t max_chars = 0;       // tokens of 1..max_chars slice characters; 0 = any length
  std::vector<uint32_t> words;  // packed bitmask of the slice's tokens (logit width)
  std::unique_ptr<TokenTrie> rest;  // every other token that the vocabulary trie holds
};

class TokenSlices {
 public:
  // Widest first: a lexer state uses the first slice it fits.
  static constexpr std::array<uint32_t, 4> kMaxChars = {0, 16, 8, 4};

  // `excluded[i]`: id i is not in the vocabulary trie (special, EOS, empty). Only character counts are
  // computed here; a slice's bitmask and trie are built on first use (many grammars never need them).
  TokenSlices(const std::vector<std::string>& tokens, const std::vector<uint8_t>& excluded, size_t num_words);
  TokenSlices(const TokenSlices&) = delete;
  TokenSlices& operator=(const TokenSlices&) = delete;

  static constexpr size_t size() { return kMaxChars.size(); }
  const TokenSlice& get(size_t k) const;  // thread-safe

 private:
  static constexpr int32_t kExcluded = -2;
  const std::vector<std::string>& tokens_;  // owned by the Vocabulary, which owns this
  std::vector<int32_t> chars_;              // per id: SliceChars::count (-1: not slice text), or kExcluded
  size_t num_words_;
  mutable std::array<TokenSlice, kMaxChars.size()> slices_;
  mutable std::array<std::once_flag, kMaxChars.size()> built_;
};

}  // namespace gdecode
