// Tests of the number formats in quant/: bit identity with llama.cpp's files, conversions,
// round trips, dot products against double precision, and the traits table.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/gguf.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/types.h"

namespace {

using tern::TensorType;
using tern::TypeTraits;

constexpr double kUnitRoundoff = 0x1p-24;  // f32

std::string model_path(const std::string& file) {
  return std::string(TERN_SHARED_DIR) + "/models/" + file;
}

// gamma_k of Higham's error analysis: the relative bound after k roundings.
double gamma(int64_t k) {
  const double ku = static_cast<double>(k) * kUnitRoundoff;
  return ku / (1.0 - ku);
}

std::vector<std::byte> quantize(const TypeTraits& t, const std::vector<float>& x) {
  std::vector<std::byte> out(tern::row_bytes(t, static_cast<int64_t>(x.size())));
  t.quantize_row(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<std::byte> from_float(const TypeTraits& t, const std::vector<float>& x) {
  std::vector<std::byte> out(tern::row_bytes(t, static_cast<int64_t>(x.size())));
  t.from_float(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<float> dequantize(const TypeTraits& t, const std::vector<std::byte>& q, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  t.dequantize_row(q.data(), out.data(), n);
  return out;
}

std::vector<float> normal_row(std::mt19937& rng, int64_t n, float sigma) {
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

// ------------------------------------------------------------------------------------------------
// 1. Bit identity with files written by llama-quantize / ggml_quantize_chunk.

struct FilePair {
  const char* f32_file;
  const char* quantized_file;
};

TEST_CASE("quantize_row reproduces llama.cpp's quantized files byte for byte", "[quant][files]") {
  const FilePair pair =
      GENERATE(FilePair{"tiny-ternary-random-F32.gguf", "tiny-ternary-random-TQ1_0.gguf"},
               FilePair{"tiny-ternary-random-F32.gguf", "tiny-ternary-random-TQ2_0.gguf"},
               FilePair{"tiny-ternary-random-F32.gguf", "tiny-ternary-random-Q8_0.gguf"},
               FilePair{"tiny-ternary-random-F32.gguf", "tiny-ternary-random-Q4_0.gguf"},
               FilePair{"stories260K-F32.gguf", "stories260K-Q8_0.gguf"},
               FilePair{"stories260K-F32.gguf", "stories260K-Q4_0.gguf"},
               FilePair{"stories260K-F32.gguf", "stories260K-F16.gguf"});
  INFO(pair.quantized_file);
  const auto source = tern::GgufFile::open(model_path(pair.f32_file));
  const auto quantized = tern::GgufFile::open(model_path(pair.quantized_file));

  int compared = 0;
  for (const tern::GgufTensor& qt : quantized.tensors()) {
    if (qt.traits->type == TensorType::F32) continue;
    INFO(qt.name << " (" << qt.traits->name << ")");
    const tern::GgufTensor* st = source.find_tensor(qt.name);
    REQUIRE(st != nullptr);
    REQUIRE(st->traits->type == TensorType::F32);
    REQUIRE(st->ne == qt.ne);
    REQUIRE(qt.traits->quantize_row != nullptr);

    const int64_t n_per_row = qt.ne[0];
    const size_t row_size = tern::row_bytes(*qt.traits, n_per_row);
    REQUIRE(qt.nbytes == row_size * static_cast<size_t>(qt.n_rows()));
    const auto* src = reinterpret_cast<const float*>(st->data);
    std::vector<std::byte> row(row_size);
    int64_t first_bad_row = -1;
    for (int64_t r = 0; r < qt.n_rows() && first_bad_row < 0; ++r) {
      qt.traits->quantize_row(src + r * n_per_row, row.data(), n_per_row);
      if (std::memcmp(row.data(), qt.data + static_cast<size_t>(r) * row_size, row_size) != 0)
        first_bad_row = r;
    }
    CHECK(first_bad_row == -1);
    ++compared;
  }
  CHECK(compared > 0);
  WARN(pair.quantized_file << ": " << compared << " tensors bit-identical");
}

TEST_CASE("the ternary files store tiny-ternary-random's blk weights losslessly",
          "[quant][files]") {
  const char* file = GENERATE("tiny-ternary-random-TQ1_0.gguf", "tiny-ternary-random-TQ2_0.gguf");
  INFO(file);
  const auto source = tern::GgufFile::open(model_path("tiny-ternary-random-F32.gguf"));
  const auto quantized = tern::GgufFile::open(model_path(file));
  int compared = 0;
  for (const tern::GgufTensor& qt : quantized.tensors()) {
    if (qt.traits->type != TensorType::TQ1_0 && qt.traits->type != TensorType::TQ2_0) continue;
    INFO(qt.name);
    const tern::GgufTensor* st = source.find_tensor(qt.name);
    REQUIRE(st != nullptr);
    std::vector<float> out(static_cast<size_t>(qt.n_elements()));
    qt.traits->dequantize_row(qt.data, out.data(), qt.n_elements());
    CHECK(std::memcmp(out.data(), st->data, out.size() * sizeof(float)) == 0);
    ++compared;
  }
  CHECK(compared > 0);
}

// ------------------------------------------------------------------------------------------------
// 2. Conversions and round trips.

TEST_CASE("every half converts to f32 and back unchanged", "[quant][fp16]") {
  int mismatches = 0;
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const auto half = static_cast<uint16_t>(h);
    const float f = tern::fp16_to_fp32(half);
    const bool is_nan = (half & 0x7c00) == 0x7c00 && (half & 0x03ff) != 0;
    if (is_nan) {
      // ggml's software conversion keeps the sign of a NaN but not its payload.
      if (!std::isnan(f) || tern::fp32_to_fp16(f) != ((half & 0x8000) | 0x7e00)) ++mismatches;
    } else if (tern::fp32_to_fp16(f) != half) {
      ++mismatches;
    }
  }
  CHECK(mismatches == 0);
  CHECK(tern::fp16_to_fp32(0x0001) == 0x1p-24f);
  CHECK(tern::fp16_to_fp32(0x03ff) == 1023 * 0x1p-24f);
  CHECK(tern::fp16_to_fp32(0x0400) == 0x1p-14f);
  CHECK(tern::fp16_to_fp32(0x7bff) == 65504.0f);
  CHECK(tern::fp16_to_fp32(0x7c00) == INFINITY);
  CHECK(tern::fp16_to_fp32(0xfc00) == -INFINITY);
  CHECK(std::signbit(tern::fp16_to_fp32(0x8000)));
}

TEST_CASE("every bfloat16 converts to f32 and back unchanged", "[quant][bf16]") {
  int mismatches = 0;
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const auto b = static_cast<uint16_t>(h);
    const bool is_nan = (b & 0x7f80) == 0x7f80 && (b & 0x007f) != 0;
    // A signalling NaN comes back quiet, as in ggml.
    const uint16_t expected = is_nan ? static_cast<uint16_t>(b | 0x40) : b;
    if (tern::fp32_to_bf16(tern::bf16_to_fp32(b)) != expected) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("f32 to f16 rounds to nearest, ties to even", "[quant][fp16]") {
  using tern::fp32_to_fp16;
  // Ties between two normal halves: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
  CHECK(fp32_to_fp16(1.0f + 0x1p-11f) == 0x3c00);             // down to even
  CHECK(fp32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3c02);         // up to even
  CHECK(fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-23f) == 0x3c01);  // just above the tie
  CHECK(fp32_to_fp16(-(1.0f + 3 * 0x1p-11f)) == 0xbc02);
  // Overflow: 65520 is the tie between 65504 (odd mantissa) and 65536, so it goes to infinity.
  CHECK(fp32_to_fp16(65504.0f) == 0x7bff);
  CHECK(fp32_to_fp16(std::nextafter(65520.0f, 0.0f)) == 0x7bff);
  CHECK(fp32_to_fp16(65520.0f) == 0x7c00);
  CHECK(fp32_to_fp16(-65520.0f) == 0xfc00);
  CHECK(fp32_to_fp16(1e30f) == 0x7c00);
  CHECK(fp32_to_fp16(INFINITY) == 0x7c00);
  CHECK(fp32_to_fp16(-INFINITY) == 0xfc00);
  // Subnormal halves: the step is 2^-24.
  CHECK(fp32_to_fp16(0x1p-24f) == 0x0001);
  CHECK(fp32_to_fp16(0x1p-25f) == 0x0000);  // tie between 0 and 1 -> 0
  CHECK(fp32_to_fp16(std::nextafter(0x1p-25f, 1.0f)) == 0x0001);
  CHECK(fp32_to_fp16(3 * 0x1p-25f) == 0x0002);     // tie between 1 and 2 -> 2
  CHECK(fp32_to_fp16(5 * 0x1p-25f) == 0x0002);     // tie between 2 and 3 -> 2
  CHECK(fp32_to_fp16(2047 * 0x1p-25f) == 0x0400);  // tie 0x3ff/0x400 -> smallest normal
  CHECK(fp32_to_fp16(-0x1p-24f) == 0x8001);
  CHECK(fp32_to_fp16(1e-30f) == 0x0000);
  CHECK(fp32_to_fp16(0x1p-149f) == 0x0000);  // f32 subnormal
  CHECK(fp32_to_fp16(-0.0f) == 0x8000);
  CHECK(fp32_to_fp16(std::nanf("")) == 0x7e00);
  CHECK(fp32_to_fp16(-std::nanf("")) == 0xfe00);
}

TEST_CASE("f32 to bf16 rounds to nearest, ties to even", "[quant][bf16]") {
  using tern::fp32_to_bf16;
  CHECK(fp32_to_bf16(1.0f) == 0x3f80);
  CHECK(fp32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);      // tie -> even
  CHECK(fp32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);  // tie -> even
  CHECK(fp32_to_bf16(1.0f + 0x1p-8f + 0x1p-23f) == 0x3f81);
  CHECK(fp32_to_bf16(tern::fp32_from_bits(0x7f7fffff)) == 0x7f80);  // FLT_MAX rounds to inf
  CHECK(fp32_to_bf16(tern::fp32_from_bits(0x00000001)) == 0x0000);  // subnormals round, not flush
  CHECK(fp32_to_bf16(tern::fp32_from_bits(0x00008000)) == 0x0000);  // tie -> even (0)
  CHECK(fp32_to_bf16(tern::fp32_from_bits(0x00018000)) == 0x0002);  // tie -> even (2)
  CHECK(fp32_to_bf16(tern::fp32_from_bits(0x7f800001)) == 0x7fc0);  // sNaN made quiet
  CHECK(fp32_to_bf16(-INFINITY) == 0xff80);
}

// An independent check of f32 -> f16 on random bit patterns: the result must be a nearest half
// (by exact double arithmetic), and on a tie the even one.
TEST_CASE("f32 to f16 agrees with a nearest-even search on random floats", "[quant][fp16]") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits_dist;
  std::uniform_int_distribution<uint32_t> exp_dist(0x60, 0x90);  // around the half range
  int failures = 0;
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = bits_dist(rng);
    if (i % 2 == 0) bits = (bits & 0x807fffffu) | (exp_dist(rng) << 23);
    const float f = tern::fp32_from_bits(bits);
    if (std::isnan(f)) continue;
    const uint16_t h = tern::fp32_to_fp16(f);
    const double x = std::fabs(static_cast<double>(f));
    const uint16_t mag = h & 0x7fff;
    if (std::signbit(f) != ((h & 0x8000) != 0)) {
      ++failures;
      continue;
    }
    const double got = std::fabs(static_cast<double>(tern::fp16_to_fp32(h)));
    if (mag == 0x7c00) {
      if (x < 65520.0) ++failures;
      continue;
    }
    const double err = std::fabs(got - x);
    // Neighbours of the result; the upper neighbour of 65504 is treated as 65536.
    const double below =
        mag > 0 ? static_cast<double>(tern::fp16_to_fp32(static_cast<uint16_t>(mag - 1))) : -1.0;
    const double above =
        mag < 0x7bff ? static_cast<double>(tern::fp16_to_fp32(static_cast<uint16_t>(mag + 1)))
                     : 65536.0;
    const bool nearest = err <= std::fabs(x - above) && (mag == 0 || err <= std::fabs(x - below));
    const bool tie = err == std::fabs(x - above) || (mag > 0 && err == std::fabs(x - below));
    if (!nearest || (tie && err != 0.0 && (mag & 1))) ++failures;
  }
  CHECK(failures == 0);
}

// Elementwise bound on |x - dequantize(quantize(x))| for one block, from how each format rounds.
// The codes are computed with the f32 scale but decoded with its f16 rounding, which adds at most
// |code| * |d - d_f16|; `slack` covers the last-bit roundings of x * id and of the float decode.
struct BlockBound {
  TensorType type;
  double (*element_bound)(float x, float amax, float signed_max, float d_f16);
};

double q8_0_bound(float /*x*/, float amax, float /*signed_max*/, float d16) {
  const double d = static_cast<double>(amax / 127.0f);
  return 0.5 * d + 127.0 * std::fabs(d - d16) + 4.0 * kUnitRoundoff * amax;
}

double q4_0_bound(float x, float amax, float signed_max, float d16) {
  const double d = static_cast<double>(signed_max / -8.0f);
  // Codes are x/d + 8 rounded, clipped at 15: the opposite extreme (x/d near +8) can be a whole
  // step off, everything else at most half a step.
  const double step = (x / d > 7.5) ? std::fabs(d) : 0.5 * std::fabs(d);
  return step + 8.0 * std::fabs(d - d16) + 4.0 * kUnitRoundoff * amax;
}

double ternary_bound(float /*x*/, float amax, float /*signed_max*/, float d16) {
  return 0.5 * amax + std::fabs(static_cast<double>(amax) - d16) + 4.0 * kUnitRoundoff * amax;
}

float block_scale_f16(TensorType type, const std::byte* block) {
  uint16_t h = 0;
  const size_t offset = type == TensorType::TQ1_0 ? 52 : type == TensorType::TQ2_0 ? 64 : 0;
  std::memcpy(&h, block + offset, sizeof h);
  return tern::fp16_to_fp32(h);
}

TEST_CASE("dequantize(quantize(x)) stays within each format's error bound", "[quant][roundtrip]") {
  const BlockBound bound = GENERATE(
      BlockBound{TensorType::Q8_0, q8_0_bound}, BlockBound{TensorType::Q4_0, q4_0_bound},
      BlockBound{TensorType::TQ1_0, ternary_bound}, BlockBound{TensorType::TQ2_0, ternary_bound});
  const TypeTraits& t = tern::type_traits(bound.type);
  INFO(t.name);
  std::mt19937 rng(42);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t n = t.block_elems * (1 + trial % 7);
    const float sigma = std::ldexp(1.0f, trial % 21 - 10);
    const auto x = normal_row(rng, n, sigma);
    const auto q = quantize(t, x);
    const auto y = dequantize(t, q, n);
    for (int64_t b = 0; b < n / t.block_elems; ++b) {
      float amax = 0.0f;
      float signed_max = 0.0f;
      for (int64_t j = b * t.block_elems; j < (b + 1) * t.block_elems; ++j) {
        if (std::fabs(x[j]) > amax) {
          amax = std::fabs(x[j]);
          signed_max = x[j];
        }
      }
      const float d16 = block_scale_f16(t.type, q.data() + b * static_cast<int64_t>(t.block_bytes));
      for (int64_t j = b * t.block_elems; j < (b + 1) * t.block_elems; ++j) {
        const double err = std::fabs(static_cast<double>(x[j]) - y[j]);
        const double limit = bound.element_bound(x[j], amax, signed_max, d16);
        if (err > limit) {
          FAIL_CHECK("trial " << trial << " element " << j << ": x=" << x[j] << " got " << y[j]
                              << " err " << err << " > " << limit);
          return;
        }
      }
    }
  }
}

TEST_CASE("Q8_K activations round to within half a step of an f32 scale", "[quant][roundtrip]") {
  const TypeTraits& t = tern::type_traits(TensorType::Q8_K);
  std::mt19937 rng(3);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t n = tern::kQkK * (1 + trial % 4);
    const auto x = normal_row(rng, n, std::ldexp(1.0f, trial % 17 - 8));
    const auto q = from_float(t, x);
    const auto y = dequantize(t, q, n);
    const auto* blocks = reinterpret_cast<const tern::BlockQ8_K*>(q.data());
    for (int64_t b = 0; b < n / tern::kQkK; ++b) {
      const double d = std::fabs(static_cast<double>(blocks[b].d));
      int32_t group_sum[tern::kQkK / 16] = {};
      for (int64_t j = 0; j < tern::kQkK; ++j) {
        const int64_t i = b * tern::kQkK + j;
        // Half a step, plus the roundings of iscale * x and of d * q.
        REQUIRE(std::fabs(static_cast<double>(x[i]) - y[i]) <=
                0.5 * d + 4.0 * kUnitRoundoff * 128.0 * d);
        REQUIRE(blocks[b].qs[j] >= -127);
        group_sum[j / 16] += blocks[b].qs[j];
      }
      for (int g = 0; g < tern::kQkK / 16; ++g) REQUIRE(blocks[b].bsums[g] == group_sum[g]);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// 3. Dot products.

// |computed - exact| <= gamma_k * magnitude. Integer parts are exact, so k counts f32 roundings on
// the longest path: the scale product, one fma per block in a lane, the 3-level lane sum, and one
// more for the reference's own decode of Q8_K (f32 d times an int8). Float types add serially.
// For the ternary dots the lanes also carry code * q and the bsums separately, so their magnitude
// is bounded by 3 * d_w * sum |a| rather than by sum |w * a|.
struct DotCase {
  TensorType weight_type;
  int64_t n;
};

TEST_CASE("vec_dot matches a double-precision dot of the decoded rows", "[quant][dot]") {
  const DotCase dc = GENERATE(DotCase{TensorType::F32, 1}, DotCase{TensorType::F32, 4097},
                              DotCase{TensorType::F16, 33}, DotCase{TensorType::F16, 4096},
                              DotCase{TensorType::BF16, 7}, DotCase{TensorType::BF16, 4096},
                              DotCase{TensorType::Q8_0, 32}, DotCase{TensorType::Q8_0, 32 * 97},
                              DotCase{TensorType::Q4_0, 32}, DotCase{TensorType::Q4_0, 6912},
                              DotCase{TensorType::TQ1_0, 256}, DotCase{TensorType::TQ1_0, 6912},
                              DotCase{TensorType::TQ2_0, 256}, DotCase{TensorType::TQ2_0, 2560});
  const TypeTraits& wt = tern::type_traits(dc.weight_type);
  const TypeTraits& at = tern::type_traits(wt.vec_dot_type);
  INFO(wt.name << " x " << at.name << ", n = " << dc.n);
  std::mt19937 rng(static_cast<uint32_t>(dc.n));
  for (int trial = 0; trial < 20; ++trial) {
    const auto x = normal_row(rng, dc.n, std::ldexp(1.0f, trial % 9 - 4));
    const auto y = normal_row(rng, dc.n, std::ldexp(1.0f, trial % 5 - 2));
    const auto w = quantize(wt, x);
    const auto a = from_float(at, y);
    const auto wd = dequantize(wt, w, dc.n);
    const auto ad = dequantize(at, a, dc.n);

    double exact = 0.0;
    double magnitude = 0.0;
    for (int64_t i = 0; i < dc.n; ++i) {
      exact += static_cast<double>(wd[i]) * ad[i];
      magnitude += std::fabs(static_cast<double>(wd[i]) * ad[i]);
    }
    int64_t roundings = dc.n + 1;
    if (wt.is_quantized) {
      roundings = dc.n / wt.block_elems + 5;
      if (at.type == TensorType::Q8_K) {
        magnitude = 0.0;
        for (int64_t b = 0; b < dc.n / tern::kQkK; ++b) {
          const float dw =
              block_scale_f16(wt.type, w.data() + b * static_cast<int64_t>(wt.block_bytes));
          for (int64_t j = b * tern::kQkK; j < (b + 1) * tern::kQkK; ++j)
            magnitude += 3.0 * std::fabs(dw * ad[j]);
        }
      }
    }
    const double computed = wt.vec_dot(dc.n, w.data(), a.data());
    const double limit = gamma(roundings) * magnitude;
    INFO("trial " << trial << ": computed " << computed << ", exact " << exact << ", limit "
                  << limit);
    REQUIRE(std::fabs(computed - exact) <= limit);
  }
}

// With power-of-two scales every float operation in the quantized dots is exact, so the result must
// equal the integer dot times the scales exactly: this pins down the integer core and the decode.
TEST_CASE("quantized dots are exact when the scales are powers of two", "[quant][dot]") {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> i8(-127, 127);
  std::uniform_int_distribution<int> nib(0, 15);
  std::uniform_int_distribution<int> tri(-1, 1);
  const float dw = 0.5f;
  const float da = 0.25f;
  const uint16_t dw16 = tern::fp32_to_fp16(dw);
  const uint16_t da16 = tern::fp32_to_fp16(da);
  REQUIRE(tern::fp16_to_fp32(dw16) == dw);

  SECTION("q8_0 x q8_0 and q4_0 x q8_0") {
    const int64_t nb = 37;
    std::vector<tern::BlockQ8_0> a(nb), w8(nb);
    std::vector<tern::BlockQ4_0> w4(nb);
    int64_t dot8 = 0;
    int64_t dot4 = 0;
    for (int64_t b = 0; b < nb; ++b) {
      a[b].d = da16;
      w8[b].d = dw16;
      w4[b].d = dw16;
      int codes4[32];
      for (int j = 0; j < 32; ++j) {
        a[b].qs[j] = static_cast<int8_t>(i8(rng));
        w8[b].qs[j] = static_cast<int8_t>(i8(rng));
        codes4[j] = nib(rng);
        dot8 += int64_t{w8[b].qs[j]} * a[b].qs[j];
        dot4 += int64_t{codes4[j] - 8} * a[b].qs[j];
      }
      for (int j = 0; j < 16; ++j)
        w4[b].qs[j] = static_cast<uint8_t>(codes4[j] | (codes4[j + 16] << 4));
    }
    const auto& q8 = tern::type_traits(TensorType::Q8_0);
    const auto& q4 = tern::type_traits(TensorType::Q4_0);
    CHECK(q8.vec_dot(nb * 32, w8.data(), a.data()) == static_cast<float>(dot8) * dw * da);
    CHECK(q4.vec_dot(nb * 32, w4.data(), a.data()) == static_cast<float>(dot4) * dw * da);
  }

  SECTION("tq1_0 and tq2_0 x q8_K, activations including the extremes") {
    const int64_t nb = 5;
    const int64_t n = nb * tern::kQkK;
    std::vector<float> x(static_cast<size_t>(n));
    std::vector<tern::BlockQ8_K> a(nb);
    for (int64_t b = 0; b < nb; ++b) {
      a[b].d = da;
      for (int j = 0; j < tern::kQkK; ++j) {
        const int64_t i = b * tern::kQkK + j;
        // The first block sits at the int8 extremes, where sign tricks and 16-bit pair sums
        // go wrong in careless kernels.
        const int q = b == 0 ? (j % 2 ? 127 : -128) : i8(rng);
        const int t = b == 0 ? (j % 3 == 0 ? -1 : 1) : tri(rng);
        a[b].qs[j] = static_cast<int8_t>(q);
        x[static_cast<size_t>(i)] = static_cast<float>(t) * dw;
      }
      x[static_cast<size_t>(b * tern::kQkK)] = dw;  // every block's absmax is dw, so its scale too
      for (int g = 0; g < tern::kQkK / 16; ++g) {
        int sum = 0;
        for (int j = 16 * g; j < 16 * g + 16; ++j) sum += a[b].qs[j];
        a[b].bsums[g] = static_cast<int16_t>(sum);
      }
    }
    int64_t dot = 0;
    for (int64_t i = 0; i < n; ++i) {
      dot += static_cast<int64_t>(x[static_cast<size_t>(i)] / dw) *
             a[i / tern::kQkK].qs[i % tern::kQkK];
    }
    for (TensorType type : {TensorType::TQ1_0, TensorType::TQ2_0}) {
      const auto& t = tern::type_traits(type);
      INFO(t.name);
      const auto w = quantize(t, x);
      CHECK(dequantize(t, w, n) == x);
      CHECK(t.vec_dot(n, w.data(), a.data()) == static_cast<float>(dot) * da * dw);
    }
  }
}

// Inputs that any C++ implementation reproduces (std::normal_distribution does not): a 64-bit LCG
// whose top 24 bits become a float in [-1, 1), or ternary values times 0.375.
std::vector<float> portable_row(uint64_t seed, int64_t n, bool ternary) {
  std::vector<float> x(static_cast<size_t>(n));
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& v : x) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const auto top = static_cast<int32_t>(state >> 40);
    v = ternary ? static_cast<float>(top % 3 - 1) * 0.375f
                : static_cast<float>(top - (1 << 23)) * 0x1p-23f;
  }
  return x;
}

// Results of llama.cpp c392e50's x86 CPU path (GCC 12, -march=native on Zen 4: the AVX2 kernels,
// with the ternary kernels' mul+add contracted to FMA) on portable_row inputs: weights through the
// *_ref quantizer, activations through the CPU from_float, then ggml_vec_dot_*. A plain serial
// f32 sum differs from every one of these, so they pin down the lane association, not just the
// integer core. A kernel that claims llama.cpp bit-identity must reproduce them too.
TEST_CASE("quantized dots are bit-identical to llama.cpp's x86 results", "[quant][dot][golden]") {
  struct Golden {
    TensorType type;
    std::array<uint32_t, 4> bits;  // seeds 1..4
  };
  const Golden g =
      GENERATE(Golden{TensorType::Q8_0, {0x419446d1, 0xbfd938ca, 0x3fa6f1b8, 0x41afffd1}},
               Golden{TensorType::Q4_0, {0x418ee5a6, 0xc01ec6f8, 0x4038ab50, 0x41badbda}},
               Golden{TensorType::TQ1_0, {0x419667ba, 0x409e7bcc, 0xc0df1338, 0xc05af864}},
               Golden{TensorType::TQ2_0, {0x419667ba, 0x409e7bcc, 0xc0df1338, 0xc05af864}});
  const TypeTraits& wt = tern::type_traits(g.type);
  const TypeTraits& at = tern::type_traits(wt.vec_dot_type);
  const int64_t n = 4096;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    INFO(wt.name << " seed " << seed);
    const auto w = quantize(wt, portable_row(seed, n, wt.block_elems == tern::kQkK));
    const auto a = from_float(at, portable_row(seed + 100, n, false));
    CHECK(tern::fp32_to_bits(wt.vec_dot(n, w.data(), a.data())) == g.bits[seed - 1]);
  }
}

// llama.cpp's float dots and its other matrix kernels, recorded the same way on the machine tern
// is checked against (Zen 4: AVX-512 and AVX512-BF16). ggml_vec_dot_* for n = 223: three 64-wide
// steps and a 31-element tail (16 + 8 rounded products, then 7 FMAs for f32; a double sum for f16
// and bf16). llamafile's sgemm (a 4-row matrix times 2 columns) for n = 256. Q4_0 repacked into
// 8-row interleaved blocks (gemv for one column, gemm for four give the same bits) for n = 4096.
// Inputs as above; the float types convert both rows with from_float.
TEST_CASE("float dots and matrix kernels are bit-identical to llama.cpp's x86 results",
          "[quant][dot][golden]") {
  struct Golden {
    TensorType type;
    int64_t n;
    tern::VecDotFn TypeTraits::*dot;
    std::array<uint32_t, 2> bits;  // seeds 1, 2
  };
  const Golden g = GENERATE(
      Golden{TensorType::F32, 223, &TypeTraits::vec_dot, {0x40cf0728, 0x3eb96012}},
      Golden{TensorType::F16, 223, &TypeTraits::vec_dot, {0x40cf0ac8, 0x3eb99ed2}},
      Golden{TensorType::BF16, 223, &TypeTraits::vec_dot, {0x40cf82e3, 0x3ebd1f40}},
      Golden{TensorType::F32, 256, &TypeTraits::vec_dot_sgemm, {0x40c281bc, 0x40905a20}},
      Golden{TensorType::F16, 256, &TypeTraits::vec_dot_sgemm, {0x40c283b6, 0x4090618c}},
      Golden{TensorType::BF16, 256, &TypeTraits::vec_dot_sgemm, {0x40c32d7d, 0x40909ab2}},
      Golden{TensorType::Q4_0, 4096, &TypeTraits::vec_dot_repacked, {0x418ee5a7, 0xc01ec704}});
  const TypeTraits& wt = tern::type_traits(g.type);
  const TypeTraits& at = tern::type_traits(wt.vec_dot_type);
  const tern::VecDotFn dot = wt.*g.dot;
  REQUIRE(dot != nullptr);
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    INFO(wt.name << " n " << g.n << " seed " << seed);
    const auto w = quantize(wt, portable_row(seed, g.n, false));
    const auto a = from_float(at, portable_row(seed + 100, g.n, false));
    CHECK(tern::fp32_to_bits(dot(g.n, w.data(), a.data())) == g.bits[seed - 1]);
  }
}

