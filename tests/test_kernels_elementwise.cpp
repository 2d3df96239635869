// Tests of the element-wise kernels of GPT-2 and BitNet blocks (layer_norm, add_layer_norm, gelu,
// relu_sqr, layer_norm_gelu_add): the scalar reference against bits recorded from llama.cpp and
// against independent double-precision formulas within derived bounds, the fused kernels against
// the separate ops, and every supported ISA's entries against the scalar ones, bit for bit, on odd
// sizes, tails and adversarial rows.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>

#include "kernels/kernels.h"
#include "quant/fp16.h"

namespace {

using tern::kernels::Isa;
using tern::kernels::KernelTable;

const KernelTable& ref() {
  return tern::kernels::scalar_table();
}

// Every supported table but scalar; built ones this CPU cannot run are named in a warning.
std::vector<const KernelTable*> isa_tables() {
  std::vector<const KernelTable*> out;
  std::string skipped;
  for (const Isa isa : tern::kernels::built_isas()) {
    if (isa == Isa::kScalar) continue;
    if (const KernelTable* t = tern::kernels::table_for(isa)) {
      out.push_back(t);
    } else {
      skipped.append(" ").append(tern::kernels::isa_name(isa));
    }
  }
  if (!skipped.empty()) WARN("built but not supported here, not tested:" << skipped);
  return out;
}

// isa_tables() with the scalar table first (the fusions must equal the separate ops there too).
std::vector<const KernelTable*> all_tables() {
  auto tables = isa_tables();
  tables.insert(tables.begin(), &tern::kernels::scalar_table());
  return tables;
}

// Row lengths: every tail below and around the vector widths and the 64-element sum chunks, and
// model widths.
std::vector<int64_t> sizes() {
  std::vector<int64_t> n;
  for (int64_t i = 1; i <= 70; ++i) n.push_back(i);
  for (const int64_t i : {255, 256, 257, 768, 2560, 4097}) n.push_back(i);
  return n;
}

// Row contents. The LayerNorm kernels sum in lanes only where no add of the reference's chain
// rounds; kSpread, kOffset, kTiny and kZeros force the element-by-element fallback in places.
enum class Mode { kNormal, kLarge, kHuge, kNegative, kConstant, kSpread, kOffset, kTiny, kZeros };
constexpr Mode kModes[] = {Mode::kNormal,   Mode::kLarge,    Mode::kHuge,
                           Mode::kNegative, Mode::kConstant, Mode::kSpread,
                           Mode::kOffset,   Mode::kTiny,     Mode::kZeros};
const char* name(Mode m) {
  switch (m) {
    case Mode::kNormal:
      return "normal";
    case Mode::kLarge:
      return "normal x 1e4";
    case Mode::kHuge:
      return "normal x 1e20 (squares overflow)";
    case Mode::kNegative:
      return "all negative";
    case Mode::kConstant:
      return "constant (zero variance)";
    case Mode::kSpread:
      return "magnitudes 2^-40..2^20";
    case Mode::kOffset:
      return "300 + normal x 0.01";
    case Mode::kTiny:
      return "normal with subnormals and -0";
    case Mode::kZeros:
      return "half zeros";
  }
  return "?";
}

std::vector<float> make_row(Mode m, int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-40, 20);
  std::vector<float> x(static_cast<size_t>(n));
  const float c = normal(rng) * 5.0f;
  for (size_t i = 0; i < x.size(); ++i) {
    const float g = normal(rng);
    switch (m) {
      case Mode::kNormal:
        x[i] = g;
        break;
      case Mode::kLarge:
        x[i] = g * 1e4f;
        break;
      case Mode::kHuge:
        x[i] = g * 1e20f;
        break;
      case Mode::kNegative:
        x[i] = -std::fabs(g) - 0.5f;
        break;
      case Mode::kConstant:
        x[i] = c;
        break;
      case Mode::kSpread:
        x[i] = std::ldexp(g, exponent(rng));
        break;
      case Mode::kOffset:
        x[i] = 300.0f + g * 0.01f;
        break;
      case Mode::kTiny:
        x[i] = i % 5 == 0 ? 1e-40f * g : (i % 7 == 0 ? -0.0f : g);
        break;
      case Mode::kZeros:
        x[i] = i % 2 == 0 ? 0.0f : g;
        break;
    }
  }
  return x;
}

