// libFuzzer target: arbitrary grammar spec + vocabulary -> CompiledGrammar -> a matcher driven by an op
// script (masks, consume, rollback, fork, bytes, forced bytes, validate, reset).
//
// Besides "no crash, no sanitizer report, only the documented exceptions", it checks the matcher's own
// contracts against each other:
//   * a mask bit is set exactly when is_token_allowed() says so (every token of the logit width);
//   * a token from the mask is consumed; rollback(n) brings back the mask seen n tokens ago;
//   * a fork computes the same mask as its parent; forced_bytes() are consumable;
//   * validate_tokens(ids) equals consuming ids one by one on a fork; is_accepting() equals the EOS bit.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "core/matcher.hpp"
#include "fuzz_input.hpp"

using gdecode::CompiledGrammar;
using gdecode::GrammarFailure;
using gdecode::LimitExceeded;
using gdecode::Matcher;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_grammar: contract violated: %s\n", what);
  std::abort();
}

using Mask = std::vector<uint32_t>;

Mask mask_of(Matcher& m) {
  Mask w(m.grammar().vocab().num_words() + 1, 0xA5A5A5A5u);  // one guard word past the end
  m.fill_bitmask(w.data());
  if (w.back() != 0xA5A5A5A5u) fail("fill_bitmask wrote past its words");
  w.pop_back();
  return w;
}

bool bit(const Mask& m, uint32_t t) { return (m[t >> 5] >> (t & 31)) & 1; }

void check_mask_against_tokens(Matcher& m, const Mask& mask) {
  size_t v = m.grammar().vocab().vocab_size();
  for (uint32_t t = 0; t < v; ++t)
    if (bit(mask, t) != m.is_token_allowed(t)) fail("mask bit != is_token_allowed");
  for (size_t t = v; t < mask.size() * 32; ++t)
    if (bit(mask, uint32_t(t))) fail("mask allows a token past the logit width");
}

void run_ops(gdfuzz::Reader& r, const std::shared_ptr<const CompiledGrammar>& g) {
  Matcher m(g);
  const gdecode::Vocabulary& vocab = g->vocab();
  const uint32_t v = uint32_t(vocab.vocab_size());
  std::vector<std::optional<Mask>> at_depth(1);  // mask seen at each history depth (if computed)
  size_t depth = 0;                               // tokens consumed since reset, within the history
  std::optional<Mask> last;
  auto on_consumed = [&](bool was_terminated) {
    last.reset();
    if (was_terminated) return;
    ++depth;
    at_depth.resize(depth + 1);
    at_depth[depth].reset();
  };
  for (int steps = 0; steps < 64 && !r.done(); ++steps) {
    switch (r.byte() % 10) {
      case 0: {  // mask, checked token by token
        Mask mask = mask_of(m);
        check_mask_against_tokens(m, mask);
        if (at_depth[depth] && *at_depth[depth] != mask) fail("mask changed without a state change");
        at_depth[depth] = mask;
        last = std::move(mask);
        break;
      }
      case 1: {  // consume the k-th allowed token of the last mask
        if (!last) break;
        std::vector<uint32_t> allowed;
        for (uint32_t t = 0; t < v; ++t)
          if (bit(*last, t)) allowed.push_back(t);
        if (allowed.empty()) break;
        bool was = m.is_terminated();
        if (!m.consume_token(allowed[r.u() % allowed.size()])) fail("an allowed token was rejected");
        on_consumed(was);
        break;
      }
      case 2: {  // consume any id (also out of range)
        uint32_t t = uint32_t(r.u() % (uint64_t(v) + 4));
        bool expect = t < v && m.is_token_allowed(t);
        bool was = m.is_terminated();
        size_t h = m.history_size();
        bool got = m.consume_token(t);
        if (got != expect) fail("consume_token != is_token_allowed");
        if (got) on_consumed(was);
        else if (m.history_size() != h) fail("a rejected token changed the history");
        break;
      }
      case 3: {  // rollback
        size_t n = r.byte() % 6;
        if (n > m.history_size()) {
          try {
            m.rollback(n);
          } catch (const LimitExceeded&) {
            break;
          }
          fail("rollback past the history did not raise");
        }
        m.rollback(n);
        if (n > depth) fail("history longer than the tokens consumed");
        depth -= n;
        at_depth.resize(depth + 1);
        last.reset();
        if (n > 0 && at_depth[depth]) {
          if (mask_of(m) != *at_depth[depth]) fail("rollback did not restore the earlier mask");
        }
        break;
      }
      case 4: {  // fork: same masks, independent afterwards
        Matcher f(m);
        Mask a = mask_of(f), b = mask_of(m);
        if (a != b) fail("fork computes a different mask");
        break;
      }
      case 5: {  // raw bytes
        std::string bytes = r.bytes(r.byte() % 8);
        bool was = m.is_terminated();
        if (m.consume_bytes(bytes)) {
          if (!was) on_consumed(false);
        }
        break;
      }
      case 6: {  // forced bytes must be consumable
        std::string forced = m.forced_bytes();
        if (!forced.empty()) {
          Matcher f(m);
          if (!f.consume_bytes(forced)) fail("forced_bytes are not consumable");
        }
        break;
      }
      case 7: {  // validate_tokens == consuming on a fork
        std::vector<uint32_t> ids;
        size_t n = r.byte() % 5;
        for (size_t k = 0; k < n; ++k) ids.push_back(uint32_t(r.u() % (uint64_t(v) + 2)));
        size_t h = m.history_size();
        size_t got = m.validate_tokens(ids);
        if (m.history_size() != h) fail("validate_tokens changed the history");
        Matcher f(m);
        size_t want = 0;
        while (want < ids.size() && f.consume_token(ids[want])) ++want;
        if (got != want) fail("validate_tokens != consuming one by one");
        break;
      }
      case 8: {  // acceptance == EOS allowed
        bool acc = m.is_accepting();
        for (uint32_t e : vocab.eos_ids()) {
          if (m.is_token_allowed(e) != acc) fail("is_accepting != EOS allowed");
        }
        break;
      }
      case 9: {
        m.reset();
        depth = 0;
        at_depth.assign(1, std::nullopt);
        last.reset();
        break;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gdfuzz::Reader r(data, size);
  gdfuzz::Caps caps;
  caps.tokens = 1024;  // the mask check is O(vocab) is_token_allowed calls per mask
  std::shared_ptr<const CompiledGrammar> g;
  try {
    gdecode::GrammarSpec spec = gdfuzz::read_spec(r, caps);
    auto vocab = gdfuzz::read_vocab(r, spec, caps);
    g = std::make_shared<const CompiledGrammar>(spec, vocab, gdfuzz::fuzz_limits());
  } catch (const GrammarFailure&) {
    return 0;
  } catch (const LimitExceeded&) {
    return 0;
  } catch (const std::invalid_argument&) {  // Vocabulary: width too small, EOS out of range, huge token
    return 0;
  }
  try {
    run_ops(r, g);
  } catch (const LimitExceeded&) {
    // Documented: matching may hit a bound. The grammar must stay usable for other matchers.
    try {
      Matcher fresh(g);
      (void)fresh.is_accepting();
    } catch (const LimitExceeded&) {
    }
  }
  return 0;
}
