// Tests of the formats in quant/kquants.h and quant/q5.h: Q4_K, Q5_K, Q6_K, MXFP4, Q5_0 and Q5_1
// bit for bit against ggml
// (recorded hashes and result bits), BFP8's rounding rules, I2_S's two layouts and its conversion
// to TQ2_0, error bounds of every round trip, and adversarial blocks.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/gguf.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/fp16.h"
#include "quant/kquants.h"
#include "quant/q5.h"

namespace {

namespace q = tern::quant;

using QuantizeFn = void (*)(const float*, void*, int64_t);
using DequantizeFn = void (*)(const void*, float*, int64_t);
using DotFn = float (*)(int64_t, const void*, const void*);

constexpr double kUnitRoundoff = 0x1p-24;  // f32

double gamma(int64_t k) {
  const double ku = static_cast<double>(k) * kUnitRoundoff;
  return ku / (1.0 - ku);
}

// One format under test, as its traits row will describe it.
struct Format {
  const char* name;
  int64_t block_elems;
  size_t block_bytes;
  QuantizeFn quantize;
  DequantizeFn dequantize;
  DotFn dot;
};

Format format(const char* name, int64_t elems, size_t bytes, QuantizeFn quantize_fn,
              DequantizeFn dequantize_fn, DotFn dot_fn) {
  return Format{name, elems, bytes, quantize_fn, dequantize_fn, dot_fn};
}

const Format kQ4K = format("q4_K", tern::kQkK, sizeof(tern::BlockQ4_K), q::quantize_row_q4_K,
                           q::dequantize_row_q4_K, q::vec_dot_q4_K_q8_K);
const Format kQ5K = format("q5_K", tern::kQkK, sizeof(tern::BlockQ5_K), q::quantize_row_q5_K,
                           q::dequantize_row_q5_K, q::vec_dot_q5_K_q8_K);
const Format kQ6K = format("q6_K", tern::kQkK, sizeof(tern::BlockQ6_K), q::quantize_row_q6_K,
                           q::dequantize_row_q6_K, q::vec_dot_q6_K_q8_K);
const Format kMxfp4 = format("mxfp4", tern::kQkMxfp4, sizeof(tern::BlockMxfp4),
                             q::quantize_row_mxfp4, q::dequantize_row_mxfp4, q::vec_dot_mxfp4_q8_0);
const Format kQ5_0 = format("q5_0", tern::kQk5_0, sizeof(tern::BlockQ5_0), q::quantize_row_q5_0,
                            q::dequantize_row_q5_0, q::vec_dot_q5_0_q8_0);
const Format kQ5_1 = format("q5_1", tern::kQk5_1, sizeof(tern::BlockQ5_1), q::quantize_row_q5_1,
                            q::dequantize_row_q5_1, q::vec_dot_q5_1_q8_1);
const Format kBfp8 = format("bfp8", tern::kQkBfp8, sizeof(tern::BlockBfp8), q::quantize_row_bfp8,
                            q::dequantize_row_bfp8, q::vec_dot_bfp8_bfp8);

std::vector<std::byte> quantize(const Format& f, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<std::byte> out(static_cast<size_t>(n / f.block_elems) * f.block_bytes);
  f.quantize(x.data(), out.data(), n);
  return out;
}

std::vector<float> dequantize(const Format& f, const std::vector<std::byte>& data, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  f.dequantize(data.data(), out.data(), n);
  return out;
}

// Activations in each format's vec_dot_type, through the converter llama.cpp's x86 CPU path uses.
std::vector<std::byte> activations_for(const Format& f, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  if (f.block_elems == tern::kQkK) {
    std::vector<std::byte> out(static_cast<size_t>(n / tern::kQkK) * sizeof(tern::BlockQ8_K));
    q::quantize_row_q8_K(x.data(), out.data(), n);
    return out;
  }
  if (f.dot == q::vec_dot_mxfp4_q8_0 || f.dot == q::vec_dot_q5_0_q8_0) {
    std::vector<std::byte> out(static_cast<size_t>(n / 32) * sizeof(tern::BlockQ8_0));
    q::quantize_row_q8_0_activation(x.data(), out.data(), n);
    return out;
  }
  if (f.dot == q::vec_dot_q5_1_q8_1) {
    std::vector<std::byte> out(static_cast<size_t>(n / 32) * sizeof(tern::BlockQ8_1));
    q::quantize_row_q8_1(x.data(), out.data(), n);
    return out;
  }
  return quantize(kBfp8, x);
}

std::vector<float> dequantize_activations(const Format& f, const std::vector<std::byte>& a,
                                          int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  if (f.block_elems == tern::kQkK) {
    q::dequantize_row_q8_K(a.data(), out.data(), n);
  } else if (f.dot == q::vec_dot_mxfp4_q8_0 || f.dot == q::vec_dot_q5_0_q8_0) {
    q::dequantize_row_q8_0(a.data(), out.data(), n);
  } else if (f.dot == q::vec_dot_q5_1_q8_1) {
    q::dequantize_row_q8_1(a.data(), out.data(), n);
  } else {
    q::dequantize_row_bfp8(a.data(), out.data(), n);
  }
  return out;
}

uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

// Inputs any C++ implementation reproduces exactly (only integer arithmetic, int -> float
// conversions of at most 24 bits and power-of-two scalings). The recording harness that linked
// ggml used an identical copy, so the golden values below belong to these inputs.
struct Lcg {
  uint64_t s;
  explicit Lcg(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint32_t next24() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 40);
  }
  float uniform() {  // [-1, 1)
    return static_cast<float>(static_cast<int32_t>(next24()) - (1 << 23)) * 0x1p-23f;
  }
};

constexpr int kInputKinds = 10;

// Kinds: 0 uniform; 1 per-32 power-of-two magnitudes 2^-6..2^6; 2 all positive; 3 sparse with
// all-zero groups; 4 mixed exponents with outliers; 5 tiny (2^-60, below GROUP_MAX_EPS, and 2^-48);
// 6 ternary times 0.375; 7 subnormal; 8 large (2^20); 9 all negative.
std::vector<float> test_input(int kind, uint64_t seed, int64_t n) {
  Lcg r(seed * 16 + static_cast<uint64_t>(kind));
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float v = 0.0f;
    switch (kind) {
      case 0:
        v = r.uniform();
        break;
      case 1:
        v = std::ldexp(r.uniform(), static_cast<int>((i / 32) % 13) - 6);
        break;
      case 2:
        v = static_cast<float>((r.next24() >> 1) + (1u << 23)) * 0x1p-24f;
        break;
      case 3: {
        const uint32_t u = r.next24();
        const float w = r.uniform();
        v = ((i / 32) % 3 == 0 || (u & 3) != 0) ? 0.0f : w;
        break;
      }
      case 4: {
        const int e = static_cast<int>(r.next24() % 9) - 4;
        v = std::ldexp(r.uniform(), e);
        if (i % 97 == 13) v = std::ldexp(v, 8);
        break;
      }
      case 5:
        v = std::ldexp(r.uniform(), (i / 256) % 2 == 0 ? -60 : -48);
        break;
      case 6:
        v = static_cast<float>(static_cast<int>(r.next24() % 3) - 1) * 0.375f;
        break;
      case 7:
        v = std::ldexp(r.uniform(), -130);
        break;
      case 8:
        v = std::ldexp(r.uniform(), 20);
        break;
      default:
        v = -(static_cast<float>((r.next24() >> 1) + (1u << 23)) * 0x1p-24f);
        break;
    }
    x[static_cast<size_t>(i)] = v;
  }
  return x;
}

// The activation input paired with weight kind k in the recorded dots (subnormal activations are
// replaced by uniform ones, which would otherwise make the dot 0).
int activation_kind(int k) {
  const int a = (k + 4) % kInputKinds;
  return a == 7 ? 0 : a;
}

