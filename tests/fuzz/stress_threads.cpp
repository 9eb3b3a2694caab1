// Thread stress for the C++ core, meant for a ThreadSanitizer build (make test-tsan).
//
// For each grammar file (fuzzer input encoding, tests/fuzz/fuzz_input.hpp; the op script is ignored):
// deterministic random walks are first run single-threaded on a fresh grammar, recording every mask.
// Then many threads share ONE fresh grammar (cold caches: they race to build lexer DFA states, lexeme
// masks and the state-mask cache) and replay all walks in different orders, with forks and rollbacks
// mixed in. Every mask must equal the single-threaded one; TSan reports any data race.
//
//   stress_threads [--threads N] [--walks W] [--steps S] FILE...
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/matcher.hpp"
#include "fuzz_input.hpp"

using namespace gdecode;

namespace {

using Mask = std::vector<uint32_t>;

struct Walk {
  std::vector<uint32_t> tokens;
  std::vector<Mask> masks;  // masks[i]: before tokens[i]; one more at the end
};

Mask mask_of(Matcher& m) {
  Mask w(m.grammar().vocab().num_words());
  m.fill_bitmask(w.data());
  return w;
}

Walk reference_walk(const std::shared_ptr<const CompiledGrammar>& g, uint32_t seed, int steps) {
  Walk w;
  Matcher m(g);
  std::mt19937 rng(seed);
  size_t v = g->vocab().vocab_size();
  for (int i = 0; i < steps; ++i) {
    Mask mask = mask_of(m);
    w.masks.push_back(mask);
    std::vector<uint32_t> allowed;  // EOS only when nothing else is allowed: walks should go deep
    for (uint32_t t = 0; t < v; ++t)
      if (((mask[t >> 5] >> (t & 31)) & 1) && !g->vocab().is_eos(t)) allowed.push_back(t);
    if (allowed.empty())
      for (uint32_t e : g->vocab().eos_ids())
        if ((mask[e >> 5] >> (e & 31)) & 1) allowed.push_back(e);
    if (allowed.empty() || m.is_terminated()) break;
    uint32_t tok = allowed[rng() % allowed.size()];
    if (!m.consume_token(tok)) {
      std::fprintf(stderr, "stress: an allowed token was rejected (seed %u)\n", seed);
      std::abort();
    }
    w.tokens.push_back(tok);
  }
  w.masks.push_back(mask_of(m));
  return w;
}

// Replays a walk on the shared grammar. Odd threads also fork and roll back on the way.
bool replay(const std::shared_ptr<const CompiledGrammar>& g, const Walk& w, uint32_t salt) {
  Matcher m(g);
  std::mt19937 rng(salt);
  for (size_t i = 0; i < w.tokens.size(); ++i) {
    if (mask_of(m) != w.masks[i]) return false;
    if (salt & 1) {
      Matcher f(m);
      if (mask_of(f) != w.masks[i]) return false;
      if (i > 0 && rng() % 3 == 0) {  // step back and forward again
        m.rollback(1);
        if (mask_of(m) != w.masks[i - 1]) return false;
        if (!m.consume_token(w.tokens[i - 1])) return false;
      }
    }
    if (!m.consume_token(w.tokens[i])) return false;
  }
  return mask_of(m) == w.masks.back();
}

int stress_file(const char* path, int threads, int walks, int steps) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto build = [&]() {
    gdfuzz::Reader r(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    GrammarSpec spec = gdfuzz::read_spec(r);
    auto vocab = gdfuzz::read_vocab(r, spec);
    Limits limits;
    limits.max_rollback = 64;
    return std::make_shared<const CompiledGrammar>(spec, vocab, limits);
  };
  std::shared_ptr<const CompiledGrammar> fresh;
  try {
    fresh = build();
  } catch (const std::exception& e) {
    std::printf("%s: skipped (%s)\n", path, e.what());
    return 0;
  }
  std::vector<Walk> ref;
  for (int k = 0; k < walks; ++k) ref.push_back(reference_walk(fresh, uint32_t(1000 + k), steps));

  auto shared = build();  // cold caches
  std::atomic<int> bad{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<int> order(ref.size());
      for (size_t k = 0; k < order.size(); ++k) order[k] = int(k);
      std::shuffle(order.begin(), order.end(), std::mt19937(uint32_t(t)));
      for (int k : order)
        if (!replay(shared, ref[k], uint32_t(t * 7919 + k))) bad.fetch_add(1);
    });
  for (auto& th : pool) th.join();
  size_t tokens = 0;
  for (const auto& w : ref) tokens += w.tokens.size();
  std::printf("%s: %d threads x %d walks (%zu tokens), lexer states %zu: %s\n", path, threads, walks, tokens,
              shared->num_lexer_states(), bad.load() ? "MISMATCH" : "ok");
  return bad.load() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 8, walks = 8, steps = 48, failed = 0, files = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--walks") && i + 1 < argc) walks = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoi(argv[++i]);
    else {
      failed += stress_file(argv[i], threads, walks, steps);
      ++files;
    }
  }
  std::printf("%d files, %d failed\n", files, failed);
  return failed ? 1 : files == 0 ? 2 : 0;
}
