// A grammar compiled for one vocabulary: lexer, parser tables and the per-lexer-state mask cache.
// Immutable from the outside and shared by all matchers (and threads) of that grammar.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/lexer.hpp"
#include "core/limits.hpp"
#include "core/parser.hpp"
#include "core/vocab.hpp"

namespace gdecode {

// What the binding layer hands over (see gdecode/compiler.py for how it is produced).
struct GrammarSpec {
  std::vector<int64_t> regex_flat;                        // RegexPool::decode encoding
  std::vector<int64_t> terminal_regex;                    // per terminal: regex root, or -1 (special token)
  std::vector<uint8_t> terminal_ignored;                  // per terminal
  std::vector<std::vector<uint32_t>> terminal_tokens;     // per terminal: special token ids it matches
  uint32_t num_nonterminals = 0;                          // symbols: terminals first, then nonterminals
  std::vector<uint32_t> prod_lhs;                         // per production
  std::vector<std::vector<uint32_t>> prod_rhs;            // per production
  uint32_t start_symbol = 0;
};

// The bytes that follow the end of a lexeme inside tokens, merged over all tokens that end the lexeme in
// the same way: `name",` and `value",` both continue with `,` after the string, so the parser checks `,`
// once, not once per token. Preorder like TokenTrie; node 0 is the point where the lexeme ends.
struct SuffixTrie {
  std::vector<TrieNode> nodes;        // TrieNode::token is unused; depth counts bytes after the lexeme
  std::vector<uint32_t> token_begin;  // tokens ending at node i: tokens[token_begin[i], token_begin[i + 1])
  std::vector<uint32_t> tokens;       // ids, duplicates included
};

// Tokens allowed from one lexer state without consulting the parser, plus, per set of terminals the
// current lexeme can end as, the continuations of the tokens that end it there (the parser decides those).
struct LexemeMask {
  struct Boundary {
    uint32_t accept_state;  // a DFA state where the lexeme ends as these terminals
    // Vocabulary-trie nodes whose byte starts the next lexeme; their subtrees are walked as they are.
    // Always the tokens whose first byte ends the lexeme (nothing to merge), and all when merging the
    // continuations would cost too much.
    std::vector<uint32_t> roots;
    SuffixTrie suffixes;  // the merged continuations of the other tokens (empty if none)
  };
  std::vector<uint32_t> words;
  std::vector<Boundary> boundaries;
  // The trie the roots index: the vocabulary's, or the rest trie of the token slice this state took whole.
  const TokenTrie* trie = nullptr;
  size_t memory() const;
};

// Identifies a whole parse state for the mask: the chart's structural key plus the lexer state.
struct StateKey {
  uint64_t lo, hi;
  uint32_t dfa;
  bool nonempty;
  bool operator==(const StateKey& o) const {
    return lo == o.lo && hi == o.hi && dfa == o.dfa && nonempty == o.nonempty;
  }
};
struct StateKeyHash {
  size_t operator()(const StateKey& k) const noexcept {
    return size_t(k.lo ^ (k.hi * 0x9E3779B97F4A7C15ull) ^ (uint64_t(k.dfa) << 1) ^ k.nonempty);
  }
};

class CompiledGrammar {
 public:
  CompiledGrammar(const GrammarSpec& spec, std::shared_ptr<const Vocabulary> vocab, const Limits& limits);

  const Vocabulary& vocab() const { return *vocab_; }
  const ParserTables& tables() const { return tables_; }
  Lexer& lexer() const { return *lexer_; }
  const Limits& limits() const { return limits_; }
  // (token id, special terminal) pairs: special tokens a grammar terminal refers to.
  const std::vector<std::pair<uint32_t, uint32_t>>& special_tokens() const { return special_tokens_; }
  int64_t special_terminal_of(uint32_t token) const;

  // Cached; computed on first use. `nonempty`: the current lexeme already has bytes.
  std::shared_ptr<const LexemeMask> lexeme_mask(uint32_t dfa_state, bool nonempty) const;
  size_t num_lexer_states() const { return lexer_->num_states(); }
  // Per terminal: whether it survived trimming (productive, and reachable or ignored).
  const std::vector<bool>& used_terminals() const { return used_terminals_; }

  // Whole-mask cache shared by all matchers of this grammar (charts in equal states have equal masks).
  std::shared_ptr<const std::vector<uint32_t>> state_mask(const StateKey& key) const;
  void store_state_mask(const StateKey& key, const uint32_t* words) const;

 private:
  std::shared_ptr<const LexemeMask> compute_lexeme_mask(uint32_t dfa_state, bool nonempty) const;
  // True when every string of 1..max_chars slice characters (any number if 0) keeps the lexer alive from
  // `dfa_state`. Gives up (false) past an exploration budget: a slice is an optimization only.
  bool slice_fits(uint32_t dfa_state, uint32_t max_chars) const;
  enum class SliceCheck { kFits, kNo, kGaveUp, kNotUniform };
  static constexpr size_t kOpenStateBudget = 4096;
  SliceCheck explore_slice(uint32_t root, uint32_t max_chars, size_t budget, bool uniform_only) const;
  bool is_universal(uint32_t dfa_state) const;
  // The one state every slice character leads to from `dfa_state` (each of its bytes keeping the lexer
  // alive), else kNoSuccessor. Memoized: a maxLength counter's states form a chain of such successors.
  static constexpr uint32_t kNoSuccessor = ~uint32_t(0);
  uint32_t slice_successor(uint32_t dfa_state) const;

  std::shared_ptr<const Vocabulary> vocab_;
  Limits limits_;
  ParserTables tables_;
  std::unique_ptr<Lexer> lexer_;
  std::vector<std::pair<uint32_t, uint32_t>> special_tokens_;
  std::unordered_map<uint32_t, uint32_t> special_terminal_of_token_;

  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const LexemeMask>> cache_;
  mutable size_t cache_bytes_ = 0;

  std::vector<bool> used_terminals_;
  std::vector<uint32_t> terminal_states_end_;  // terminal t's NFA states end here (they are contiguous)
  mutable std::mutex universal_mutex_;
  mutable std::unordered_set<uint32_t> universal_;      // DFA states every slice string keeps alive
  // Terminal parts whose search failed: kDeadEnd, or the size of universal_ when it ran out of budget.
  mutable std::unordered_map<uint32_t, size_t> not_universal_;
  static constexpr size_t kDeadEnd = ~size_t(0);
  mutable std::unordered_map<uint32_t, uint32_t> slice_successor_;  // under universal_mutex_

  mutable std::shared_mutex state_mutex_;
  mutable std::unordered_map<StateKey, std::shared_ptr<const std::vector<uint32_t>>, StateKeyHash> state_cache_;
  mutable size_t state_bytes_ = 0;
};

}  // namespace gdecode
