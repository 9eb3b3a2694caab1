#include "core/vocab.hpp"

#include <stdexcept>

namespace gdecode {
namespace {

std::vector<uint32_t> all_excluded(const std::vector<std::string>& tokens, const std::vector<uint32_t>& eos,
                                   const std::vector<uint32_t>& excluded) {
  std::vector<uint32_t> out(excluded);
  out.insert(out.end(), eos.begin(), eos.end());
  return out;
}

}  // namespace

Vocabulary::Vocabulary(std::vector<std::string> tokens, size_t vocab_size, std::vector<uint32_t> eos_ids,
                       std::vector<uint32_t> excluded)
    : tokens_(std::move(tokens)), vocab_size_(vocab_size), eos_ids_(std::move(eos_ids)),
      trie_(tokens_, all_excluded(tokens_, eos_ids_, excluded)) {
  if (vocab_size_ < tokens_.size())
    throw std::invalid_argument("vocab_size (logit width) is smaller than the number of tokens");
  is_eos_.assign(vocab_size_, 0);
  excluded_.assign(tokens_.size(), 0);
  for (uint32_t id : eos_ids_) {
    if (id >= vocab_size_) throw std::invalid_argument("EOS id out of range");
    is_eos_[id] = 1;
    if (id < excluded_.size()) excluded_[id] = 1;
  }
  for (uint32_t id : excluded) {
    if (id < excluded_.size()) excluded_[id] = 1;
  }
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (tokens_[i].empty()) excluded_[i] = 1;
  slices_ = std::make_unique<TokenSlices>(tokens_, excluded_, num_words());
}

}  // namespace gdecode