// Runs case_fn(table, n, mode, rng) for every table, row length and mode, with a generator seeded
// `seed` + 1, + 2, ... row after row; a failing assertion names the case.
template <class Fn>
void sweep_rows(const std::vector<const KernelTable*>& tables, uint64_t seed, Fn case_fn) {
  for (const KernelTable* t : tables) {
    uint64_t s = seed;
    for (const int64_t n : sizes()) {
      for (const Mode m : kModes) {
        std::mt19937_64 rng(++s);
        INFO(t->name << ", n = " << n << ", " << name(m) << ", seed " << s);
        case_fn(*t, n, m, rng);
      }
    }
  }
}

// Requires the same bits; on failure names the first element that differs, in hex floats.
void require_same_bits(const std::vector<float>& want, const std::vector<float>& got,
                       const std::string& what) {
  REQUIRE(want.size() == got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (tern::fp32_to_bits(want[i]) == tern::fp32_to_bits(got[i])) continue;
    std::ostringstream msg;
    msg << what << ": element " << i << " of " << want.size() << ": want " << std::hexfloat
        << want[i] << ", got " << got[i];
    FAIL(msg.str());
  }
}

// FNV-1a over the bytes of the bit patterns (as tests/test_kernels.cpp records long outputs).
uint64_t fnv1a(const std::vector<float>& v) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const float f : v) {
    const uint32_t u = tern::fp32_to_bits(f);
    for (int b = 0; b < 4; ++b) {
      h ^= (u >> (8 * b)) & 0xffu;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

constexpr float kEps = 1e-5f;
constexpr double kU = 0x1p-24;  // float unit roundoff

}  // namespace

// ---- The scalar reference against llama.cpp ---------------------------------------------------

// Recorded from llama.cpp c392e50 (GCC 12, -march=native on Zen 4), one thread: ggml_norm (eps
// 1e-5) of one row of 2560, x_i = ((7919 i) % 1009 - 504) / 64 + 1 / (i + 3) + 300 in float; then
// ggml_mul by w_i = ((31 i) % 17 - 8) / 8 + 1 / (i + 5) and ggml_add of b_i = ((13 i) % 11 - 5)
// / 16.
TEST_CASE("layer_norm is bit-identical to llama.cpp's norm, mul and add", "[elementwise][golden]") {
  const int n = 2560;
  std::vector<float> x(n), w(n), b(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = static_cast<float>((i * 7919) % 1009 - 504) / 64.0f + 1.0f / static_cast<float>(i + 3) +
           300.0f;
    w[i] = static_cast<float>((i * 31) % 17 - 8) / 8.0f + 1.0f / static_cast<float>(i + 5);
    b[i] = static_cast<float>((i * 13) % 11 - 5) / 16.0f;
  }
  ref().layer_norm(x.data(), nullptr, nullptr, y.data(), n, kEps);
  CHECK(fnv1a(y) == 0x583d4f3bb4f0a7edull);
  ref().layer_norm(x.data(), w.data(), b.data(), y.data(), n, kEps);
  CHECK(fnv1a(y) == 0x85e00d6cf8e0296bull);
  CHECK(tern::fp32_to_bits(y[0]) == 0x3f81a949u);
}

// ggml_gelu on every half but the NaNs, in index order (llama.cpp c392e50, as above). This pins
// down the whole table, the comparisons at -10 and 10, and the rounding of x to half.
TEST_CASE("gelu is bit-identical to llama.cpp's on every half", "[elementwise][golden]") {
  std::vector<float> x;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float v = tern::fp16_to_fp32(static_cast<uint16_t>(h));
    if (!std::isnan(v)) x.push_back(v);
  }
  std::vector<float> y(x.size());
  ref().gelu(x.data(), y.data(), static_cast<int64_t>(x.size()));
  CHECK(fnv1a(y) == 0xd7ff6b0c09dd0d41ull);
}

