#include "core/token_trie.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace gdecode {

TokenTrie::TokenTrie(const std::vector<std::string>& tokens, const std::vector<uint32_t>& excluded) {
  num_tokens_ = tokens.size();
  duplicates_.resize(tokens.size());
  std::vector<bool> skip(tokens.size(), false);
  for (uint32_t id : excluded) {
    if (id < skip.size()) skip[id] = true;
  }
  // Sorting ids by their bytes turns the preorder trie build into one linear pass:
  // consecutive strings share their longest common prefix.
  std::vector<uint32_t> order;
  order.reserve(tokens.size());
  for (uint32_t i = 0; i < tokens.size(); ++i) {
    if (skip[i] || tokens[i].empty()) continue;
    if (tokens[i].size() > 0xffff) throw std::invalid_argument("token longer than 65535 bytes");
    order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return tokens[a] < tokens[b]; });

  nodes_.push_back(TrieNode{0, kNoToken, 0, 0, 0});
  std::vector<uint32_t> path = {0};  // node index at each depth along the current branch
  const std::string* prev = nullptr;
  for (uint32_t id : order) {
    const std::string& s = tokens[id];
    if (prev != nullptr && *prev == s) {
      duplicates_[nodes_[path.back()].token].push_back(id);
      nodes_[path.back()].has_duplicates = 1;
      continue;
    }
    size_t common = 0;
    if (prev != nullptr) {
      size_t limit = std::min(prev->size(), s.size());
      while (common < limit && (*prev)[common] == s[common]) ++common;
    }
    path.resize(common + 1);
    for (size_t d = common; d < s.size(); ++d) {
      path.push_back(static_cast<uint32_t>(nodes_.size()));
      nodes_.push_back(TrieNode{0, kNoToken, static_cast<uint16_t>(d + 1), static_cast<uint8_t>(s[d]), 0});
    }
    nodes_[path.back()].token = id;
    max_depth_ = std::max(max_depth_, s.size());
    prev = &s;
  }
  // subtree_end: a node's subtree ends where the next node of the same or smaller depth begins.
  std::vector<uint32_t> open;
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    while (!open.empty() && nodes_[open.back()].depth >= nodes_[i].depth) {
      nodes_[open.back()].subtree_end = i;
      open.pop_back();
    }
    open.push_back(i);
  }
  for (uint32_t i : open) nodes_[i].subtree_end = static_cast<uint32_t>(nodes_.size());
}

const std::vector<uint32_t>& TokenTrie::duplicates_of(uint32_t first_token) const {
  return duplicates_.at(first_token);
}

}  // namespace gdecode
