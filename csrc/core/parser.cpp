#include "core/parser.hpp"

#include <algorithm>
#include <atomic>
#include <string>

#include "core/lexer.hpp"

namespace gdecode {

namespace {
// Set uids are unique across all charts, so a forked chart can keep its parent's scan memo: an entry
// keyed on a uid always describes that one set and prefix.
std::atomic<uint64_t> g_next_uid{1};
uint64_t fresh_uid() { return g_next_uid.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

void ParserTables::finalize(const Deadline* deadline) {
  uint32_t n_nt = num_symbols - num_terminals;
  prods_of.assign(n_nt, {});
  for (uint32_t p = 0; p < prods.size(); ++p) {
    if (prods[p].lhs < num_terminals || prods[p].lhs >= num_symbols) throw GrammarFailure("bad production lhs");
    for (uint32_t k = 0; k < prods[p].len; ++k)
      if (rhs[prods[p].begin + k] >= num_symbols) throw GrammarFailure("bad production symbol");
    prods_of[prods[p].lhs - num_terminals].push_back(p);
  }
  nullable.assign(n_nt, 0);
  for (bool changed = true; changed;) {
    changed = false;
    if (deadline != nullptr) deadline->check("computing nullable rules");
    for (const auto& pr : prods) {
      if (nullable[pr.lhs - num_terminals]) continue;
      bool all = true;
      for (uint32_t k = 0; k < pr.len && all; ++k) {
        uint32_t s = rhs[pr.begin + k];
        all = !is_terminal(s) && nullable[s - num_terminals];
      }
      if (all) {
        nullable[pr.lhs - num_terminals] = 1;
        changed = true;
      }
    }
  }
}

Chart::Chart(const ParserTables& tables, Lexer& lexer, const Limits& limits)
    : t_(tables), lexer_(lexer), limits_(limits) {
  predicted_.assign(t_.num_symbols - t_.num_terminals, 0);
  allowed_.assign((t_.num_terminals + 63) / 64, 0);
  dedupe_.assign(64, Slot{0, 0});
  reset();
}

void Chart::reset() {
  items_.clear();
  index_.clear();
  sets_.clear();
  skeys_.clear();
  sets_.push_back(Set{0, 0, 0, 0, 0, false, fresh_uid()});
  memo_clear();
  new_dedupe_generation();
  if (++predicted_gen_ == 0) {
    std::fill(predicted_.begin(), predicted_.end(), 0);
    predicted_gen_ = 1;
  }
  add(t_.start_prod, 0, 0);
  close_top_set(0);
}

void Chart::truncate(size_t num_sets) {
  if (num_sets == 0 || num_sets >= sets_.size()) return;
  const Set& keep = sets_[num_sets - 1];
  items_.resize(keep.end);
  index_.resize(keep.index_end);
  sets_.resize(num_sets);
  if (skeys_.size() > num_sets) skeys_.resize(num_sets);
}

namespace {
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

Chart::StructuralKey Chart::structural_key() {
  // Each set's key depends only on earlier sets' keys, so compute the missing ones in order. Items are
  // combined by addition (a multiset hash): equal sets built in a different item order get equal keys.
  for (size_t k = skeys_.size(); k < sets_.size(); ++k) {
    const Set& set = sets_[k];
    uint64_t lo = mix64(set.accepting ? 0x51ED270B27F1ull : 0x2545F4914F6CDD1Dull), hi = mix64(lo ^ 0x9E37ull);
    for (uint32_t i = set.begin; i < set.end; ++i) {
      const Item& it = items_[i];
      if (it.dot == t_.prods[it.prod].len) continue;  // complete items never matter again
      StructuralKey o = it.origin == k ? StructuralKey{0x5E1F5E1F5E1Full, 0xA11CEull} : skeys_[it.origin];
      uint64_t base = (uint64_t(it.prod) << 32) | it.dot;
      lo += mix64(base ^ mix64(o.lo + 0x9E3779B97F4A7C15ull));
      hi += mix64(base * 0xD6E8FEB86659FD93ull ^ mix64(o.hi ^ 0xC2B2AE3D27D4EB4Full));
    }
    skeys_.push_back(StructuralKey{mix64(lo), mix64(hi ^ lo)});
  }
  return skeys_.back();
}

bool Chart::add(uint32_t prod, uint32_t dot, uint32_t origin) {
  // Open addressing over item indices of the set under construction; a slot is live only if it carries
  // the current generation, so starting a new set costs nothing.
  auto hash = [](uint32_t p, uint32_t d, uint32_t o) {
    uint64_t h = (uint64_t(p) * 0x9E3779B97F4A7C15ull) ^ (uint64_t(d) * 0xC2B2AE3D27D4EB4Full) ^ o;
    return size_t(h ^ (h >> 29));
  };
  size_t mask = dedupe_.size() - 1;
  for (size_t h = hash(prod, dot, origin) & mask;; h = (h + 1) & mask) {
    const Slot& slot = dedupe_[h];
    if (slot.gen != dedupe_gen_) break;
    const Item& it = items_[slot.item];
    if (it.prod == prod && it.dot == dot && it.origin == origin) return false;
  }
  size_t set_size = items_.size() - sets_.back().begin;
  if (set_size >= limits_.max_items_per_set)
    throw LimitExceeded("Earley set exceeds max_items_per_set=" + std::to_string(limits_.max_items_per_set));
  if (items_.size() >= limits_.max_chart_items)
    throw LimitExceeded("parser chart exceeds max_chart_items=" + std::to_string(limits_.max_chart_items));
  items_.push_back(Item{prod, dot, origin});
  if ((set_size + 1) * 2 > dedupe_.size()) {
    // The set may have grown by many predicted items since the last add: size for all of them.
    size_t size = dedupe_.size() * 2;
    while ((set_size + 1) * 2 > size) size *= 2;
    dedupe_.assign(size, Slot{0, 0});
    new_dedupe_generation();
    for (uint32_t i = sets_.back().begin; i < items_.size(); ++i) insert_slot(i, hash);
  } else {
    insert_slot(static_cast<uint32_t>(items_.size() - 1), hash);
  }
  return true;
}

void Chart::add_predicted(uint32_t prod, uint32_t origin) {
  // Items with the dot at 0 and origin at the current set come only from predicting their nonterminal,
  // which happens once per set (predicted_), so they skip the duplicate check: on large grammars they are
  // most of the items. Nothing ever looks them up in the dedupe table either.
  size_t set_size = items_.size() - sets_.back().begin;
  if (set_size >= limits_.max_items_per_set)
    throw LimitExceeded("Earley set exceeds max_items_per_set=" + std::to_string(limits_.max_items_per_set));
  if (items_.size() >= limits_.max_chart_items)
    throw LimitExceeded("parser chart exceeds max_chart_items=" + std::to_string(limits_.max_chart_items));
  items_.push_back(Item{prod, 0, origin});
}

void Chart::close_top_set(uint32_t cur) {
  Set& set = sets_.back();
  for (uint32_t i = set.begin; i < items_.size(); ++i) {
    Item it = items_[i];
    const Production& pr = t_.prods[it.prod];
    if (it.dot == pr.len) {
      if (it.origin == cur) continue;  // nullable completions were stepped over at prediction
      const Set& from = sets_[it.origin];
      auto lo = std::lower_bound(index_.begin() + from.index_begin, index_.begin() + from.index_end,
                                 std::make_pair(pr.lhs, 0u));
      for (auto e = lo; e != index_.begin() + from.index_end && e->first == pr.lhs; ++e) {
        const Item& w = items_[e->second];
        add(w.prod, w.dot + 1, w.origin);
      }
      continue;
    }
    uint32_t sym = t_.rhs[pr.begin + it.dot];
    if (t_.is_terminal(sym)) continue;
    uint32_t nt = sym - t_.num_terminals;
    if (predicted_[nt] != predicted_gen_) {
      predicted_[nt] = predicted_gen_;
      for (uint32_t q : t_.prods_of[nt]) add_predicted(q, cur);
    }
    if (t_.nullable[nt]) add(it.prod, it.dot + 1, it.origin);
  }
  // Finish: completion index, allowed terminals -> lexer start state, acceptance.
  Set& s = sets_.back();
  s.end = static_cast<uint32_t>(items_.size());
  s.index_begin = static_cast<uint32_t>(index_.size());
  std::fill(allowed_.begin(), allowed_.end(), 0);
  s.accepting = false;
  for (uint32_t i = s.begin; i < s.end; ++i) {
    const Item& it = items_[i];
    const Production& pr = t_.prods[it.prod];
    if (it.dot == pr.len) {
      if (it.prod == t_.start_prod && it.origin == 0) s.accepting = true;
      continue;
    }
    uint32_t sym = t_.rhs[pr.begin + it.dot];
    if (t_.is_terminal(sym)) allowed_[sym / 64] |= 1ull << (sym % 64);
    else index_.emplace_back(sym, i);
  }
  std::sort(index_.begin() + s.index_begin, index_.end());
  s.index_end = static_cast<uint32_t>(index_.size());
  s.lexer_start = lexer_start_for_allowed();
  // Reset scratch for the next set.
  new_dedupe_generation();
  if (++predicted_gen_ == 0) {
    std::fill(predicted_.begin(), predicted_.end(), 0);
    predicted_gen_ = 1;
  }
}

bool Chart::scan(const uint32_t* terminals, size_t n) {
  const Set prev = sets_.back();
  uint32_t cur = static_cast<uint32_t>(sets_.size());
  sets_.push_back(Set{static_cast<uint32_t>(items_.size()), 0, 0, 0, 0, false, fresh_uid()});
  try {
    for (uint32_t i = prev.begin; i < prev.end; ++i) {
      const Item it = items_[i];
      const Production& pr = t_.prods[it.prod];
      if (it.dot == pr.len) continue;
      uint32_t sym = t_.rhs[pr.begin + it.dot];
      if (!t_.is_terminal(sym) || !std::binary_search(terminals, terminals + n, sym)) continue;
      add(it.prod, it.dot + 1, it.origin);
    }
    if (items_.size() == sets_.back().begin) {
      sets_.pop_back();
      new_dedupe_generation();
      return false;
    }
    close_top_set(cur);
  } catch (...) {
    // A limit hit half-way (items, lexer states): drop the partial set and its scratch marks, so the
    // chart stays exactly as before and the caller can go on (or roll back) after the exception.
    sets_.resize(cur);
    items_.resize(prev.end);
    index_.resize(prev.index_end);
    if (skeys_.size() > cur) skeys_.resize(cur);
    new_dedupe_generation();
    if (++predicted_gen_ == 0) {
      std::fill(predicted_.begin(), predicted_.end(), 0);
      predicted_gen_ = 1;
    }
    throw;
  }
  return true;
}

uint32_t Chart::lexer_start_for_allowed() {
  uint64_t h = 0x243F6A8885A308D3ull;
  for (uint64_t w : allowed_) h = mix64(h ^ w);
  auto it = start_cache_.find(h);
  if (it != start_cache_.end() && it->second.first == allowed_) return it->second.second;
  uint32_t state = lexer_.start_state(allowed_);
  if (start_cache_.size() < 4096) start_cache_[h] = {allowed_, state};
  return state;
}

void Chart::new_dedupe_generation() {
  if (++dedupe_gen_ == 0) {
    std::fill(dedupe_.begin(), dedupe_.end(), Slot{0, 0});
    dedupe_gen_ = 1;
  }
}

void Chart::memo_clear() {
  if (++memo_gen_ == 0) {
    for (auto& e : memo_) e.gen = 0;
    memo_gen_ = 1;
  }
  memo_count_ = 0;
  memo_items_.clear();
  memo_index_.clear();
}

Chart::MemoEntry* Chart::memo_find(uint64_t uid, uint64_t key) {
  if (memo_.empty()) memo_.resize(256);
  size_t mask = memo_.size() - 1;
  size_t h = size_t(mix64(uid * 0x9E3779B97F4A7C15ull ^ key)) & mask;
  for (;; h = (h + 1) & mask) {
    MemoEntry& e = memo_[h];
    if (e.gen != memo_gen_ || (e.uid == uid && e.key == key)) return &e;
  }
}

bool Chart::scan_memo(const uint32_t* terminals, size_t n, uint64_t key) {
  uint64_t uid = sets_.back().uid;
  MemoEntry* e = memo_find(uid, key);
  if (e->gen == memo_gen_) {
    if (!e->ok) return false;
    // Same base set => same chart prefix, so absolute item positions and origins are still valid.
    if (items_.size() + (e->items_end - e->items_begin) > limits_.max_chart_items)
      throw LimitExceeded("parser chart exceeds max_chart_items=" + std::to_string(limits_.max_chart_items));
    items_.insert(items_.end(), memo_items_.begin() + e->items_begin, memo_items_.begin() + e->items_end);
    index_.insert(index_.end(), memo_index_.begin() + e->index_begin, memo_index_.begin() + e->index_end);
    // Same content on the same prefix: keep the uid, so memo entries keyed on it hit again (nested
    // lexemes inside one token, and the same walk in the next mask).
    sets_.push_back(e->set);
    return true;
  }
  size_t items_before = items_.size(), index_before = index_.size();
  bool ok = scan(terminals, n);
  // Bound memory: start over when full (entries of dead sets never match anyway). Grow the table first.
  if ((memo_count_ + 1) * 2 > memo_.size()) {
    if (memo_.size() < 8192) {
      std::vector<MemoEntry> old;
      old.swap(memo_);
      memo_.resize(old.size() * 2);
      for (const MemoEntry& o : old)
        if (o.gen == memo_gen_) *memo_find(o.uid, o.key) = o;
    } else {
      memo_clear();
    }
  }
  if (memo_items_.size() > (size_t(1) << 20)) memo_clear();
  e = memo_find(uid, key);
  *e = MemoEntry{};
  e->uid = uid;
  e->key = key;
  e->gen = memo_gen_;
  e->ok = ok;
  if (ok) {
    e->set = sets_.back();
    e->items_begin = uint32_t(memo_items_.size());
    memo_items_.insert(memo_items_.end(), items_.begin() + items_before, items_.end());
    e->items_end = uint32_t(memo_items_.size());
    e->index_begin = uint32_t(memo_index_.size());
    memo_index_.insert(memo_index_.end(), index_.begin() + index_before, index_.end());
    e->index_end = uint32_t(memo_index_.size());
  }
  ++memo_count_;
  return ok;
}

bool Chart::expects(uint32_t terminal) const {
  const Set& s = sets_.back();
  for (uint32_t i = s.begin; i < s.end; ++i) {
    const Item& it = items_[i];
    const Production& pr = t_.prods[it.prod];
    if (it.dot < pr.len && t_.rhs[pr.begin + it.dot] == terminal) return true;
  }
  return false;
}

}  // namespace gdecode