// Which of those kernels llama.cpp's CPU backend runs: repacking depends on the matrix's row count,
// sgemm on the batch size, k and the row count (see select_matmul_dot).
TEST_CASE("select_matmul_dot follows llama.cpp's choice of kernel", "[quant][dot]") {
  const TypeTraits& f32 = tern::type_traits(TensorType::F32);
  const TypeTraits& f16 = tern::type_traits(TensorType::F16);
  const TypeTraits& bf16 = tern::type_traits(TensorType::BF16);
  const TypeTraits& q4 = tern::type_traits(TensorType::Q4_0);
  const TypeTraits& q8 = tern::type_traits(TensorType::Q8_0);
  // Q4_0: rows divisible by 8 are repacked, whatever the batch; otherwise vec_dot (tinyBLAS's
  // Q4_0 kernel rounds like vec_dot, so there is no separate sgemm dot).
  CHECK(tern::select_matmul_dot(q4, 64, 64, 1) == q4.vec_dot_repacked);
  CHECK(tern::select_matmul_dot(q4, 512, 256, 7) == q4.vec_dot_repacked);
  CHECK(tern::select_matmul_dot(q4, 172, 64, 1) == q4.vec_dot);
  CHECK(tern::select_matmul_dot(q4, 172, 64, 5) == q4.vec_dot);
  CHECK(tern::select_matmul_dot(q8, 64, 64, 5) == q8.vec_dot);
  // Float types: sgemm for batches of two or more when k and the row count fit tinyBLAS.
  CHECK(tern::select_matmul_dot(f32, 64, 64, 1) == f32.vec_dot);
  CHECK(tern::select_matmul_dot(f32, 64, 64, 2) == f32.vec_dot_sgemm);
  CHECK(tern::select_matmul_dot(f32, 172, 64, 2) == f32.vec_dot_sgemm);
  CHECK(tern::select_matmul_dot(f32, 64, 172, 2) == f32.vec_dot);  // k % 16 != 0
  CHECK(tern::select_matmul_dot(f16, 66, 64, 2) == f16.vec_dot);   // rows % 4 != 0
  CHECK(tern::select_matmul_dot(f16, 32, 48, 3) == f16.vec_dot_sgemm);
  CHECK(tern::select_matmul_dot(bf16, 32, 48, 3) == bf16.vec_dot);  // BF16 steps 32 elements
  CHECK(tern::select_matmul_dot(bf16, 32, 64, 3) == bf16.vec_dot_sgemm);
}

