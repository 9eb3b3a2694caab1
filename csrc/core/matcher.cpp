#include "core/matcher.hpp"

#include <algorithm>
#include <cstring>

namespace gdecode {

Matcher::Matcher(std::shared_ptr<const CompiledGrammar> grammar)
    : g_(std::move(grammar)), lexer_(g_->lexer()), chart_(g_->tables(), g_->lexer(), g_->limits()) {
  frames_.resize(g_->vocab().trie().max_depth() + 2);
  reset();
}

Matcher::Matcher(const Matcher& other)
    : g_(other.g_), lexer_(other.lexer_), chart_(other.chart_), lex_(other.lex_),
      terminated_(other.terminated_), history_(other.history_), frames_(other.frames_) {}

void Matcher::reset() {
  chart_.reset();
  lex_ = LexState{chart_.top().lexer_start, false};
  terminated_ = false;
  history_.clear();
}

bool Matcher::end_lexeme(const LexState& lex) {
  const DfaState& ds = lexer_.state(lex.dfa);
  if (!lex.nonempty || !ds.accepts()) return false;
  if (ds.accepted.empty()) return true;  // only an ignored terminal (e.g. whitespace) ends here
  return chart_.scan_memo(ds.accepted.data(), ds.accepted.size(), ds.accepted_id);
}

bool Matcher::end_lexeme_now(LexState& lex) {
  if (!end_lexeme(lex)) return false;
  lex = LexState{chart_.top().lexer_start, false};
  return true;
}

bool Matcher::step_byte(LexState& lex, uint8_t byte) {
  uint32_t next = lexer_.next(lex.dfa, byte);
  if (next != Lexer::kDead) {
    lex = LexState{next, true};
    // A lexeme no byte can extend ends now rather than at the next byte (same language). The matcher
    // then sits at a lexeme start, whose token mask is cached independently of the parser.
    if (lexer_.is_final(next)) return end_lexeme_now(lex);
    return true;
  }
  // Longest match: the byte cannot extend the lexeme, so the lexeme ends here and the byte starts the next.
  size_t sets = chart_.num_sets();
  if (!end_lexeme(lex)) return false;
  next = lexer_.next(chart_.top().lexer_start, byte);
  if (next == Lexer::kDead) {
    chart_.truncate(sets);
    return false;
  }
  lex = LexState{next, true};
  if (lexer_.is_final(next) && !end_lexeme_now(lex)) {
    chart_.truncate(sets);
    return false;
  }
  return true;
}

void Matcher::restore(const Snapshot& s) {
  lex_ = s.lex;
  chart_.truncate(s.sets);
  terminated_ = s.terminated;
}

void Matcher::push_history(const Snapshot& s) {
  history_.push_back(s);
  if (history_.size() > g_->limits().max_rollback) history_.pop_front();
}

bool Matcher::is_accepting() {
  if (terminated_) return true;
  if (!lex_.nonempty) return chart_.top().accepting;
  size_t sets = chart_.num_sets();
  bool ok;
  try {
    ok = end_lexeme(lex_) && chart_.top().accepting;
  } catch (...) {
    chart_.truncate(sets);
    throw;
  }
  chart_.truncate(sets);
  return ok;
}

bool Matcher::special_allowed(uint32_t terminal) {
  size_t sets = chart_.num_sets();
  bool ok;
  try {
    ok = (!lex_.nonempty || end_lexeme(lex_)) && chart_.expects(terminal);
  } catch (...) {
    chart_.truncate(sets);
    throw;
  }
  chart_.truncate(sets);
  return ok;
}

bool Matcher::consume_special(uint32_t terminal) {
  size_t sets = chart_.num_sets();
  bool ok;
  try {
    ok = (!lex_.nonempty || end_lexeme(lex_)) && chart_.scan(&terminal, 1);
  } catch (...) {
    chart_.truncate(sets);
    throw;
  }
  if (!ok) {
    chart_.truncate(sets);
    return false;
  }
  lex_ = LexState{chart_.top().lexer_start, false};
  return true;
}

bool Matcher::advance(uint32_t token) {
  const Vocabulary& v = g_->vocab();
  if (token >= v.vocab_size()) return false;
  if (terminated_) return v.is_eos(token);  // after EOS only EOS
  if (v.is_eos(token)) {
    if (!is_accepting()) return false;
    terminated_ = true;
    return true;
  }
  int64_t special = g_->special_terminal_of(token);
  if (special >= 0) return consume_special(uint32_t(special));
  if (v.is_excluded(token)) return false;
  Snapshot before{lex_, uint32_t(chart_.num_sets()), terminated_};
  try {
    for (unsigned char b : v.bytes(token)) {
      if (!step_byte(lex_, b)) {
        restore(before);
        return false;
      }
    }
  } catch (...) {  // a limit hit mid-token (lexer states, chart items): leave the state as it was
    restore(before);
    throw;
  }
  return true;
}

bool Matcher::consume_token(uint32_t token) {
  Snapshot before{lex_, uint32_t(chart_.num_sets()), terminated_};
  bool was_terminated = terminated_;
  if (!advance(token)) return false;
  if (!was_terminated) push_history(before);
  return true;
}

bool Matcher::consume_bytes(const std::string& bytes) {
  if (terminated_) return bytes.empty();
  Snapshot before{lex_, uint32_t(chart_.num_sets()), terminated_};
  try {
    for (unsigned char b : bytes) {
      if (!step_byte(lex_, b)) {
        restore(before);
        return false;
      }
    }
  } catch (...) {
    restore(before);
    throw;
  }
  push_history(before);
  return true;
}

size_t Matcher::validate_tokens(const std::vector<uint32_t>& tokens) {
  // Advances without recording history, then restores: the history is untouched (AWRS calls this for
  // every drawn candidate, so it must stay cheap).
  Snapshot before{lex_, uint32_t(chart_.num_sets()), terminated_};
  size_t n = 0;
  try {
    for (uint32_t t : tokens) {
      if (!advance(t)) break;
      ++n;
    }
  } catch (...) {
    restore(before);
    throw;
  }
  restore(before);
  return n;
}

bool Matcher::is_token_allowed(uint32_t token) {
  Snapshot before{lex_, uint32_t(chart_.num_sets()), terminated_};
  bool ok = advance(token);  // restores the state itself if it throws
  restore(before);
  return ok;
}

void Matcher::rollback(size_t num_tokens) {
  if (num_tokens > history_.size())
    throw LimitExceeded("cannot roll back " + std::to_string(num_tokens) + " tokens: only " +
                        std::to_string(history_.size()) + " in history (max_rollback=" +
                        std::to_string(g_->limits().max_rollback) + ")");
  if (num_tokens == 0) return;
  Snapshot target = history_[history_.size() - num_tokens];
  history_.resize(history_.size() - num_tokens);
  restore(target);
}

template <class SetTokens>
void Matcher::walk(const TrieNode* nodes, uint32_t begin, uint32_t end, uint16_t base_depth, uint32_t start_state,
                   SetTokens set_tokens) {
  // The chart's top set is the one right after the lexeme ended; walk the continuations from there.
  frames_[0] = Frame{LexState{start_state, false}, uint32_t(chart_.num_sets())};
  for (uint32_t i = begin; i < end;) {
    const TrieNode& n = nodes[i];
    uint32_t depth = n.depth - base_depth;
    const Frame& parent = frames_[depth - 1];
    chart_.truncate(parent.sets);
    LexState lex = parent.lex;
    if (!step_byte(lex, n.byte)) {
      i = n.subtree_end;
      continue;
    }
    frames_[depth] = Frame{lex, uint32_t(chart_.num_sets())};
    set_tokens(i);
    ++i;
  }
}

void Matcher::fill_bitmask(uint32_t* words) {
  const Vocabulary& v = g_->vocab();
  size_t nw = v.num_words();
  if (terminated_) {
    std::memset(words, 0, nw * 4);
    for (uint32_t e : v.eos_ids()) words[e >> 5] |= 1u << (e & 31);
    return;
  }
  Chart::StructuralKey sk = chart_.structural_key();
  StateKey key{sk.lo, sk.hi, lex_.dfa, lex_.nonempty};
  if (auto hit = g_->state_mask(key)) {
    std::memcpy(words, hit->data(), nw * 4);
    return;
  }
  auto cached = g_->lexeme_mask(lex_.dfa, lex_.nonempty);
  std::memcpy(words, cached->words.data(), nw * 4);
  size_t base = chart_.num_sets();
  const TokenTrie& trie = *cached->trie;  // roots index the trie the lexeme mask was walked on
  const TrieNode* vocab_nodes = trie.nodes().data();
  try {
    for (const auto& boundary : cached->boundaries) {
      // All tokens of this group end the current lexeme with the same terminals: scan it once.
      if (!end_lexeme(LexState{boundary.accept_state, true})) continue;
      uint32_t start = chart_.top().lexer_start;
      size_t scanned = chart_.num_sets();
      for (uint32_t root : boundary.roots) {
        walk(vocab_nodes, root, vocab_nodes[root].subtree_end, uint16_t(vocab_nodes[root].depth - 1), start,
             [&](uint32_t i) {
               if (vocab_nodes[i].token != TokenTrie::kNoToken) trie.set_tokens(vocab_nodes[i], words);
             });
        chart_.truncate(scanned);
      }
      const SuffixTrie& sx = boundary.suffixes;
      if (!sx.nodes.empty())
        walk(sx.nodes.data(), 1, uint32_t(sx.nodes.size()), 0, start, [&](uint32_t i) {
          for (uint32_t k = sx.token_begin[i]; k < sx.token_begin[i + 1]; ++k)
            words[sx.tokens[k] >> 5] |= 1u << (sx.tokens[k] & 31);
        });
      chart_.truncate(base);
    }
  } catch (...) {  // a limit hit during the walk: the matcher's own state must survive it
    chart_.truncate(base);
    throw;
  }
  chart_.truncate(base);
  if (is_accepting())
    for (uint32_t e : v.eos_ids()) words[e >> 5] |= 1u << (e & 31);
  for (auto [token, terminal] : g_->special_tokens())
    if (special_allowed(terminal)) words[token >> 5] |= 1u << (token & 31);
  g_->store_state_mask(key, words);
}

std::string Matcher::forced_bytes() {
  std::string out;
  if (terminated_) return out;
  Snapshot before{lex_, uint32_t(chart_.num_sets()), terminated_};
  try {
    forced_bytes_loop(out);
  } catch (...) {
    restore(before);
    throw;
  }
  restore(before);
  return out;
}

void Matcher::forced_bytes_loop(std::string& out) {
  while (out.size() < 4096 && !is_accepting()) {
    int only = -1;
    size_t sets = chart_.num_sets();
    for (int b = 0; b < 256; ++b) {
      LexState lex = lex_;
      bool ok = step_byte(lex, uint8_t(b));
      chart_.truncate(sets);
      if (!ok) continue;
      if (only >= 0) {
        only = -2;
        break;
      }
      only = b;
    }
    if (only < 0) break;
    step_byte(lex_, uint8_t(only));
    out.push_back(char(only));
  }
}

}  // namespace gdecode