std::vector<float> normal_row(std::mt19937& rng, int64_t n, float mean, float sigma) {
  std::normal_distribution<float> dist(mean, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

std::string model_path(const std::string& file) {
  return std::string(TERN_SHARED_DIR) + "/models/" + file;
}

// ------------------------------------------------------------------------------------------------
// 1. K-quants: bit identity with llama.cpp c392e50.

struct KGolden {
  const Format* format;
  uint64_t file_hash;  // tiny-ternary-random quantized by llama-quantize --pure
  std::array<uint64_t, kInputKinds> quant_hash;
  std::array<uint64_t, kInputKinds> dequant_hash;
  std::array<uint32_t, kInputKinds> dot_bits;
  std::array<uint32_t, 4> raw_dot_bits;
};

// Recorded with llama.cpp c392e50 on x86 (GCC 12, -march=native on Zen 4: the AVX2 kernels,
// whose scalar multiply-adds GCC contracts to FMA): ggml_quantize_chunk (= quantize_row_*_ref,
// no imatrix), to_float, and the CPU vec_dot on Q8_K activations from the CPU from_float.
const KGolden& k_golden(const Format& f) {
  static const KGolden kQ4{
      &kQ4K,
      0x112b9a7b2510f649ull,
      {0xdae1c207d980412bull, 0x32ec218fe9cf6437ull, 0x1913e2bb5d0e40f6ull, 0xdd027d5349802b91ull,
       0xee6a18259e1b6dcfull, 0xf9684ef1926869a3ull, 0xd95b18c39ef59600ull, 0xd3f7ec18a0f85725ull,
       0x1d293746a65991a7ull, 0xfa167ef566733454ull},
      {0x098e98378be4d8e2ull, 0xb066ffc1f35e01d9ull, 0xeb935b0f28044dbcull, 0x4039b778be09c675ull,
       0x0046bdb3ba80e9f0ull, 0x9c1bda7f8c872325ull, 0xe888704334387b70ull, 0x9c1bda7f8c872325ull,
       0xcf338600dff46168ull, 0x720087510d570155ull},
      {0x43d90690, 0x2a896ae0, 0xc15f4c99, 0x3f732580, 0x4e9ab7a0, 0x00000000, 0x4190fa0c,
       0x00000000, 0x4c05adc0, 0x418825c3},
      {0xc7d58a96, 0xc8cb19d8, 0xc8fd3829, 0x47a7ceda}};
  static const KGolden kQ5{
      &kQ5K,
      0xb879f5c827a37b86ull,
      {0x1c3b52492a8fcfd7ull, 0x08e27c6ff9aa03eeull, 0xbf415873c0937228ull, 0x6b1d8ff0c3fee742ull,
       0x22c72adb526ae04dull, 0x3c8450bd28f3c3a8ull, 0x3c9d3eebe97bfad6ull, 0xeb0862b6b37b7f25ull,
       0x387837e95101caa1ull, 0xfdc09e41f603b504ull},
      {0xe9d3b9defbbbc83bull, 0x7b53f9e3c252ca8dull, 0x8036153029e1ff85ull, 0xb7f30389bd1ac480ull,
       0x661c0a541f2e601cull, 0x9c1bda7f8c872325ull, 0xb87526a763d76439ull, 0x9c1bda7f8c872325ull,
       0xa6ab982a06f447ecull, 0x32edfcb457513cfaull},
      {0x441378d0, 0x2aa4422a, 0xc16c6e32, 0x3f9ec3c0, 0x4e9ef0f0, 0x00000000, 0x4190f941,
       0x00000000, 0x4c04a800, 0x4186a3d3},
      {0xc99ea5fc, 0x490db37d, 0xca204694, 0xc8a709fb}};
  static const KGolden kQ6{
      &kQ6K,
      0x70bc5ee8d53b3c06ull,
      {0x1510f07c1e5935f8ull, 0xaff646734a094bf5ull, 0x8efc97f10532efacull, 0x9d1cd16743557f14ull,
       0xef8940c1bc8880d8ull, 0xe2c4d99a7fe979a5ull, 0x44e68bb51bd4d7cdull, 0xe2c4d99a7fe979a5ull,
       0xa6ab79746ac09843ull, 0x356dc97db1c722d7ull},
      {0xd97681469cd8f85aull, 0x4c4ad6e725c9b8cfull, 0x9fd6bc97d84d1a49ull, 0x8142b6b5cafc4debull,
       0xcaa96dd36f0b34bcull, 0x24e981c98c872325ull, 0x89fe7a0bec9af20dull, 0x24e981c98c872325ull,
       0xa9adaef13afae86aull, 0x391e5de2c1b8df9eull},
      {0x43febda4, 0x2a9e7852, 0xc16861a2, 0x3f948100, 0x4e931696, 0x00000000, 0x4190bb76,
       0x00000000, 0x4c0a8ec0, 0x4187ff35},
      {0x49b7ecae, 0xc7b93d18, 0x47c5976c, 0xc8bce3ce}};
  if (&f == &kQ4K) return kQ4;
  if (&f == &kQ5K) return kQ5;
  return kQ6;
}

const Format* kquant_format(int i) {
  const Format* formats[] = {&kQ4K, &kQ5K, &kQ6K};
  return formats[i];
}

TEST_CASE("K-quants reproduce llama-quantize's files byte for byte", "[quant_new][kquant][files]") {
  const Format& f = *kquant_format(GENERATE(0, 1, 2));
  INFO(f.name);
  // llama-quantize --pure tiny-ternary-random-F32.gguf ... Q4_K (Q5_K, Q6_K) converts every 2-D
  // tensor; their bytes, concatenated in the F32 file's tensor order, hash to file_hash.
  const auto source = tern::GgufFile::open(model_path("tiny-ternary-random-F32.gguf"));
  uint64_t hash = 0xcbf29ce484222325ull;
  int tensors = 0;
  for (const tern::GgufTensor& t : source.tensors()) {
    if (t.n_dims != 2) continue;
    REQUIRE(t.ne[0] % tern::kQkK == 0);
    const int64_t n = t.n_elements();
    std::vector<std::byte> out(static_cast<size_t>(n / tern::kQkK) * f.block_bytes);
    f.quantize(reinterpret_cast<const float*>(t.data), out.data(), n);
    hash = fnv1a64(out.data(), out.size(), hash);
    ++tensors;
  }
  CHECK(tensors == 16);
  CHECK(hash == k_golden(f).file_hash);
}

// Arbitrary weight bytes (every 6-bit scale and min, Q6_K's negative scales) against activations
// using the whole int8 range, -128 included, with consistent bsums. This pins the integer core and
// the float association independently of what the quantizers produce.
TEST_CASE("K-quant dots on arbitrary blocks are bit-identical to llama.cpp",
          "[quant_new][kquant][golden]") {
  const Format& f = *kquant_format(GENERATE(0, 1, 2));
  const KGolden& g = k_golden(f);
  const int64_t n = 4096;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    INFO(f.name << " seed " << seed);
    Lcg r(1000 + seed);
    std::vector<uint8_t> w(static_cast<size_t>(n / tern::kQkK) * f.block_bytes);
    for (auto& b : w) b = static_cast<uint8_t>(r.next24() >> 8);
    // Keep the f16 scales finite and moderate: exponent field 12..19.
    const auto fix_half = [&](size_t offset) {
      w[offset + 1] = static_cast<uint8_t>((w[offset + 1] & 0x83) | (((r.next24() % 8) + 12) << 2));
    };
    for (size_t off = 0; off < w.size(); off += f.block_bytes) {
      if (&f == &kQ6K) {
        fix_half(off + offsetof(tern::BlockQ6_K, d));
      } else {
        fix_half(off);
        fix_half(off + 2);
      }
    }
    std::vector<tern::BlockQ8_K> a(static_cast<size_t>(n / tern::kQkK));
    for (auto& blk : a) {
      blk.d = static_cast<float>(static_cast<int>(r.next24() % 2000) - 1000) * 0x1p-14f;
      for (auto& v : blk.qs) v = static_cast<int8_t>(r.next24() >> 16);
      for (int grp = 0; grp < 16; ++grp) {
        int sum = 0;
        for (int j = 0; j < 16; ++j) sum += blk.qs[16 * grp + j];
        blk.bsums[grp] = static_cast<int16_t>(sum);
      }
    }
    CHECK(tern::fp32_to_bits(f.dot(n, w.data(), a.data())) ==
          g.raw_dot_bits[static_cast<size_t>(seed - 1)]);
  }
}

// Every code is the nearest one for the scales actually stored (llama.cpp requantizes against
// the rounded 6-bit / 8-bit scales), except in sub-blocks whose stored scale is 0, which keep the
// search's codes and decode to the constant -dmin * m (or 0).
TEST_CASE("K-quant codes are the nearest for the stored scales", "[quant_new][kquant][roundtrip]") {
  const Format& f = *kquant_format(GENERATE(0, 1, 2));
  INFO(f.name);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 60; ++trial) {
    const float sigma = std::ldexp(1.0f, trial % 21 - 10);
    auto x = normal_row(rng, 2 * tern::kQkK, trial % 3 == 0 ? sigma : 0.0f, sigma);
    if (trial % 5 == 0) x[static_cast<size_t>(trial * 7 % 512)] *= 50.0f;  // an outlier
    if (trial % 7 == 0) {
      for (size_t j = 0; j < 64; ++j) x[j] *= 1e-3f;  // quiet sub-blocks next to loud ones
    }
    const auto w = quantize(f, x);
    const auto y = dequantize(f, w, 2 * tern::kQkK);
    for (int64_t b = 0; b < 2; ++b) {
      const std::byte* blk = w.data() + b * static_cast<int64_t>(f.block_bytes);
      const int sub = &f == &kQ6K ? 16 : 32;
      const int nmax = &f == &kQ4K ? 15 : (&f == &kQ5K ? 31 : 63);
      for (int s = 0; s < tern::kQkK / sub; ++s) {
        float ds = 0.0f;
        float dm = 0.0f;
        if (&f == &kQ6K) {
          const auto* q6 = reinterpret_cast<const tern::BlockQ6_K*>(blk);
          ds = tern::fp16_to_fp32(q6->d) * static_cast<float>(q6->scales[s]);
          dm = 32.0f * ds;
        } else {
          const auto* k4 = reinterpret_cast<const tern::BlockQ4_K*>(blk);  // same head as Q5_K
          int32_t sc = 0;
          int32_t m = 0;
          q::detail::unpack_scale_min_k4(s, k4->scales, sc, m);
          ds = tern::fp16_to_fp32(k4->d) * static_cast<float>(sc);
          dm = tern::fp16_to_fp32(k4->dmin) * static_cast<float>(m);
        }
        if (ds == 0.0f) continue;
        for (int j = 0; j < sub; ++j) {
          const auto i = static_cast<size_t>(b * tern::kQkK + s * sub + j);
          double nearest = INFINITY;
          for (int c = 0; c <= nmax; ++c) {
            nearest = std::min(nearest, std::fabs(static_cast<double>(ds) * c - dm - x[i]));
          }
          const double err = std::fabs(static_cast<double>(x[i]) - y[i]);
          // Slack: the roundings of (x + dm) / d and of the decode, a few ulps of the grid.
          const double slack = 8.0 * kUnitRoundoff *
                               (std::fabs(static_cast<double>(ds)) * (nmax + 1) + std::fabs(dm));
          if (err > nearest + slack) {
            FAIL_CHECK("trial " << trial << " element " << i << ": x=" << x[i] << " got " << y[i]
                                << ", a stored code is " << nearest << " away");
            return;
          }
        }
      }
    }
  }
}

