// Thin binding layer: converts Python values (bytes, lists, numpy/torch arrays) at the edge and calls the
// plain C++ core. Heavy work runs with the GIL released.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <nanobind/stl/optional.h>  // apply_bitmask_cpu

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "core/apply_mask.hpp"  // apply_bitmask_cpu
#include "core/grammar.hpp"
#include "core/matcher.hpp"
#include "core/regex.hpp"
#include "core/vocab.hpp"

namespace nb = nanobind;
using namespace gdecode;

namespace {

using Bitmask = nb::ndarray<int32_t, nb::c_contig, nb::device::cpu>;

// Python exception classes live in gdecode.errors; look them up when first needed (import order).
// An exception translator reports by setting the Python error and returning.
void set_py_error(const char* cls, const char* what) {
  nb::object errors = nb::module_::import_("gdecode.errors");
  PyErr_SetString(errors.attr(cls).ptr(), what);
}

uint32_t* bitmask_row(Bitmask& bm, int64_t row, size_t need_words) {
  if (bm.ndim() == 1) {
    if (row != 0) throw std::out_of_range("row must be 0 for a 1-D bitmask");
    if (bm.shape(0) < need_words) throw std::invalid_argument("bitmask is narrower than ceil(vocab_size/32)");
    return reinterpret_cast<uint32_t*>(bm.data());
  }
  if (bm.ndim() != 2) throw std::invalid_argument("bitmask must be 1-D or 2-D int32");
  if (row < 0 || size_t(row) >= bm.shape(0)) throw std::out_of_range("bitmask row out of range");
  if (bm.shape(1) < need_words) throw std::invalid_argument("bitmask is narrower than ceil(vocab_size/32)");
  return reinterpret_cast<uint32_t*>(bm.data()) + size_t(row) * bm.shape(1);
}

size_t row_width(const Bitmask& bm) { return bm.ndim() == 1 ? bm.shape(0) : bm.shape(1); }

void fill_row(Matcher& m, uint32_t* row, size_t width) {
  size_t nw = m.grammar().vocab().num_words();
  m.fill_bitmask(row);
  std::fill(row + nw, row + width, 0u);  // a wider mask (larger logit width) never allows the tail
}

// Walks Python IR regex trees (gdecode.ir: Chars, Bytes, Seq, Alt, Repeat, told apart by their _TAG) into
// a RegexFlatBuilder: post-order with an explicit stack, each Python object once (by identity), in the
// order of gdecode.compiler._RegexFlattener, so both produce the same array.
class RegexTreeWalker {
 public:
  RegexTreeWalker()
      : items_(nb::steal(PyUnicode_InternFromString("items"))),
        item_(nb::steal(PyUnicode_InternFromString("item"))),
        ranges_attr_(nb::steal(PyUnicode_InternFromString("ranges"))),
        min_(nb::steal(PyUnicode_InternFromString("min"))),
        max_(nb::steal(PyUnicode_InternFromString("max"))),
        words_(nb::steal(PyUnicode_InternFromString("words"))) {}

  uint32_t add(nb::handle root) {
    stack_.push_back({root.ptr(), false});
    while (!stack_.empty()) {
      auto [cur, ready] = stack_.back();
      stack_.pop_back();
      if (seen_.count(cur)) continue;
      nb::handle h(cur);
      int tag = tag_of(h);
      if (!ready && (tag == kSeq || tag == kAlt || tag == kRepeat || tag == kMinus)) {
        size_t mark = stack_.size();
        auto visit = [&](PyObject* c) {
          if (!seen_.count(c)) stack_.push_back({c, false});
        };
        if (tag == kRepeat || tag == kMinus) {
          visit(attr(h, item_).ptr());
        } else {
          for_each_item(attr(h, items_), visit);
        }
        if (stack_.size() > mark) {
          stack_.insert(stack_.begin() + mark, {cur, true});
          continue;
        }
      }
      seen_[cur] = emit(h, tag);
    }
    return seen_.at(root.ptr());
  }

  RegexFlatBuilder builder;

 private:
  static constexpr int kChars = 1, kBytes = 2, kSeq = 3, kAlt = 4, kRepeat = 5, kMinus = 6;  // ir _TAG values

