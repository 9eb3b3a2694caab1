// The tokenizer's vocabulary as the core sees it: token id -> exact bytes, logit width, EOS ids, trie.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/token_slices.hpp"
#include "core/token_trie.hpp"

namespace gdecode {

class Vocabulary {
 public:
  // `tokens[i]` = bytes of id i (size = tokenizer size <= vocab_size). `excluded` ids (special tokens,
  // padding, empty) never match grammar bytes; EOS ids are excluded automatically.
  Vocabulary(std::vector<std::string> tokens, size_t vocab_size, std::vector<uint32_t> eos_ids,
             std::vector<uint32_t> excluded);
  Vocabulary(const Vocabulary&) = delete;  // the slices refer to `tokens_`
  Vocabulary& operator=(const Vocabulary&) = delete;

  size_t vocab_size() const { return vocab_size_; }  // logit width
  size_t num_words() const { return (vocab_size_ + 31) / 32; }
  size_t num_tokens() const { return tokens_.size(); }
  const std::string& bytes(uint32_t id) const { return tokens_[id]; }
  bool is_eos(uint32_t id) const { return id < is_eos_.size() && is_eos_[id]; }
  bool is_excluded(uint32_t id) const { return id >= excluded_.size() || excluded_[id]; }
  const std::vector<uint32_t>& eos_ids() const { return eos_ids_; }
  const TokenTrie& trie() const { return trie_; }
  const TokenSlices& slices() const { return *slices_; }

 private:
  std::vector<std::string> tokens_;
  size_t vocab_size_;
  std::vector<uint32_t> eos_ids_;
  std::vector<uint8_t> is_eos_;
  std::vector<uint8_t> excluded_;
  TokenTrie trie_;
  std::unique_ptr<TokenSlices> slices_;
};

}  // namespace gdecode