// A loose global bound on top of the nearest-code property: no element is off by more than one
// code step of its super-block's range, (max - min) / nmax for Q4_K/Q5_K (ranges include 0) and
// 2 amax / 32 for Q6_K, two steps there because the extreme opposite to the signed maximum clips
// at +31 and the 8-bit sub-scales round. (Measured worst over these inputs: 0.73, 0.88 and 0.67.)
TEST_CASE("K-quant round trips stay within one super-block step",
          "[quant_new][kquant][roundtrip]") {
  const Format& f = *kquant_format(GENERATE(0, 1, 2));
  INFO(f.name);
  std::mt19937 rng(42);
  for (int trial = 0; trial < 80; ++trial) {
    const int64_t n = tern::kQkK * (1 + trial % 3);
    const float sigma = std::ldexp(1.0f, trial % 21 - 10);
    auto x = normal_row(rng, n, trial % 3 == 0 ? sigma : 0.0f, sigma);
    if (trial % 5 == 0) x[static_cast<size_t>(trial % n)] *= 50.0f;
    const auto y = dequantize(f, quantize(f, x), n);
    for (int64_t b = 0; b < n / tern::kQkK; ++b) {
      double lo = 0.0;
      double hi = 0.0;
      for (int64_t j = b * tern::kQkK; j < (b + 1) * tern::kQkK; ++j) {
        lo = std::min(lo, static_cast<double>(x[static_cast<size_t>(j)]));
        hi = std::max(hi, static_cast<double>(x[static_cast<size_t>(j)]));
      }
      const double amax = std::max(hi, -lo);
      const double limit = &f == &kQ4K   ? (hi - lo) / 15.0
                           : &f == &kQ5K ? (hi - lo) / 31.0
                                         : 2.0 * amax / 32.0;
      for (int64_t j = b * tern::kQkK; j < (b + 1) * tern::kQkK; ++j) {
        const auto i = static_cast<size_t>(j);
        const double err = std::fabs(static_cast<double>(x[i]) - y[i]);
        if (err > limit) {
          FAIL_CHECK("trial " << trial << " element " << j << ": x=" << x[i] << " got " << y[i]
                              << " err " << err << " > " << limit);
          return;
        }
      }
    }
  }
}

// |computed - exact| <= gamma_k * magnitude, where the lanes carry d * sc * q * a and
// dmin * m * a separately, so the magnitude sums both parts' absolute values. k counts the f32
// roundings on the longest path: the scale product, one fma per super-block, the lane tree and
// the final additions, and the reference decode of the Q8_K activation.
TEST_CASE("K-quant dots match a double-precision dot of the decoded rows",
          "[quant_new][kquant][dot]") {
  const Format& f = *kquant_format(GENERATE(0, 1, 2));
  const int64_t n = GENERATE(int64_t{256}, int64_t{6912});
  INFO(f.name << ", n = " << n);
  std::mt19937 rng(static_cast<uint32_t>(n));
  for (int trial = 0; trial < 10; ++trial) {
    const auto x = normal_row(rng, n, 0.0f, std::ldexp(1.0f, trial % 9 - 4));
    const auto w = quantize(f, x);
    const auto a = activations_for(f, normal_row(rng, n, 0.0f, std::ldexp(1.0f, trial % 5 - 2)));
    const auto ad = dequantize_activations(f, a, n);
    const auto wd = dequantize(f, w, n);
    double exact = 0.0;
    double magnitude = 0.0;
    for (int64_t b = 0; b < n / tern::kQkK; ++b) {
      const std::byte* blk = w.data() + b * static_cast<int64_t>(f.block_bytes);
      for (int e = 0; e < tern::kQkK; ++e) {
        const auto i = static_cast<size_t>(b * tern::kQkK + e);
        exact += static_cast<double>(wd[i]) * ad[i];
        double part = std::fabs(static_cast<double>(wd[i]));
        if (&f != &kQ6K) {
          const auto* k4 = reinterpret_cast<const tern::BlockQ4_K*>(blk);
          int32_t sc = 0;
          int32_t m = 0;
          q::detail::unpack_scale_min_k4(e / 32, k4->scales, sc, m);
          const double dm = std::fabs(static_cast<double>(tern::fp16_to_fp32(k4->dmin))) * m;
          part += 2.0 * dm;  // |ds q - dm| <= |ds q| + dm, and dm itself rides in the min lanes
        }
        magnitude += part * std::fabs(static_cast<double>(ad[i]));
      }
    }
    const double computed = f.dot(n, w.data(), a.data());
    const double limit = gamma(n / tern::kQkK + 8) * magnitude;
    INFO("trial " << trial << ": computed " << computed << ", exact " << exact);
    REQUIRE(std::fabs(computed - exact) <= limit);
  }
}

// ------------------------------------------------------------------------------------------------
// Q5_0 and Q5_1 (llama-quantize's fallbacks for Q4_K and Q5_K rows that are not whole
// super-blocks): bit identity with llama.cpp c392e50.

struct Q5Golden {
  const Format* format;
  std::array<uint64_t, kInputKinds> quant_hash;
  std::array<uint64_t, kInputKinds> dequant_hash;
  std::array<uint64_t, kInputKinds> activation_hash;  // Q8_0 / Q8_1 from the x86 from_float
  std::array<uint32_t, kInputKinds> dot_bits;
  std::array<uint32_t, 4> raw_dot_bits;
};

