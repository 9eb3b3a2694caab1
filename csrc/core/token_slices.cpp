#include "core/token_slices.hpp"

namespace gdecode {

// States: 0 between characters; 1, 2, 3 = that many continuation bytes (80-BF) to go; 4, 5, 6, 7 = the
// restricted second byte after E0 (A0-BF), ED (80-9F, no surrogates), F0 (90-BF) and F4 (80-8F).
uint8_t SliceChars::step(uint8_t state, uint8_t b) {
  switch (state) {
    case 0:
      if (b < 0x80) return (b < 0x20 || b == '"' || b == '\\' || b == 0x7f) ? kReject : 0;
      if (b >= 0xc2 && b <= 0xdf) return 1;
      if (b == 0xe0) return 4;
      if (b == 0xed) return 5;
      if (b >= 0xe1 && b <= 0xef) return 2;
      if (b == 0xf0) return 6;
      if (b >= 0xf1 && b <= 0xf3) return 3;
      if (b == 0xf4) return 7;
      return kReject;
    case 1:
    case 2:
    case 3:
      return (b >= 0x80 && b <= 0xbf) ? uint8_t(state - 1) : kReject;
    case 4:
      return (b >= 0xa0 && b <= 0xbf) ? 1 : kReject;
    case 5:
      return (b >= 0x80 && b <= 0x9f) ? 1 : kReject;
    case 6:
      return (b >= 0x90 && b <= 0xbf) ? 2 : kReject;
    case 7:
      return (b >= 0x80 && b <= 0x8f) ? 2 : kReject;
    default:
      return kReject;
  }
}

std::pair<uint8_t, uint8_t> SliceChars::byte_range(uint8_t state) {
  switch (state) {
    case 0: return {0x20, 0xf4};
    case 4: return {0xa0, 0xbf};
    case 5: return {0x80, 0x9f};
    case 6: return {0x90, 0xbf};
    case 7: return {0x80, 0x8f};
    default: return {0x80, 0xbf};
  }
}

int32_t SliceChars::count(const std::string& bytes) {
  uint8_t s = kStart;
  int32_t n = 0;
  for (char c : bytes) {
    s = step(s, uint8_t(c));
    if (s == kReject) return -1;
    n += s == kStart;
  }
  return (s == kStart && n > 0) ? n : -1;
}

TokenSlices::TokenSlices(const std::vector<std::string>& tokens, const std::vector<uint8_t>& excluded,
                         size_t num_words)
    : tokens_(tokens), chars_(tokens.size(), kExcluded), num_words_(num_words) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (i < excluded.size() && !excluded[i]) chars_[i] = SliceChars::count(tokens[i]);
}

const TokenSlice& TokenSlices::get(size_t k) const {
  std::call_once(built_[k], [&] {
    TokenSlice& s = slices_[k];
    s.max_chars = kMaxChars[k];
    s.words.assign(num_words_, 0);
    std::vector<uint32_t> left_out;  // ids the rest trie leaves out: the slice's and the excluded ones
    for (uint32_t i = 0; i < chars_.size(); ++i) {
      bool in_slice = chars_[i] > 0 && (s.max_chars == 0 || uint32_t(chars_[i]) <= s.max_chars);
      if (in_slice) s.words[i >> 5] |= 1u << (i & 31);
      if (in_slice || chars_[i] == kExcluded) left_out.push_back(i);
    }
    s.rest = std::make_unique<TokenTrie>(tokens_, left_out);
  });
  return slices_[k];
}

}  // namespace gdecode
