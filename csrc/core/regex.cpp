#include "core/regex.hpp"

#include <algorithm>

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

RegexPool RegexPool::decode(const std::vector<int64_t>& flat) {
  RegexPool pool;
  size_t i = 0;
  auto take = [&]() -> int64_t {
    if (i >= flat.size()) throw GrammarFailure("truncated regex encoding");
    return flat[i++];
  };
  while (i < flat.size()) {
    RegexNode node;
    int64_t kind = take();
    if (kind < 0 || kind > 4) throw GrammarFailure("bad regex node kind");
    node.kind = static_cast<RegexKind>(kind);
    auto child = [&](int64_t c) {
      if (c < 0 || static_cast<size_t>(c) >= pool.nodes.size()) throw GrammarFailure("bad regex child index");
      return static_cast<uint32_t>(c);
    };
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
    } else {
      node.children.push_back(child(take()));
      int64_t lo = take(), hi = take();
      if (lo < 0 || lo > 0xFFFFFFF || hi > 0xFFFFFFF || (hi >= 0 && hi < lo))
        throw GrammarFailure("bad repeat bounds in regex");
      node.min = uint32_t(lo);
      node.unbounded = hi < 0;
      node.max = hi < 0 ? 0 : uint32_t(hi);
    }
    pool.nodes.push_back(std::move(node));
  }
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

  static constexpr size_t kMaxDepth = 2000;
  Nfa& nfa_;
  const RegexPool& pool_;
  size_t max_;
  const Deadline* deadline_;
  size_t depth_ = 0;
};

}  // namespace

uint32_t add_terminal_nfa(Nfa& nfa, const RegexPool& pool, uint32_t root, int32_t terminal, size_t max_states,
                          const Deadline* deadline) {
  if (root >= pool.nodes.size()) throw GrammarFailure("bad regex root index");
  NfaBuilder builder(nfa, pool, max_states, deadline);
  Fragment f = builder.build(root);
  nfa.accept[f.end] = terminal;
  return f.start;
}

}  // namespace gdecode
