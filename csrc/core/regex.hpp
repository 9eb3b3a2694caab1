// Regex AST (as sent by the Python IR) and its translation to a byte-level Thompson NFA.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/limits.hpp"
#include "core/rows.hpp"

namespace gdecode {

// Minus: the strings of its item except a finite set of words (the keys of an open JSON object: any
// string but the listed names), built as the item's DFA times the words' trie, not as a regex.
enum class RegexKind : uint8_t { Chars = 0, Bytes = 1, Seq = 2, Alt = 3, Repeat = 4, Minus = 5 };

struct RegexNode {
  RegexKind kind;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // Chars: code points; Bytes: 0..255
  std::vector<uint32_t> children;                     // Seq/Alt: items; Repeat, Minus: the single item
  uint32_t min = 0, max = 0;
  bool unbounded = false;          // Repeat with no upper bound
  std::vector<std::string> words;  // Minus: the excluded strings (bytes: UTF-8 of Chars)
};

// All regex nodes of a grammar; children always have smaller indices than their parent.
// Deterministic automaton over bytes (state 0 starts; next[s][b] < 0: no move).
struct ByteDfa {
  std::vector<std::array<int32_t, 256>> next;
  std::vector<bool> accept;
};

struct RegexPool {
  std::vector<RegexNode> nodes;
  // The DFA of each Minus item, built once per pool while the lexer NFA is built (one thread): every open
  // object of a schema excludes its names from the same "any JSON string body".
  mutable std::unordered_map<uint32_t, std::shared_ptr<const ByteDfa>> minus_dfas;
  // Decodes the flat encoding produced by gdecode/compiler.py (see there). Throws GrammarFailure.
  static RegexPool decode(const std::vector<int64_t>& flat);
  // Per node: whether it matches some non-empty string (what grammar trimming needs).
  std::vector<bool> matches_nonempty() const;
};

// Builds the flat encoding RegexPool::decode reads, bottom-up (children before parents), storing
// structurally equal nodes once. Also records per node whether it matches some string and some non-empty
// string, which grammar trimming needs. Throws GrammarFailure on malformed input.
class RegexFlatBuilder {
 public:
  uint32_t ranges(RegexKind kind, const std::vector<std::pair<uint32_t, uint32_t>>& ranges);  // Chars/Bytes
  uint32_t list(RegexKind kind, const std::vector<uint32_t>& children);                      // Seq/Alt
  uint32_t repeat(uint32_t child, uint32_t min, int64_t max);                                // max < 0: unbounded
  uint32_t minus(uint32_t child, const std::vector<std::string>& words);

  const std::vector<int64_t>& flat() const { return flat_; }
  size_t size() const { return props_.size(); }
  bool matches_nonempty(uint32_t node) const;

 private:
  uint32_t intern(uint8_t props);
  uint32_t child(uint32_t c) const;
  RegexNode node_at(uint32_t i) const;
  uint64_t hash_of(const int64_t* begin, const int64_t* end) const;
  void grow();

  std::vector<int64_t> flat_;
  std::vector<uint32_t> starts_{0};  // node i is flat_[starts_[i], starts_[i + 1])
  std::vector<uint8_t> props_;
  std::vector<int64_t> key_;  // the node being built
  // Open addressing over node indices + 1 (0: empty), keyed by the node's words in flat_: a map keyed by
  // vectors allocated a copy of every new node.
  std::vector<uint32_t> table_ = std::vector<uint32_t>(64, 0);
};

struct NfaTransition {
  uint8_t lo, hi;
  uint32_t to;
};

// Byte-level NFA shared by all terminals; `accept[s]` is the terminal accepted in state s or -1.
// Edges are appended while building, then `freeze()` sorts them into compressed rows by source state.
class Nfa {
 public:
  std::vector<int32_t> accept;

  uint32_t add_state();
  size_t size() const { return accept.size(); }
  void add_edge(uint32_t from, uint8_t lo, uint8_t hi, uint32_t to) { new_trans_.push_back({from, {lo, hi, to}}); }
  void add_eps(uint32_t from, uint32_t to) { new_eps_.push_back({from, to}); }
  // Makes the edges readable; add no edge after it. Freezing a frozen NFA does nothing.
  void freeze();
  Span<NfaTransition> trans(uint32_t s) const { return trans_.row(s); }  // after freeze
  Span<uint32_t> eps(uint32_t s) const { return eps_.row(s); }
  // Drops every edge whose target t has !keep[t] (after freeze).
  void remove_edges_into(const std::vector<uint8_t>& keep);

 private:
  std::vector<std::pair<uint32_t, NfaTransition>> new_trans_;
  std::vector<std::pair<uint32_t, uint32_t>> new_eps_;
  Rows<NfaTransition> trans_;
  Rows<uint32_t> eps_;
  bool frozen_ = false;
};

// The minimal DFA over bytes of the intersection of the regexes `roots` (no dead states: a byte with no
// move leaves the language). Throws LimitExceeded past `max_states` states in a part or the product.
ByteDfa intersection_dfa(const RegexPool& pool, const std::vector<uint32_t>& roots, size_t max_states);

// Adds the NFA of `root` to `nfa` for terminal `terminal` and returns its start state.
// `deadline` (optional) is checked per NFA state created.
uint32_t add_terminal_nfa(Nfa& nfa, const RegexPool& pool, uint32_t root, int32_t terminal, size_t max_states,
                          const Deadline* deadline = nullptr);

}  // namespace gdecode