// Recorded with llama.cpp c392e50 on x86 (GCC 12, -march=native on Zen 4): ggml_quantize_chunk
// (= quantize_row_q5_*_ref), to_float, the CPU from_float of the vec_dot_type and the CPU vec_dot
// (its AVX2 kernel), on the same test_input rows as the K-quant goldens. The NaN dots are inputs
// of 2^20 and outliers, whose f16 scales overflow: both give the x86 default NaN.
const Q5Golden& q5_golden(const Format& f) {
  static const Q5Golden kQ50{
      &kQ5_0,
      {0xa52dbc6bd7ccf668ull, 0x33f8b51cc8f167deull, 0x06be5de0b0fc0eb3ull, 0xfd4b9a58ea0541c0ull,
       0xe2a07b0d2b514c93ull, 0xf086a56d34c2e593ull, 0xe95eee8afb296abdull, 0x79f37773d3b37625ull,
       0x980ba4b6afd0a353ull, 0x54968e019cfc495cull},
      {0xf6378329ec782d3eull, 0x289ff283575fa918ull, 0x7ecc22df43f488f9ull, 0x7580fc1d1ade33a3ull,
       0xf49ada732cf5ba72ull, 0xf8face55610ab1a5ull, 0xc765f329430aab25ull, 0x0f2f0b5edc872325ull,
       0xfe55ede152804b51ull, 0x247449c1e65bed9dull},
      {0x30db6b60539a5f1cull, 0x1ceb8db5d4e8a0beull, 0x81f44a40181a272dull, 0x4cfb9365cb1d73d7ull,
       0x6251e6b641425078ull, 0xcccc774c1f90a903ull, 0x4cfb9365cb1d73d7ull, 0xe9af20b65992f9c3ull,
       0x4456202df5622f74ull, 0x8bc1528778852aceull},
      {0x4429dd1e, 0x00000000, 0xc15c6eed, 0x3f907b3c, 0x4e8f285b, 0x00000000, 0x418b5030,
       0x00000000, 0xffc00000, 0x418ab85a},
      {0x4a5ac3b4, 0xca7c8e3f, 0x4a808ff4, 0xc81e4560}};
  static const Q5Golden kQ51{
      &kQ5_1,
      {0xd378f99c7f9b2829ull, 0xcd77bc1a0a5e4106ull, 0x95cb5a954a88810dull, 0x11b56b8482d1302bull,
       0x41cf3beaba3b9e49ull, 0x6afcce0923157245ull, 0x39778ffa29f1cd26ull, 0xd9cff33e1bed1325ull,
       0xce22f63626475223ull, 0x9501d4be3ce3a905ull},
      {0x3bb2cb4b2d296456ull, 0xdb67e3bce2ab2b73ull, 0x970ed083b80000a6ull, 0x76428778ea231714ull,
       0x486bd75d29f6e89eull, 0x9c1bda7f8c872325ull, 0xdc9856f5ce27d391ull, 0x9c1bda7f8c872325ull,
       0x52fea04cce02a325ull, 0x5a93eb828032b78eull},
      {0x756e02d1dc464b1aull, 0x28d4d1b11dde2506ull, 0x0ac406c45b4a6c90ull, 0x1e9567fe3fb70474ull,
       0x29bc4b834c10246aull, 0x00f741449866ddd3ull, 0x1e9567fe3fb70474ull, 0xbd73f0a3011ad588ull,
       0xbcf322190b2cf065ull, 0xd303d9a35d8c41edull},
      {0x44060a48, 0x00000000, 0xc167b64d, 0x3f97b3e0, 0xffc00000, 0x00000000, 0x418f6b79,
       0x00000000, 0xffc00000, 0x418702a0},
      {0xcb110711, 0xcab68bae, 0xcb5bb26d, 0x4b2da243}};
  return &f == &kQ5_0 ? kQ50 : kQ51;
}

// Arbitrary weight bytes (every code, every high bit) and activation blocks with codes -127..127
// and arbitrary (moderate) scales and sums: pins the integer core and the float association apart
// from what the quantizers produce.
TEST_CASE("Q5_0 and Q5_1 dots on arbitrary blocks are bit-identical to llama.cpp",
          "[quant_new][q5][golden]") {
  const Format& f = GENERATE(0, 1) == 0 ? kQ5_0 : kQ5_1;
  const bool q51 = &f == &kQ5_1;
  const size_t act_block = q51 ? sizeof(tern::BlockQ8_1) : sizeof(tern::BlockQ8_0);
  const int64_t n = 4096;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    INFO(f.name << " seed " << seed);
    Lcg r(2000 + seed);
    std::vector<uint8_t> w(static_cast<size_t>(n / 32) * f.block_bytes);
    std::vector<uint8_t> a(static_cast<size_t>(n / 32) * act_block);
    for (auto& b : w) b = static_cast<uint8_t>(r.next24() >> 8);
    // Keep the f16 fields finite and moderate: exponent field 12..19.
    const auto fix_half = [&](uint8_t* p) {
      p[1] = static_cast<uint8_t>((p[1] & 0x83) | (((r.next24() % 8) + 12) << 2));
    };
    for (size_t off = 0; off < w.size(); off += f.block_bytes) {
      fix_half(&w[off]);
      if (q51) fix_half(&w[off + 2]);
    }
    for (auto& b : a) b = static_cast<uint8_t>(r.next24() >> 8);
    for (size_t off = 0; off < a.size(); off += act_block) {
      fix_half(&a[off]);
      if (q51) fix_half(&a[off + 2]);
      for (size_t j = off + (q51 ? 4 : 2); j < off + act_block; ++j) {
        if (a[j] == 0x80) a[j] = 0x81;  // -128 never comes out of from_float
      }
    }
    CHECK(tern::fp32_to_bits(f.dot(n, w.data(), a.data())) == q5_golden(f).raw_dot_bits[seed - 1]);
  }
}

