#include "core/lexer.hpp"

#include <algorithm>

namespace gdecode {

size_t VecHash::operator()(const std::vector<uint32_t>& v) const noexcept {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ v.size();
  for (uint32_t x : v) h = (h ^ x) * 0x100000001B3ull;
  return size_t(h ^ (h >> 29));
}
size_t VecHash::operator()(const std::vector<uint64_t>& v) const noexcept {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ v.size();
  for (uint64_t x : v) h = (h ^ x ^ (x >> 31)) * 0x100000001B3ull;
  return size_t(h ^ (h >> 29));
}

namespace {

// Drops edges into states from which no accepting state is reachable, so a live DFA state always has
// a completion (e.g. "a" is not live for Seq(a, NOTHING)).
void prune_dead_ends(Nfa& nfa) {
  size_t n = nfa.size();
  Rows<uint32_t> rev = Rows<uint32_t>::build(n, [&](auto push) {  // row t: the sources of edges into t
    for (uint32_t s = 0; s < n; ++s) {
      for (const auto& t : nfa.trans(s)) push(t.to, s);
      for (uint32_t t : nfa.eps(s)) push(t, s);
    }
  });
  std::vector<uint8_t> live(n, 0);
  std::vector<uint32_t> stack;
  for (uint32_t s = 0; s < n; ++s)
    if (nfa.accept[s] >= 0) {
      live[s] = 1;
      stack.push_back(s);
    }
  size_t num_live = stack.size();
  while (!stack.empty()) {
    uint32_t s = stack.back();
    stack.pop_back();
    for (uint32_t p : rev.row(s))
      if (!live[p]) {
        live[p] = 1;
        ++num_live;
        stack.push_back(p);
      }
  }
  if (num_live < n) nfa.remove_edges_into(live);
}

}  // namespace

Lexer::Lexer(Nfa nfa, std::vector<uint32_t> terminal_start, std::vector<bool> ignored, const Limits& limits)
    : nfa_(std::move(nfa)), terminal_start_(std::move(terminal_start)), ignored_(std::move(ignored)),
      limits_(limits) {
  nfa_.freeze();
  prune_dead_ends(nfa_);
  ignored_bits_.assign((terminal_start_.size() + 63) / 64, 0);
  for (size_t t = 0; t < ignored_.size(); ++t)
    if (ignored_[t]) ignored_bits_[t / 64] |= 1ull << (t % 64);
  max_chunks_ = (limits_.max_dfa_states >> kChunkBits) + 2;
  chunks_ = std::make_unique<std::unique_ptr<DfaState[]>[]>(max_chunks_);
  stamp_.assign(nfa_.size(), 0);
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<uint32_t> none;
  intern(none);  // state 0: the dead state, all edges lead back to it
  for (auto& n : chunks_[0][0].next) n.store(kDead, std::memory_order_relaxed);
}

Lexer::~Lexer() = default;

uint32_t Lexer::intern(std::vector<uint32_t>& seeds) {
  // Epsilon closure, keeping only the states that matter for transitions and acceptance.
  if (++stamp_gen_ == 0) {
    std::fill(stamp_.begin(), stamp_.end(), 0);
    stamp_gen_ = 1;
  }
  std::vector<uint32_t>& stack = stack_;
  std::vector<uint32_t>& key = key_;
  stack.assign(seeds.begin(), seeds.end());
  key.clear();
  for (uint32_t s : seeds) stamp_[s] = stamp_gen_;
  while (!stack.empty()) {
    uint32_t s = stack.back();
    stack.pop_back();
    if (!nfa_.trans(s).empty() || nfa_.accept[s] >= 0) key.push_back(s);
    for (uint32_t t : nfa_.eps(s)) {
      if (stamp_[t] != stamp_gen_) {
        stamp_[t] = stamp_gen_;
        stack.push_back(t);
      }
    }
  }
  std::sort(key.begin(), key.end());
  auto it = by_nfa_set_.find(key);
  if (it != by_nfa_set_.end()) return it->second;

  size_t id = num_states_.load(std::memory_order_relaxed);
  if (id >= limits_.max_dfa_states)
    throw LimitExceeded("lexer DFA exceeds max_dfa_states=" + std::to_string(limits_.max_dfa_states));
  size_t chunk = id >> kChunkBits;
  if (!chunks_[chunk]) chunks_[chunk] = std::make_unique<DfaState[]>(size_t(1) << kChunkBits);
  DfaState& st = chunks_[chunk][id & kChunkMask];
  for (auto& n : st.next) n.store(kUnknown, std::memory_order_relaxed);
  st.final.store(id == 0 ? 0 : -1, std::memory_order_relaxed);
  st.nfa_states = key;
  for (uint32_t s : key) {
    int32_t t = nfa_.accept[s];
    if (t < 0) continue;
    if (ignored_[t]) st.accepts_ignored = true;
    else st.accepted.push_back(uint32_t(t));
  }
  std::sort(st.accepted.begin(), st.accepted.end());
  st.accepted.erase(std::unique(st.accepted.begin(), st.accepted.end()), st.accepted.end());
  // States accepting the same terminals end a lexeme the same way for the parser: one id for them.
  st.accepted_id = st.accepted.empty()
                       ? 0
                       : accepted_ids_.emplace(st.accepted, uint32_t(accepted_ids_.size() + 1)).first->second;
  by_nfa_set_.emplace(key, uint32_t(id));
  num_states_.store(id + 1, std::memory_order_release);
  return uint32_t(id);
}

uint32_t Lexer::restrict_to(uint32_t s, const uint32_t* begin, const uint32_t* end) {
  if (begin == end) return kDead;
  if (size_t(end - begin) == state(s).nfa_states.size()) return s;
  std::vector<uint32_t> seeds(begin, end);
  std::lock_guard<std::mutex> lock(mutex_);
  return intern(seeds);
}

uint32_t Lexer::start_state(const std::vector<uint64_t>& allowed) {
  std::vector<uint64_t> key = allowed;
  key.resize(ignored_bits_.size(), 0);
  for (size_t w = 0; w < key.size(); ++w) key[w] |= ignored_bits_[w];
  {
    std::shared_lock<std::shared_mutex> read(start_mutex_);
    auto it = start_by_allowed_.find(key);
    if (it != start_by_allowed_.end()) return it->second;
  }
  std::vector<uint32_t> seeds;
  for (size_t t = 0; t < terminal_start_.size(); ++t)
    if ((key[t / 64] >> (t % 64)) & 1 && terminal_start_[t] != kUnknown) seeds.push_back(terminal_start_[t]);
  uint32_t id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    id = intern(seeds);
  }
  std::unique_lock<std::shared_mutex> write(start_mutex_);
  start_by_allowed_.emplace(std::move(key), id);
  return id;
}

