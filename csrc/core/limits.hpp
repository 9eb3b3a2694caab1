// Hard bounds that keep compilation and matching finite, and the exceptions raised when they are hit.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace gdecode {

struct Limits {
  size_t max_nfa_states = 500'000;       // lexer NFA size over all terminals (repeats are unrolled)
  size_t max_dfa_states = 50'000;        // lazily built lexer DFA states (1 KiB each)
  size_t max_items_per_set = 200'000;    // Earley items in one set
  size_t max_chart_items = 20'000'000;   // Earley items over a whole matcher's chart
  size_t max_rollback = 1'024;           // tokens a matcher can roll back
  size_t mask_cache_bytes = 512u << 20;  // per-grammar cache of lexer-state token masks
  size_t state_cache_bytes = 256u << 20; // per-grammar cache of whole masks by parse state (cleared when full)
  double max_compile_seconds = 0;        // wall-clock budget of one grammar construction; <= 0: unbounded
};

// Raised when a Limits bound is exceeded; maps to gdecode.LimitExceededError.
struct LimitExceeded : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Raised for malformed grammar input; maps to gdecode.GrammarError.
struct GrammarFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A wall-clock budget checked inside long construction loops (a clock read, ~20 ns: call it per NFA state
// or per fixpoint pass, not per byte).
class Deadline {
 public:
  explicit Deadline(double seconds)
      : seconds_(seconds), active_(seconds > 0),
        at_(std::chrono::steady_clock::now() +
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                std::chrono::duration<double>(active_ ? seconds : 0))) {}
  void check(const char* what) const {
    if (active_ && std::chrono::steady_clock::now() > at_)
      throw LimitExceeded(std::string("compilation exceeded max_compile_seconds=") + std::to_string(seconds_) +
                          " (" + what + ")");
  }

 private:
  double seconds_;
  bool active_;
  std::chrono::steady_clock::time_point at_;
};

}  // namespace gdecode
