#include "core/grammar.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_set>

#include "core/rows.hpp"

namespace gdecode {

namespace {

// The terminals and productions that can be part of a sentence: productive ones (deriving some string: a
// terminal whose regex matches a non-empty string or that stands for a special token of the vocabulary)
// reachable from the start; ignored terminals need only be productive. The rest stays out of the lexer
// and the parser tables, so every state a matcher reaches has a continuation. gdecode.compiler.trim is
// the Python reference (tests compare them). Linear: each production counts its symbols not yet known to
// be productive, and a symbol becoming productive counts down the productions that use it.
struct UsedParts {
  std::vector<bool> terminal, production;
};

UsedParts trim(const GrammarSpec& spec, const RegexPool& pool, uint32_t num_symbols) {
  const size_t num_terminals = spec.terminal_regex.size(), num_prods = spec.prod_lhs.size();
  const uint32_t augmented = num_symbols - 1;
  std::vector<bool> nonempty = pool.matches_nonempty();
  std::vector<bool> productive(num_symbols, false);
  for (size_t t = 0; t < num_terminals; ++t) {
    int64_t r = spec.terminal_regex[t];
    if (r >= int64_t(nonempty.size())) throw GrammarFailure("terminal regex index out of range");
    productive[t] = r >= 0 ? bool(nonempty[size_t(r)]) : !spec.terminal_tokens[t].empty();
  }
  std::vector<uint32_t> missing(num_prods, 0);
  for (size_t p = 0; p < num_prods; ++p) {
    if (spec.prod_lhs[p] < num_terminals || spec.prod_lhs[p] >= augmented)
      throw GrammarFailure("production left-hand side is not a nonterminal");
    for (uint32_t s : spec.prod_rhs[p]) {
      if (s >= augmented) throw GrammarFailure("production symbol out of range");
      missing[p] += !productive[s];
    }
  }
  auto users = Rows<uint32_t>::build(num_symbols, [&](auto push) {
    for (size_t p = 0; p < num_prods; ++p)
      for (uint32_t s : spec.prod_rhs[p])
        if (!productive[s]) push(s, uint32_t(p));
  });
  std::vector<uint32_t> todo;
  auto produce = [&](size_t p) {
    uint32_t lhs = spec.prod_lhs[p];
    if (missing[p] == 0 && !productive[lhs]) {
      productive[lhs] = true;
      todo.push_back(lhs);
    }
  };
  for (size_t p = 0; p < num_prods; ++p) produce(p);
  while (!todo.empty()) {
    uint32_t s = todo.back();
    todo.pop_back();
    for (uint32_t p : users.row(s)) {
      --missing[p];
      produce(p);
    }
  }
  if (!productive[spec.start_symbol])
    throw GrammarFailure("the grammar matches no string (its start rule derives nothing)");

  auto by_lhs = Rows<uint32_t>::build(num_symbols, [&](auto push) {
    for (size_t p = 0; p < num_prods; ++p)
      if (missing[p] == 0) push(spec.prod_lhs[p], uint32_t(p));
  });
  std::vector<bool> reachable(num_symbols, false);
  reachable[spec.start_symbol] = true;
  todo.assign(1, spec.start_symbol);
  while (!todo.empty()) {
    uint32_t s = todo.back();
    todo.pop_back();
    for (uint32_t p : by_lhs.row(s))
      for (uint32_t sym : spec.prod_rhs[p])
        if (!reachable[sym]) {
          reachable[sym] = true;
          todo.push_back(sym);
        }
  }
  UsedParts used{std::vector<bool>(num_terminals), std::vector<bool>(num_prods)};
  for (size_t t = 0; t < num_terminals; ++t)
    used.terminal[t] = reachable[t] || (spec.terminal_ignored[t] && productive[t]);
  for (size_t p = 0; p < num_prods; ++p) used.production[p] = missing[p] == 0 && reachable[spec.prod_lhs[p]];
  return used;
}

}  // namespace

size_t LexemeMask::memory() const {
  size_t n = sizeof(*this) + words.size() * 4;
  for (const auto& b : boundaries)
    n += sizeof(b) + b.roots.size() * 4 + b.suffixes.nodes.size() * sizeof(TrieNode) + (b.suffixes.token_begin.size() + b.suffixes.tokens.size()) * 4;
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

  // Symbols: terminals, nonterminals, then S' (the augmented start).
  tables_.num_terminals = uint32_t(num_terminals);
  tables_.num_symbols = uint32_t(num_terminals) + spec.num_nonterminals + 1;
  uint32_t augmented = tables_.num_symbols - 1;
  if (spec.start_symbol < num_terminals || spec.start_symbol >= augmented)
    throw GrammarFailure("start symbol is not a nonterminal");
  RegexPool pool = RegexPool::decode(spec.regex_flat);
  const UsedParts used = trim(spec, pool, tables_.num_symbols);
  used_terminals_ = used.terminal;

  // Lexer: one NFA for all byte terminals.
  Nfa nfa;
  std::vector<uint32_t> starts(num_terminals, Lexer::kUnknown);
  std::vector<bool> ignored(num_terminals, false);
  for (size_t t = 0; t < num_terminals; ++t) {
    if (!used.terminal[t]) {
      terminal_states_end_.push_back(uint32_t(nfa.size()));
      continue;
    }
    ignored[t] = spec.terminal_ignored[t] != 0;
    if (spec.terminal_regex[t] >= 0)
      starts[t] = add_terminal_nfa(nfa, pool, uint32_t(spec.terminal_regex[t]), int32_t(t), limits_.max_nfa_states,
                                   &deadline);
    // NFA states are appended per terminal: terminal t owns [end of t-1, end of t).
    terminal_states_end_.push_back(uint32_t(nfa.size()));
    for (uint32_t tok : spec.terminal_tokens[t]) {
      if (tok >= vocab_->vocab_size()) throw GrammarFailure("special token id out of range");
      special_tokens_.emplace_back(tok, uint32_t(t));
      special_terminal_of_token_[tok] = uint32_t(t);
    }
  }
  lexer_ = std::make_unique<Lexer>(std::move(nfa), std::move(starts), std::move(ignored), limits_);

  // Parser tables, augmented with S' -> start.
  for (size_t p = 0; p < spec.prod_lhs.size(); ++p) {
    if (!used.production[p]) continue;
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

namespace {

// Builds a SuffixTrie from subtrees of the vocabulary trie: each subtree root is a first byte after the
// lexeme end, and equal byte paths from different roots become one node. Flat arrays, no per-node
// allocation: first visits of a lexer state may merge tens of thousands of nodes.
class SuffixTrieBuilder {
 public:
  explicit SuffixTrieBuilder(const TokenTrie& trie) : trie_(trie) {}

  void add_subtree(uint32_t root) {
    const auto& nodes = trie_.nodes();
    uint32_t base_depth = nodes[root].depth - 1;
    path_.assign(1, 0);
    for (uint32_t j = root; j < nodes[root].subtree_end; ++j) {
      const TrieNode& n = nodes[j];
      path_.resize(n.depth - base_depth);
      uint32_t child = child_of(path_.back(), n.byte);
      path_.push_back(child);
      if (n.token != TokenTrie::kNoToken) {
        tokens_.emplace_back(child, n.token);
        if (n.has_duplicates)
          for (uint32_t dup : trie_.duplicates_of(n.token)) tokens_.emplace_back(child, dup);
      }
    }
  }

  SuffixTrie finish() {
    // Children of each node sorted by byte (CSR), then an iterative preorder numbering.
    std::sort(edges_.begin(), edges_.end());
    std::vector<uint32_t> child_begin(num_nodes_ + 1, 0);
    for (const Edge& e : edges_) ++child_begin[e.parent + 1];
    for (uint32_t i = 0; i < num_nodes_; ++i) child_begin[i + 1] += child_begin[i];
    std::sort(tokens_.begin(), tokens_.end());
    std::vector<uint32_t> token_begin(num_nodes_ + 1, 0);
    for (const auto& t : tokens_) ++token_begin[t.first + 1];
    for (uint32_t i = 0; i < num_nodes_; ++i) token_begin[i + 1] += token_begin[i];

    SuffixTrie out;
    out.nodes.reserve(num_nodes_);
    out.token_begin.reserve(num_nodes_ + 1);
    out.tokens.reserve(tokens_.size());
    out.token_begin.push_back(0);
    struct Todo {
      uint32_t id;
      uint16_t depth;
      uint8_t byte;
    };
    std::vector<Todo> stack{{0, 0, 0}};
    std::vector<uint32_t> open;  // positions whose subtree_end is not known yet
    while (!stack.empty()) {
      Todo t = stack.back();
      stack.pop_back();
      uint32_t pos = uint32_t(out.nodes.size());
      while (!open.empty() && out.nodes[open.back()].depth >= t.depth) {
        out.nodes[open.back()].subtree_end = pos;
        open.pop_back();
      }
      open.push_back(pos);
      out.nodes.push_back(TrieNode{0, TokenTrie::kNoToken, t.depth, t.byte, 0});
      for (uint32_t k = token_begin[t.id]; k < token_begin[t.id + 1]; ++k) out.tokens.push_back(tokens_[k].second);
      out.token_begin.push_back(uint32_t(out.tokens.size()));
      for (uint32_t k = child_begin[t.id + 1]; k-- > child_begin[t.id];)
        stack.push_back(Todo{edges_[k].child, uint16_t(t.depth + 1), edges_[k].byte});
    }
    for (uint32_t p : open) out.nodes[p].subtree_end = uint32_t(out.nodes.size());
    return out;
  }

 private:
  struct Edge {
    uint32_t parent;
    uint8_t byte;
    uint32_t child;
    bool operator<(const Edge& o) const { return parent != o.parent ? parent < o.parent : byte < o.byte; }
  };

  uint32_t child_of(uint32_t parent, uint8_t byte) {
    // Open addressing over (parent, byte) -> child; slot value 0 means empty (node 0 is never a child).
    if ((num_nodes_ + 1) * 2 > slots_.size()) grow();
    uint64_t key = (uint64_t(parent) << 8) | byte;
    size_t mask = slots_.size() - 1;
    for (size_t h = slot_hash(key) & mask;; h = (h + 1) & mask) {
      if (slots_[h].child == 0) {
        slots_[h] = Slot{key, num_nodes_};
        edges_.push_back(Edge{parent, byte, num_nodes_});
        return num_nodes_++;
      }
      if (slots_[h].key == key) return slots_[h].child;
    }
  }

  static size_t slot_hash(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ull;
    return size_t(key ^ (key >> 32));
  }

  void grow() {
    std::vector<Slot> old(std::max<size_t>(slots_.size() * 2, 1024));
    old.swap(slots_);
    size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.child == 0) continue;
      size_t h = slot_hash(s.key) & mask;
      while (slots_[h].child != 0) h = (h + 1) & mask;
      slots_[h] = s;
    }
  }

  const TokenTrie& trie_;
  uint32_t num_nodes_ = 1;  // node 0: where the lexeme ends
  std::vector<Edge> edges_;
  std::vector<std::pair<uint32_t, uint32_t>> tokens_;  // (node, token id)
  struct Slot {
    uint64_t key = 0;
    uint32_t child = 0;
  };
  std::vector<Slot> slots_;
  std::vector<uint32_t> path_;
};

}  // namespace

CompiledGrammar::SliceCheck CompiledGrammar::explore_slice(uint32_t root, uint32_t max_chars, size_t budget,
                                                           bool uniform_only) const {
  // Breadth-first over (lexer state, UTF-8 state, characters so far); any dead lexer state is a
  // counterexample. Counting characters only matters for capped slices. Every explored item builds lexer
  // DFA states, hence the budgets.
  struct Item {
    uint32_t dfa;
    uint8_t u8;
    uint16_t chars;
  };
  auto pack = [](const Item& it) { return (uint64_t(it.dfa) << 24) | (uint64_t(it.u8) << 16) | it.chars; };
  std::unordered_set<uint64_t> seen{pack(Item{root, SliceChars::kStart, 0})};
  std::vector<Item> todo{Item{root, SliceChars::kStart, 0}};
  for (size_t head = 0; head < todo.size(); ++head) {
    Item it = todo[head];
    if (it.u8 == SliceChars::kStart) {
      // A state already proven universal needs no exploring (unbounded slice only: see below).
      if (max_chars == 0 && head > 0 && is_universal(it.dfa)) continue;
      // String bodies: every printable ASCII character leads to one same state (the body again, or the
      // next maxLength count). Checked first because it is cheap and rejects most other states at once.
      if (uniform_only) {
        uint32_t first = lexer_->next(it.dfa, 'a');
        if (first == Lexer::kDead) return SliceCheck::kNo;
        for (uint32_t b = 0x20; b < 0x7f; ++b)
          if (b != '"' && b != '\\' && lexer_->next(it.dfa, uint8_t(b)) != first) return SliceCheck::kNotUniform;
      }
    }
    auto [lo, hi] = SliceChars::byte_range(it.u8);
    uint64_t last = ~uint64_t(0);  // neighbouring bytes mostly lead to the same item: skip the set lookup
    for (uint32_t b = lo; b <= hi; ++b) {
      uint8_t u8 = SliceChars::step(it.u8, uint8_t(b));
      if (u8 == SliceChars::kReject) continue;
      uint32_t next = lexer_->next(it.dfa, uint8_t(b));
      if (next == Lexer::kDead) return SliceCheck::kNo;
      Item n{next, u8, it.chars};
      if (u8 == SliceChars::kStart && max_chars != 0 && ++n.chars == max_chars) continue;  // longest string
      uint64_t key = pack(n);
      if (key == last) continue;
      last = key;
      if (seen.count(key)) continue;
      if (seen.size() >= budget) return SliceCheck::kGaveUp;
      seen.insert(key);
      todo.push_back(n);
    }
  }
  if (max_chars == 0) {
    // Every state reached at a character boundary keeps every slice string alive too: a slice string
    // followed by a slice string is a slice string. Later checks stop there.
    std::lock_guard<std::mutex> lock(universal_mutex_);
    for (const Item& it : todo)
      if (it.u8 == SliceChars::kStart) universal_.insert(it.dfa);
  }
  return SliceCheck::kFits;
}

bool CompiledGrammar::is_universal(uint32_t dfa_state) const {
  std::lock_guard<std::mutex> lock(universal_mutex_);
  return universal_.count(dfa_state) != 0;
}

uint32_t CompiledGrammar::slice_successor(uint32_t dfa_state) const {
  {
    std::lock_guard<std::mutex> lock(universal_mutex_);
    auto it = slice_successor_.find(dfa_state);
    if (it != slice_successor_.end()) return it->second;
  }
  // One character's bytes: (lexer state, UTF-8 state) items until each character completes. Few items:
  // the lead byte classes and their continuation states.
  uint32_t target = kNoSuccessor;
  bool ok = true;
  std::vector<std::pair<uint32_t, uint8_t>> todo{{dfa_state, SliceChars::kStart}};
  std::unordered_set<uint64_t> seen;
  for (size_t head = 0; ok && head < todo.size(); ++head) {
    auto [state, u8] = todo[head];
    auto [lo, hi] = SliceChars::byte_range(u8);
    for (uint32_t b = lo; ok && b <= hi; ++b) {
      uint8_t next_u8 = SliceChars::step(u8, uint8_t(b));
      if (next_u8 == SliceChars::kReject) continue;
      uint32_t next = lexer_->next(state, uint8_t(b));
      if (next == Lexer::kDead) {
        ok = false;
      } else if (next_u8 == SliceChars::kStart) {
        if (target == kNoSuccessor) target = next;
        ok = next == target;
      } else if (seen.insert((uint64_t(next) << 8) | next_u8).second) {
        todo.emplace_back(next, next_u8);
      }
    }
  }
  if (!ok) target = kNoSuccessor;
  std::lock_guard<std::mutex> lock(universal_mutex_);
  slice_successor_.emplace(dfa_state, target);
  return target;
}

bool CompiledGrammar::slice_fits(uint32_t dfa_state, uint32_t max_chars) const {
  if (max_chars == 0 && is_universal(dfa_state)) return true;
  // Free strings and maxLength counters: every character leads to one next state. The slice fits when
  // that chain of successors is max_chars long, or (any length) comes back to a state already on it. Each
  // position of a counted string extends the chain of the position before by one state, where the
  // breadth-first search below would redo all of it (and give up at wide caps).
  constexpr uint32_t kChainSteps = 16;
  std::vector<uint32_t> chain{dfa_state};
  uint32_t s = dfa_state;
  while (chain.size() <= (max_chars != 0 ? max_chars : kChainSteps) && (s = slice_successor(s)) != kNoSuccessor) {
    if (max_chars == 0 && std::find(chain.begin(), chain.end(), s) != chain.end()) {
      std::lock_guard<std::mutex> lock(universal_mutex_);
      universal_.insert(chain.begin(), chain.end());
      return true;
    }
    chain.push_back(s);
  }
  if (max_chars != 0 && chain.size() > max_chars) return true;
  if (s != kNoSuccessor) return false;  // a counter longer than the chain checked: no unbounded slice
  // Tight budget for string bodies: a free string closes after a dozen items, while a maxLength counter
  // never closes for the unbounded slice (each character is a new state) and must fail early, not build
  // states for characters far ahead.
  SliceCheck r = explore_slice(dfa_state, max_chars, max_chars == 0 ? 32 : 32 + 16 * size_t(max_chars), true);
  if (r == SliceCheck::kFits) return true;
  if (max_chars != 0 || r != SliceCheck::kNotUniform) return false;
  // Keys of open objects: the lexer state mixes the listed names (literal terminals) with "any other
  // string" (one terminal that tracks the names' prefixes), so it is not uniform, yet that one terminal
  // alone keeps every string alive. Check each terminal's part of the state on its own: the part of the
  // catch-all key terminal is the same lexer state in every key position of that object, and proven
  // states are remembered, so the search runs about once per object type. Bounded by a budget and by the
  // room left in the lexer (each explored item builds DFA states).
  if (lexer_->num_states() >= limits_.max_dfa_states / 4) return false;
  const std::vector<uint32_t> members = lexer_->state(dfa_state).nfa_states;  // sorted
  for (size_t i = 0; i < members.size();) {
    uint32_t t = uint32_t(std::upper_bound(terminal_states_end_.begin(), terminal_states_end_.end(), members[i]) -
                          terminal_states_end_.begin());
    uint32_t end = terminal_states_end_[t];
    size_t j = i;
    while (j < members.size() && members[j] < end) ++j;
    uint32_t part = lexer_->restrict_to(dfa_state, members.data() + i, members.data() + j);
    i = j;
    if (part == Lexer::kDead) continue;
    {
      // A search that found a dead end is final. One that ran out of budget is retried only once more
      // states have been proven since (they end later searches early).
      std::lock_guard<std::mutex> lock(universal_mutex_);
      auto it = not_universal_.find(part);
      if (it != not_universal_.end() && (it->second == kDeadEnd || universal_.size() < it->second + 64)) continue;
    }
    SliceCheck r = is_universal(part) ? SliceCheck::kFits : explore_slice(part, 0, kOpenStateBudget, false);
    std::lock_guard<std::mutex> lock(universal_mutex_);
    if (r == SliceCheck::kFits) {
      universal_.insert(dfa_state);
      return true;
    }
    not_universal_[part] = r == SliceCheck::kNo ? kDeadEnd : universal_.size();
  }
  return false;
}

std::shared_ptr<const LexemeMask> CompiledGrammar::compute_lexeme_mask(uint32_t dfa_state, bool nonempty) const {
  // Walk the whole trie with lexer transitions only. Tokens whose bytes all stay inside the lexeme are
  // allowed whatever the parser state; where a byte ends the lexeme, the parser decides (boundary).
  auto out = std::make_shared<LexemeMask>();
  out->trie = &vocab_->trie();
  out->words.assign(vocab_->num_words(), 0);
  for (size_t k = 0; k < TokenSlices::size(); ++k) {
    if (!slice_fits(dfa_state, TokenSlices::kMaxChars[k])) continue;
    const TokenSlice& slice = vocab_->slices().get(k);
    out->words = slice.words;  // allowed whole; only the other tokens are walked
    out->trie = slice.rest.get();
    break;
  }
  const TokenTrie& trie = *out->trie;
  const auto& nodes = trie.nodes();
  std::vector<uint32_t> frame(trie.max_depth() + 1);
  struct Pending {
    uint32_t accept_state = 0;  // any DFA state of the group
    std::vector<uint32_t> roots, deeper;
    size_t deeper_nodes = 0;
  };
  // By the terminals the lexeme ends as (Lexer's accepted_id): what follows depends only on those.
  std::map<uint32_t, Pending> pending;
  frame[0] = dfa_state;
  for (uint32_t i = 1; i < nodes.size();) {
    const TrieNode& n = nodes[i];
    uint32_t parent = frame[n.depth - 1];
    uint32_t next = lexer_->next(parent, n.byte);
    if (next != Lexer::kDead) {
      frame[n.depth] = next;
      if (n.token != TokenTrie::kNoToken) trie.set_tokens(n, out->words.data());
      ++i;
      continue;
    }
    if ((n.depth > 1 || nonempty) && lexer_->state(parent).accepts()) {
      Pending& p = pending[lexer_->state(parent).accepted_id];
      if (p.roots.empty() && p.deeper.empty()) p.accept_state = parent;
      if (n.depth == 1) {
        p.roots.push_back(i);
      } else {
        p.deeper.push_back(i);
        p.deeper_nodes += n.subtree_end - i;
      }
    }
    i = n.subtree_end;
  }
  // Merging pays when many tokens share few continuations (a closing quote then `,` `}` ...); merging
  // a large part of the vocabulary (e.g. after whitespace) costs more than it saves, so those subtrees
  // are walked as they are.
  constexpr size_t kMaxMergedNodes = 16384;
  for (auto& [id, p] : pending) {
    LexemeMask::Boundary b{p.accept_state, std::move(p.roots), {}};
    if (p.deeper_nodes <= kMaxMergedNodes) {
      SuffixTrieBuilder builder(trie);
      for (uint32_t i : p.deeper) builder.add_subtree(i);
      b.suffixes = builder.finish();
    } else {
      b.roots.insert(b.roots.end(), p.deeper.begin(), p.deeper.end());
    }
    out->boundaries.push_back(std::move(b));
  }
  return out;
}

}  // namespace gdecode