// ---- The scalar reference against the formulas ------------------------------------------------

// Against LayerNorm in double. With mu, sigma = sqrt(var + eps) and z = (x - mu) / sigma exact,
// the reference's mean is off by e <= u |mu| (plus a double sum's error, far smaller), so x - mean
// is off by e plus a rounding, and var + eps by e^2 plus a few roundings: |norm - z| <= e / sigma
// + (e / sigma)^2 |z| + 8u |z|; then * w and + b round once each. Twice that bound is the limit.
TEST_CASE("the scalar layer_norm is LayerNorm within its derived rounding error",
          "[elementwise][layer_norm]") {
  std::mt19937_64 rng(11);
  for (const Mode m : {Mode::kNormal, Mode::kLarge, Mode::kNegative, Mode::kConstant, Mode::kSpread,
                       Mode::kOffset, Mode::kTiny, Mode::kZeros}) {
    for (const int64_t n : {1, 7, 64, 257, 2560, 4097}) {
      INFO(name(m) << ", n = " << n);
      const auto x = make_row(m, n, rng);
      const auto w = make_row(Mode::kNormal, n, rng);
      const auto b = make_row(Mode::kNormal, n, rng);
      std::vector<float> y(x.size());
      ref().layer_norm(x.data(), w.data(), b.data(), y.data(), n, kEps);

      double mu = 0.0;
      for (const float v : x) mu += v;
      mu /= static_cast<double>(n);
      double var = 0.0;
      for (const float v : x) var += (v - mu) * (v - mu);
      var /= static_cast<double>(n);
      const double sigma = std::sqrt(var + kEps);
      const double e = kU * std::fabs(mu) + 1e-300;
      double worst = 0.0;
      for (size_t i = 0; i < x.size(); ++i) {
        const double z = (x[i] - mu) / sigma;
        const double want = z * w[i] + b[i];
        const double norm_err =
            e / sigma + (e / sigma) * (e / sigma) * std::fabs(z) + 8 * kU * std::fabs(z);
        const double limit =
            2 * (norm_err * std::fabs(w[i]) + kU * std::fabs(z * w[i]) + kU * std::fabs(want));
        worst = std::max(worst, std::fabs(y[i] - want) / limit);
        INFO("element " << i << ": want " << want << ", got " << y[i] << ", limit " << limit);
        REQUIRE(std::fabs(y[i] - want) <= limit);
      }
      CHECK(worst <= 1.0);
    }
  }
}

// Against the tanh-approximation GELU in double. The table rounds ggml's float GELU of a half to
// half: at most half a half-step (2^-11 relative, 2^-25 among subnormals). The float GELU is off
// by a few float roundings, plus the cancellation in 1 + tanh(u) for negative x: tanhf is within
// one float step (2^-24 near -1) and the sum rounds once more, times 0.5 |x|. Inputs that are not
// halves are first rounded to one (2^-11 relative), which GELU's slope (below 1.13) carries over.
TEST_CASE("the scalar gelu is the tanh GELU within half-precision rounding",
          "[elementwise][gelu]") {
  const auto exact = [](double x) {
    return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  };
  const auto limit = [](double x, double g, double input_step) {
    const double f32 = 8 * kU * std::fabs(g) + 0.5 * std::fabs(x) * 2 * kU * 2;
    const double output = 0x1p-11 * (std::fabs(g) + f32) + 0x1p-25;
    return f32 + output + 1.13 * input_step;
  };
  std::vector<float> x;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float v = tern::fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isfinite(v) && std::fabs(v) <= 60000.0f) x.push_back(v);
  }
  const size_t n_halves = x.size();
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<float> wide(-12.0f, 12.0f);
  for (int i = 0; i < 100000; ++i) x.push_back(wide(rng));
  std::vector<float> y(x.size());
  ref().gelu(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double g = exact(x[i]);
    const double step = i < n_halves ? 0.0 : 0x1p-11 * std::fabs(x[i]);
    INFO("x = " << x[i] << ": want " << g << ", got " << y[i]);
    REQUIRE(std::fabs(y[i] - g) <= limit(x[i], g, step));
  }
}