// ------------------------------------------------------------------------------------------------
// 4. The two Q8_0 quantizers.

// llama.cpp quantizes Q8_0 weights with quantize_row_q8_0_ref (multiply by 1/d, round half away
// from zero) but activations on x86 with the AVX2 quantize_row_q8_0 (multiply by 127/amax, round
// half to even). With amax = 127 both multipliers are exactly 1, so x = 2.5 is an exact tie: the
// weight quantizer stores 3 and the activation quantizer 2. Using one for the other would move
// activations off llama.cpp's by one code on such ties.
TEST_CASE("Q8_0 weight and activation quantizers differ on an exact tie", "[quant][q8_0]") {
  const TypeTraits& t = tern::type_traits(TensorType::Q8_0);
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 3.5f;  // a tie on which both agree (4 is even and away from zero)
  x[4] = 100.4f;
  const auto weights = quantize(t, x);
  const auto activations = from_float(t, x);
  const auto* wb = reinterpret_cast<const tern::BlockQ8_0*>(weights.data());
  const auto* ab = reinterpret_cast<const tern::BlockQ8_0*>(activations.data());
  CHECK(wb->d == ab->d);
  CHECK(tern::fp16_to_fp32(wb->d) == 1.0f);
  CHECK(int{wb->qs[0]} == 127);
  CHECK(int{ab->qs[0]} == 127);
  CHECK(int{wb->qs[1]} == 3);
  CHECK(int{ab->qs[1]} == 2);
  CHECK(int{wb->qs[2]} == -3);
  CHECK(int{ab->qs[2]} == -2);
  CHECK(int{wb->qs[3]} == 4);
  CHECK(int{ab->qs[3]} == 4);
  CHECK(int{wb->qs[4]} == 100);
  CHECK(int{ab->qs[4]} == 100);
}

