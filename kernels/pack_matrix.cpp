// Load-time repacking of a weight matrix into the layout its matmul kernel reads: per-row packs
// (TQ1_0 to TQ2_0) and row interleaves (AVX-512's TQ2_0 quads, x86 Q4_0 groups of 16 or 8),
// composed in that order.
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

namespace tern::kernels {

size_t packed_stride(const MatmulKernel& mk, int64_t k, size_t file_stride) {
  return mk.pack != nullptr ? mk.packed_row_bytes(k) : file_stride;
}

bool interleaves(const MatmulKernel& mk, int64_t n_rows) {
  return mk.interleave != nullptr && n_rows % mk.interleave_row_multiple == 0;
}

size_t packed_matrix_bytes(const MatmulKernel& mk, int64_t n_rows, int64_t k, size_t file_stride) {
  const int64_t group = interleaves(mk, n_rows) ? mk.interleave_rows : 1;
  const int64_t rows = (n_rows + group - 1) / group * group;
  return packed_stride(mk, k, file_stride) * static_cast<size_t>(rows);
}

bool repacks(const MatmulKernel& mk, int64_t n_rows) {
  return mk.pack != nullptr || interleaves(mk, n_rows);
}

void pack_matrix(const MatmulKernel& mk, const std::byte* src, size_t src_stride, int64_t n_rows,
                 int64_t k, std::byte* dst) {
  const size_t stride = packed_stride(mk, k, src_stride);
  const auto pack_row = [&](int64_t r, std::byte* out) {
    const std::byte* row = src + static_cast<size_t>(r) * src_stride;
    if (mk.pack != nullptr) {
      mk.pack(row, out, k);
    } else {
      std::memcpy(out, row, stride);
    }
  };
  if (!interleaves(mk, n_rows)) {
    for (int64_t r = 0; r < n_rows; ++r) pack_row(r, dst + static_cast<size_t>(r) * stride);
    return;
  }
  const int64_t group = mk.interleave_rows;
  std::vector<std::byte> stage(stride * static_cast<size_t>(group));
  for (int64_t g = 0; g * group < n_rows; ++g) {
    for (int64_t i = 0; i < group; ++i) {
      std::byte* out = stage.data() + static_cast<size_t>(i) * stride;
      if (g * group + i < n_rows) {
        pack_row(g * group + i, out);
      } else {
        std::memset(out, 0, stride);  // padding rows: zero codes and scales
      }
    }
    mk.interleave(stage.data(), stride, dst + static_cast<size_t>(g * group) * stride, k);
  }
}

bool packs_in_place(const MatmulKernel& mk, int64_t n_rows) {
  if (mk.pack != nullptr) return mk.pack_in_place && !interleaves(mk, n_rows);
  return interleaves(mk, n_rows) && n_rows % mk.interleave_rows == 0;
}

void pack_matrix_in_place(const MatmulKernel& mk, std::byte* rows, size_t file_stride,
                          int64_t n_rows, int64_t k) {
  if (mk.pack != nullptr) {
    for (int64_t r = 0; r < n_rows; ++r) {
      std::byte* row = rows + static_cast<size_t>(r) * file_stride;
      mk.pack(row, row, k);
    }
    return;
  }
  const int64_t group = mk.interleave_rows;
  const size_t group_bytes = file_stride * static_cast<size_t>(group);
  std::vector<std::byte> stage(group_bytes);
  for (int64_t g = 0; g * group < n_rows; ++g) {
    std::byte* at = rows + static_cast<size_t>(g) * group_bytes;
    std::memcpy(stage.data(), at, group_bytes);
    mk.interleave(stage.data(), file_stride, at, k);
  }
}

}  // namespace tern::kernels
