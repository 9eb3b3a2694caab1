// Code point ranges -> sequences of byte ranges matching exactly their UTF-8 encodings.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gdecode {

using ByteRange = std::pair<uint8_t, uint8_t>;
using ByteRangeSeq = std::vector<ByteRange>;

// Appends to `out` byte-range sequences whose union matches the UTF-8 encoding of every scalar value in
// [lo, hi] and nothing else. Surrogates (D800-DFFF) are never produced.
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<ByteRangeSeq>& out);

// Appends the UTF-8 encoding of code point `cp` to `s`.
void append_utf8(std::string& s, uint32_t cp);

}  // namespace gdecode
