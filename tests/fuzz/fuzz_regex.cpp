// libFuzzer target: regex ASTs (the flat encoding of gdecode/compiler.py) -> byte NFA -> lazy lexer DFA.
//
// Oracles, all independent of the lexer's subset construction:
//   * the DFA run over the input's trailing bytes accepts exactly the terminals a direct NFA simulation
//     (sets of states, epsilon closures) accepts, at every prefix;
//   * a dead DFA state means the NFA simulation can reach no accepting state any more;
//   * is_final(s) means no byte leaves s;
//   * for a code-point class, a scalar value's UTF-8 encoding is one lexeme exactly when the value is in
//     the class (surrogates never are).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "core/lexer.hpp"
#include "core/regex.hpp"
#include "core/utf8.hpp"
#include "fuzz_input.hpp"

using namespace gdecode;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_regex: contract violated: %s\n", what);
  std::abort();
}

struct NfaSim {
  const Nfa& nfa;
  std::set<uint32_t> closure(std::vector<uint32_t> seeds) const {
    std::set<uint32_t> out(seeds.begin(), seeds.end());
    while (!seeds.empty()) {
      uint32_t s = seeds.back();
      seeds.pop_back();
      for (uint32_t t : nfa.eps(s))
        if (out.insert(t).second) seeds.push_back(t);
    }
    return out;
  }
  std::set<uint32_t> step(const std::set<uint32_t>& cur, uint8_t b) const {
    std::vector<uint32_t> seeds;
    for (uint32_t s : cur)
      for (const auto& tr : nfa.trans(s))
        if (tr.lo <= b && b <= tr.hi) seeds.push_back(tr.to);
    return closure(seeds);
  }
  std::vector<uint32_t> accepted(const std::set<uint32_t>& cur) const {
    std::vector<uint32_t> out;
    for (uint32_t s : cur)
      if (nfa.accept[s] >= 0) out.push_back(uint32_t(nfa.accept[s]));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }
  // Can an accepting state still be reached (through bytes and epsilons)?
  bool live(const std::set<uint32_t>& cur) const {
    std::vector<uint32_t> stack(cur.begin(), cur.end());
    std::set<uint32_t> seen(cur.begin(), cur.end());
    while (!stack.empty()) {
      uint32_t s = stack.back();
      stack.pop_back();
      if (nfa.accept[s] >= 0) return true;
      auto push = [&](uint32_t t) {
        if (seen.insert(t).second) stack.push_back(t);
      };
      for (uint32_t t : nfa.eps(s)) push(t);
      for (const auto& tr : nfa.trans(s)) push(tr.to);
    }
    return false;
  }
};

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18));
    s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gdfuzz::Reader r(data, size);
  Limits limits = gdfuzz::fuzz_limits();
  RegexPool pool;
  Nfa nfa;
  std::vector<uint32_t> starts;
  std::vector<bool> ignored;
  std::vector<uint32_t> roots;
  try {
    std::vector<int64_t> flat;
    size_t n = r.count(1 << 14);
    for (size_t i = 0; i < n; ++i) flat.push_back(r.s());
    pool = RegexPool::decode(flat);
    size_t nt = 1 + r.count(7);
    Deadline deadline(limits.max_compile_seconds);
    for (size_t t = 0; t < nt; ++t) {
      uint32_t root = uint32_t(r.u());
      roots.push_back(root);
      starts.push_back(add_terminal_nfa(nfa, pool, root, int32_t(t), limits.max_nfa_states, &deadline));
      ignored.push_back((r.byte() & 3) == 0);
    }
  } catch (const GrammarFailure&) {
    return 0;
  } catch (const LimitExceeded&) {
    return 0;
  }
  Nfa reference = nfa;  // the lexer prunes its own copy
  reference.freeze();
  NfaSim sim{reference};
  Lexer lexer(std::move(nfa), starts, ignored, limits);

  try {
    // Which terminals are allowed at the lexeme start.
    uint8_t allow = r.byte() | 1;
    std::vector<uint64_t> allowed(1, 0);
    std::vector<uint32_t> seeds;
    for (size_t t = 0; t < starts.size(); ++t)
      if (((allow >> t) & 1) || ignored[t]) {
        allowed[0] |= uint64_t(1) << t;
        seeds.push_back(starts[t]);
      }
    std::string input = r.bytes(r.count(4096));
    uint32_t s = lexer.start_state(allowed);
    std::set<uint32_t> cur = sim.closure(seeds);
    for (size_t i = 0;; ++i) {
      const DfaState& ds = lexer.state(s);
      std::vector<uint32_t> want, got(ds.accepted.begin(), ds.accepted.end());
      bool want_ignored = false;
      for (uint32_t t : sim.accepted(cur)) {
        if (ignored[t]) want_ignored = true;
        else want.push_back(t);
      }
      if (s == Lexer::kDead) {
        if (sim.live(cur)) fail("dead DFA state but the NFA can still accept");
      } else {
        if (got != want) fail("DFA accepted terminals != NFA simulation");
        if (ds.accepts_ignored != want_ignored) fail("DFA ignored acceptance != NFA simulation");
      }
      if (s != Lexer::kDead && lexer.is_final(s)) {
        for (int b = 0; b < 256; ++b)
          if (lexer.next(s, uint8_t(b)) != Lexer::kDead) fail("final state has a live byte");
      }
      if (i == input.size()) break;
      uint8_t b = uint8_t(input[i]);
      s = lexer.next(s, b);
      cur = sim.step(cur, b);
    }

    // Code-point classes: membership of a few scalar values, through the lexer.
    for (size_t t = 0; t < roots.size(); ++t) {
      const RegexNode& node = pool.nodes[roots[t]];
      if (node.kind != RegexKind::Chars || ignored[t]) continue;
      std::vector<uint64_t> only(1, uint64_t(1) << t);
      for (size_t w = 0; w < starts.size(); ++w)
        if (ignored[w]) only[0] |= uint64_t(1) << w;
      for (int k = 0; k < 8; ++k) {
        uint32_t cp = uint32_t(r.u() % 0x110000);
        bool in = cp < 0xD800 || cp > 0xDFFF;
        bool member = false;
        for (auto [lo, hi] : node.ranges) member |= lo <= cp && cp <= hi;
        in = in && member;
        uint32_t q = lexer.start_state(only);
        for (char c : utf8(cp)) q = lexer.next(q, uint8_t(c));
        bool accepted = q != Lexer::kDead &&
                        std::binary_search(lexer.state(q).accepted.begin(), lexer.state(q).accepted.end(),
                                           uint32_t(t));
        if (accepted != in) fail("UTF-8 class membership differs from the code point ranges");
      }
    }
  } catch (const LimitExceeded&) {
    return 0;  // max_dfa_states: documented
  }
  return 0;
}