// The product of one float by itself needs 48 bits, so the double square rounded once to float is
// exactly the float square: no tolerance.
TEST_CASE("the scalar relu_sqr is max(x, 0)^2 exactly", "[elementwise][relu_sqr]") {
  std::mt19937_64 rng(13);
  for (const Mode m : kModes) {
    const auto x = make_row(m, 1000, rng);
    std::vector<float> y(x.size());
    ref().relu_sqr(x.data(), y.data(), 1000);
    for (size_t i = 0; i < x.size(); ++i) {
      const double r = x[i] > 0.0f ? static_cast<double>(x[i]) : 0.0;
      const auto want = static_cast<float>(r * r);
      INFO(name(m) << ": x = " << x[i]);
      REQUIRE(tern::fp32_to_bits(y[i]) == tern::fp32_to_bits(want));
    }
  }
  const float special[] = {-0.0f, std::nanf(""), -std::nanf(""), -INFINITY, INFINITY};
  float y[5];
  ref().relu_sqr(special, y, 5);
  for (int i = 0; i < 4; ++i) CHECK(tern::fp32_to_bits(y[i]) == 0u);  // +0, never -0 or NaN
  CHECK(y[4] == INFINITY);
}

// ---- Every ISA against the scalar reference ---------------------------------------------------

TEST_CASE("every ISA's layer_norm gives the scalar reference's bits", "[elementwise][isa]") {
  int n_cases = 0;
  sweep_rows(isa_tables(), 100, [&](const KernelTable& t, int64_t n, Mode m, std::mt19937_64& rng) {
    const auto x = make_row(m, n, rng);
    const auto w = make_row(Mode::kNormal, n, rng);
    const auto b = make_row(Mode::kNormal, n, rng);
    // Without weight and bias, with each, with both.
    for (int wb = 0; wb < 4; ++wb) {
      const float* wp = (wb & 1) != 0 ? w.data() : nullptr;
      const float* bp = (wb & 2) != 0 ? b.data() : nullptr;
      std::vector<float> want(x.size()), got(x.size(), -1.0f);
      ref().layer_norm(x.data(), wp, bp, want.data(), n, kEps);
      t.layer_norm(x.data(), wp, bp, got.data(), n, kEps);
      require_same_bits(want, got, "weight/bias " + std::to_string(wb));
      ++n_cases;
    }
    // In place.
    std::vector<float> got = x, want(x.size());
    ref().layer_norm(x.data(), w.data(), b.data(), want.data(), n, kEps);
    t.layer_norm(got.data(), w.data(), b.data(), got.data(), n, kEps);
    require_same_bits(want, got, "in place");
  });
  if (!isa_tables().empty()) CHECK(n_cases > 1000);
}

