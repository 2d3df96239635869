// The register-tile driver shared by the x86 matmul kernels (steps through a row range and the
// activation rows one tile at a time and calls the tile function compiled for each edge's size),
// and the small helpers every tile uses.
//
// Included only by per-ISA kernel files (never by generic code), and instantiated only with a tile
// provider declared in that file's anonymous namespace: every instance then has internal linkage
// and stays inside the ISA's object, so no copy compiled with one ISA's flags can be picked by the
// linker for another caller (docs/ADDING_A_KERNEL.md; the isa_symbols.<isa> test checks it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/tile_table.h"
#include "kernels/x86/intrinsics.h"

namespace tern::kernels::x86 {

// Helpers with internal linkage in every including ISA object.
namespace {

// An fp16 scale in memory, as f32.
inline float fp16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

// f32 to IEEE half bits, to nearest with ties to even (quant/fp16.h's for every non-NaN).
inline uint16_t fp16_bits(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

// The sum of 8 int32 lanes (exact, wrapping).
inline int32_t hsum_epi32(__m256i v) {
  __m128i r = _mm_add_epi32(_mm256_extracti128_si256(v, 1), _mm256_castsi256_si128(v));
  r = _mm_add_epi32(r, _mm_unpackhi_epi64(r, r));
  r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 1));
  return _mm_cvtsi128_si32(r);
}

// hsum_float_8: ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)), as quant::sum_dot_lanes.
inline float hsum8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// Software prefetch of the weights. A tile reads R rows side by side: short streams the hardware
// prefetcher follows poorly (a quarter of the bandwidth, measured). Instead a pointer sweeps the
// matrix in memory order, R blocks' bytes per block step, so that across tiles it covers every
// byte once; it runs at least one tile ahead (else the last rows of a tile of long rows arrive
// late: half the bandwidth at k = 6912) and at least 4 KiB (less was slower, measured).
template <int R, size_t kBlockBytes>
class WeightPrefetch {
 public:
  WeightPrefetch(const uint8_t* w, size_t w_stride)
      : base_(reinterpret_cast<const char*>(w) + ahead(w_stride)) {}

  // The bytes of block step b of the tile this far ahead.
  void at(int64_t b) const {
    const char* pf = base_ + b * R * static_cast<int64_t>(kBlockBytes);
#pragma GCC unroll 16
    for (int i = 0; i * 64 < R * static_cast<int>(kBlockBytes) + 64; ++i) {
      _mm_prefetch(pf + 64 * i, _MM_HINT_T0);
    }
  }

 private:
  static int64_t ahead(size_t w_stride) {
    const int64_t tile_bytes = R * static_cast<int64_t>(w_stride);
    return tile_bytes > 4096 ? tile_bytes : 4096;
  }
  const char* base_;
};

// Software prefetch for a tile that reads its weights as one stream in memory order (rows
// interleaved at load): kStepBytes per step, kAhead bytes ahead. A whole tile ahead, as
// WeightPrefetch does for tiles of separate rows, overflows L1 once a tile passes 32 KiB (16
// interleaved Q4_0 rows of 4096: 0.7x the bandwidth, measured); 8 KiB kept up at every shape.
template <size_t kStepBytes, size_t kAhead = 8192>
class StreamPrefetch {
 public:
  explicit StreamPrefetch(const uint8_t* w) : base_(reinterpret_cast<const char*>(w) + kAhead) {}

  void at(int64_t step) const {
    const char* pf = base_ + step * static_cast<int64_t>(kStepBytes);
#pragma GCC unroll 16
    for (size_t i = 0; i * 64 < kStepBytes + 64; ++i) _mm_prefetch(pf + 64 * i, _MM_HINT_T0);
  }

 private:
  const char* base_;
};

}  // namespace

// No per-call constants.
struct NoContext {};

// The constants of a tile provider with no per-call context (a base for providers).
template <int kRows, int kCols, int kGemv, int64_t kElems>
struct TileShape {
  static constexpr int kRowTile = kRows;
  static constexpr int kColTile = kCols;
  static constexpr int kGemvRows = kGemv;
  static constexpr int64_t kBlockElems = kElems;
  using Context = NoContext;
  static Context context() { return {}; }
};

// A provider whose tiles take their row count at run time, so that only one function per column
// count is compiled: T is a TileShape with `template <int C> static void run(int rows, w,
// w_stride, x, x_stride, nb, y, ldy)`.
template <class T>
struct RowMaskedTiles : T {
  template <int R, int C>
  static void tile(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, int64_t nb,
                   float* y, int64_t ldy, const NoContext& /*ctx*/) {
    T::template run<C>(R, w, w_stride, x, x_stride, nb, y, ldy);
  }
};

// Tile provider P (TileShape gives the constants):
//   static constexpr int kRowTile, kColTile, kGemvRows;  // the table entry's tiles
//   static constexpr int64_t kBlockElems;                // weights per block
//   using Context = ...; static Context context();       // constants built once per call
//   template <int R, int C> static void tile(const uint8_t* w, size_t w_stride,
//       const uint8_t* x, size_t x_stride, int64_t nb, float* y, int64_t ldy, const Context&);
// tile<R, C> computes y[c * ldy + r] for R weight rows (w_stride apart) and C activation rows
// (x_stride apart) over nb blocks.
template <class P>
class TileDriver {
 public:
  // The MatmulFn body: rows [r0, r1) x activation rows [0, n_x), kGemvRows rows per step for a
  // single activation row (decode), kRowTile x kColTile otherwise.
  static void run(const std::byte* w, size_t w_stride, const std::byte* x, size_t x_stride,
                  int64_t n_x, int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
    const typename P::Context ctx = P::context();
    const int64_t nb = k / P::kBlockElems;
    const auto* wb = reinterpret_cast<const uint8_t*>(w);
    const auto* xb = reinterpret_cast<const uint8_t*>(x);
    const int64_t rows_step = n_x == 1 ? P::kGemvRows : P::kRowTile;
    for (int64_t r = r0; r < r1; r += rows_step) {
      const int64_t nr = r1 - r < rows_step ? r1 - r : rows_step;
      for (int64_t m = 0; m < n_x; m += P::kColTile) {
        const int64_t nc = n_x - m < P::kColTile ? n_x - m : P::kColTile;
        kTiles.fn[nr - 1][nc - 1](wb + static_cast<size_t>(r) * w_stride, w_stride,
                                  xb + static_cast<size_t>(m) * x_stride, x_stride, nb,
                                  y + m * ldy + r, ldy, ctx);
      }
    }
  }

 private:
  using TileFn = void (*)(const uint8_t*, size_t, const uint8_t*, size_t, int64_t, float*, int64_t,
                          const typename P::Context&);
  static constexpr int kRows = P::kRowTile > P::kGemvRows ? P::kRowTile : P::kGemvRows;
  static constexpr int kCols = P::kColTile;

  struct Make {
    template <int R, int C>
    static constexpr TileFn get() {
      return &P::template tile<R, C>;
    }
  };
  static constexpr TileTable<TileFn, kRows, kCols, Make> kTiles{};
};

}  // namespace tern::kernels::x86
