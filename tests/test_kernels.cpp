// Tests of the scalar reference kernels (kernels/scalar/) against llama.cpp's CPU results: the
// float association each one copies is pinned down by bits recorded from llama.cpp c392e50 (GCC 12,
// -march=native on Zen 4: AVX-512) on portable inputs, as tests/test_quant.cpp does for the dots.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/arch/weights.h"
#include "kernels/kernels.h"
#include "kernels/scalar/vexpf.h"
#include "quant/fp16.h"
#include "quant/types.h"

namespace {

using tern::TensorType;
using tern::TypeTraits;

// The same generator as tests/test_quant.cpp: a 64-bit LCG whose top 24 bits become a float in
// [-1, 1), reproducible by any C++ (and C) implementation.
std::vector<float> portable_row(uint64_t seed, int64_t n, float scale = 1.0f) {
  std::vector<float> x(static_cast<size_t>(n));
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& v : x) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const auto top = static_cast<int32_t>(state >> 40);
    v = static_cast<float>(top - (1 << 23)) * 0x1p-23f * scale;
  }
  return x;
}

std::vector<uint32_t> bits_of(const float* v, size_t n) {
  std::vector<uint32_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = tern::fp32_to_bits(v[i]);
  return out;
}

// FNV-1a over the little-endian bytes of the bit patterns, for outputs too long to list.
uint64_t fnv1a(const float* v, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = tern::fp32_to_bits(v[i]);
    for (int b = 0; b < 4; ++b) {
      h ^= (u >> (8 * b)) & 0xffu;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

const tern::kernels::KernelTable& ref() {
  return tern::kernels::scalar_table();
}

}  // namespace

// ggml_rope_ext (normal mode) of 2 heads of 12 at position 300, x = 4 * portable_row(5, 24). Six
// pairs per head: GCC's vectorised loop fuses the x0 products of the first four into FMAs and the
// epilogue rounds both products of the last two, so neither a plain nor an all-FMA rotation
// reproduces these.
TEST_CASE("rope is bit-identical to llama.cpp's", "[kernels][rope][golden]") {
  const std::array<uint32_t, 24> want = {0xbfb6405a, 0xc04faeda, 0x4083f17a, 0xc00331f2, 0xbf04f997,
                                         0x407897fa, 0xc076a468, 0xbe9db8e4, 0x409292a6, 0xbfbd0c00,
                                         0xbfb191a8, 0xbece727d, 0x4075fd40, 0x40688d38, 0xc04fdc30,
                                         0x3fbbee8f, 0xc00ad94d, 0x40357a0f, 0x3f4c52cc, 0xc06b7078,
                                         0x407b4547, 0xbff52ce4, 0x3ed3c44a, 0x4062ebde};
  tern::ModelHparams hp;
  hp.head_dim = 12;
  hp.n_rot = 12;
  const auto table = tern::arch::rope_table(hp, {}, 301);
  auto x = portable_row(5, 24, 4.0f);
  ref().rope(x.data(), 2, 12, table.data() + 300 * 12, 6);
  CHECK(bits_of(x.data(), x.size()) == std::vector<uint32_t>(want.begin(), want.end()));
}

// ggml_silu followed by ggml_mul on one row of 37: gate = 12 * portable_row(6, 37),
// up = portable_row(7, 37). Elements 0..31 go through ggml_v_silu (two groups of 16), 32..36
// through x / (1 + expf(-x)).
TEST_CASE("silu_mul is bit-identical to llama.cpp's", "[kernels][silu][golden]") {
  const std::array<uint32_t, 37> want = {
      0x388df55d, 0xbf43e3bc, 0x3b604775, 0xbda63ffc, 0x3fe57858, 0x3b912d05, 0x40820101,
      0x3d47ba19, 0x40b9ad44, 0x411ba800, 0x40363e25, 0x3cd88779, 0xbb0c65d5, 0xbc2faa1a,
      0x3e03585f, 0x40e2bae3, 0x40f22322, 0x3edca537, 0xb98bbd8d, 0x3dde0494, 0xbd478944,
      0x3ff92496, 0xbbc7ceb2, 0xbf7e8e5a, 0x3d05dbf4, 0xc01d7682, 0xc0527293, 0x3f3fd596,
      0xc094da30, 0x3bf8d04f, 0xbe0ddc69, 0x408148a4, 0x3e2dfa2c, 0x3a2cd51d, 0x3e5cc181,
      0x407e8519, 0x3ec2ddf1};
  const auto gate = portable_row(6, 37, 12.0f);
  const auto up = portable_row(7, 37);
  std::vector<float> out(37);
  ref().silu_mul(gate.data(), up.data(), out.data(), 37);
  CHECK(bits_of(out.data(), out.size()) == std::vector<uint32_t>(want.begin(), want.end()));
}

// llama.cpp's attention without flash attention for one head: a cache of 40 cells (fp16 keys
// 2 * portable_row(8), values portable_row(9), position-major) spanned as n_kv = 64 cells, and
// q = 2 * portable_row(10, n_batch * head_dim), of which the last token (position 39) is checked.
// For one token the products are ggml_vec_dot_f16 (over head_dim, then over all 64 cells); for a
// batch llamafile's sgemm takes kq when head_dim % 16 == 0 and kqv when head_dim % 4 == 0.
TEST_CASE("attention is bit-identical to llama.cpp's", "[kernels][attention][golden]") {
  struct Golden {
    int64_t head_dim, n_batch;
    uint64_t fnv;
    uint32_t first;
  };
  const Golden g = GENERATE(Golden{12, 1, 0x8c11df3c942134f3ull, 0x3dba134a},
                            Golden{12, 3, 0xad6624a3ded7a24cull, 0xbd315c28},
                            Golden{64, 1, 0x4337e2c186c9ce03ull, 0xbc978aa8},
                            Golden{64, 3, 0x95746e34f5525272ull, 0xbe04edfa});
  const int64_t cells = 40, n_kv = 64, hd = g.head_dim;
  const auto kf = portable_row(8, cells * hd, 2.0f);
  const auto vf = portable_row(9, cells * hd);
  const auto qf = portable_row(10, g.n_batch * hd, 2.0f);
  std::vector<uint16_t> k(kf.size()), v(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) {
    k[i] = tern::fp32_to_fp16(kf[i]);
    v[i] = tern::fp32_to_fp16(vf[i]);
  }
  std::vector<float> out(static_cast<size_t>(hd)), scratch(static_cast<size_t>(cells));
  ref().attention(qf.data() + (g.n_batch - 1) * hd, k.data(), static_cast<size_t>(hd), v.data(),
                  static_cast<size_t>(hd), cells, n_kv, g.n_batch, hd,
                  1.0f / std::sqrt(static_cast<float>(hd)), out.data(), scratch.data());
  INFO("head_dim " << hd << " batch " << g.n_batch);
  CHECK(tern::fp32_to_bits(out[0]) == g.first);
  CHECK(fnv1a(out.data(), out.size()) == g.fnv);
}

// The single-token path must not depend on cells beyond n_kv being read: they are never touched.
TEST_CASE("attention reads only the first n_pos cached positions", "[kernels][attention]") {
  const int64_t hd = 8, n_pos = 5;
  const auto q = portable_row(11, hd);
  std::vector<uint16_t> k(static_cast<size_t>(n_pos * hd)), v(k.size());
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = tern::fp32_to_fp16(static_cast<float>(i % 7) * 0.25f);
    v[i] = tern::fp32_to_fp16(static_cast<float>(i % 5) - 2.0f);
  }
  std::vector<float> out(hd), scratch(n_pos);
  ref().attention(q.data(), k.data(), hd, v.data(), hd, n_pos, 32, 1, hd, 0.5f, out.data(),
                  scratch.data());
  for (float o : out) CHECK(std::isfinite(o));
}

