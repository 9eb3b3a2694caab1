// Compressed rows: values grouped by a key 0..n-1 in one flat array (row k is values[start[k],
// start[k + 1])), each row in the order its values were pushed. The NFA's edges, their reverse, and the
// grammar's symbol uses are stored this way: a vector per row made allocation the bulk of compile time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gdecode {

// A read-only view of consecutive elements (C++17 has no std::span).
template <class T>
struct Span {
  const T* first;
  const T* last;
  const T* begin() const { return first; }
  const T* end() const { return last; }
  bool empty() const { return first == last; }
  size_t size() const { return size_t(last - first); }
};

template <class T>
struct Rows {
  std::vector<uint32_t> start{0};
  std::vector<T> values;

  // `pushes(push)` must call `push(key, value)` for every value, the same way each time: it runs twice
  // (count, then fill), so no row needs its own allocation.
  template <class Pushes>
  static Rows build(size_t n, Pushes pushes) {
    Rows r;
    r.start.assign(n + 1, 0);
    pushes([&](uint32_t key, const T&) { ++r.start[key + 1]; });
    for (size_t i = 0; i < n; ++i) r.start[i + 1] += r.start[i];
    r.values.resize(r.start[n]);
    std::vector<uint32_t> fill(r.start.begin(), r.start.end() - 1);
    pushes([&](uint32_t key, const T& value) { r.values[fill[key]++] = value; });
    return r;
  }

  Span<T> row(size_t k) const { return {values.data() + start[k], values.data() + start[k + 1]}; }

  // Keeps only the values with keep(value), in order.
  template <class Keep>
  void filter(Keep keep) {
    uint32_t w = 0, row_begin = 0;
    for (size_t k = 0; k + 1 < start.size(); ++k) {
      uint32_t row_end = start[k + 1];
      for (uint32_t i = row_begin; i < row_end; ++i)
        if (keep(values[i])) values[w++] = values[i];
      row_begin = row_end;
      start[k + 1] = w;
    }
    values.resize(w);
  }
};

}  // namespace gdecode