// Rows on which summing in lanes would change the bits, so the kernels must add them one element
// at a time. Row sum: 2^60, 1, ..., -2^60 loses the 1 in the reference's order, not in lanes.
// Sum of squares: x = +-a, +-3840 and 28 x +-2^-6 (mean exactly 0), with a = 0x1.026p20 found by
// search: each 2^-12 square is half a step of the running sum and ties to even, so the
// reference's sum is the exact sum minus 28 x 2^-12, and that moves var / 128 across a rounding
// boundary that 1 / sqrt(var + eps) keeps.
TEST_CASE("layer_norm keeps the reference's double sums where lanes would round differently",
          "[elementwise][isa]") {
  std::vector<float> squares = {0x1.026p20f, -0x1.026p20f, 3840.0f, -3840.0f};
  for (int i = 0; i < 14; ++i) squares.insert(squares.end(), {0x1p-6f, -0x1p-6f});
  std::vector<float> cancel(32, 0.5f);
  cancel[0] = 0x1p60f;
  cancel[1] = 1.0f;
  cancel[8] = -0x1p60f;
  for (const KernelTable* t : isa_tables()) {
    for (const auto* row : {&squares, &cancel}) {
      // Zeros around the row move it within and across the 64-element chunks; n = 128 keeps var's
      // division by n exact, so the midpoint stays one.
      for (const size_t lead : {0, 1, 17, 31, 48, 63, 96}) {
        std::vector<float> x(128, 0.0f);
        std::copy(row->begin(), row->end(), x.begin() + static_cast<std::ptrdiff_t>(lead));
        const auto n = static_cast<int64_t>(x.size());
        std::vector<float> want(x.size()), got(x.size()), zero(x.size(), 0.0f);
        INFO(t->name << ", row " << (row == &squares ? "squares" : "cancel") << ", lead " << lead);
        ref().layer_norm(x.data(), nullptr, nullptr, want.data(), n, kEps);
        t->layer_norm(x.data(), nullptr, nullptr, got.data(), n, kEps);
        require_same_bits(want, got, "layer_norm");
        t->add_layer_norm(x.data(), zero.data(), zero.data(), nullptr, nullptr, got.data(), n,
                          kEps);
        require_same_bits(want, got, "add_layer_norm");
        // A zero residual still adds: +0 + -0 is +0.
        ref().gelu(want.data(), want.data(), n);
        for (float& v : want) v = 0.0f + v;
        const std::vector<float> no_residual(x.size(), 0.0f);  // add_layer_norm wrote over zero
        t->layer_norm_gelu_add(x.data(), nullptr, nullptr, no_residual.data(), got.data(), n, kEps);
        require_same_bits(want, got, "layer_norm_gelu_add");
      }
    }
  }
}

// The fused op is defined as ggml_add then the LayerNorm: on every table, scalar included, it must
// equal the add followed by the scalar layer_norm, for the sum and the output, also in place.
TEST_CASE("add_layer_norm equals the add followed by layer_norm on every ISA",
          "[elementwise][isa][fused]") {
  sweep_rows(all_tables(), 200, [&](const KernelTable& t, int64_t n, Mode m, std::mt19937_64& rng) {
    const auto x = make_row(m, n, rng);
    const auto r = make_row(m == Mode::kConstant ? m : Mode::kNormal, n, rng);
    const auto w = make_row(Mode::kNormal, n, rng);
    const auto b = make_row(Mode::kNormal, n, rng);
    std::vector<float> want_sum(x.size()), want(x.size());
    for (size_t i = 0; i < x.size(); ++i) want_sum[i] = x[i] + r[i];
    ref().layer_norm(want_sum.data(), w.data(), b.data(), want.data(), n, kEps);

    std::vector<float> sum(x.size(), -1.0f), y(x.size(), -1.0f);
    t.add_layer_norm(x.data(), r.data(), sum.data(), w.data(), b.data(), y.data(), n, kEps);
    require_same_bits(want_sum, sum, "sum");
    require_same_bits(want, y, "output");

    // The residual stream updated in place, the output over x; and without weight and bias.
    std::vector<float> rs = r, xs = x, plain(x.size());
    t.add_layer_norm(xs.data(), rs.data(), rs.data(), w.data(), b.data(), xs.data(), n, kEps);
    require_same_bits(want_sum, rs, "sum in place");
    require_same_bits(want, xs, "output in place");
    ref().layer_norm(want_sum.data(), nullptr, nullptr, want.data(), n, kEps);
    t.add_layer_norm(x.data(), r.data(), sum.data(), nullptr, nullptr, plain.data(), n, kEps);
    require_same_bits(want, plain, "no weight or bias");
  });
}

