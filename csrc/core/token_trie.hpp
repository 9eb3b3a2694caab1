// A byte trie over the vocabulary, stored flat in depth-first preorder.
//
// Preorder lets the mask walk skip a whole subtree with one index jump (`subtree_end`) when the
// grammar rejects a prefix, and keeps the walk a forward scan over contiguous memory.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gdecode {

struct TrieNode {
  uint32_t subtree_end;  // index one past the last node of this node's subtree
  uint32_t token;        // first token id whose bytes end here, or kNoToken
  uint16_t depth;        // number of bytes from the root (root = 0); tokens longer than 65535 bytes are rejected
  uint8_t byte;          // the byte on the edge into this node (unused for the root)
  uint8_t has_duplicates = 0;  // other ids share `token`'s bytes (checked first: the lookup is a cache miss)
};

class TokenTrie {
 public:
  static constexpr uint32_t kNoToken = 0xffffffffu;

  // `tokens[i]` is the byte string of token id i. Ids listed in `excluded` (special tokens, padding,
  // empty tokens) are not inserted: they never match grammar bytes.
  TokenTrie(const std::vector<std::string>& tokens, const std::vector<uint32_t>& excluded);

  const std::vector<TrieNode>& nodes() const { return nodes_; }
  // Ids sharing the byte string of `nodes()[i].token` (duplicates), in id order, excluding that first id.
  const std::vector<uint32_t>& duplicates_of(uint32_t first_token) const;
  // Sets the bits of node `n`'s token and its duplicates in a packed bitmask.
  void set_tokens(const TrieNode& n, uint32_t* words) const {
    words[n.token >> 5] |= 1u << (n.token & 31);
    if (n.has_duplicates)
      for (uint32_t dup : duplicates_of(n.token)) words[dup >> 5] |= 1u << (dup & 31);
  }
  size_t num_tokens() const { return num_tokens_; }
  size_t max_depth() const { return max_depth_; }

 private:
  std::vector<TrieNode> nodes_;
  std::vector<std::vector<uint32_t>> duplicates_;  // indexed by token id; empty for most
  size_t num_tokens_ = 0;
  size_t max_depth_ = 0;
};

}  // namespace gdecode