// ------------------------------------------------------------------------------------------------
// 5. Adversarial blocks.

TEST_CASE("all-zero rows quantize to zero scales and decode to zeros", "[quant][adversarial]") {
  for (const TypeTraits& t : tern::all_type_traits()) {
    if (!t.is_quantized) continue;
    INFO(t.name);
    const int64_t n = 2 * t.block_elems;
    const std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
    const TypeTraits& at = tern::type_traits(t.vec_dot_type);
    const auto a = from_float(at, zeros);
    for (const auto fn : {t.quantize_row, t.from_float}) {
      if (fn == nullptr) continue;
      std::vector<std::byte> q(tern::row_bytes(t, n), std::byte{0xa5});
      fn(zeros.data(), q.data(), n);
      CHECK(dequantize(t, q, n) == zeros);
      if (t.vec_dot != nullptr) CHECK(t.vec_dot(n, q.data(), a.data()) == 0.0f);
    }
  }
  // The exact bytes: Q4_0's scale is max / -8 = -0.0 (f16 0x8000, as llama.cpp writes it) and
  // every nibble is 8; Q8_K is all zero bytes, bsums included.
  const std::vector<float> zeros(256, 0.0f);
  const auto q4 = quantize(tern::type_traits(TensorType::Q4_0), zeros);
  for (size_t i = 0; i < q4.size(); ++i) {
    INFO("byte " << i);
    const std::byte expected = i % 18 == 0   ? std::byte{0x00}
                               : i % 18 == 1 ? std::byte{0x80}
                                             : std::byte{0x88};
    CHECK(q4[i] == expected);
  }
  const auto q8k = from_float(tern::type_traits(TensorType::Q8_K), zeros);
  CHECK(std::all_of(q8k.begin(), q8k.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_CASE("values at plus and minus amax hit the extreme codes", "[quant][adversarial]") {
  std::vector<float> x(256, 0.0f);
  for (size_t j = 0; j < x.size(); ++j) x[j] = (j % 3 == 0) ? 3.0f : (j % 3 == 1 ? -3.0f : 1.0f);
  x[0] =
      -3.0f;  // the first element of largest magnitude is negative: Q4_0 and Q8_K key on its sign

  const auto q8 = quantize(tern::type_traits(TensorType::Q8_0), x);
  const auto* b8 = reinterpret_cast<const tern::BlockQ8_0*>(q8.data());
  CHECK(int{b8->qs[0]} == -127);
  CHECK(int{b8->qs[3]} == 127);
  CHECK(int{b8->qs[1]} == -127);

  // Q4_0: max = -3 gives d = 3/8 > 0; -3 -> code 0, +3 -> 16 clipped to 15, i.e. +7d = 2.625.
  const TypeTraits& q4t = tern::type_traits(TensorType::Q4_0);
  const auto q4 = dequantize(q4t, quantize(q4t, x), 256);
  CHECK(q4[0] == -3.0f);
  CHECK(q4[3] == 2.625f);
  CHECK(q4[2] == 1.125f);  // 1/d = 2.67 -> code 8 + 2.67 + .5 truncated = 11 -> 3d

  // Q8_K: the signed extreme maps to exactly -127 and d carries the sign, so with a negative
  // extreme the codes keep the inputs' signs and with a positive one they are flipped.
  const TypeTraits& q8kt = tern::type_traits(TensorType::Q8_K);
  const auto q8k = from_float(q8kt, x);
  const auto* bk = reinterpret_cast<const tern::BlockQ8_K*>(q8k.data());
  CHECK(int{bk->qs[0]} == -127);
  CHECK(int{bk->qs[1]} == -127);
  CHECK(int{bk->qs[3]} == 127);
  CHECK(bk->d == 1.0f / (-127.0f / -3.0f));
  std::vector<float> neg(x.size());
  std::transform(x.begin(), x.end(), neg.begin(), [](float v) { return -v; });
  const auto q8k_neg = from_float(q8kt, neg);
  const auto* bn = reinterpret_cast<const tern::BlockQ8_K*>(q8k_neg.data());
  CHECK(int{bn->qs[0]} == -127);
  CHECK(int{bn->qs[3]} == 127);
  CHECK(bn->d < 0.0f);
  CHECK(dequantize(q8kt, q8k_neg, 256)[0] == Approx(3.0f));

  // Ternary: +-amax are +-1 and decode exactly (3 is an f16 value).
  for (TensorType type : {TensorType::TQ1_0, TensorType::TQ2_0}) {
    const TypeTraits& t = tern::type_traits(type);
    const auto y = dequantize(t, quantize(t, x), 256);
    CHECK(y[0] == -3.0f);
    CHECK(y[3] == 3.0f);
    CHECK(y[2] == 0.0f);  // 1/3 of amax rounds to 0
  }
}

TEST_CASE("ternary rows of all -1, all 0 and all +1", "[quant][adversarial]") {
  struct Expected {
    float value;
    uint8_t tq2_byte;
    uint8_t tq1_qs;
    uint8_t tq1_qh;
  };
  // TQ1_0 bytes: 5 trits of code c pack to ceil(121 c * 256 / 243); qh has 4 trits then a 0.
  const Expected e = GENERATE(Expected{-1.0f, 0x00, 0, 0}, Expected{0.0f, 0x55, 128, 127},
                              Expected{1.0f, 0xaa, 255, 253});
  INFO("value " << e.value);
  std::vector<float> x(512, e.value * 0.75f);
  if (e.value == 0.0f) x.assign(512, 0.0f);
  const auto tq2 = quantize(tern::type_traits(TensorType::TQ2_0), x);
  const auto tq1 = quantize(tern::type_traits(TensorType::TQ1_0), x);
  for (int b = 0; b < 2; ++b) {
    const auto* b2 = reinterpret_cast<const tern::BlockTQ2_0*>(tq2.data() + b * 66);
    const auto* b1 = reinterpret_cast<const tern::BlockTQ1_0*>(tq1.data() + b * 54);
    CHECK(std::all_of(std::begin(b2->qs), std::end(b2->qs),
                      [&](uint8_t v) { return v == e.tq2_byte; }));
    CHECK(std::all_of(std::begin(b1->qs), std::end(b1->qs),
                      [&](uint8_t v) { return v == e.tq1_qs; }));
    CHECK(std::all_of(std::begin(b1->qh), std::end(b1->qh),
                      [&](uint8_t v) { return v == e.tq1_qh; }));
  }
  CHECK(dequantize(tern::type_traits(TensorType::TQ2_0), tq2, 512) == x);
  CHECK(dequantize(tern::type_traits(TensorType::TQ1_0), tq1, 512) == x);

  // Against activations at the int8 extremes the dot is an exact integer multiple of the scales.
  std::vector<tern::BlockQ8_K> a(2);
  for (auto& blk : a) {
    blk.d = 0.5f;
    for (int j = 0; j < 256; ++j) blk.qs[j] = static_cast<int8_t>(j % 2 ? 127 : -127);
    for (int g = 0; g < 16; ++g) blk.bsums[g] = 0;
  }
  for (auto& blk : a) blk.qs[0] = -128, blk.bsums[0] = -1;
  const float expected =
      e.value * static_cast<float>(2 * -1) * 0.75f * 0.5f;  // only qs[0] is unbalanced
  CHECK(tern::type_traits(TensorType::TQ2_0).vec_dot(512, tq2.data(), a.data()) == expected);
  CHECK(tern::type_traits(TensorType::TQ1_0).vec_dot(512, tq1.data(), a.data()) == expected);
}

TEST_CASE("subnormal inputs quantize without producing NaN or inf", "[quant][adversarial]") {
  std::vector<float> x(256);
  for (size_t j = 0; j < x.size(); ++j)
    x[j] = static_cast<float>(static_cast<int>(j) - 128) * 0x1p-140f;
  for (const TypeTraits& t : tern::all_type_traits()) {
    for (const auto fn : {t.quantize_row, t.from_float}) {
      if (fn == nullptr) continue;
      INFO(t.name);
      std::vector<std::byte> q(tern::row_bytes(t, 256));
      fn(x.data(), q.data(), 256);
      const auto y = dequantize(t, q, 256);
      for (size_t j = 0; j < y.size(); ++j) REQUIRE(std::fabs(y[j] - x[j]) <= 0x1p-132f);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// 6. The traits table.

TEST_CASE("the traits table matches llama.cpp's ids, sizes and pairings", "[quant][traits]") {
  struct Row {
    TensorType type;
    uint32_t id;
    const char* name;
    int64_t block_elems;
    size_t block_bytes;
    TensorType vec_dot_type;
  };
  const std::array<Row, 16> rows = {{
      {TensorType::F32, 0, "f32", 1, 4, TensorType::F32},
      {TensorType::F16, 1, "f16", 1, 2, TensorType::F16},
      {TensorType::Q4_0, 2, "q4_0", 32, 18, TensorType::Q8_0},
      {TensorType::Q5_0, 6, "q5_0", 32, 22, TensorType::Q8_0},
      {TensorType::Q5_1, 7, "q5_1", 32, 24, TensorType::Q8_1},
      {TensorType::Q8_0, 8, "q8_0", 32, 34, TensorType::Q8_0},
      {TensorType::Q8_1, 9, "q8_1", 32, 36, TensorType::Q8_1},
      {TensorType::Q4_K, 12, "q4_K", 256, 144, TensorType::Q8_K},
      {TensorType::Q5_K, 13, "q5_K", 256, 176, TensorType::Q8_K},
      {TensorType::Q6_K, 14, "q6_K", 256, 210, TensorType::Q8_K},
      {TensorType::Q8_K, 15, "q8_K", 256, 292, TensorType::Q8_K},
      {TensorType::BF16, 30, "bf16", 1, 2, TensorType::BF16},
      {TensorType::TQ1_0, 34, "tq1_0", 256, 54, TensorType::Q8_K},
      {TensorType::TQ2_0, 35, "tq2_0", 256, 66, TensorType::Q8_K},
      {TensorType::MXFP4, 39, "mxfp4", 32, 17, TensorType::Q8_0},
      {TensorType::BFP8, 200, "bfp8", 32, 33, TensorType::BFP8},
  }};
  REQUIRE(tern::all_type_traits().size() == rows.size());
  for (const Row& r : rows) {
    INFO(r.name);
    const TypeTraits* t = tern::find_type_traits(r.id);
    REQUIRE(t != nullptr);
    CHECK(t == &tern::type_traits(r.type));
    CHECK(t->type == r.type);
    CHECK(t->name == r.name);
    CHECK(t->block_elems == r.block_elems);
    CHECK(t->block_bytes == r.block_bytes);
    CHECK(t->vec_dot_type == r.vec_dot_type);
    CHECK(t->is_quantized == (r.block_elems > 1));
    CHECK(t->dequantize_row != nullptr);
    CHECK(t->from_float != nullptr);
    // The activation-only formats.
    const bool activation_only = r.type == TensorType::Q8_K || r.type == TensorType::Q8_1;
    CHECK((t->quantize_row == nullptr) == activation_only);
    CHECK((t->vec_dot == nullptr) == activation_only);
    CHECK(tern::parse_type_name(r.name) == r.type);
    CHECK(tern::row_bytes(*t, 4 * r.block_elems) == 4 * r.block_bytes);
  }
}

TEST_CASE("unknown type ids and names are rejected", "[quant][traits]") {
  for (uint32_t id : {3u, 10u, 11u, 16u, 29u, 31u, 33u, 36u, 37u, 1000u, 0xffffffffu}) {
    INFO(id);
    CHECK(tern::find_type_traits(id) == nullptr);
  }
  CHECK(tern::parse_type_name("Q4_0") == TensorType::Q4_0);
  CHECK(tern::parse_type_name("TQ2_0") == TensorType::TQ2_0);
  CHECK(tern::parse_type_name("Q8_K") == TensorType::Q8_K);
  CHECK(tern::parse_type_name("q8_k") == TensorType::Q8_K);
  CHECK(tern::parse_type_name("BF16") == TensorType::BF16);
  for (const char* name : {"", "q4_1", "q4", "f32 ", " f32", "tq3_0", "i2_s"}) {
    INFO(name);
    CHECK_FALSE(tern::parse_type_name(name).has_value());
  }
  CHECK_FALSE(tern::parse_type_name(std::string_view("q4_0\0", 5)).has_value());
}

}  // namespace