TEST_CASE("Q5_0 and Q5_1 codes are the nearest for the stored scale, within one step",
          "[quant_new][q5][roundtrip]") {
  const Format& f = GENERATE(0, 1) == 0 ? kQ5_0 : kQ5_1;
  const int64_t n = 4096;
  for (int kind : {0, 1, 2, 4, 6, 9}) {
    INFO(f.name << " input kind " << kind);
    const auto x = test_input(kind, 5, n);
    const auto w = quantize(f, x);
    const auto y = dequantize(f, w, n);
    for (int64_t b = 0; b < n / 32; ++b) {
      uint16_t dh = 0;
      std::memcpy(&dh, w.data() + static_cast<size_t>(b) * f.block_bytes, sizeof dh);
      const double d = std::fabs(static_cast<double>(tern::fp16_to_fp32(dh)));
      double amax = 0.0;
      for (int64_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(double{x[b * 32 + j]}));
      for (int64_t j = 0; j < 32; ++j) {
        const auto i = static_cast<size_t>(b * 32 + j);
        // Q5_0's d = max / -16 cannot reach +16 d on the other side: up to one step there;
        // elsewhere half a step, plus the f16 rounding of the scale (and of Q5_1's minimum)
        // times the code.
        const double slack = 32.0 * 0x1p-11 * (d + amax / 16.0) + 1e-30;
        REQUIRE(std::fabs(double{y[i]} - x[i]) <= (&f == &kQ5_0 ? d : 0.5 * d) + slack);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// 2. MXFP4: bit identity with ggml-org/ggml d99724f (newer than c392e50, which lacks the type).

// MXFP4's recorded bits.
// Recorded from a build of ggml d99724f on this machine kind (x86, GCC 12, -march=native):
// ggml_quantize_chunk (quantize_row_mxfp4_ref), to_float, and the CPU vec_dot (its AVX2 path)
// on Q8_0 activations from the CPU from_float.
constexpr std::array<uint64_t, kInputKinds> kMxfp4Quant = {
    0x054ada0f2e5c1b4bull, 0x1fa33b1afccd94c0ull, 0xfe62005743d296b7ull, 0xabe36e42591025c7ull,
    0x200dca49d1defe7eull, 0x7e2415b2e6718272ull, 0xee269cbfc2ada3fbull, 0x9be22fc7f20d3f25ull,
    0xdda53c96c7cbd1f1ull, 0xbfb45c2f434c2a27ull};
constexpr std::array<uint64_t, kInputKinds> kMxfp4Dequant = {
    0x53f0f5cad1d6cb68ull, 0x9e21d36bc19c84c0ull, 0xe3a1f73aff85b3e5ull, 0xa80f076ed186f22bull,
    0xdc86a6dea6b30edbull, 0x0b163e23f5098e39ull, 0x33fcf5e4b6726c25ull, 0x9c1bda7f8c872325ull,
    0xbf5533ef14230470ull, 0xec8200dd70454825ull};
// n = 4096 (pairs of blocks only), 4128 (an odd last block) and 32 (a single block).
constexpr std::array<std::array<uint32_t, kInputKinds>, 3> kMxfp4Dot = {{
    {0x438d77e0, 0x00000000, 0xc13ffd00, 0x3ea43c80, 0x4e0f2fe2, 0x2947dc26, 0x41913d26, 0x00000000,
     0x4c039664, 0x4180edc8},
    {0x438fe4f1, 0x00000000, 0xc124fd6c, 0xbf6c9158, 0x4e12a3b3, 0x2947da59, 0x419dd819, 0x00000000,
     0x4bfe9eea, 0x4184d0a7},
    {0x4173e460, 0x00000000, 0xbffbfc10, 0x00000000, 0xcb867140, 0x22a47000, 0xbded1c80, 0x00000000,
     0xc997425c, 0x00000000},
}};

// One format's recorded bits on the test_input rows of every kind (n = 4096): row 1 quantized and
// dequantized, row 3's activations where recorded, and the dot of row 2's weights with row 3's
// activations at each recorded length.
struct RowGoldens {
  const Format& format;
  const std::array<uint64_t, kInputKinds>& quant_hash;
  const std::array<uint64_t, kInputKinds>& dequant_hash;
  const std::array<uint64_t, kInputKinds>* activation_hash;  // nullptr: not recorded
  std::vector<std::pair<int64_t, const std::array<uint32_t, kInputKinds>*>> dots;
};

std::vector<RowGoldens> row_goldens() {
  std::vector<RowGoldens> rows;
  for (int i = 0; i < 3; ++i) {
    const KGolden& g = k_golden(*kquant_format(i));
    rows.push_back({*g.format, g.quant_hash, g.dequant_hash, nullptr, {{4096, &g.dot_bits}}});
  }
  for (const Format* f : {&kQ5_0, &kQ5_1}) {
    const Q5Golden& g = q5_golden(*f);
    rows.push_back(
        {*g.format, g.quant_hash, g.dequant_hash, &g.activation_hash, {{4096, &g.dot_bits}}});
  }
  // n = 4096 (pairs of blocks only), 4128 (an odd last block) and 32 (a single block).
  rows.push_back({kMxfp4,
                  kMxfp4Quant,
                  kMxfp4Dequant,
                  nullptr,
                  {{4096, &kMxfp4Dot[0]}, {4128, &kMxfp4Dot[1]}, {32, &kMxfp4Dot[2]}}});
  return rows;
}

TEST_CASE("quantize, dequantize, activations and dot are bit-identical to llama.cpp and ggml",
          "[quant_new][kquant][q5][mxfp4][golden]") {
  const int64_t n = 4096;
  for (const RowGoldens& g : row_goldens()) {
    const Format& f = g.format;
    for (int kind = 0; kind < kInputKinds; ++kind) {
      INFO(f.name << " input kind " << kind);
      const auto k = static_cast<size_t>(kind);
      const auto w = quantize(f, test_input(kind, 1, n));
      CHECK(fnv1a64(w.data(), w.size()) == g.quant_hash[k]);
      const auto y = dequantize(f, w, n);
      CHECK(fnv1a64(y.data(), y.size() * sizeof(float)) == g.dequant_hash[k]);
      if (g.activation_hash != nullptr) {
        const auto a = activations_for(f, test_input(activation_kind(kind), 3, n));
        CHECK(fnv1a64(a.data(), a.size()) == (*g.activation_hash)[k]);
      }
      for (const auto& [len, bits] : g.dots) {
        INFO("n = " << len);
        const auto w2 = quantize(f, test_input(kind, 2, len));
        const auto a = activations_for(f, test_input(activation_kind(kind), 3, len));
        CHECK(tern::fp32_to_bits(f.dot(len, w2.data(), a.data())) == (*bits)[k]);
      }
    }
  }
}

std::string hex(const std::byte* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    const auto v = static_cast<unsigned>(p[i]);
    s += kDigits[v >> 4];
    s += kDigits[v & 15];
  }
  return s;
}

// Single blocks with the exact bytes ggml writes: element 0 = v0, element 5 = -0.75 rest, all
// others = rest.
TEST_CASE("MXFP4 edge blocks match ggml's bytes", "[quant_new][mxfp4][adversarial]") {
  struct Edge {
    const char* what;
    float v0;
    float rest;
    unsigned e;
    const char* qs;
  };
  const Edge edge = GENERATE(
      // log2f(amax) = -130 gives exponent -5, which ggml's float-to-uint8_t conversion wraps.
      Edge{"amax 2^-130", 0x1p-130f, 0x1p-131f, 251, "00000000000000000000000000000000"},
      Edge{"denormal min", 0x1p-149f, 0.0f, 232, "00000000000000000000000000000000"},
      Edge{"infinity", INFINITY, 1.0f, 0, "00000000000000000000000000000000"},
      // NaN never becomes amax and takes code 0; the rest is scaled by 1.
      Edge{"NaN", NAN, 1.0f, 125, "60666666666d66666666666666666666"},
      Edge{"FLT_MAX", 3.4028235e38f, -1e38f, 253, "a5aaaaaaaaa2aaaaaaaaaaaaaaaaaaaa"},
      Edge{"power of two", 8.0f, 3.0f, 128, "36333333333a33333333333333333333"},
      // log2f rounds up to 3 here: the exponent of 8, so 8 - ulp is stored as 8.
      Edge{"just below 8", std::nextafter(8.0f, 0.0f), 1.0f, 128,
           "16111111111911111111111111111111"},
      // 5 is halfway between 4 and 6: the lower code (smaller magnitude) wins.
      Edge{"tie", 6.0f, 5.0f, 127, "67666666666e66666666666666666666"},
      Edge{"negative", -6.0f, -2.5f, 127, "cfccccccccc4cccccccccccccccccccc"});
  INFO(edge.what);
  std::vector<float> x(32, edge.rest);
  x[0] = edge.v0;
  x[5] = -edge.rest * 0.75f;
  const auto w = quantize(kMxfp4, x);
  CHECK(static_cast<unsigned>(w[0]) == edge.e);
  CHECK(hex(w.data() + 1, 16) == edge.qs);
  for (float v : dequantize(kMxfp4, w, 32)) CHECK(std::isfinite(v));
}

// Nearest code: within half the gap between neighbouring values (gaps 1, 2, 4 in units of
// d = 2^(e-128) below 4, 8 and 12), or clipped to 12 d above that; zero when the exponent wrapped.
TEST_CASE("MXFP4 round trips stay within half a code gap", "[quant_new][mxfp4][roundtrip]") {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t n = 32 * (1 + trial % 5);
    auto x = normal_row(rng, n, 0.0f, std::ldexp(1.0f, trial % 41 - 20));
    if (trial % 4 == 0) x[static_cast<size_t>(trial % n)] *= 40.0f;
    const auto w = quantize(kMxfp4, x);
    const auto y = dequantize(kMxfp4, w, n);
    for (int64_t b = 0; b < n / 32; ++b) {
      const auto e = static_cast<int>(w[static_cast<size_t>(b) * sizeof(tern::BlockMxfp4)]);
      const double d = std::ldexp(1.0, e - 128);
      for (int64_t j = 32 * b; j < 32 * b + 32; ++j) {
        const auto i = static_cast<size_t>(j);
        const double ax = std::fabs(static_cast<double>(x[i])) / d;
        const double err = std::fabs(static_cast<double>(x[i]) - y[i]) / d;
        const double limit = ax > 12.0 ? ax - 12.0 : (ax > 8.0 ? 2.0 : (ax > 4.0 ? 1.0 : 0.5));
        if (err > limit) {
          FAIL_CHECK("trial " << trial << " element " << j << ": x=" << x[i] << " got " << y[i]);
          return;
        }
      }
    }
  }
}

TEST_CASE("MXFP4 dot is exact with power-of-two scales and matches double precision",
          "[quant_new][mxfp4][dot]") {
  std::mt19937 rng(21);
  std::uniform_int_distribution<int> code(0, 15);
  std::uniform_int_distribution<int> i8(-127, 127);
  static constexpr int kValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  const int64_t nb = 37;  // odd: the scalar tail runs too
  std::vector<tern::BlockMxfp4> w(static_cast<size_t>(nb));
  std::vector<tern::BlockQ8_0> a(static_cast<size_t>(nb));
  int64_t dot = 0;
  for (size_t b = 0; b < w.size(); ++b) {
    w[b].e = 126;  // d = 2^-2
    a[b].d = tern::fp32_to_fp16(0.5f);
    int codes[32];
    for (int j = 0; j < 32; ++j) {
      codes[j] = code(rng);
      a[b].qs[j] = static_cast<int8_t>(i8(rng));
      dot += int64_t{kValues[codes[j]]} * a[b].qs[j];
    }
    for (int j = 0; j < 16; ++j) w[b].qs[j] = static_cast<uint8_t>(codes[j] | (codes[j + 16] << 4));
  }
  CHECK(kMxfp4.dot(nb * 32, w.data(), a.data()) == static_cast<float>(dot) * 0.125f);

  for (int trial = 0; trial < 10; ++trial) {
    const int64_t n = 32 * (1 + 41 * trial);
    const auto x = normal_row(rng, n, 0.0f, 1.0f);
    const auto wq = quantize(kMxfp4, x);
    const auto aq = activations_for(kMxfp4, normal_row(rng, n, 0.0f, 2.0f));
    const auto wd = dequantize(kMxfp4, wq, n);
    const auto ad = dequantize_activations(kMxfp4, aq, n);
    double exact = 0.0;
    double magnitude = 0.0;
    for (size_t i = 0; i < wd.size(); ++i) {
      exact += static_cast<double>(wd[i]) * ad[i];
      magnitude += std::fabs(static_cast<double>(wd[i]) * ad[i]);
    }
    const double computed = kMxfp4.dot(n, wq.data(), aq.data());
    REQUIRE(std::fabs(computed - exact) <= gamma(n / 32 + 6) * magnitude);
  }
}

// ------------------------------------------------------------------------------------------------
// 3. BFP8: tern's own rules.

const tern::BlockBfp8& bfp8_block(const std::vector<std::byte>& data, size_t b = 0) {
  return reinterpret_cast<const tern::BlockBfp8*>(data.data())[b];
}

TEST_CASE("BFP8 picks the smallest exponent that fits and never saturates", "[quant_new][bfp8]") {
  std::mt19937 rng(13);
  for (int trial = 0; trial < 200; ++trial) {
    const auto x = normal_row(rng, 64, 0.0f, std::ldexp(1.0f, trial % 61 - 30));
    const auto w = quantize(kBfp8, x);
    for (size_t b = 0; b < 2; ++b) {
      const tern::BlockBfp8& blk = bfp8_block(w, b);
      int max_m = 0;
      float amax = 0.0f;
      for (size_t j = 0; j < 32; ++j) {
        max_m = std::max(max_m, std::abs(int{blk.m[j]}));
        amax = std::max(amax, std::fabs(x[32 * b + j]));
        // Round to nearest: the error is at most half a unit of 2^e.
        REQUIRE(std::fabs(static_cast<double>(x[32 * b + j]) - std::ldexp(blk.m[j], blk.e)) <=
                std::ldexp(0.5, blk.e));
      }
      REQUIRE(max_m <= 127);
      REQUIRE(max_m >= 64);  // so e - 1 would need 128 or more: e is the smallest that fits
      REQUIRE(std::nearbyint(std::ldexp(static_cast<double>(amax), 1 - blk.e)) > 127.0);
    }
  }
}

TEST_CASE("BFP8 stores powers of two and small integers exactly", "[quant_new][bfp8]") {
  for (int k = -120; k <= 120; k += 7) {
    std::vector<float> x(32, 0.0f);
    x[0] = std::ldexp(1.0f, k);
    x[1] = -std::ldexp(1.0f, k - 3);
    x[2] = std::ldexp(3.0f, k - 5);
    const auto w = quantize(kBfp8, x);
    CHECK(int{bfp8_block(w).e} == k - 6);  // 2^k = 64 * 2^(k-6); 128 * 2^(k-7) would saturate
    CHECK(int{bfp8_block(w).m[0]} == 64);
    CHECK(dequantize(kBfp8, w, 32) == x);
  }
  std::vector<float> ints(32);
  for (size_t j = 0; j < 32; ++j) ints[j] = static_cast<float>(static_cast<int>(j * 8) - 127);
  const auto w = quantize(kBfp8, ints);
  CHECK(int{bfp8_block(w).e} == 0);
  CHECK(dequantize(kBfp8, w, 32) == ints);
}

TEST_CASE("BFP8 rounds ties to even", "[quant_new][bfp8]") {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // fixes e = 0
  x[1] = 2.5f;
  x[2] = 3.5f;
  x[3] = -2.5f;
  x[4] = 126.5f;
  x[5] = -0.5f;
  x[6] = 0.5f;
  x[7] = 1.5f;
  const auto w = quantize(kBfp8, x);
  const tern::BlockBfp8& blk = bfp8_block(w);
  CHECK(int{blk.e} == 0);
  const std::array<int, 8> expected = {127, 2, 4, -2, 126, 0, 0, 2};
  for (size_t j = 0; j < expected.size(); ++j) CHECK(int{blk.m[j]} == expected[j]);

  // 127.5 would round to the even 128: it needs the next exponent, where it is 63.75 -> 64.
  x.assign(32, 0.0f);
  x[0] = 127.5f;
  x[1] = 5.0f;  // 2.5 at e = 1 -> 2 (even)
  x[2] = 7.0f;  // 3.5 -> 4
  const auto w2 = quantize(kBfp8, x);
  CHECK(int{bfp8_block(w2).e} == 1);
  CHECK(int{bfp8_block(w2).m[0]} == 64);
  CHECK(int{bfp8_block(w2).m[1]} == 2);
  CHECK(int{bfp8_block(w2).m[2]} == 4);
  // Just below 127.5 still fits at e = 0.
  x[0] = std::nextafter(127.5f, 0.0f);
  CHECK(int{bfp8_block(quantize(kBfp8, x)).e} == 0);
}

TEST_CASE("BFP8 zero blocks, denormals, outliers and non-finite values", "[quant_new][bfp8]") {
  const std::vector<float> zeros(64, 0.0f);
  const auto wz = quantize(kBfp8, zeros);
  CHECK(std::all_of(wz.begin(), wz.end(), [](std::byte b) { return b == std::byte{0}; }));

  // Denormal blocks: the exponent clamps at -128 and values below 2^-129 round to zero.
  std::vector<float> tiny(32);
  for (size_t j = 0; j < 32; ++j)
    tiny[j] = static_cast<float>(static_cast<int>(j) - 16) * 0x1p-140f;
  tiny[31] = 0x1p-122f;  // 64 * 2^-128: the largest amax for which the clamp is exact
  const auto wt = quantize(kBfp8, tiny);
  CHECK(int{bfp8_block(wt).e} == -128);
  CHECK(int{bfp8_block(wt).m[31]} == 64);
  const auto yt = dequantize(kBfp8, wt, 32);
  for (size_t j = 0; j < 32; ++j) CHECK(std::fabs(tiny[j] - yt[j]) <= 0x1p-129f);

  // One outlier sets the exponent; values under half its unit vanish.
  std::vector<float> outlier(32, 0.01f);
  outlier[17] = 1000.0f;
  const auto wo = quantize(kBfp8, outlier);
  CHECK(int{bfp8_block(wo).e} == 3);  // 1000 / 8 = 125
  const auto yo = dequantize(kBfp8, wo, 32);
  CHECK(yo[17] == 1000.0f);
  CHECK(yo[0] == 0.0f);

  // Near FLT_MAX, 64 * 2^122 would overflow: the mantissa is held to 63, the one saturation.
  std::vector<float> big(32, -3.4028235e38f);
  big[1] = 127.5f * 0x1p121f;  // the smallest amax that needs e = 122
  const auto wb = quantize(kBfp8, big);
  CHECK(int{bfp8_block(wb).e} == 122);
  CHECK(int{bfp8_block(wb).m[0]} == -63);
  CHECK(int{bfp8_block(wb).m[1]} == 63);  // 63.75 -> 64, held to 63
  for (float v : dequantize(kBfp8, wb, 32)) CHECK(std::isfinite(v));

  std::vector<float> odd(32, 1.0f);
  odd[0] = NAN;
  odd[1] = INFINITY;
  odd[2] = -INFINITY;
  const auto wn = quantize(kBfp8, odd);
  CHECK(int{bfp8_block(wn).e} == 127);
  CHECK(int{bfp8_block(wn).m[0]} == 0);
  CHECK(int{bfp8_block(wn).m[1]} == 127);
  CHECK(int{bfp8_block(wn).m[2]} == -127);
  CHECK(int{bfp8_block(wn).m[3]} == 0);
  const auto yn = dequantize(kBfp8, wn, 32);
  CHECK(yn[1] == INFINITY);
  CHECK(yn[2] == -INFINITY);
  CHECK(yn[0] == 0.0f);
}

TEST_CASE("BFP8 dot: exact integers per block, one scaling, eight lanes",
          "[quant_new][bfp8][dot]") {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> i8(-127, 127);
  std::uniform_int_distribution<int> ex(-20, 20);
  for (int64_t nb : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{131}}) {
    INFO("blocks " << nb);
    std::vector<tern::BlockBfp8> w(static_cast<size_t>(nb));
    std::vector<tern::BlockBfp8> a(static_cast<size_t>(nb));
    float lanes[8] = {};
    double exact = 0.0;
    double magnitude = 0.0;
    for (size_t b = 0; b < w.size(); ++b) {
      w[b].e = static_cast<int8_t>(ex(rng));
      a[b].e = static_cast<int8_t>(ex(rng));
      int32_t sum = 0;
      for (int j = 0; j < 32; ++j) {
        w[b].m[j] = static_cast<int8_t>(i8(rng));
        a[b].m[j] = static_cast<int8_t>(i8(rng));
        sum += w[b].m[j] * a[b].m[j];
        magnitude += std::ldexp(std::abs(w[b].m[j] * a[b].m[j]), w[b].e + a[b].e);
      }
      // The specified association, spelled out independently of the implementation.
      lanes[b % 8] += std::ldexp(static_cast<float>(sum), w[b].e + a[b].e);
      exact += std::ldexp(static_cast<double>(sum), w[b].e + a[b].e);
    }
    const float expected = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) +
                           ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    const float got = kBfp8.dot(nb * 32, w.data(), a.data());
    CHECK(tern::fp32_to_bits(got) == tern::fp32_to_bits(expected));
    CHECK(std::fabs(got - exact) <= gamma(nb / 8 + 4) * magnitude);
  }
  // With equal exponents and few blocks every operation is exact.
  std::vector<tern::BlockBfp8> w(3);
  std::vector<tern::BlockBfp8> a(3);
  int64_t dot = 0;
  for (size_t b = 0; b < 3; ++b) {
    w[b].e = -2;
    a[b].e = 1;
    for (int j = 0; j < 32; ++j) {
      w[b].m[j] = static_cast<int8_t>(j % 2 ? 127 : -127);
      a[b].m[j] = static_cast<int8_t>(j % 3 ? -127 : 127);
      dot += w[b].m[j] * a[b].m[j];
    }
  }
  CHECK(kBfp8.dot(96, w.data(), a.data()) == static_cast<float>(dot) * 0.5f);
}

