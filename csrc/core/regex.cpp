#include "core/regex.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <map>
#include <optional>
#include <unordered_map>

#include "core/utf8.hpp"

namespace gdecode {

namespace {

// What a regex node matches, from its children's flags: some string (kSome), some non-empty string
// (kNonEmpty). Shared by RegexFlatBuilder and RegexPool so both say the same.
constexpr uint8_t kSome = 1, kNonEmpty = 2;

uint8_t ranges_props(bool empty) { return empty ? 0 : kSome | kNonEmpty; }

uint8_t list_props(bool seq, const std::vector<uint32_t>& children, const std::vector<uint8_t>& props) {
  bool all_some = true, any_some = false, any_nonempty = false;
  for (uint32_t c : children) {
    all_some &= bool(props[c] & kSome);
    any_some |= bool(props[c] & kSome);
    any_nonempty |= bool(props[c] & kNonEmpty);
  }
  bool some = seq ? all_some : any_some;
  bool nonempty = seq ? all_some && any_nonempty : any_nonempty;
  return uint8_t((some ? kSome : 0) | (nonempty ? kNonEmpty : 0));
}

uint8_t repeat_props(uint8_t item, uint32_t min, bool max_is_zero) {
  bool some = max_is_zero || min == 0 || (item & kSome);
  bool nonempty = !max_is_zero && (item & kSome) && (item & kNonEmpty);
  return uint8_t((some ? kSome : 0) | (nonempty ? kNonEmpty : 0));
}

}  // namespace

namespace {

// Reads one node of the flat encoding: `take()` gives the next word, `child(c)` checks a child index.
template <class Take, class Child>
RegexNode read_node(Take&& take, Child&& child) {
  RegexNode node;
  int64_t kind = take();
  if (kind < 0 || kind > 5) throw GrammarFailure("bad regex node kind");
  node.kind = static_cast<RegexKind>(kind);
  if (node.kind == RegexKind::Chars || node.kind == RegexKind::Bytes) {
    int64_t n = take();
    uint32_t top = node.kind == RegexKind::Chars ? 0x10FFFF : 0xFF;
    for (int64_t k = 0; k < n; ++k) {
      int64_t lo = take(), hi = take();
      if (lo < 0 || hi < lo || hi > top) throw GrammarFailure("bad character range in regex");
      node.ranges.emplace_back(uint32_t(lo), uint32_t(hi));
    }
  } else if (node.kind == RegexKind::Seq || node.kind == RegexKind::Alt) {
    int64_t n = take();
    for (int64_t k = 0; k < n; ++k) node.children.push_back(child(take()));
  } else if (node.kind == RegexKind::Repeat) {
    node.children.push_back(child(take()));
    int64_t lo = take(), hi = take();
    if (lo < 0 || lo > 0xFFFFFFF || hi > 0xFFFFFFF || (hi >= 0 && hi < lo))
      throw GrammarFailure("bad repeat bounds in regex");
    node.min = uint32_t(lo);
    node.unbounded = hi < 0;
    node.max = hi < 0 ? 0 : uint32_t(hi);
  } else {  // Minus: item, number of words, then each word as its length and its bytes
    node.children.push_back(child(take()));
    int64_t n = take();
    if (n < 0) throw GrammarFailure("bad word count in regex");
    for (int64_t k = 0; k < n; ++k) {
      int64_t len = take();
      if (len < 0) throw GrammarFailure("bad word length in regex");
      std::string w;
      for (int64_t j = 0; j < len; ++j) {
        int64_t b = take();
        if (b < 0 || b > 0xFF) throw GrammarFailure("bad byte in regex word");
        w.push_back(char(uint8_t(b)));
      }
      node.words.push_back(std::move(w));
    }
  }
  return node;
}

using Strings = std::optional<std::vector<std::string>>;  // sorted, distinct; nullopt: more than a limit

void sort_unique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// Products of string sets are bounded: the parts are each under the limit, but their product may not be.
void check_product(size_t a, size_t b) {
  if (a * b > 4'000'000)
    throw LimitExceeded("a word exclusion's item has too many strings to compare with the words");
}

// The (byte) strings of node `id` if it has at most `limit` of them, else nullopt. Exact: the number of
// distinct strings of A.B is at least that of A and of B (fix one side), so a part over the limit puts
// the whole over it. `get(i)` returns node i.
template <class Get>
Strings finite_strings(const Get& get, uint32_t id, size_t limit, size_t depth = 0) {
  if (depth > 2000) throw LimitExceeded("regex nesting deeper than 2000");
  RegexNode n = get(id);
  std::vector<std::string> out;
  switch (n.kind) {
    case RegexKind::Chars:
    case RegexKind::Bytes: {
      uint64_t count = 0;
      for (auto [lo, hi] : n.ranges) count += uint64_t(hi) - lo + 1;
      if (count > limit) return std::nullopt;
      for (auto [lo, hi] : n.ranges) {
        for (uint32_t cp = lo; cp <= hi; ++cp) {
          if (n.kind == RegexKind::Chars && cp >= 0xD800 && cp <= 0xDFFF) continue;  // never matched
          std::string s;
          if (n.kind == RegexKind::Chars) append_utf8(s, cp); else s.push_back(char(uint8_t(cp)));
          out.push_back(std::move(s));
        }
      }
      break;
    }
    case RegexKind::Seq: {
      out = {""};
      for (uint32_t c : n.children) {
        Strings t = finite_strings(get, c, limit, depth + 1);
        if (!t) return std::nullopt;
        check_product(out.size(), t->size());
        std::vector<std::string> next;
        for (const auto& a : out)
          for (const auto& b : *t) next.push_back(a + b);
        sort_unique(next);
        if (next.size() > limit) return std::nullopt;
        out.swap(next);
      }
      break;
    }
    case RegexKind::Alt:
      for (uint32_t c : n.children) {
        Strings t = finite_strings(get, c, limit, depth + 1);
        if (!t) return std::nullopt;
        out.insert(out.end(), t->begin(), t->end());
        sort_unique(out);
        if (out.size() > limit) return std::nullopt;
      }
      break;
    case RegexKind::Repeat: {
      if (!n.unbounded && n.max == 0) return std::vector<std::string>{""};
      Strings item = finite_strings(get, n.children[0], limit, depth + 1);
      if (!item) return std::nullopt;  // some k >= 1 copies are allowed, with at least as many strings
      bool grows = std::any_of(item->begin(), item->end(), [](const std::string& w) { return !w.empty(); });
      if (!grows) {  // only "" (or nothing) per copy
        if (n.min == 0 || !item->empty()) out = {""};
        break;
      }
      if (n.unbounded) return std::nullopt;  // infinitely many
      std::vector<std::string> layer = {""};
      for (uint32_t k = 0;; ++k) {
        if (k >= n.min) {
          out.insert(out.end(), layer.begin(), layer.end());
          sort_unique(out);
          if (out.size() > limit) return std::nullopt;
        }
        if (k == n.max) break;
        check_product(layer.size(), item->size());
        std::vector<std::string> next;
        for (const auto& a : layer)
          for (const auto& b : *item) next.push_back(a + b);
        sort_unique(next);
        if (next.size() > limit) return std::nullopt;  // layers never shrink: the last one is as big
        layer.swap(next);
      }
      break;
    }
    case RegexKind::Minus: {
      Strings item = finite_strings(get, n.children[0], limit + n.words.size(), depth + 1);
      if (!item) return std::nullopt;
      std::vector<std::string> words = n.words;
      sort_unique(words);
      std::set_difference(item->begin(), item->end(), words.begin(), words.end(), std::back_inserter(out));
      if (out.size() > limit) return std::nullopt;
      break;
    }
  }
  return out;
}

// Flags of a Minus node: whether its item matches a (non-empty) string that is not one of the words.
template <class Get>
uint8_t minus_props(const Get& get, uint32_t item, uint8_t item_props, const std::vector<std::string>& words) {
  if (!(item_props & kSome)) return 0;
  Strings all = finite_strings(get, item, words.size() + 2);
  if (!all) return kSome | kNonEmpty;  // at least two strings beyond the words, one of them not empty
  std::vector<std::string> sorted = words;
  sort_unique(sorted);
  uint8_t props = 0;
  for (const auto& s : *all) {
    if (std::binary_search(sorted.begin(), sorted.end(), s)) continue;
    props |= kSome;
    if (!s.empty()) props |= kNonEmpty;
  }
  return props;
}

}  // namespace

RegexPool RegexPool::decode(const std::vector<int64_t>& flat) {
  RegexPool pool;
  size_t i = 0;
  auto take = [&]() -> int64_t {
    if (i >= flat.size()) throw GrammarFailure("truncated regex encoding");
    return flat[i++];
  };
  auto child = [&](int64_t c) {
    if (c < 0 || static_cast<size_t>(c) >= pool.nodes.size()) throw GrammarFailure("bad regex child index");
    return static_cast<uint32_t>(c);
  };
  while (i < flat.size()) pool.nodes.push_back(read_node(take, child));
  return pool;
}

std::vector<bool> RegexPool::matches_nonempty() const {
  std::vector<uint8_t> props(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {  // children come before their parents
    const RegexNode& n = nodes[i];
    if (n.kind == RegexKind::Chars || n.kind == RegexKind::Bytes) {
      props[i] = ranges_props(n.ranges.empty());
    } else if (n.kind == RegexKind::Repeat) {
      props[i] = repeat_props(props[n.children[0]], n.min, !n.unbounded && n.max == 0);
    } else if (n.kind == RegexKind::Minus) {
      auto get = [this](uint32_t k) { return nodes[k]; };
      props[i] = minus_props(get, n.children[0], props[n.children[0]], n.words);
    } else {
      props[i] = list_props(n.kind == RegexKind::Seq, n.children, props);
    }
  }
  std::vector<bool> out(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) out[i] = props[i] & kNonEmpty;
  return out;
}

bool RegexFlatBuilder::matches_nonempty(uint32_t node) const { return props_.at(node) & kNonEmpty; }

uint64_t RegexFlatBuilder::hash_of(const int64_t* begin, const int64_t* end) const {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the words
  for (const int64_t* x = begin; x != end; ++x) h = (h ^ uint64_t(*x)) * 1099511628211ull;
  return h ^ (h >> 32);
}

uint32_t RegexFlatBuilder::child(uint32_t c) const {
  if (c >= props_.size()) throw GrammarFailure("bad regex child index");
  return c;
}

void RegexFlatBuilder::grow() {
  std::vector<uint32_t> table(table_.size() * 2, 0);
  size_t mask = table.size() - 1;
  for (uint32_t i = 0; i < props_.size(); ++i) {
    size_t pos = hash_of(flat_.data() + starts_[i], flat_.data() + starts_[i + 1]) & mask;
    while (table[pos] != 0) pos = (pos + 1) & mask;
    table[pos] = i + 1;
  }
  table_.swap(table);
}

uint32_t RegexFlatBuilder::intern(uint8_t props) {
  size_t mask = table_.size() - 1;
  size_t pos = hash_of(key_.data(), key_.data() + key_.size()) & mask;
  for (; table_[pos] != 0; pos = (pos + 1) & mask) {
    uint32_t i = table_[pos] - 1;
    if (starts_[i + 1] - starts_[i] == key_.size() &&
        std::equal(key_.begin(), key_.end(), flat_.begin() + starts_[i]))
      return i;
  }
  uint32_t i = uint32_t(props_.size());
  flat_.insert(flat_.end(), key_.begin(), key_.end());
  starts_.push_back(uint32_t(flat_.size()));
  props_.push_back(props);
  table_[pos] = i + 1;
  if (props_.size() * 2 > table_.size()) grow();
  return i;
}

uint32_t RegexFlatBuilder::ranges(RegexKind kind, const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
  if (kind != RegexKind::Chars && kind != RegexKind::Bytes) throw GrammarFailure("bad regex node kind");
  uint32_t top = kind == RegexKind::Chars ? 0x10FFFF : 0xFF;
  key_.assign({int64_t(kind), int64_t(ranges.size())});
  for (auto [lo, hi] : ranges) {
    if (hi < lo || hi > top) throw GrammarFailure("bad character range in regex");
    key_.push_back(lo);
    key_.push_back(hi);
  }
  return intern(ranges_props(ranges.empty()));
}

uint32_t RegexFlatBuilder::list(RegexKind kind, const std::vector<uint32_t>& children) {
  if (kind != RegexKind::Seq && kind != RegexKind::Alt) throw GrammarFailure("bad regex node kind");
  key_.assign({int64_t(kind), int64_t(children.size())});
  for (uint32_t c : children) key_.push_back(child(c));
  return intern(list_props(kind == RegexKind::Seq, children, props_));
}

uint32_t RegexFlatBuilder::repeat(uint32_t c, uint32_t min, int64_t max) {
  if (min > 0xFFFFFFF || max > 0xFFFFFFF || (max >= 0 && max < int64_t(min)))
    throw GrammarFailure("bad repeat bounds in regex");
  uint8_t p = props_[child(c)];
  key_.assign({int64_t(RegexKind::Repeat), int64_t(c), int64_t(min), max < 0 ? -1 : max});
  return intern(repeat_props(p, min, max == 0));
}

uint32_t RegexFlatBuilder::minus(uint32_t c, const std::vector<std::string>& words) {
  uint8_t p = props_[child(c)];
  key_.assign({int64_t(RegexKind::Minus), int64_t(c), int64_t(words.size())});
  for (const auto& w : words) {
    key_.push_back(int64_t(w.size()));
    for (char b : w) key_.push_back(int64_t(uint8_t(b)));
  }
  auto get = [this](uint32_t k) { return node_at(k); };
  return intern(minus_props(get, c, p, words));
}

RegexNode RegexFlatBuilder::node_at(uint32_t i) const {
  size_t pos = starts_.at(i), end = starts_.at(i + 1);
  auto take = [&]() -> int64_t {
    if (pos >= end) throw GrammarFailure("truncated regex encoding");
    return flat_[pos++];
  };
  return read_node(take, [](int64_t x) { return uint32_t(x); });
}

uint32_t Nfa::add_state() {
  accept.push_back(-1);
  return static_cast<uint32_t>(accept.size() - 1);
}

void Nfa::freeze() {
  if (frozen_) return;
  frozen_ = true;
  trans_ = Rows<NfaTransition>::build(size(), [&](auto push) {
    for (const auto& [from, t] : new_trans_) push(from, t);
  });
  eps_ = Rows<uint32_t>::build(size(), [&](auto push) {
    for (const auto& [from, to] : new_eps_) push(from, to);
  });
  std::vector<std::pair<uint32_t, NfaTransition>>().swap(new_trans_);
  std::vector<std::pair<uint32_t, uint32_t>>().swap(new_eps_);
}

void Nfa::remove_edges_into(const std::vector<uint8_t>& keep) {
  trans_.filter([&](const NfaTransition& t) { return keep[t.to]; });
  eps_.filter([&](uint32_t to) { return keep[to]; });
}

namespace {

struct Fragment {
  uint32_t start, end;  // `end` has no outgoing edges yet
};

ByteDfa determinize(const RegexPool& pool, uint32_t root, size_t max_nfa_states, size_t max_states,
                    const Deadline* deadline);

class NfaBuilder {
 public:
  NfaBuilder(Nfa& nfa, const RegexPool& pool, size_t max_states, const Deadline* deadline)
      : nfa_(nfa), pool_(pool), max_(max_states), deadline_(deadline) {}

  Fragment build(uint32_t id) {
    // Recursion follows the regex's nesting; bound it so a hostile regex raises instead of
    // overflowing the C++ stack.
    struct Depth {
      size_t& d;
      explicit Depth(size_t& x) : d(x) {
        if (++d > kMaxDepth) throw LimitExceeded("regex nesting deeper than " + std::to_string(kMaxDepth));
      }
      ~Depth() { --d; }
    } guard(depth_);
    const RegexNode& node = pool_.nodes[id];
    switch (node.kind) {
      case RegexKind::Chars: return chars(node);
      case RegexKind::Bytes: return bytes(node);
      case RegexKind::Seq: {
        Fragment f{state(), 0};
        f.end = f.start;
        for (uint32_t c : node.children) {
          Fragment g = build(c);
          nfa_.add_eps(f.end, g.start);
          f.end = g.end;
        }
        return f;
      }
      case RegexKind::Alt: {
        Fragment f{state(), state()};
        for (uint32_t c : node.children) {
          Fragment g = build(c);
          nfa_.add_eps(f.start, g.start);
          nfa_.add_eps(g.end, f.end);
        }
        return f;
      }
      case RegexKind::Repeat: return repeat(node);
      case RegexKind::Minus: return minus(node);
    }
    throw GrammarFailure("unreachable regex kind");
  }

 private:
  uint32_t state() {
    if (nfa_.size() >= max_)
      throw LimitExceeded("lexer NFA exceeds max_nfa_states=" + std::to_string(max_) +
                         " (large bounded repeats or huge character classes)");
    if (deadline_ != nullptr && (nfa_.size() & 1023) == 0) deadline_->check("building the lexer NFA");
    return nfa_.add_state();
  }

  Fragment chars(const RegexNode& node) {
    Fragment f{state(), state()};
    std::vector<ByteRangeSeq> seqs;
    for (auto [lo, hi] : node.ranges) utf8_sequences(lo, hi, seqs);
    for (const auto& seq : seqs) chain(f, seq);
    return f;
  }

  Fragment bytes(const RegexNode& node) {
    Fragment f{state(), state()};
    for (auto [lo, hi] : node.ranges) nfa_.add_edge(f.start, uint8_t(lo), uint8_t(hi), f.end);
    return f;
  }

  void chain(const Fragment& f, const ByteRangeSeq& seq) {
    uint32_t cur = f.start;
    for (size_t k = 0; k < seq.size(); ++k) {
      uint32_t to = k + 1 == seq.size() ? f.end : state();
      nfa_.add_edge(cur, seq[k].first, seq[k].second, to);
      cur = to;
    }
  }

  Fragment repeat(const RegexNode& node) {
    uint32_t item = node.children[0];
    Fragment f{state(), 0};
    f.end = f.start;
    for (uint32_t k = 0; k < node.min; ++k) {
      Fragment g = build(item);
      nfa_.add_eps(f.end, g.start);
      f.end = g.end;
    }
    if (node.unbounded) {
      Fragment g = build(item);
      uint32_t out = state();
      nfa_.add_eps(f.end, g.start);
      nfa_.add_eps(f.end, out);
      nfa_.add_eps(g.end, g.start);
      nfa_.add_eps(g.end, out);
      f.end = out;
    } else if (node.max > node.min) {
      // x{0,k} as nested optionals: (x(x(x)?)?)? -- every exit jumps to one shared end.
      uint32_t out = state();
      for (uint32_t k = node.min; k < node.max; ++k) {
        Fragment g = build(item);
        nfa_.add_eps(f.end, out);
        nfa_.add_eps(f.end, g.start);
        f.end = g.end;
      }
      nfa_.add_eps(f.end, out);
      f.end = out;
    }
    return f;
  }

  // The item's DFA (subset construction over bytes) times the trie of the words: a state is (trie node or
  // "left the trie", DFA state). Every way out of the trie reaches the same copy of the item's DFA, so the
  // lexer states of "any other key" stay few however many names there are.
  Fragment minus(const RegexNode& node) {
    const ByteDfa& dfa = item_dfa(node.children[0]);
    // trie of the words: children as sorted (byte, node) lists
    std::vector<std::vector<std::pair<uint8_t, uint32_t>>> kids(1);
    std::vector<bool> is_word(1, false);
    for (const std::string& w : node.words) {
      uint32_t t = 0;
      for (char ch : w) {
        uint8_t b = uint8_t(ch);
        auto& row = kids[t];
        auto it = std::lower_bound(row.begin(), row.end(), std::make_pair(b, uint32_t(0)),
                                   [](const auto& x, const auto& y) { return x.first < y.first; });
        if (it == row.end() || it->first != b) {
          it = row.insert(it, {b, uint32_t(kids.size())});
          kids.emplace_back();
          is_word.push_back(false);
        }
        t = it->second;
      }
      is_word[t] = true;
    }
    // product, from (root, start); kOut: the string left the trie
    constexpr uint32_t kOut = UINT32_MAX;
    Fragment f{0, state()};
    std::unordered_map<uint64_t, uint32_t> ids;
    std::vector<std::pair<uint32_t, int32_t>> todo;
    auto get = [&](uint32_t t, int32_t q) {
      uint64_t key = (uint64_t(t) << 32) | uint32_t(q);
      auto [it, fresh] = ids.emplace(key, 0);
      if (fresh) {
        it->second = state();
        todo.emplace_back(t, q);
      }
      return it->second;
    };
    f.start = get(0, 0);
    while (!todo.empty()) {
      auto [t, q] = todo.back();
      todo.pop_back();
      uint32_t from = ids.at((uint64_t(t) << 32) | uint32_t(q));
      if (dfa.accept[q] && (t == kOut || !is_word[t])) nfa_.add_eps(from, f.end);
      size_t k = 0;  // next child of t, in byte order
      uint32_t last_t = kOut, last_to = 0;
      int32_t last_q = -1;
      int64_t run_lo = -1;
      uint32_t run_to = 0;
      for (uint32_t b = 0; b < 256; ++b) {
        int32_t q2 = dfa.next[q][b];
        uint32_t to = 0;
        bool has = q2 >= 0;
        if (has) {
          uint32_t t2 = kOut;
          if (t != kOut) {
            const auto& row = kids[t];
            while (k < row.size() && row[k].first < b) ++k;
            if (k < row.size() && row[k].first == b) t2 = row[k].second;
          }
          if (t2 != last_t || q2 != last_q) {  // runs of bytes mostly share a target: skip the lookup
            last_t = t2, last_q = q2;
            last_to = get(t2, q2);
          }
          to = last_to;
        }
        if (run_lo >= 0 && (!has || to != run_to)) {
          nfa_.add_edge(from, uint8_t(run_lo), uint8_t(b - 1), run_to);
          run_lo = -1;
        }
        if (has && run_lo < 0) {
          run_lo = b;
          run_to = to;
        }
      }
      if (run_lo >= 0) nfa_.add_edge(from, uint8_t(run_lo), 255, run_to);
    }
    return f;
  }

  // The DFA of a Minus item, cached in the pool.
  const ByteDfa& item_dfa(uint32_t item) {
    auto hit = pool_.minus_dfas.find(item);
    if (hit != pool_.minus_dfas.end()) return *hit->second;
    auto dfa = std::make_shared<ByteDfa>(determinize(pool_, item, max_, kMaxMinusDfa, deadline_));
    return *pool_.minus_dfas.emplace(item, std::move(dfa)).first->second;
  }

  static constexpr size_t kMaxDepth = 2000;
  static constexpr size_t kMaxMinusDfa = 4096;  // DFA states of a Minus item
  Nfa& nfa_;
  const RegexPool& pool_;
  size_t max_;
  const Deadline* deadline_;
  size_t depth_ = 0;
};

// Subset construction over bytes of the Thompson NFA of `root` (states reachable from the start only).
// Per DFA state the byte axis is cut at the bounds of the NFA edges leaving it, and each piece's target set
// is computed once (byte by byte was most of the time for number ranges).
ByteDfa determinize(const RegexPool& pool, uint32_t root, size_t max_nfa_states, size_t max_states,
                    const Deadline* deadline) {
  Nfa sub;
  uint32_t start = add_terminal_nfa(sub, pool, root, 0, max_nfa_states, deadline);
  sub.freeze();
  ByteDfa dfa;
  std::vector<std::vector<uint32_t>> sets;
  std::map<std::vector<uint32_t>, int32_t> index;
  std::vector<uint32_t> mark(sub.size(), 0);
  uint32_t gen = 0;
  auto intern = [&](std::vector<uint32_t> set) -> int32_t {
    ++gen;
    for (uint32_t q : set) mark[q] = gen;
    for (size_t k = 0; k < set.size(); ++k)  // epsilon closure
      for (uint32_t t : sub.eps(set[k]))
        if (mark[t] != gen) mark[t] = gen, set.push_back(t);
    std::sort(set.begin(), set.end());
    auto [it, fresh] = index.emplace(set, int32_t(sets.size()));
    if (fresh) {
      if (sets.size() >= max_states)
        throw LimitExceeded("regex needs more than " + std::to_string(max_states) + " DFA states");
      dfa.accept.push_back(std::any_of(set.begin(), set.end(), [&](uint32_t q) { return sub.accept[q] >= 0; }));
      sets.push_back(std::move(set));
    }
    return it->second;
  };
  intern({start});
  std::vector<NfaTransition> out;
  std::vector<uint32_t> cuts, targets;
  for (size_t d = 0; d < sets.size(); ++d) {
    if (deadline != nullptr && (d & 63) == 0) deadline->check("determinizing a regex");
    out.clear();
    cuts.clear();
    for (uint32_t q : sets[d])
      for (const NfaTransition& t : sub.trans(q)) {
        out.push_back(t);
        cuts.push_back(t.lo);
        cuts.push_back(uint32_t(t.hi) + 1);
      }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    std::array<int32_t, 256> row;
    row.fill(-1);
    for (size_t k = 0; k + 1 < cuts.size(); ++k) {
      uint32_t lo = cuts[k], hi = cuts[k + 1] - 1;
      targets.clear();
      for (const NfaTransition& t : out)
        if (t.lo <= lo && lo <= t.hi) targets.push_back(t.to);
      if (targets.empty()) continue;
      int32_t to = intern(targets);
      for (uint32_t b = lo; b <= hi; ++b) row[b] = to;
    }
    dfa.next.push_back(row);
  }
  return dfa;
}

constexpr size_t kMaxMinimizeWork = 50'000'000;  // signature words over all rounds (Moore: up to n rounds)

// Removes the states from which no accepting state is reachable (their edges become "no move"), keeping
// the start; then merges equivalent states (Moore's partition refinement) and renumbers from the start.
ByteDfa minimize(const ByteDfa& in) {
  size_t n = in.next.size();
  std::vector<std::vector<uint32_t>> rev(n);
  for (size_t s = 0; s < n; ++s)
    for (int32_t t : in.next[s])
      if (t >= 0) rev[t].push_back(uint32_t(s));
  std::vector<bool> live(n, false);
  std::vector<uint32_t> stack;
  for (size_t s = 0; s < n; ++s)
    if (in.accept[s]) live[s] = true, stack.push_back(uint32_t(s));
  while (!stack.empty()) {
    uint32_t s = stack.back();
    stack.pop_back();
    for (uint32_t p : rev[s])
      if (!live[p]) live[p] = true, stack.push_back(p);
  }
  auto target = [&](size_t s, uint32_t b) { int32_t t = in.next[s][b]; return t >= 0 && live[t] ? t : -1; };
  // Each state's row as runs of bytes with one target (character classes: a few runs, not 256 bytes).
  struct Run {
    uint8_t lo, hi;
    int32_t to;
  };
  std::vector<std::vector<Run>> runs(n);
  for (size_t s = 0; s < n; ++s)
    for (uint32_t b = 0; b < 256; ++b) {
      int32_t t = target(s, b);
      if (t < 0) continue;
      if (!runs[s].empty() && runs[s].back().hi + 1u == b && runs[s].back().to == t) runs[s].back().hi = uint8_t(b);
      else runs[s].push_back({uint8_t(b), uint8_t(b), t});
    }
  std::vector<int32_t> cls(n);
  for (size_t s = 0; s < n; ++s) cls[s] = in.accept[s] ? 1 : 0;
  size_t count = 0, work = 0;
  std::vector<int32_t> key;
  for (;;) {
    // Moore refinement: a state's signature is its class and, per run of bytes, the class it moves to
    // (neighbouring runs into one class merged, so equal states give equal signatures).
    std::map<std::vector<int32_t>, int32_t> sig;
    std::vector<int32_t> next_cls(n);
    for (size_t s = 0; s < n; ++s) {
      key.assign({cls[s]});
      for (const Run& r : runs[s]) {
        size_t m = key.size();
        if (m >= 4 && key[m - 1] == cls[r.to] && key[m - 2] == int32_t(r.lo) - 1) {
          key[m - 2] = r.hi;
        } else {
          key.insert(key.end(), {int32_t(r.lo), int32_t(r.hi), cls[r.to]});
        }
      }
      work += key.size();
      next_cls[s] = sig.emplace(key, int32_t(sig.size())).first->second;
    }
    if (work > kMaxMinimizeWork) throw LimitExceeded("DFA minimization over its work bound");
    bool stable = sig.size() == count;
    count = sig.size();
    cls.swap(next_cls);
    if (stable) break;
  }
  // renumber by discovery from the start
  ByteDfa out;
  std::vector<int32_t> id(count, -1);
  std::vector<size_t> rep;  // a state of each new class
  auto visit = [&](size_t s) {
    if (id[cls[s]] < 0) {
      id[cls[s]] = int32_t(rep.size());
      rep.push_back(s);
    }
    return id[cls[s]];
  };
  visit(0);
  for (size_t k = 0; k < rep.size(); ++k) {
    size_t s = rep[k];
    std::array<int32_t, 256> row;
    for (uint32_t b = 0; b < 256; ++b) {
      int32_t t = target(s, b);
      row[b] = t < 0 ? -1 : visit(size_t(t));
    }
    out.next.push_back(row);
    out.accept.push_back(in.accept[s]);
  }
  return out;
}

}  // namespace

ByteDfa intersection_dfa(const RegexPool& pool, const std::vector<uint32_t>& roots, size_t max_states) {
  // Subset constructions before minimization can be much bigger than the minimal DFA (number ranges: 10x):
  // they get a wider bound, the minimal automata the caller's.
  size_t wide = std::max<size_t>(max_states * 32, 20'000);
  auto bounded = [&](ByteDfa dfa) {
    if (dfa.next.size() > max_states)
      throw LimitExceeded("intersection needs more than " + std::to_string(max_states) + " DFA states");
    return dfa;
  };
  std::vector<ByteDfa> parts;
  for (uint32_t r : roots) {
    if (r >= pool.nodes.size()) throw GrammarFailure("bad regex root index");
    parts.push_back(bounded(minimize(determinize(pool, r, 1'000'000, wide, nullptr))));
  }
  if (parts.empty()) throw GrammarFailure("intersection of no regex");
  ByteDfa prod;
  std::map<std::vector<int32_t>, int32_t> index;
  std::vector<std::vector<int32_t>> tuples;
  auto intern = [&](std::vector<int32_t> t) {
    auto [it, fresh] = index.emplace(t, int32_t(tuples.size()));
    if (fresh) {
      if (tuples.size() >= wide)
        throw LimitExceeded("intersection needs more than " + std::to_string(wide) + " DFA states");
      bool acc = true;
      for (size_t k = 0; k < parts.size(); ++k) acc = acc && parts[k].accept[t[k]];
      prod.accept.push_back(acc);
      tuples.push_back(std::move(t));
    }
    return it->second;
  };
  intern(std::vector<int32_t>(parts.size(), 0));
  for (size_t d = 0; d < tuples.size(); ++d) {
    std::array<int32_t, 256> row;
    for (uint32_t b = 0; b < 256; ++b) {
      std::vector<int32_t> t(parts.size());
      bool ok = true;
      for (size_t k = 0; k < parts.size() && ok; ++k) ok = (t[k] = parts[k].next[tuples[d][k]][b]) >= 0;
      row[b] = ok ? intern(std::move(t)) : -1;
    }
    prod.next.push_back(row);
  }
  return bounded(minimize(prod));
}


uint32_t add_terminal_nfa(Nfa& nfa, const RegexPool& pool, uint32_t root, int32_t terminal, size_t max_states,
                          const Deadline* deadline) {
  if (root >= pool.nodes.size()) throw GrammarFailure("bad regex root index");
  NfaBuilder builder(nfa, pool, max_states, deadline);
  Fragment f = builder.build(root);
  nfa.accept[f.end] = terminal;
  return f.start;
}

}  // namespace gdecode