  // Attribute lookups by interned name, and tuples read in place: flattening is per node of every regex
  // of a compile, so the generic by-C-string lookup and iterator protocol showed up in its time.
  static nb::object attr(nb::handle h, const nb::object& name) {
    PyObject* v = PyObject_GetAttr(h.ptr(), name.ptr());
    if (!v) nb::raise_python_error();
    return nb::steal(v);
  }

  template <class F>
  static void for_each_item(const nb::object& seq, F&& f) {
    if (PyTuple_Check(seq.ptr())) {
      for (Py_ssize_t i = 0, n = PyTuple_GET_SIZE(seq.ptr()); i < n; ++i) f(PyTuple_GET_ITEM(seq.ptr(), i));
    } else {
      for (nb::handle c : seq) f(c.ptr());
    }
  }

  int tag_of(nb::handle h) {
    PyTypeObject* type = Py_TYPE(h.ptr());
    auto it = tags_.find(type);
    if (it != tags_.end()) return it->second;
    nb::object tag = nb::getattr(h, "_TAG", nb::none());
    int t = nb::isinstance<nb::int_>(tag) ? nb::cast<int>(tag) : 0;
    if (t < kChars || t > kMinus)
      throw GrammarFailure(std::string("unknown regex node ") + nb::type_name(h.type()).c_str());
    tags_.emplace(type, t);
    return t;
  }

  uint32_t emit(nb::handle h, int tag) {
    if (tag == kChars || tag == kBytes) {
      ranges_.clear();
      for_each_item(attr(h, ranges_attr_), [&](PyObject* r) {
        if (PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2 && PyLong_Check(PyTuple_GET_ITEM(r, 0)) &&
            PyLong_Check(PyTuple_GET_ITEM(r, 1))) {
          ranges_.emplace_back(nb::cast<uint32_t>(nb::handle(PyTuple_GET_ITEM(r, 0))),
                               nb::cast<uint32_t>(nb::handle(PyTuple_GET_ITEM(r, 1))));
        } else {
          ranges_.push_back(nb::cast<std::pair<uint32_t, uint32_t>>(nb::handle(r)));
        }
      });
      return builder.ranges(tag == kChars ? RegexKind::Chars : RegexKind::Bytes, ranges_);
    }
    if (tag == kRepeat) {
      nb::object max = attr(h, max_);
      return builder.repeat(seen_.at(attr(h, item_).ptr()), nb::cast<uint32_t>(attr(h, min_)),
                            max.is_none() ? -1 : nb::cast<int64_t>(max));
    }
    if (tag == kMinus) {
      words_buf_.clear();
      for_each_item(attr(h, words_), [&](PyObject* w) { words_buf_.push_back(nb::cast<std::string>(nb::handle(w))); });
      return builder.minus(seen_.at(attr(h, item_).ptr()), words_buf_);
    }
    children_.clear();
    for_each_item(attr(h, items_), [&](PyObject* c) { children_.push_back(seen_.at(c)); });
    return builder.list(tag == kSeq ? RegexKind::Seq : RegexKind::Alt, children_);
  }