// ggml_v_expf: close to the true exp (its source states 1.45 ulp plus rounding; over every float
// in [-87, 88] this copy is within 2.24 ulp of the exact value), exact at 0, and 0 / inf beyond the
// range where n = round(x / ln 2) exceeds 192 in magnitude.
TEST_CASE("ggml_v_expf stays within its stated accuracy", "[kernels][exp]") {
  using tern::kernels::scalar::ggml_v_expf;
  CHECK(ggml_v_expf(0.0f) == 1.0f);
  CHECK(ggml_v_expf(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(ggml_v_expf(std::numeric_limits<float>::infinity()) ==
        std::numeric_limits<float>::infinity());
  CHECK(ggml_v_expf(-200.0f) == 0.0f);
  CHECK(std::isinf(ggml_v_expf(200.0f)));
  CHECK(std::isnan(ggml_v_expf(std::numeric_limits<float>::quiet_NaN())));
  for (float x = -87.0f; x < 88.0f; x += 0.0137f) {
    const double want = std::exp(static_cast<double>(x));
    const double got = ggml_v_expf(x);
    const double ulp = std::ldexp(1.0, std::ilogb(want) - 23);
    INFO("x = " << x);
    CHECK(std::fabs(got - want) <= 2.5 * ulp);
  }
}

// The matmul kernel picks llama.cpp's kernel for the whole product (select_matmul_dot), so a
// batch of two F32 rows rounds like sgemm and one row like ggml_vec_dot_f32, and an 8-row Q4_0
// matrix like the repacked kernel even when only some of its rows are computed.
TEST_CASE("matmul rounds each product like llama.cpp's kernel for that shape",
          "[kernels][matmul]") {
  const int64_t k = 256;
  SECTION("f32: sgemm for batches, vec_dot for one row") {
    const TypeTraits& t = tern::type_traits(TensorType::F32);
    std::vector<float> w;
    for (uint64_t r = 0; r < 4; ++r) {
      const auto row = portable_row(20 + r, k);
      w.insert(w.end(), row.begin(), row.end());
    }
    std::vector<float> x = portable_row(30, k);
    const auto x2 = portable_row(31, k);
    x.insert(x.end(), x2.begin(), x2.end());
    std::vector<float> y(8);
    const auto* wb = reinterpret_cast<const std::byte*>(w.data());
    const auto* xb = reinterpret_cast<const std::byte*>(x.data());
    const size_t stride = static_cast<size_t>(k) * sizeof(float);
    ref().matmul_for(t).fn(t, wb, stride, 4, xb, stride, 2, k, y.data(), 4, 0, 4);
    std::vector<float> y1(4);
    ref().matmul_for(t).fn(t, wb, stride, 4, xb, stride, 1, k, y1.data(), 4, 0, 4);
    for (int64_t r = 0; r < 4; ++r) {
      const std::byte* wr = wb + static_cast<size_t>(r) * stride;
      CHECK(y[static_cast<size_t>(r)] == t.vec_dot_sgemm(k, wr, xb));
      CHECK(y[static_cast<size_t>(4 + r)] == t.vec_dot_sgemm(k, wr, xb + stride));
      CHECK(y1[static_cast<size_t>(r)] == t.vec_dot(k, wr, xb));
    }
  }
  SECTION("q4_0: repacked order when the matrix has a multiple of 8 rows") {
    const TypeTraits& t = tern::type_traits(TensorType::Q4_0);
    const TypeTraits& at = tern::type_traits(t.vec_dot_type);
    const size_t wrow = tern::row_bytes(t, k), xrow = tern::row_bytes(at, k);
    std::vector<std::byte> w(wrow * 12), x(xrow);
    for (size_t r = 0; r < 12; ++r)
      t.quantize_row(portable_row(40 + r, k).data(), w.data() + r * wrow, k);
    at.from_float(portable_row(50, k).data(), x.data(), k);
    std::vector<float> y8(8), y12(12);
    ref().matmul_for(t).fn(t, w.data(), wrow, 8, x.data(), xrow, 1, k, y8.data(), 8, 2, 5);
    ref().matmul_for(t).fn(t, w.data(), wrow, 12, x.data(), xrow, 1, k, y12.data(), 12, 2, 5);
    for (size_t r = 2; r < 5; ++r) {
      CHECK(y8[r] == t.vec_dot_repacked(k, w.data() + r * wrow, x.data()));
      CHECK(y12[r] == t.vec_dot(k, w.data() + r * wrow, x.data()));
    }
  }
}
