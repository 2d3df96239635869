// TQ2_0 rows interleaved at load in groups of R (AVX2 pairs, AVX-512 quads): the block offsets
// both kernels read and the load-time interleave, written once. Included only by per-ISA kernel
// files; internal linkage, each object keeps its own copy.
//
// Group layout. A group holds rows R g .. R g + R - 1 in R * w_stride bytes: first the codes,
// 64 R bytes per block, as four chunks c = 2h + s of 16 R bytes whose 16-byte piece i is
// qs[32h + 16s .. 32h + 16s + 15] of row i (one row per 128-bit lane); then the scales, 2 R bytes
// per block (d of rows 0 .. R - 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "quant/blocks.h"

namespace tern::kernels::x86 {
namespace {

constexpr size_t kTq2WBlock = sizeof(BlockTQ2_0);
constexpr size_t kTq2WScale = offsetof(BlockTQ2_0, d);
constexpr size_t kQ8KBlock = sizeof(BlockQ8_K);
constexpr size_t kQ8KQs = offsetof(BlockQ8_K, qs);
constexpr size_t kQ8KBsums = offsetof(BlockQ8_K, bsums);

template <int R>
struct Tq2Rows {
  static constexpr size_t kCodes = 64 * R;  // code bytes per group and block
  static constexpr size_t kScales = 2 * R;  // scale bytes per group and block
  static_assert(kCodes + kScales == R * kTq2WBlock);

  // InterleaveRowsFn: R rows of n elements to one group.
  static void interleave(const std::byte* rows, size_t stride, std::byte* dst, int64_t n) {
    const int64_t nb = n / kQkK;
    for (int64_t b = 0; b < nb; ++b) {
      const std::byte* blocks = rows + static_cast<size_t>(b) * kTq2WBlock;
      for (int chunk = 0; chunk < 4; ++chunk) {
        const int h = chunk / 2, s = chunk % 2;
        for (int i = 0; i < R; ++i) {
          std::memcpy(dst + static_cast<size_t>(b) * kCodes + 16 * R * chunk + 16 * i,
                      blocks + static_cast<size_t>(i) * stride + 32 * h + 16 * s, 16);
        }
      }
      for (int i = 0; i < R; ++i) {
        std::memcpy(dst + static_cast<size_t>(nb) * kCodes + static_cast<size_t>(b) * kScales +
                        2 * static_cast<size_t>(i),
                    blocks + static_cast<size_t>(i) * stride + kTq2WScale, 2);
      }
    }
  }
};

}  // namespace
}  // namespace tern::kernels::x86