// The fused op is defined as layer_norm, then gelu, then the residual add: on every table, scalar
// included, it must equal those reference ops run one after the other, with and without weight
// and bias, also in place over the residual and over x. Weights up to 8 x normal push the
// normalised values past the table's ends at -10 and 10.
TEST_CASE("layer_norm_gelu_add equals layer_norm, gelu and the add on every ISA",
          "[elementwise][isa][fused]") {
  int n_cases = 0;
  sweep_rows(all_tables(), 400, [&](const KernelTable& t, int64_t n, Mode m, std::mt19937_64& rng) {
    const auto x = make_row(m, n, rng);
    const auto r = make_row(m == Mode::kTiny ? m : Mode::kNormal, n, rng);
    auto w = make_row(Mode::kNormal, n, rng);
    const float w_scale = n % 2 == 0 ? 8.0f : 1.0f;
    for (float& v : w) v *= w_scale;
    const auto b = make_row(Mode::kNormal, n, rng);
    for (int wb = 0; wb < 4; ++wb) {
      INFO("weight/bias " << wb);
      const float* wp = (wb & 1) != 0 ? w.data() : nullptr;
      const float* bp = (wb & 2) != 0 ? b.data() : nullptr;
      std::vector<float> want(x.size());
      ref().layer_norm(x.data(), wp, bp, want.data(), n, kEps);
      ref().gelu(want.data(), want.data(), n);
      for (size_t i = 0; i < want.size(); ++i) want[i] = r[i] + want[i];

      std::vector<float> got(x.size(), -1.0f);
      t.layer_norm_gelu_add(x.data(), wp, bp, r.data(), got.data(), n, kEps);
      require_same_bits(want, got, "separate ops");
      std::vector<float> scalar(x.size(), -1.0f);
      ref().layer_norm_gelu_add(x.data(), wp, bp, r.data(), scalar.data(), n, kEps);
      require_same_bits(scalar, got, "scalar fused");

      std::vector<float> rs = r;  // the residual stream updated in place
      t.layer_norm_gelu_add(x.data(), wp, bp, rs.data(), rs.data(), n, kEps);
      require_same_bits(want, rs, "in place over the residual");
      std::vector<float> xs = x;
      t.layer_norm_gelu_add(xs.data(), wp, bp, r.data(), xs.data(), n, kEps);
      require_same_bits(want, xs, "in place over x");
      ++n_cases;
    }
  });
  CHECK(n_cases >= 4 * 76 * 9);
}

TEST_CASE("every ISA's gelu and relu_sqr give the scalar reference's bits", "[elementwise][isa]") {
  // Every half but the NaNs (whose bits the kernels do not promise), then random rows.
  std::vector<float> halves;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float v = tern::fp16_to_fp32(static_cast<uint16_t>(h));
    if (!std::isnan(v)) halves.push_back(v);
  }
  for (const KernelTable* t : isa_tables()) {
    for (const auto& [fn_name, fn, ref_fn] :
         {std::tuple{"gelu", t->gelu, ref().gelu},
          std::tuple{"relu_sqr", t->relu_sqr, ref().relu_sqr}}) {
      INFO(t->name << " " << fn_name);
      std::vector<float> want(halves.size()), got(halves.size());
      ref_fn(halves.data(), want.data(), static_cast<int64_t>(halves.size()));
      fn(halves.data(), got.data(), static_cast<int64_t>(halves.size()));
      require_same_bits(want, got, "every half");

      uint64_t seed = 300;
      for (const int64_t n : sizes()) {
        for (const Mode m : kModes) {
          std::mt19937_64 rng(++seed);
          INFO("n = " << n << ", " << name(m) << ", seed " << seed);
          auto x = make_row(m, n, rng);
          // Around the ends of the table: -10 and 10 and their neighbours.
          if (n > 4) {
            x[0] = -10.0f;
            x[1] = 10.0f;
            x[2] = std::nextafter(-10.0f, 0.0f);
            x[3] = std::nextafter(10.0f, 0.0f);
          }
          std::vector<float> w(x.size()), g(x.size(), -1.0f);
          ref_fn(x.data(), w.data(), n);
          fn(x.data(), g.data(), n);
          require_same_bits(w, g, "row");
          fn(x.data(), x.data(), n);  // in place
          require_same_bits(w, x, "in place");
        }
      }
    }
  }
}
