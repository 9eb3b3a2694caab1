#include "core/grammar.hpp"

#include <map>
#include <mutex>

namespace gdecode {

size_t LexemeMask::memory() const {
  size_t n = sizeof(*this) + words.size() * 4;
  for (const auto& b : boundaries) n += sizeof(b) + b.nodes.size() * 4;
  return n;
}

CompiledGrammar::CompiledGrammar(const GrammarSpec& spec, std::shared_ptr<const Vocabulary> vocab,
                                 const Limits& limits)
    : vocab_(std::move(vocab)), limits_(limits) {
  const Deadline deadline(limits_.max_compile_seconds);
  size_t num_terminals = spec.terminal_regex.size();
  if (spec.terminal_ignored.size() != num_terminals || spec.terminal_tokens.size() != num_terminals)
    throw GrammarFailure("terminal arrays differ in length");
  if (spec.prod_lhs.size() != spec.prod_rhs.size()) throw GrammarFailure("production arrays differ in length");

  // Lexer: one NFA for all byte terminals.
  RegexPool pool = RegexPool::decode(spec.regex_flat);
  Nfa nfa;
  std::vector<uint32_t> starts(num_terminals, Lexer::kUnknown);
  std::vector<bool> ignored(num_terminals, false);
  for (size_t t = 0; t < num_terminals; ++t) {
    ignored[t] = spec.terminal_ignored[t] != 0;
    if (spec.terminal_regex[t] >= 0)
      starts[t] = add_terminal_nfa(nfa, pool, uint32_t(spec.terminal_regex[t]), int32_t(t), limits_.max_nfa_states,
                                   &deadline);
    for (uint32_t tok : spec.terminal_tokens[t]) {
      if (tok >= vocab_->vocab_size()) throw GrammarFailure("special token id out of range");
      special_tokens_.emplace_back(tok, uint32_t(t));
      special_terminal_of_token_[tok] = uint32_t(t);
    }
  }
  lexer_ = std::make_unique<Lexer>(std::move(nfa), std::move(starts), std::move(ignored), limits_);

  // Parser tables, augmented with S' -> start.
  tables_.num_terminals = uint32_t(num_terminals);
  tables_.num_symbols = uint32_t(num_terminals) + spec.num_nonterminals + 1;
  uint32_t augmented = tables_.num_symbols - 1;
  if (spec.start_symbol < num_terminals || spec.start_symbol >= augmented)
    throw GrammarFailure("start symbol is not a nonterminal");
  for (size_t p = 0; p < spec.prod_lhs.size(); ++p) {
    tables_.prods.push_back(Production{spec.prod_lhs[p], uint32_t(tables_.rhs.size()),
                                       uint32_t(spec.prod_rhs[p].size())});
    tables_.rhs.insert(tables_.rhs.end(), spec.prod_rhs[p].begin(), spec.prod_rhs[p].end());
  }
  tables_.start_prod = uint32_t(tables_.prods.size());
  tables_.prods.push_back(Production{augmented, uint32_t(tables_.rhs.size()), 1});
  tables_.rhs.push_back(spec.start_symbol);
  tables_.finalize(&deadline);
}

int64_t CompiledGrammar::special_terminal_of(uint32_t token) const {
  auto it = special_terminal_of_token_.find(token);
  return it == special_terminal_of_token_.end() ? -1 : int64_t(it->second);
}

std::shared_ptr<const LexemeMask> CompiledGrammar::lexeme_mask(uint32_t dfa_state, bool nonempty) const {
  uint64_t key = (uint64_t(dfa_state) << 1) | (nonempty ? 1 : 0);
  {
    std::shared_lock<std::shared_mutex> read(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
  }
  auto mask = compute_lexeme_mask(dfa_state, nonempty);
  std::unique_lock<std::shared_mutex> write(cache_mutex_);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  size_t bytes = mask->memory();
  if (cache_bytes_ + bytes <= limits_.mask_cache_bytes) {  // over budget: still correct, just recomputed
    cache_bytes_ += bytes;
    cache_.emplace(key, mask);
  }
  return mask;
}

std::shared_ptr<const std::vector<uint32_t>> CompiledGrammar::state_mask(const StateKey& key) const {
  std::shared_lock<std::shared_mutex> read(state_mutex_);
  auto it = state_cache_.find(key);
  return it == state_cache_.end() ? nullptr : it->second;
}

void CompiledGrammar::store_state_mask(const StateKey& key, const uint32_t* words) const {
  size_t n = vocab_->num_words();
  size_t bytes = n * 4 + 64;
  if (bytes > limits_.state_cache_bytes) return;
  auto mask = std::make_shared<const std::vector<uint32_t>>(words, words + n);
  std::unique_lock<std::shared_mutex> write(state_mutex_);
  if (state_bytes_ + bytes > limits_.state_cache_bytes) {  // a pure cache: start over rather than grow
    state_cache_.clear();
    state_bytes_ = 0;
  }
  if (state_cache_.emplace(key, std::move(mask)).second) state_bytes_ += bytes;
}

std::shared_ptr<const LexemeMask> CompiledGrammar::compute_lexeme_mask(uint32_t dfa_state, bool nonempty) const {
  // Walk the whole trie with lexer transitions only. Tokens whose bytes all stay inside the lexeme are
  // allowed whatever the parser state; where a byte ends the lexeme, the parser decides (boundary).
  auto out = std::make_shared<LexemeMask>();
  out->words.assign(vocab_->num_words(), 0);
  const TokenTrie& trie = vocab_->trie();
  const auto& nodes = trie.nodes();
  std::vector<uint32_t> frame(trie.max_depth() + 1);
  std::map<uint32_t, size_t> group_of_state;
  frame[0] = dfa_state;
  auto set_token = [&](uint32_t tok) {
    out->words[tok >> 5] |= 1u << (tok & 31);
    for (uint32_t dup : trie.duplicates_of(tok)) out->words[dup >> 5] |= 1u << (dup & 31);
  };
  for (uint32_t i = 1; i < nodes.size();) {
    const TrieNode& n = nodes[i];
    uint32_t parent = frame[n.depth - 1];
    uint32_t next = lexer_->next(parent, n.byte);
    if (next != Lexer::kDead) {
      frame[n.depth] = next;
      if (n.token != TokenTrie::kNoToken) set_token(n.token);
      ++i;
      continue;
    }
    if ((n.depth > 1 || nonempty) && lexer_->state(parent).accepts()) {
      auto [it, fresh] = group_of_state.emplace(parent, out->boundaries.size());
      if (fresh) out->boundaries.push_back(LexemeMask::Boundary{parent, {}});
      out->boundaries[it->second].nodes.push_back(i);
    }
    i = n.subtree_end;
  }
  return out;
}

}  // namespace gdecode
