// The lexer: a DFA over bytes, built lazily from the terminals' NFA by subset construction.
//
// A lexeme starts in the DFA state of "all terminals the parser allows here" (plus ignored ones), so
// a state only tracks terminals that can still be scanned: a dead state means the byte is rejected.
// The DFA is shared by every matcher of a grammar, from many threads: transitions are atomics filled
// on first use under a mutex; states live in fixed chunks so their addresses never move.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "core/limits.hpp"
#include "core/regex.hpp"

namespace gdecode {

struct DfaState {
  std::array<std::atomic<uint32_t>, 256> next;
  std::vector<uint32_t> nfa_states;      // sorted; only states with byte edges or an accept
  std::vector<uint32_t> accepted;        // non-ignored terminals complete here (sorted)
  uint32_t accepted_id = 0;              // equal for states with equal `accepted` (0: none)
  bool accepts_ignored = false;          // an ignored terminal is complete here
  std::atomic<int8_t> final{-1};         // 1: no byte leads anywhere (lexeme cannot grow); -1: unknown
  bool accepts() const { return accepts_ignored || !accepted.empty(); }
};

struct VecHash {
  size_t operator()(const std::vector<uint32_t>& v) const noexcept;
  size_t operator()(const std::vector<uint64_t>& v) const noexcept;
};

class Lexer {
 public:
  static constexpr uint32_t kDead = 0;
  static constexpr uint32_t kUnknown = 0xffffffffu;

  // `terminal_start[t]` is terminal t's NFA start state, or kUnknown for terminals without bytes
  // (special tokens). `ignored[t]` marks %ignore terminals.
  Lexer(Nfa nfa, std::vector<uint32_t> terminal_start, std::vector<bool> ignored, const Limits& limits);
  ~Lexer();

  // The DFA state of the NFA states [begin, end) (a part of some state's `nfa_states`), or kDead if empty.
  uint32_t restrict_to(uint32_t s, const uint32_t* begin, const uint32_t* end);

  // DFA state where a lexeme starts when the terminals set in `allowed` (bitset words) may be scanned.
  uint32_t start_state(const std::vector<uint64_t>& allowed);

  uint32_t next(uint32_t s, uint8_t byte) {
    uint32_t n = state(s).next[byte].load(std::memory_order_acquire);
    return n != kUnknown ? n : compute_next(s, byte);
  }
  // True when no byte extends a lexeme in state `s`: longest match then ends it without looking ahead.
  bool is_final(uint32_t s) {
    int8_t f = state(s).final.load(std::memory_order_acquire);
    return f >= 0 ? f == 1 : compute_final(s);
  }
  const DfaState& state(uint32_t s) const { return chunks_[s >> kChunkBits][s & kChunkMask]; }
  size_t num_terminals() const { return terminal_start_.size(); }
  bool is_ignored(uint32_t t) const { return ignored_[t]; }
  size_t num_states() const { return num_states_.load(std::memory_order_acquire); }

 private:
  // Small chunks (32 states, ~36 KiB): most grammars need a few dozen states, and big blocks are costly to
  // allocate and free once per compile.
  static constexpr uint32_t kChunkBits = 5, kChunkMask = (1u << kChunkBits) - 1;
  uint32_t compute_next(uint32_t s, uint8_t byte);
  bool compute_final(uint32_t s);
  uint32_t intern(std::vector<uint32_t>& seeds);  // caller holds mutex_; closes `seeds` under epsilon

  Nfa nfa_;
  std::vector<uint32_t> terminal_start_;
  std::vector<bool> ignored_;
  std::vector<uint64_t> ignored_bits_;
  Limits limits_;

  std::unique_ptr<std::unique_ptr<DfaState[]>[]> chunks_;
  size_t max_chunks_;
  std::atomic<size_t> num_states_{0};
  std::mutex mutex_;  // guards interning and the maps below
  std::unordered_map<std::vector<uint32_t>, uint32_t, VecHash> by_nfa_set_;
  std::unordered_map<std::vector<uint32_t>, uint32_t, VecHash> accepted_ids_;
  std::shared_mutex start_mutex_;
  std::unordered_map<std::vector<uint64_t>, uint32_t, VecHash> start_by_allowed_;
  std::vector<uint32_t> stamp_;  // epsilon-closure visit marks (under mutex_)
  std::vector<uint32_t> seeds_, stack_, key_;  // scratch of compute_next / intern (under mutex_)
  uint32_t stamp_gen_ = 0;
};

}  // namespace gdecode