bool Lexer::compute_final(uint32_t s) {
  bool final = s != kDead;
  for (int b = 0; b < 256 && final; ++b) final = next(s, uint8_t(b)) == kDead;
  chunks_[s >> kChunkBits][s & kChunkMask].final.store(final ? 1 : 0, std::memory_order_release);
  return final;
}

uint32_t Lexer::compute_next(uint32_t s, uint8_t byte) {
  std::lock_guard<std::mutex> lock(mutex_);
  DfaState& st = chunks_[s >> kChunkBits][s & kChunkMask];
  uint32_t known = st.next[byte].load(std::memory_order_acquire);
  if (known != kUnknown) return known;
  // Every byte in [lo, hi] takes exactly the same NFA edges as `byte`, so one subset construction fills
  // the whole range: a string body's ~200 live bytes cost a handful of interns, not 200.
  uint32_t lo = 0, hi = 255;
  std::vector<uint32_t>& seeds = seeds_;
  seeds.clear();
  for (uint32_t q : st.nfa_states)
    for (const auto& tr : nfa_.trans(q)) {
      if (tr.lo <= byte && byte <= tr.hi) {
        seeds.push_back(tr.to);
        lo = std::max<uint32_t>(lo, tr.lo);
        hi = std::min<uint32_t>(hi, tr.hi);
      } else if (tr.hi < byte) {
        lo = std::max<uint32_t>(lo, uint32_t(tr.hi) + 1);
      } else {
        hi = std::min<uint32_t>(hi, uint32_t(tr.lo) - 1);
      }
    }
  uint32_t to = seeds.empty() ? kDead : intern(seeds);
  for (uint32_t b = lo; b <= hi; ++b) {
    uint32_t expected = kUnknown;  // another byte of the range may have been filled already: same value
    st.next[b].compare_exchange_strong(expected, to, std::memory_order_acq_rel);
  }
  return to;
}

}  // namespace gdecode