// ------------------------------------------------------------------------------------------------
// 4. I2_S.

// A ternary tensor times `scale`, with every code present.
std::vector<float> ternary_tensor(uint64_t seed, size_t n, float scale) {
  Lcg r(seed);
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(static_cast<int>(r.next24() % 3) - 1) * scale;
  x[0] = scale;  // the tensor's max |x| is the scale
  return x;
}

std::vector<std::byte> i2s_quantize(const std::vector<float>& x, tern::I2sLayout layout) {
  std::vector<std::byte> out(q::i2_s_nbytes(static_cast<int64_t>(x.size())), std::byte{0xa5});
  if (layout == tern::I2sLayout::kX86) {
    q::quantize_i2_s_x86(x.data(), out.data(), x.size());
  } else {
    q::quantize_i2_s_arm(x.data(), out.data(), x.size());
  }
  return out;
}

std::vector<float> i2s_dequantize(const std::vector<std::byte>& data, size_t n,
                                  tern::I2sLayout layout) {
  std::vector<float> out(n);
  if (layout == tern::I2sLayout::kX86) {
    q::dequantize_i2_s_x86(data.data(), n, out.data());
  } else {
    q::dequantize_i2_s_arm(data.data(), n, out.data());
  }
  return out;
}

TEST_CASE("I2_S round trips in both layouts", "[quant_new][i2_s]") {
  const tern::I2sLayout layout = GENERATE(tern::I2sLayout::kX86, tern::I2sLayout::kArm);
  INFO((layout == tern::I2sLayout::kX86 ? "x86" : "arm"));
  const size_t n = 2560 * 3;
  const float scale = 0.0123456f;
  const auto x = ternary_tensor(3, n, scale);
  const auto w = i2s_quantize(x, layout);
  CHECK(q::i2_s_scale(w.data(), n) == scale);
  // The tail after the scale is zero, and nothing past it is written.
  for (size_t i = n / 4 + 4; i < w.size(); ++i) CHECK(w[i] == std::byte{0});
  CHECK(i2s_dequantize(w, n, layout) == x);
}

