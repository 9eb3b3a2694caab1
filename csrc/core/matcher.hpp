// Per-request matching state: where the current lexeme is in the lexer DFA, plus the Earley chart.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/grammar.hpp"

namespace gdecode {

class Matcher {
 public:
  explicit Matcher(std::shared_ptr<const CompiledGrammar> grammar);
  Matcher(const Matcher& other);  // fork: same grammar, copied state

  // Advances by one token; returns false (state unchanged) if the grammar rejects it.
  bool consume_token(uint32_t token);
  // Advances by raw bytes (one history entry); false and unchanged on rejection.
  bool consume_bytes(const std::string& bytes);
  // Number of leading tokens of `tokens` that would be accepted in order (state unchanged).
  size_t validate_tokens(const std::vector<uint32_t>& tokens);
  // Would `token` be accepted next? (state unchanged) -- the cheap check AWRS uses.
  bool is_token_allowed(uint32_t token);
  void rollback(size_t num_tokens);
  void reset();

  bool is_accepting();  // EOS would be accepted now
  bool is_terminated() const { return terminated_; }
  size_t history_size() const { return history_.size(); }

  // Writes the allowed-token bitmask (bit t of word t/32) into `words` (vocab().num_words() words).
  void fill_bitmask(uint32_t* words);
  // Bytes every continuation must start with (stops at a choice, or where EOS is possible).
  std::string forced_bytes();

  const CompiledGrammar& grammar() const { return *g_; }

 private:
  struct LexState {
    uint32_t dfa;
    bool nonempty;  // the current lexeme has at least one byte
  };
  struct Snapshot {
    LexState lex;
    uint32_t sets;
    bool terminated;
  };
  struct Frame {
    LexState lex;
    uint32_t sets;
  };

  bool advance(uint32_t token);                  // consume_token without history; unchanged on failure
  bool step_byte(LexState& lex, uint8_t byte);  // may push chart sets
  bool end_lexeme(const LexState& lex);         // scans the finished lexeme (if it is not ignored)
  bool end_lexeme_now(LexState& lex);           // end_lexeme, then start a fresh lexeme
  bool special_allowed(uint32_t terminal);
  bool consume_special(uint32_t terminal);
  void restore(const Snapshot& s);
  void push_history(const Snapshot& s);
  void forced_bytes_loop(std::string& out);
  // Walks trie nodes [begin, end) (preorder, depth counted from the lexeme end) from a fresh lexeme in
  // `start_state`, setting the bits of every token that gets through; `set_tokens(i)` sets node i's.
  template <class SetTokens>
  void walk(const TrieNode* nodes, uint32_t begin, uint32_t end, uint16_t base_depth, uint32_t start_state,
            SetTokens set_tokens);

  std::shared_ptr<const CompiledGrammar> g_;
  Lexer& lexer_;
  Chart chart_;
  LexState lex_;
  bool terminated_ = false;
  std::deque<Snapshot> history_;
  std::vector<Frame> frames_;  // walk scratch, one per trie depth
};

}  // namespace gdecode
