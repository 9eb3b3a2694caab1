// Earley parser over lexemes. Handles any context-free grammar: ambiguity, left recursion, nullable rules
// (Aycock-Horspool: predicting a nullable symbol also steps over it).
//
// A Chart is the per-matcher parse state: Earley sets appended one per lexeme, never modified after,
// so rolling back (speculative decoding, or the mask's trie walk) is just truncation.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/limits.hpp"

namespace gdecode {

class Lexer;

struct Production {
  uint32_t lhs;    // nonterminal symbol id
  uint32_t begin;  // offset into ParserTables::rhs
  uint32_t len;
};

// Immutable grammar tables. Symbols [0, num_terminals) are terminals, the rest nonterminals.
struct ParserTables {
  uint32_t num_terminals = 0;
  uint32_t num_symbols = 0;
  std::vector<Production> prods;
  std::vector<uint32_t> rhs;
  std::vector<std::vector<uint32_t>> prods_of;  // per nonterminal (indexed sym - num_terminals)
  std::vector<uint8_t> nullable;                // per nonterminal
  uint32_t start_prod = 0;                      // the augmented production S' -> start

  bool is_terminal(uint32_t sym) const { return sym < num_terminals; }
  // Fills nullable and checks the grammar; throws GrammarFailure (LimitExceeded past `deadline`).
  void finalize(const Deadline* deadline = nullptr);
};

struct Item {
  uint32_t prod, dot, origin;
};

class Chart {
 public:
  struct Set {
    uint32_t begin, end;          // items [begin, end)
    uint32_t index_begin, index_end;  // completion index entries (nonterminal, item) sorted by symbol
    uint32_t lexer_start;         // DFA state where the next lexeme starts
    bool accepting;               // the start rule is complete over the whole input
    uint64_t uid;                 // unique per set ever built by this chart (memo key)
  };

  // A 128-bit hash of everything the future of a parse depends on: the top set's waiting (incomplete)
  // items and, through their origins, the waiting items of earlier sets, plus acceptance. Two charts
  // with equal keys (and equal lexer states) have equal token masks, whatever their history.
  struct StructuralKey {
    uint64_t lo, hi;
    bool operator==(const StructuralKey& o) const { return lo == o.lo && hi == o.hi; }
  };
  StructuralKey structural_key();

  Chart(const ParserTables& tables, Lexer& lexer, const Limits& limits);

  void reset();                  // back to the single initial set
  size_t num_sets() const { return sets_.size(); }
  const Set& top() const { return sets_.back(); }
  void truncate(size_t num_sets);
  // Scans one lexeme that may be any of `terminals` (sorted), pushing a new set. Returns false, pushing
  // nothing, when no item expects any of them.
  bool scan(const uint32_t* terminals, size_t n);
  // Same as scan, memoized on (top set, key): `key` must identify the terminal list (e.g. the lexer
  // state whose accepted terminals they are). The mask walk scans the same lexeme from the same set
  // for many trie nodes; a hit appends a copy of the set built the first time.
  bool scan_memo(const uint32_t* terminals, size_t n, uint64_t key);
  bool expects(uint32_t terminal) const;  // the top set can scan `terminal`
  const std::vector<Item>& items() const { return items_; }

 private:
  void close_top_set(uint32_t set_index);  // predict/complete to a fixpoint, then index and finish the set
  bool add(uint32_t prod, uint32_t dot, uint32_t origin);
  void add_predicted(uint32_t prod, uint32_t origin);  // (prod, 0, origin), known to be new
  void new_dedupe_generation();
  uint32_t lexer_start_for_allowed();  // Lexer::start_state(allowed_), cached per chart without locking
  template <class Hash>
  void insert_slot(uint32_t item, Hash hash) {
    size_t mask = dedupe_.size() - 1;
    const Item& it = items_[item];
    size_t h = hash(it.prod, it.dot, it.origin) & mask;
    while (dedupe_[h].gen == dedupe_gen_) h = (h + 1) & mask;
    dedupe_[h] = Slot{item, dedupe_gen_};
  }

  const ParserTables& t_;
  Lexer& lexer_;
  Limits limits_;
  std::vector<Item> items_;
  std::vector<std::pair<uint32_t, uint32_t>> index_;
  std::vector<Set> sets_;
  std::vector<StructuralKey> skeys_;  // structural keys of sets [0, skeys_.size()), computed lazily
  // Scratch for building one set: open-addressing dedupe table, prediction marks, allowed terminals.
  struct Slot {
    uint32_t item, gen;
  };
  std::vector<Slot> dedupe_;
  uint32_t dedupe_gen_ = 1;
  std::vector<uint32_t> predicted_;
  uint32_t predicted_gen_ = 0;
  std::vector<uint64_t> allowed_;
  std::unordered_map<uint64_t, std::pair<std::vector<uint64_t>, uint32_t>> start_cache_;  // by hash of allowed_
  // Scan memo: an open-addressing table over (set uid, key) whose entries point into flat arenas, so
  // recording and replaying a scan allocates nothing (the mask walk does this for every lexeme end).
  struct MemoEntry {
    uint64_t uid = 0, key = 0;
    uint32_t gen = 0;
    bool ok = false;
    uint32_t items_begin = 0, items_end = 0, index_begin = 0, index_end = 0;
    Set set{};
  };
  MemoEntry* memo_find(uint64_t uid, uint64_t key);  // the entry, or an empty slot to fill
  void memo_clear();
  std::vector<MemoEntry> memo_;
  uint32_t memo_gen_ = 1;
  size_t memo_count_ = 0;
  std::vector<Item> memo_items_;
  std::vector<std::pair<uint32_t, uint32_t>> memo_index_;
};

}  // namespace gdecode