TEST_CASE("I2_S layouts place each element where bitnet.cpp does", "[quant_new][i2_s]") {
  struct Place {
    size_t element;
    size_t x86_byte;
    int x86_shift;
    size_t arm_byte;
    int arm_shift;
  };
  // x86: byte k of a 128-group holds k, k+32, k+64, k+96 at bits 7..6, 5..4, 3..2, 1..0.
  // ARM: byte k of a 64-group holds k, k+16, k+32, k+48.
  const Place p =
      GENERATE(Place{0, 0, 6, 0, 6}, Place{16, 16, 6, 0, 4}, Place{32, 0, 4, 0, 2},
               Place{100, 4, 0, 20, 2}, Place{130, 34, 6, 34, 6}, Place{255, 63, 0, 63, 0});
  INFO("element " << p.element);
  std::vector<float> x(256, 0.0f);
  x[p.element] = -1.0f;  // code 0 among zeros (code 1): the one pair of bits that is 00
  const auto wx = i2s_quantize(x, tern::I2sLayout::kX86);
  const auto wa = i2s_quantize(x, tern::I2sLayout::kArm);
  for (size_t i = 0; i < 64; ++i) {
    const auto bx = static_cast<unsigned>(wx[i]);
    const auto ba = static_cast<unsigned>(wa[i]);
    CHECK(bx == (i == p.x86_byte ? 0x55u & ~(1u << p.x86_shift) : 0x55u));
    CHECK(ba == (i == p.arm_byte ? 0x55u & ~(1u << p.arm_shift) : 0x55u));
  }
  CHECK(q::i2_s_scale(wx.data(), 256) == 1.0f);
}

TEST_CASE("I2_S quantize keeps only the sign, and code 3 decodes as 0", "[quant_new][i2_s]") {
  std::vector<float> x(128, 0.0f);
  x[0] = 2.0f;    // the scale
  x[1] = 0.001f;  // >= 1e-6: a sign, so +scale
  x[2] = -5e-7f;  // below 1e-6: zero
  x[3] = -0.5f;   // -scale
  x[4] = NAN;     // bitnet.cpp: NaN * scale > 0 is false, so -scale
  const auto w = i2s_quantize(x, tern::I2sLayout::kX86);
  const auto y = i2s_dequantize(w, 128, tern::I2sLayout::kX86);
  CHECK(y[0] == 2.0f);
  CHECK(y[1] == 2.0f);
  CHECK(y[2] == 0.0f);
  CHECK(y[3] == -2.0f);
  CHECK(y[4] == -2.0f);

  auto w3 = w;
  w3[5] |= std::byte{0xc0};  // element 5: code 3, which bitnet.cpp never writes
  CHECK(i2s_dequantize(w3, 128, tern::I2sLayout::kX86)[5] == 0.0f);
}

TEST_CASE("I2_S converts to TQ2_0 with identical values", "[quant_new][i2_s]") {
  const tern::I2sLayout layout = GENERATE(tern::I2sLayout::kX86, tern::I2sLayout::kArm);
  INFO((layout == tern::I2sLayout::kX86 ? "x86" : "arm"));
  const size_t n = 6912;
  const int64_t nb = static_cast<int64_t>(n) / tern::kQkK;

  SECTION("a scale that is a half: fold it into every block") {
    const float scale = 0.0419921875f;  // 43 * 2^-10, exact in f16
    REQUIRE(q::i2_s_scale_fits_fp16(scale));
    const auto x = ternary_tensor(5, n, scale);
    auto w = i2s_quantize(x, layout);
    w[7] |= std::byte{0x03};  // a code 3, which must still decode as 0
    const auto expected = i2s_dequantize(w, n, layout);
    std::vector<tern::BlockTQ2_0> t(static_cast<size_t>(nb));
    CHECK(q::i2_s_to_tq2_0(w.data(), n, layout, t.data(), true) == scale);
    std::vector<float> y(n);
    q::dequantize_row_tq2_0(t.data(), y.data(), static_cast<int64_t>(n));
    CHECK(std::memcmp(y.data(), expected.data(), n * sizeof(float)) == 0);
    for (const auto& blk : t) {
      for (uint8_t byte : blk.qs) {
        for (int s = 0; s < 8; s += 2) CHECK(((byte >> s) & 3) != 3);
      }
    }
  }

  SECTION("a scale that is not a half: unit blocks and the scale applied outside") {
    const float scale = 0.0123456f;
    REQUIRE_FALSE(q::i2_s_scale_fits_fp16(scale));
    const auto x = ternary_tensor(6, n, scale);
    const auto w = i2s_quantize(x, layout);
    std::vector<tern::BlockTQ2_0> t(static_cast<size_t>(nb));
    const float returned = q::i2_s_to_tq2_0(w.data(), n, layout, t.data(), false);
    CHECK(returned == scale);
    std::vector<float> y(n);
    q::dequantize_row_tq2_0(t.data(), y.data(), static_cast<int64_t>(n));
    for (size_t i = 0; i < n; ++i) REQUIRE(y[i] * returned == x[i]);

    // Folding it instead rounds the scale to a half: within 2^-11 relative, not identical.
    q::i2_s_to_tq2_0(w.data(), n, layout, t.data(), true);
    q::dequantize_row_tq2_0(t.data(), y.data(), static_cast<int64_t>(n));
    bool any_different = false;
    for (size_t i = 0; i < n; ++i) {
      REQUIRE(std::fabs(static_cast<double>(y[i]) - x[i]) <= 0x1p-11 * std::fabs(x[i]));
      any_different = any_different || y[i] != x[i];
    }
    CHECK(any_different);

    // The matrix product on the unit blocks, times the scale, is the I2_S product.
    std::vector<float> act(n);
    Lcg r(8);
    for (float& v : act) v = r.uniform();
    std::vector<tern::BlockQ8_K> a(static_cast<size_t>(nb));
    q::quantize_row_q8_K(act.data(), a.data(), static_cast<int64_t>(n));
    q::i2_s_to_tq2_0(w.data(), n, layout, t.data(), false);
    const double dot =
        static_cast<double>(q::vec_dot_tq2_0_q8_K(static_cast<int64_t>(n), t.data(), a.data())) *
        returned;
    double ref = 0.0;
    double magnitude = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double v = static_cast<double>(a[i / 256].d) * a[i / 256].qs[i % 256];
      ref += static_cast<double>(x[i]) * v;
      magnitude += 3.0 * std::fabs(static_cast<double>(scale) * v);
    }
    CHECK(std::fabs(dot - ref) <= gamma(nb + 7) * magnitude);
  }
}

