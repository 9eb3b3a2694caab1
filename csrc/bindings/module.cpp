// Thin binding layer: converts Python values at the edge and calls into the plain C++ core.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <nanobind/stl/tuple.h>

#include "core/token_trie.hpp"

namespace nb = nanobind;
using namespace gdecode;

NB_MODULE(_core, m) {
  m.doc() = "gdecode C++ core (token trie, lexer, parser, masks)";
  m.attr("__version__") = "0.1.0";

  nb::class_<TokenTrie>(m, "TokenTrie")
      .def("__init__",
           [](TokenTrie* self, const std::vector<nb::bytes>& tokens, const std::vector<uint32_t>& excluded) {
             std::vector<std::string> raw;
             raw.reserve(tokens.size());
             for (const auto& t : tokens) raw.emplace_back(t.c_str(), t.size());
             nb::gil_scoped_release release;
             new (self) TokenTrie(raw, excluded);
           },
           nb::arg("tokens"), nb::arg("excluded") = std::vector<uint32_t>{})
      .def_prop_ro("num_nodes", [](const TokenTrie& t) { return t.nodes().size(); })
      .def_prop_ro("max_depth", &TokenTrie::max_depth)
      .def("walk",
           [](const TokenTrie& t) {
             // Debug/test view: every (depth, byte, token) in preorder.
             std::vector<std::tuple<int, int, int64_t>> out;
             for (const auto& n : t.nodes())
               out.emplace_back(n.depth, n.byte, n.token == TokenTrie::kNoToken ? -1 : int64_t(n.token));
             return out;
           });
}
