// nanobind module gdecode._cuda: the CUDA bitmask kernel, called with raw device pointers (integers from
// torch's tensor.data_ptr()) and a raw stream handle (torch.cuda.current_stream().cuda_stream), so neither
// this file nor the kernel includes torch or CUDA headers here. gdecode/bitmask.py validates tensors, picks the
// device and calls apply_bitmask(); nothing else should call it directly.
#include <nanobind/nanobind.h>

#include <cstdint>

#include "apply_bitmask.h"

namespace nb = nanobind;
using gdecode::cuda::ApplyBitmaskArgs;

NB_MODULE(_cuda, m) {
  m.doc() = "gdecode CUDA kernel: apply packed int32 token bitmasks to logits in place";
  m.attr("FLOAT32") = int(gdecode::cuda::kFloat32);
  m.attr("FLOAT16") = int(gdecode::cuda::kFloat16);
  m.attr("BFLOAT16") = int(gdecode::cuda::kBFloat16);

  m.def(
      "apply_bitmask",
      [](uintptr_t logits, int dtype, int64_t logit_rows, int64_t width, int64_t logit_row_stride,
         int64_t logit_col_stride, uintptr_t bitmask, int64_t mask_rows, int64_t mask_words,
         int64_t mask_row_stride, int64_t mask_col_stride, bool has_indices, uintptr_t indices,
         int64_t num_indices, uintptr_t stream) {
        ApplyBitmaskArgs a;
        a.logits = logits;
        a.dtype = dtype;
        a.logit_rows = logit_rows;
        a.width = width;
        a.logit_row_stride = logit_row_stride;
        a.logit_col_stride = logit_col_stride;
        a.bitmask = bitmask;
        a.mask_rows = mask_rows;
        a.mask_words = mask_words;
        a.mask_row_stride = mask_row_stride;
        a.mask_col_stride = mask_col_stride;
        a.has_indices = has_indices;
        a.indices = indices;
        a.num_indices = num_indices;
        a.stream = stream;
        nb::gil_scoped_release release;
        gdecode::cuda::launch_apply_bitmask(a);  // asynchronous on `stream`
      },
      nb::arg("logits"), nb::arg("dtype"), nb::arg("logit_rows"), nb::arg("width"), nb::arg("logit_row_stride"),
      nb::arg("logit_col_stride"), nb::arg("bitmask"), nb::arg("mask_rows"), nb::arg("mask_words"),
      nb::arg("mask_row_stride"), nb::arg("mask_col_stride"), nb::arg("has_indices"), nb::arg("indices"),
      nb::arg("num_indices"), nb::arg("stream"),
      "Launch the kernel on the current CUDA device. Pointers are device addresses; strides in elements; "
      "indices (if has_indices) is an int64 device array of num_indices logit-row numbers.");
}
