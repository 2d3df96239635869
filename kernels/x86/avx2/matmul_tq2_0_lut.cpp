// TQ2_0 x Q8_K matrix product by table lookup with AVX2: kernels/x86/tq2_0_lut.h (theory of
// operation there) over 32-byte lanes, so a tile transposes its 16 rows per half h of the block
// (128-bit lane j holds m = 16j + p, lane l = 4j + p / 4) and keeps rows 0..7 and 8..15 in two
// float registers. An alternative to the multiply-add kernel (matmul_tq2_0.cpp).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/simd.h"
#include "kernels/x86/intrinsics.h"
#include "kernels/x86/tq2_0_lut.h"
#include "quant/blocks.h"

namespace tern::kernels::avx2 {
namespace {

namespace tq2_lut = x86::tq2_lut;

constexpr tq2_lut::Coefficients<32> kCoef = tq2_lut::make_coefficients<32>();

struct LutLanes : Regs {
  using Rows = int;
  static constexpr int kBytes = 32;
  static constexpr int kFloatRegs = 2;
  using Tables = tq2_lut::BlockTables<kBytes>;

  static Rows rows(int n) { return n; }
  static int count(Rows rows) { return rows; }

  [[gnu::noinline]] static void build_tables(const uint8_t* xb, Tables& t) {
    const __m256i coef_lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCoef.coef[0]));
    const __m256i coef_hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCoef.coef[1]));
    const __m256i low_byte = _mm256_set1_epi16(0xff);
    for (int h = 0; h < 2; ++h) {
      for (int s = 0; s < 2; ++s) {
        const uint8_t* qa = xb + x86::kQ8KQs + 128 * h + 64 * s;
        // pairs[m]: q8[...m] in the low byte, q8[... 32 + m] in the high byte: maddubs's s8 pair.
        alignas(16) uint16_t pairs[32];
        for (int i = 0; i < 2; ++i) {
          const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qa + 16 * i));
          const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qa + 32 + 16 * i));
          _mm_store_si128(reinterpret_cast<__m128i*>(pairs + 16 * i), _mm_unpacklo_epi8(a, b));
          _mm_store_si128(reinterpret_cast<__m128i*>(pairs + 16 * i + 8), _mm_unpackhi_epi8(a, b));
        }
        for (int p = 0; p < 16; ++p) {
          const __m256i b = _mm256_inserti128_si256(
              _mm256_castsi128_si256(_mm_set1_epi16(static_cast<short>(pairs[p]))),
              _mm_set1_epi16(static_cast<short>(pairs[16 + p])), 1);
          const __m256i v0 = _mm256_maddubs_epi16(coef_lo, b);
          const __m256i v1 = _mm256_maddubs_epi16(coef_hi, b);
          _mm256_store_si256(
              reinterpret_cast<__m256i*>(t.lut[h][s][p][0]),
              _mm256_packus_epi16(_mm256_and_si256(v0, low_byte), _mm256_and_si256(v1, low_byte)));
          _mm256_store_si256(
              reinterpret_cast<__m256i*>(t.lut[h][s][p][1]),
              _mm256_packs_epi16(_mm256_srai_epi16(v0, 8), _mm256_srai_epi16(v1, 8)));
        }
      }
    }
    tq2_lut::finish_tables(xb, t);
  }

  // The 16 scales, converted 8 at a time.
  static void scales(const uint8_t* const* row_ptr, const uint8_t* /*w*/, size_t /*w_stride*/,
                     size_t offset, Rows /*rows*/, F (&wd)[2]) {
    alignas(16) uint16_t d16[tq2_lut::kRows];
    for (int i = 0; i < tq2_lut::kRows; ++i)
      std::memcpy(&d16[i], row_ptr[i] + offset + x86::kTq2WScale, 2);
    wd[0] = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d16)));
    wd[1] = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d16 + 8)));
  }

  // 128-bit lane 0 of lo (rows 0..7) and hi (rows 8..15) is lane g, lane 1 lane g + 4.
  static void finish(I lo, I hi, int g, const int32_t* bsum_pairs, const F (&d)[2],
                     F (&facc)[8][2]) {
    const __m256i sums[2] = {lo, hi};
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
#pragma GCC unroll 2
      for (int lane = 0; lane < 2; ++lane) {
        const int l = g + 4 * lane;
        const __m128i s16 = lane == 0 ? _mm256_castsi256_si128(sums[half])
                                      : _mm256_extracti128_si256(sums[half], 1);
        const __m256i v =
            _mm256_sub_epi32(_mm256_cvtepi16_epi32(s16), _mm256_set1_epi32(bsum_pairs[l]));
        facc[l][half] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), d[half], facc[l][half]);
      }
    }
  }

  static void store(float* y, const F (&sums)[2], Rows rows) {
    alignas(32) float out[16];
    _mm256_store_ps(out, sums[0]);
    _mm256_store_ps(out + 8, sums[1]);
    std::memcpy(y, out, static_cast<size_t>(rows) * sizeof(float));
  }
};

}  // namespace

void matmul_tq2_0_q8_K_lut(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                           int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                           int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  tq2_lut::matmul<LutLanes>(reinterpret_cast<const uint8_t*>(w), w_stride,
                            reinterpret_cast<const uint8_t*>(x), x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx2