  nb::object items_, item_, ranges_attr_, min_, max_, words_;  // interned attribute names
  std::vector<std::string> words_buf_;
  std::vector<std::pair<PyObject*, bool>> stack_;
  std::unordered_map<PyObject*, uint32_t> seen_;  // the trees are alive for the whole call
  std::unordered_map<PyTypeObject*, int> tags_;
  std::vector<std::pair<uint32_t, uint32_t>> ranges_;
  std::vector<uint32_t> children_;
};

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "gdecode C++ core: token trie, lexer, Earley parser, token masks";
  m.attr("__version__") = "0.1.0";

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const LimitExceeded& e) {
      set_py_error("LimitExceededError", e.what());
    } catch (const GrammarFailure& e) {
      set_py_error("GrammarError", e.what());
    }
  });

  nb::class_<Limits>(m, "Limits")
      .def(nb::init<>())
      .def_rw("max_nfa_states", &Limits::max_nfa_states)
      .def_rw("max_dfa_states", &Limits::max_dfa_states)
      .def_rw("max_items_per_set", &Limits::max_items_per_set)
      .def_rw("max_chart_items", &Limits::max_chart_items)
      .def_rw("max_rollback", &Limits::max_rollback)
      .def_rw("mask_cache_bytes", &Limits::mask_cache_bytes)
      .def_rw("state_cache_bytes", &Limits::state_cache_bytes)
      .def_rw("max_compile_seconds", &Limits::max_compile_seconds);

  // For tests: the character count of a token in the text slices (-1: not slice text); see token_slices.hpp.
  m.def("slice_char_count", [](nb::bytes b) { return SliceChars::count(std::string(b.c_str(), b.size())); });

  nb::class_<Vocabulary>(m, "Vocabulary")
      .def("__init__",
           [](Vocabulary* self, const std::vector<nb::bytes>& tokens, size_t vocab_size,
              std::vector<uint32_t> eos_ids, std::vector<uint32_t> excluded) {
             std::vector<std::string> raw;
             raw.reserve(tokens.size());
             for (const auto& t : tokens) raw.emplace_back(t.c_str(), t.size());
             nb::gil_scoped_release release;
             new (self) Vocabulary(std::move(raw), vocab_size, std::move(eos_ids), std::move(excluded));
           },
           nb::arg("tokens"), nb::arg("vocab_size"), nb::arg("eos_ids"), nb::arg("excluded"))
      .def_prop_ro("vocab_size", &Vocabulary::vocab_size)
      .def_prop_ro("num_words", &Vocabulary::num_words)
      .def_prop_ro("num_trie_nodes", [](const Vocabulary& v) { return v.trie().nodes().size(); });

  nb::class_<CompiledGrammar>(m, "CompiledGrammar")
      .def("__init__",
           [](CompiledGrammar* self, std::shared_ptr<Vocabulary> vocab, std::vector<int64_t> regex_flat,
              std::vector<int64_t> terminal_regex, std::vector<uint8_t> terminal_ignored,
              std::vector<std::vector<uint32_t>> terminal_tokens, uint32_t num_nonterminals,
              std::vector<uint32_t> prod_lhs, std::vector<std::vector<uint32_t>> prod_rhs, uint32_t start_symbol,
              const Limits& limits) {
             GrammarSpec spec{std::move(regex_flat), std::move(terminal_regex), std::move(terminal_ignored),
                              std::move(terminal_tokens), num_nonterminals, std::move(prod_lhs),
                              std::move(prod_rhs), start_symbol};
             nb::gil_scoped_release release;
             new (self) CompiledGrammar(spec, std::move(vocab), limits);
           },
           nb::arg("vocab"), nb::arg("regex_flat"), nb::arg("terminal_regex"), nb::arg("terminal_ignored"),
           nb::arg("terminal_tokens"), nb::arg("num_nonterminals"), nb::arg("prod_lhs"), nb::arg("prod_rhs"),
           nb::arg("start_symbol"), nb::arg("limits"))
      .def_prop_ro("num_lexer_states", &CompiledGrammar::num_lexer_states)
      .def_prop_ro("num_productions", [](const CompiledGrammar& g) { return g.tables().prods.size(); })
      .def_prop_ro("used_terminals", &CompiledGrammar::used_terminals);

  m.def(
      "intersection_dfa",
      [](nb::list regexes, size_t max_states) {
        RegexTreeWalker walker;
        std::vector<uint32_t> roots;
        for (nb::handle r : regexes) roots.push_back(walker.add(r));
        RegexPool pool = RegexPool::decode(walker.builder.flat());
        ByteDfa dfa;
        {
          nb::gil_scoped_release release;
          dfa = intersection_dfa(pool, roots, max_states);
        }
        std::vector<std::vector<std::tuple<uint32_t, uint32_t, uint32_t>>> rows;
        for (const auto& next : dfa.next) {
          auto& row = rows.emplace_back();
          for (uint32_t b = 0; b < 256; ++b) {
            if (next[b] < 0) continue;
            if (!row.empty() && std::get<1>(row.back()) + 1 == b && std::get<2>(row.back()) == uint32_t(next[b]))
              std::get<1>(row.back()) = b;
            else
              row.emplace_back(b, b, uint32_t(next[b]));
          }
        }
        return std::make_pair(rows, std::vector<bool>(dfa.accept.begin(), dfa.accept.end()));
      },
      nb::arg("regexes"), nb::arg("max_states"),
      "(rows of (lo byte, hi byte, target), accepting) of the minimal byte DFA of the regexes' intersection");

  m.def(
      "flatten_regexes",
      [](nb::list roots) {
        RegexTreeWalker walker;
        std::vector<uint32_t> index;
        std::vector<bool> nonempty;
        for (nb::handle r : roots) {
          index.push_back(walker.add(r));
          nonempty.push_back(walker.builder.matches_nonempty(index.back()));
        }
        return std::make_tuple(walker.builder.flat(), index, nonempty);
      },
      nb::arg("roots"),
      "(flat encoding, index of each root, whether each root matches a non-empty string) of IR regex trees");

  nb::class_<Matcher>(m, "Matcher")
      .def(nb::init<std::shared_ptr<const CompiledGrammar>>(), nb::arg("grammar"))
      .def("fork", [](const Matcher& self) { return new Matcher(self); })
      .def("consume_token", &Matcher::consume_token, nb::arg("token"), nb::call_guard<nb::gil_scoped_release>())
      .def("consume_tokens",
           [](Matcher& self, const std::vector<uint32_t>& tokens) {
             nb::gil_scoped_release release;
             size_t n = 0;
             for (uint32_t t : tokens) {
               if (!self.consume_token(t)) break;
               ++n;
             }
             return n;
           },
           nb::arg("tokens"))
      .def("consume_bytes",
           [](Matcher& self, nb::bytes data) {
             std::string s(data.c_str(), data.size());
             nb::gil_scoped_release release;
             return self.consume_bytes(s);
           },
           nb::arg("data"))
      .def("validate_tokens", &Matcher::validate_tokens, nb::arg("tokens"),
           nb::call_guard<nb::gil_scoped_release>())
      .def("is_token_allowed", &Matcher::is_token_allowed, nb::arg("token"))
      .def("rollback", &Matcher::rollback, nb::arg("num_tokens"))
      .def("reset", &Matcher::reset)
      .def("is_accepting", &Matcher::is_accepting)
      .def("is_terminated", &Matcher::is_terminated)
      .def_prop_ro("history_size", &Matcher::history_size)
      .def("forced_bytes", [](Matcher& self) {
        std::string s;
        {
          nb::gil_scoped_release release;
          s = self.forced_bytes();
        }
        return nb::bytes(s.data(), s.size());
      })
      .def("fill_bitmask",
           [](Matcher& self, Bitmask bm, int64_t row) {
             uint32_t* ptr = bitmask_row(bm, row, self.grammar().vocab().num_words());
             size_t width = row_width(bm);
             nb::gil_scoped_release release;
             fill_row(self, ptr, width);
           },
           // noconvert: an implicit int32/contiguous copy would receive the mask and be thrown away,
           // leaving the caller's array stale (fail open). Wrong dtype or layout is a TypeError instead.
           nb::arg("bitmask").noconvert(), nb::arg("row") = 0);

  m.def(
      "fill_bitmasks",
      [](std::vector<Matcher*> matchers, Bitmask bm, std::vector<int64_t> rows, int num_threads) {
        if (rows.size() != matchers.size()) throw std::invalid_argument("one row per matcher");
        std::vector<uint32_t*> ptrs;
        for (size_t k = 0; k < matchers.size(); ++k) {
          if (matchers[k] == nullptr) throw std::invalid_argument("matcher is None");
          ptrs.push_back(bitmask_row(bm, rows[k], matchers[k]->grammar().vocab().num_words()));
        }
        size_t width = row_width(bm);
        nb::gil_scoped_release release;
        size_t threads = std::max<size_t>(1, std::min<size_t>(num_threads, matchers.size()));
        if (threads == 1) {
          for (size_t k = 0; k < matchers.size(); ++k) fill_row(*matchers[k], ptrs[k], width);
          return;
        }
        std::vector<std::thread> pool;
        std::vector<std::exception_ptr> errors(threads);
        for (size_t w = 0; w < threads; ++w)
          pool.emplace_back([&, w] {
            try {
              for (size_t k = w; k < matchers.size(); k += threads) fill_row(*matchers[k], ptrs[k], width);
            } catch (...) {
              errors[w] = std::current_exception();
            }
          });
        for (auto& t : pool) t.join();
        for (auto& e : errors)
          if (e) std::rethrow_exception(e);
      },
      nb::arg("matchers"), nb::arg("bitmask").noconvert(), nb::arg("rows"), nb::arg("num_threads") = 2);

  // ---- BEGIN apply_bitmask_cpu (bitmask application on CPU logits; csrc/core/apply_mask.*) ----
  // logits: CPU array, 1-D or 2-D, any strides, written in place (never copied: noconvert). Its element type is
  // float32 / float16 / bfloat16, or (with `dtype` = "float16" / "bfloat16") 16-bit integers holding those bit
  // patterns, e.g. torch_bf16.view(torch.int16).numpy(): numpy views cross the boundary faster than DLPack.
  // bitmask: int32 CPU array [rows, words] or [words], any strides. indices: optional 1-D int64 CPU array.
  m.def(
      "apply_bitmask_cpu",
      [](nb::ndarray<nb::device::cpu> logits, nb::ndarray<const int32_t, nb::device::cpu> bitmask,
         std::optional<nb::ndarray<const int64_t, nb::ndim<1>, nb::device::cpu>> indices,
         std::optional<std::string> dtype) {
        using Code = nb::dlpack::dtype_code;
        const nb::dlpack::dtype dt = logits.dtype();
        const auto is = [&](Code c, int bits) { return dt.code == uint8_t(c) && dt.bits == bits && dt.lanes == 1; };
        LogitsView lv;
        if (dtype) {
          if (*dtype == "float16" && (is(Code::Float, 16) || is(Code::Int, 16) || is(Code::UInt, 16)))
            lv.dtype = LogitDType::kFloat16;
          else if (*dtype == "bfloat16" && (is(Code::Bfloat, 16) || is(Code::Int, 16) || is(Code::UInt, 16)))
            lv.dtype = LogitDType::kBFloat16;
          else if (*dtype == "float32" && (is(Code::Float, 32) || is(Code::Int, 32) || is(Code::UInt, 32)))
            lv.dtype = LogitDType::kFloat32;
          else
            throw std::invalid_argument("apply_bitmask_cpu: dtype='" + *dtype +
                                        "' needs float32 / float16 / bfloat16 logits or integers of that width");
        } else if (is(Code::Float, 32)) {
          lv.dtype = LogitDType::kFloat32;
        } else if (is(Code::Float, 16)) {
          lv.dtype = LogitDType::kFloat16;
        } else if (is(Code::Bfloat, 16)) {
          lv.dtype = LogitDType::kBFloat16;
        } else {
          throw std::invalid_argument("apply_bitmask_cpu: logits must be float32, float16 or bfloat16");
        }
        if (logits.ndim() == 1) {
          lv.rows = 1;
          lv.width = int64_t(logits.shape(0));
          lv.row_stride = 0;
          lv.col_stride = logits.stride(0);
        } else if (logits.ndim() == 2) {
          lv.rows = int64_t(logits.shape(0));
          lv.width = int64_t(logits.shape(1));
          lv.row_stride = logits.stride(0);
          lv.col_stride = logits.stride(1);
        } else {
          throw std::invalid_argument("apply_bitmask_cpu: logits must be 1-D or 2-D");
        }
        lv.data = static_cast<uint8_t*>(logits.data_handle()) + logits.byte_offset();
        BitmaskView mv;
        mv.data = reinterpret_cast<const uint32_t*>(bitmask.data());
        if (bitmask.ndim() == 1) {
          mv.rows = 1;
          mv.words = int64_t(bitmask.shape(0));
          mv.row_stride = 0;
          mv.col_stride = bitmask.stride(0);
        } else if (bitmask.ndim() == 2) {
          mv.rows = int64_t(bitmask.shape(0));
          mv.words = int64_t(bitmask.shape(1));
          mv.row_stride = bitmask.stride(0);
          mv.col_stride = bitmask.stride(1);
        } else {
          throw std::invalid_argument("apply_bitmask_cpu: bitmask must be 1-D or 2-D");
        }
        const int64_t* idx = nullptr;
        size_t num_idx = 0;
        if (indices) {
          if (indices->shape(0) > 1 && indices->stride(0) != 1)
            throw std::invalid_argument("apply_bitmask_cpu: indices must be contiguous");
          static const int64_t kNoRows = 0;  // an empty index array masks nothing (nullptr would mean all rows)
          idx = indices->shape(0) > 0 ? indices->data() : &kNoRows;
          num_idx = indices->shape(0);
        }
        nb::gil_scoped_release release;
        apply_bitmask_cpu(lv, mv, idx, num_idx);
      },
      nb::arg("logits").noconvert(), nb::arg("bitmask").noconvert(),
      nb::arg("indices").noconvert().none() = nb::none(), nb::arg("dtype").none() = nb::none(),
      "Set logits whose bit is clear to -inf, in place (see gdecode.bitmask.apply_bitmask_inplace).");
  // ---- END apply_bitmask_cpu ----
}