TEST_CASE("I2_S to TQ2_0 keeps every value of arbitrary bytes, code 3 included",
          "[quant_new][i2_s]") {
  const tern::I2sLayout layout = GENERATE(tern::I2sLayout::kX86, tern::I2sLayout::kArm);
  INFO((layout == tern::I2sLayout::kX86 ? "x86" : "arm"));
  // Every byte value in every position of a 256-element block, then random bytes.
  const size_t n = 256 * 256 + 256 * 64;
  std::vector<std::byte> w(q::i2_s_nbytes(static_cast<int64_t>(n)));
  Lcg r(77);
  for (size_t i = 0; i < n / 4; ++i) {
    w[i] = static_cast<std::byte>(i < 256 * 64 ? (i / 64 + i) & 0xff : r.next24() & 0xff);
  }
  const float scale = 0.5f;
  std::memcpy(w.data() + n / 4, &scale, sizeof scale);
  const auto expected = i2s_dequantize(w, n, layout);
  std::vector<std::byte> t(n / 256 * sizeof(tern::BlockTQ2_0));
  q::i2_s_to_tq2_0(w.data(), n, layout, t.data(), true);
  std::vector<float> got(n);
  q::dequantize_row_tq2_0(t.data(), got.data(), static_cast<int64_t>(n));
  CHECK(got == expected);
}

TEST_CASE("I2_S shape check", "[quant_new][i2_s]") {
  const auto ok = q::check_i2_s_shape(2560 * 2560 / 4 + 32, 2560 * 2560);
  CHECK(ok.size_matches);
  CHECK(ok.x86_possible);
  CHECK(ok.arm_possible);
  const auto arm_only = q::check_i2_s_shape(192 / 4 + 32, 192);  // 192 = 3 * 64, not 128-divisible
  CHECK(arm_only.size_matches);
  CHECK_FALSE(arm_only.x86_possible);
  CHECK(arm_only.arm_possible);
  const auto tq2_sized = q::check_i2_s_shape(2560 / 256 * 66, 2560);  // a TQ2_0 row, not I2_S
  CHECK_FALSE(tq2_sized.size_matches);
  CHECK_FALSE(tq2_sized.x86_possible);
  CHECK_FALSE(q::check_i2_s_shape(2560 / 4, 2560).size_matches);  // no tail
  CHECK_FALSE(q::check_i2_s_shape(32, 0).size_matches);
  CHECK(q::i2_s_scale_fits_fp16(1.0f));
  CHECK(q::i2_s_scale_fits_fp16(65504.0f));
  CHECK_FALSE(q::i2_s_scale_fits_fp16(70000.0f));
  CHECK_FALSE(q::i2_s_scale_fits_fp16(1e-9f));
}

// ------------------------------------------------------------------------------------------------
// 5. Adversarial blocks, every new format.

const Format* any_format(int i) {
  const Format* formats[] = {&kQ4K, &kQ5K, &kQ6K, &kMxfp4, &kBfp8, &kQ5_0, &kQ5_1};
  return formats[i];
}

TEST_CASE("new formats: all-zero rows", "[quant_new][adversarial]") {
  const Format& f = *any_format(GENERATE(0, 1, 2, 3, 4, 5, 6));
  INFO(f.name);
  const int64_t n = 2 * std::max<int64_t>(f.block_elems, 256);
  const std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
  const auto w = quantize(f, zeros);
  CHECK(dequantize(f, w, n) == zeros);
  const auto a = activations_for(f, zeros);
  CHECK(f.dot(n, w.data(), a.data()) == 0.0f);
  if (&f == &kQ6K || &f == &kMxfp4 || &f == &kBfp8) {
    CHECK(std::all_of(w.begin(), w.end(), [](std::byte b) { return b == std::byte{0}; }));
  }
}

TEST_CASE("new formats: subnormal inputs give finite values near them",
          "[quant_new][adversarial]") {
  const Format& f = *any_format(GENERATE(0, 1, 2, 3, 4, 5, 6));
  INFO(f.name);
  std::vector<float> x(256);
  for (size_t j = 0; j < x.size(); ++j)
    x[j] = static_cast<float>(static_cast<int>(j) - 128) * 0x1p-140f;
  const auto y = dequantize(f, quantize(f, x), 256);
  for (size_t j = 0; j < y.size(); ++j) REQUIRE(std::fabs(y[j] - x[j]) <= 0x1p-132f);
}

TEST_CASE("new formats: plus and minus the block maximum", "[quant_new][adversarial]") {
  const Format& f = *any_format(GENERATE(0, 1, 2, 3, 4, 5, 6));
  INFO(f.name);
  std::vector<float> x(256);
  for (size_t j = 0; j < x.size(); ++j) x[j] = (j % 3 == 0) ? 3.0f : (j % 3 == 1 ? -3.0f : 0.75f);
  const auto y = dequantize(f, quantize(f, x), 256);
  if (&f == &kMxfp4 || &f == &kBfp8) {
    CHECK(y == x);  // 3 = 12 * 2^-2 (MXFP4) = 96 * 2^-5 (BFP8); 0.75 = 3 * 2^-2 = 24 * 2^-5
  } else {
    for (size_t j = 0; j < y.size(); ++j) {
      INFO("element " << j);
      CHECK(std::signbit(y[j]) == std::signbit(x[j]));
      CHECK(std::fabs(y[j] - x[j]) <= 6.0 / 15.0);
    }
  }
}

TEST_CASE("new formats: a single outlier", "[quant_new][adversarial]") {
  const Format& f = *any_format(GENERATE(0, 1, 2, 3, 4, 5, 6));
  INFO(f.name);
  std::mt19937 rng(31);
  auto x = normal_row(rng, 256, 0.0f, 0.01f);
  x[77] = 1000.0f;
  const auto y = dequantize(f, quantize(f, x), 256);
  for (float v : y) REQUIRE(std::isfinite(v));
  if (&f == &kMxfp4) {
    // d = 2^(floor(log2 1000) - 2 - 1) = 64: the outlier clips to 12 * 64, its neighbours vanish.
    CHECK(y[77] == 768.0f);
    CHECK(y[64] == 0.0f);
    CHECK(std::fabs(y[0] - x[0]) <= 0.02f);  // other blocks keep their own exponent
  } else if (&f == &kBfp8) {
    CHECK(y[77] == 1000.0f);
    CHECK(y[64] == 0.0f);
  } else {
    // The outlier's own sub-block absorbs the coarse scale; the outlier itself stays close and
    // sub-blocks without it keep a usable precision (the 6/8-bit sub-scales are relative to the
    // largest one, so they lose a few bits, not all).
    CHECK(std::fabs(y[77] - 1000.0f) <= 1000.0f / 15.0f);
    double worst = 0.0;
    for (size_t j = 0; j < 256; ++j) {
      if (j / 32 == 77 / 32) continue;
      worst = std::max(worst, std::fabs(static_cast<double>(y[j]) - x[j]));
    }
    CHECK(worst <= 0.05);
  }
}

}  // namespace
