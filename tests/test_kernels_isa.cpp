// Every supported ISA's kernel table against the scalar reference table: one generic harness per
// kernel signature that enumerates ISA x table entry, sweeps shapes around each kernel's tiles,
// feeds random and adversarial data, and requires the same float bits (the integer cores are exact
// and the float steps are the reference's, so there is no tolerance to derive). Plus the dispatch
// rules: what is built, what is supported, and how a bad TERN_ISA-style request fails.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/fp16.h"
#include "quant/kquants.h"
#include "quant/types.h"

namespace {

using tern::TensorType;
using tern::TypeTraits;
using tern::kernels::Isa;
using tern::kernels::KernelTable;
using tern::kernels::MatmulKernel;

// The tables to test against scalar: every supported ISA but scalar itself. Built ISAs this CPU
// cannot run are left out with a warning, as are ISAs this binary was built without (Catch2 v2 has
// no runtime skip).
std::vector<const KernelTable*> fast_tables() {
  std::vector<const KernelTable*> out;
  std::string skipped;
  for (Isa isa : {Isa::kNeon, Isa::kAvx2, Isa::kAvx512}) {
    const auto built = tern::kernels::built_isas();
    const bool is_built = std::find(built.begin(), built.end(), isa) != built.end();
    const KernelTable* t = tern::kernels::table_for(isa);
    if (t != nullptr) {
      out.push_back(t);
    } else if (is_built) {
      skipped.append(" ").append(tern::kernels::isa_name(isa)).append(" (this CPU lacks it)");
    }
  }
  if (!skipped.empty()) WARN("ISA tables not tested here:" << skipped);
  return out;
}

// ---- Data -----------------------------------------------------------------------------------

// How a weight matrix is filled. Random rows go through the type's reference quantizer (what a
// file holds); the others pin down the edges of the integer core and of the scales.
enum class WMode { kRandom, kAllMinus, kAllZero, kAllPlus, kSigns, kTinyScale, kRawBytes };
constexpr WMode kWModes[] = {WMode::kRandom, WMode::kAllMinus,  WMode::kAllZero, WMode::kAllPlus,
                             WMode::kSigns,  WMode::kTinyScale, WMode::kRawBytes};
const char* name(WMode m) {
  switch (m) {
    case WMode::kRandom:
      return "random";
    case WMode::kAllMinus:
      return "all -1";
    case WMode::kAllZero:
      return "all 0 (zero scales)";
    case WMode::kAllPlus:
      return "all +1";
    case WMode::kSigns:
      return "only -1/+1";
    case WMode::kTinyScale:
      return "subnormal fp16 scales";
    case WMode::kRawBytes:
      return "raw random bytes";
  }
  return "?";
}

// Activations: random rows through from_float, or raw Q8_K blocks at the int8 extremes (-128
// never comes out of the quantizer, but a kernel that saturates int16 sums fails on it), with
// bsums that may not even match the codes (the reference takes them as given).
enum class XMode { kRandom, kLarge, kMin, kMax, kExtremes, kRawBsums };
constexpr XMode kXModes[] = {XMode::kRandom, XMode::kLarge,    XMode::kMin,
                             XMode::kMax,    XMode::kExtremes, XMode::kRawBsums};
const char* name(XMode m) {
  switch (m) {
    case XMode::kRandom:
      return "random";
    case XMode::kLarge:
      return "random x 1e4";
    case XMode::kMin:
      return "q8 all at the minimum (Q8_K -128, Q8_0 -127)";
    case XMode::kMax:
      return "q8 all 127";
    case XMode::kExtremes:
      return "q8 minimum/127 mixed";
    case XMode::kRawBsums:
      return "q8 random, random bsums";
  }
  return "?";
}

// Raw bytes for the types whose every byte pattern is a valid block once the scale is finite:
// returns false for other types (the mode is then skipped).
bool fill_raw_weights(const TypeTraits& t, std::byte* row, int64_t k, std::mt19937_64& rng) {
  size_t d_offset = 0;
  if (t.type == TensorType::TQ2_0)
    d_offset = offsetof(tern::BlockTQ2_0, d);
  else if (t.type == TensorType::TQ1_0)
    d_offset = offsetof(tern::BlockTQ1_0, d);
  else if (t.type == TensorType::Q8_0)
    d_offset = offsetof(tern::BlockQ8_0, d);  // -128 included
  else if (t.type == TensorType::Q4_0)
    d_offset = offsetof(tern::BlockQ4_0, d);
  else if (t.type == TensorType::Q6_K)
    d_offset = offsetof(tern::BlockQ6_K, d);  // any code, any int8 sub-block scale
  else
    return false;
  const size_t bytes = tern::row_bytes(t, k);
  for (size_t i = 0; i < bytes; ++i) row[i] = static_cast<std::byte>(rng() & 0xff);
  std::uniform_real_distribution<float> scale(-2.0f, 2.0f);
  for (size_t b = 0; b < bytes / t.block_bytes; ++b) {
    const uint16_t d = tern::fp32_to_fp16(scale(rng));
    std::memcpy(row + b * t.block_bytes + d_offset, &d, sizeof d);
  }
  return true;
}

bool fill_raw_activations(const TypeTraits& at, XMode mode, std::byte* row, int64_t k,
                          std::mt19937_64& rng) {
  if (at.type == TensorType::Q8_0) {
    // Q8_0's from_float rounds to -127..127 (never -128, which the AVX2 sign trick relies on):
    // the extremes are +-127 here.
    if (mode == XMode::kRawBsums) return false;
    auto* blocks = reinterpret_cast<tern::BlockQ8_0*>(row);
    std::uniform_real_distribution<float> scale(-0.1f, 0.1f);
    for (int64_t b = 0; b < k / tern::kQk8_0; ++b) {
      blocks[b].d = tern::fp32_to_fp16(scale(rng));
      for (int8_t& q : blocks[b].qs) {
        int v = static_cast<int>(rng() % 255) - 127;
        if (mode == XMode::kMin) v = -127;
        if (mode == XMode::kMax) v = 127;
        if (mode == XMode::kExtremes) v = (rng() & 1) != 0 ? 127 : -127;
        q = static_cast<int8_t>(v);
      }
    }
    return true;
  }
  if (at.type != TensorType::Q8_K) return false;
  auto* blocks = reinterpret_cast<tern::BlockQ8_K*>(row);
  std::uniform_real_distribution<float> scale(-0.1f, 0.1f);
  for (int64_t b = 0; b < k / tern::kQkK; ++b) {
    tern::BlockQ8_K& y = blocks[b];
    y.d = scale(rng);
    for (int j = 0; j < tern::kQkK; ++j) {
      int v = static_cast<int>(rng() % 256) - 128;
      if (mode == XMode::kMin) v = -128;
      if (mode == XMode::kMax) v = 127;
      if (mode == XMode::kExtremes) v = (rng() & 1) != 0 ? 127 : -128;
      y.qs[j] = static_cast<int8_t>(v);
    }
    for (int g = 0; g < tern::kQkK / 16; ++g) {
      int sum = 0;
      for (int j = 16 * g; j < 16 * g + 16; ++j) sum += y.qs[j];
      y.bsums[g] = mode == XMode::kRawBsums ? static_cast<int16_t>(rng() & 0xffff)
                                            : static_cast<int16_t>(sum);
    }
  }
  return true;
}

struct Matrices {
  std::vector<std::byte> w, x;
  size_t w_stride = 0, x_stride = 0;
};

// Returns false when the modes do not apply to these types.
bool make_data(const TypeTraits& t, int64_t rows, int64_t k, int64_t n_x, WMode wm, XMode xm,
               uint64_t seed, Matrices& m) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const TypeTraits& at = tern::type_traits(t.vec_dot_type);
  m.w_stride = tern::row_bytes(t, k);
  m.x_stride = tern::row_bytes(at, k);
  m.w.assign(m.w_stride * static_cast<size_t>(rows), std::byte{0});
  m.x.assign(m.x_stride * static_cast<size_t>(n_x), std::byte{0});
  std::vector<float> f(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    std::byte* row = m.w.data() + static_cast<size_t>(r) * m.w_stride;
    if (wm == WMode::kRawBytes) {
      if (!fill_raw_weights(t, row, k, rng)) return false;
      continue;
    }
    const float row_scale = std::exp(normal(rng));
    for (float& v : f) {
      switch (wm) {
        case WMode::kAllMinus:
          v = -row_scale;
          break;
        case WMode::kAllZero:
          v = 0.0f;
          break;
        case WMode::kAllPlus:
          v = row_scale;
          break;
        case WMode::kSigns:
          v = (rng() & 1) != 0 ? row_scale : -row_scale;
          break;
        case WMode::kTinyScale:
          v = 1e-5f * normal(rng);
          break;
        default:
          v = row_scale * normal(rng);
          break;
      }
    }
    t.quantize_row(f.data(), row, k);
  }
  for (int64_t i = 0; i < n_x; ++i) {
    std::byte* row = m.x.data() + static_cast<size_t>(i) * m.x_stride;
    if (xm != XMode::kRandom && xm != XMode::kLarge) {
      if (!fill_raw_activations(at, xm, row, k, rng)) return false;
      continue;
    }
    for (float& v : f) v = (xm == XMode::kLarge ? 1e4f : 1.0f) * normal(rng);
    at.from_float(f.data(), row, k);
  }
  return true;
}

// ---- Running and comparing ------------------------------------------------------------------

struct Shape {
  int64_t rows, k, n_x, r0, r1;
};

// Sentinel for outputs the kernel must not write: a NaN payload no kernel produces.
constexpr uint32_t kUntouched = 0x7fbadbadu;

std::vector<float> run(const MatmulKernel& mk, const TypeTraits& t, const Matrices& m,
                       const Shape& s) {
  const int64_t ldy = s.rows + 3;  // a row stride wider than the rows catches indexing slips
  std::vector<float> y(static_cast<size_t>(ldy * s.n_x));
  for (float& v : y) std::memcpy(&v, &kUntouched, sizeof v);
  const std::byte* w = m.w.data();
  size_t w_stride = m.w_stride;
  std::vector<std::byte> packed;
  if (mk.pack != nullptr) {
    w_stride = mk.packed_row_bytes(s.k);
    packed.resize(w_stride * static_cast<size_t>(s.rows));
    for (int64_t r = 0; r < s.rows; ++r) {
      mk.pack(m.w.data() + static_cast<size_t>(r) * m.w_stride,
              packed.data() + static_cast<size_t>(r) * w_stride, s.k);
    }
    w = packed.data();
  }
  mk.fn(t, w, w_stride, s.rows, m.x.data(), m.x_stride, s.n_x, s.k, y.data(), ldy, s.r0, s.r1);
  return y;
}

uint32_t bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

// Empty when equal; otherwise the worst element (largest difference, any NaN first) described.
std::string compare(const std::vector<float>& want, const std::vector<float>& got, int64_t ldy) {
  size_t worst = want.size();
  double worst_diff = -1.0;
  size_t n_bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (bits(want[i]) == bits(got[i])) continue;
    ++n_bad;
    const double diff = std::isnan(want[i]) || std::isnan(got[i])
                            ? INFINITY
                            : std::fabs(static_cast<double>(want[i]) - got[i]);
    if (diff > worst_diff) {
      worst_diff = diff;
      worst = i;
    }
  }
  if (n_bad == 0) return {};
  std::ostringstream s;
  s.precision(9);
  s << n_bad << " outputs differ; worst y[m=" << static_cast<int64_t>(worst) / ldy
    << "][row=" << static_cast<int64_t>(worst) % ldy << "]: expected " << want[worst] << " (0x"
    << std::hex << bits(want[worst]) << "), got " << std::dec << got[worst] << " (0x" << std::hex
    << bits(got[worst]) << ")";
  return s.str();
}

// One case: the table's entry against the scalar entry of the same type on the same data.
void check_case(const KernelTable& table, const TypeTraits& t, const Shape& s, WMode wm, XMode xm,
                uint64_t seed) {
  Matrices m;
  if (!make_data(t, s.rows, s.k, s.n_x, wm, xm, seed, m)) return;
  const MatmulKernel& fast = table.matmul_for(t);
  const MatmulKernel& ref = tern::kernels::scalar_table().matmul_for(t);
  const auto want = run(ref, t, m, s);
  const auto got = run(fast, t, m, s);
  const std::string diff = compare(want, got, s.rows + 3);
  if (!diff.empty()) {
    FAIL_CHECK(fast.name << " (" << table.name << ") vs " << ref.name << ": rows " << s.rows
                         << ", k " << s.k << ", n_x " << s.n_x << ", row range [" << s.r0 << ", "
                         << s.r1 << "), weights " << name(wm) << ", activations " << name(xm)
                         << ", seed " << seed << ": " << diff);
  }
}

// Sorted, distinct, positive values of a sweep around tile sizes.
std::vector<int64_t> around(std::initializer_list<int64_t> tiles, std::vector<int64_t> extra) {
  for (int64_t t : tiles) {
    for (int64_t v : {t - 1, t, t + 1, 3 * t + 1}) extra.push_back(v);
  }
  std::sort(extra.begin(), extra.end());
  extra.erase(std::unique(extra.begin(), extra.end()), extra.end());
  extra.erase(std::remove_if(extra.begin(), extra.end(), [](int64_t v) { return v < 1; }),
              extra.end());
  return extra;
}

// The entries a table overrides (the rest are the scalar kernel itself).
std::vector<const TypeTraits*> overridden_types(const KernelTable& table) {
  std::vector<const TypeTraits*> out;
  for (const TypeTraits& t : tern::all_type_traits()) {
    const MatmulKernel& mk = table.matmul_for(t);
    if (mk.fn != nullptr && mk.fn != tern::kernels::scalar_table().matmul_for(t).fn) {
      out.push_back(&t);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("every ISA's matmul kernels give the scalar reference's bits", "[kernels][isa][matmul]") {
  for (const KernelTable* table : fast_tables()) {
    for (const TypeTraits* t : overridden_types(*table)) {
      const MatmulKernel& mk = table->matmul_for(*t);
      INFO(mk.name);
      // Multiples of 8 too: Q4_0 matrices of 8k rows take llama.cpp's repacked order.
      const auto row_counts = around({mk.row_tile, mk.gemv_row_tile}, {1, 2, 3, 8, 24});
      const auto batch_sizes = around({mk.col_tile}, {1, 2, 3, 4, 5, 8, 9});
      uint64_t seed = 1;
      int n_cases = 0;
      // k: one block, two, odd counts, and BitNet 2B4T's n_ff (27 blocks).
      for (const int64_t blocks : {1, 2, 3, 5, 27}) {
        for (const int64_t rows : row_counts) {
          for (const int64_t n_x : batch_sizes) {
            ++seed;
            // Cycle the data modes over the sweep so that every shape class sees several.
            const WMode wm = kWModes[seed % std::size(kWModes)];
            const XMode xm = kXModes[(seed / 3) % std::size(kXModes)];
            const int64_t k = blocks * tern::kQkK;
            check_case(*table, *t, {rows, k, n_x, 0, rows}, wm, xm, seed);
            // A scheduler's part of the rows: the kernel writes only [r0, r1).
            if (rows >= 3) check_case(*table, *t, {rows, k, n_x, 1, rows - 1}, wm, xm, seed);
            ++n_cases;
          }
        }
      }
      // Every weight mode against every activation mode at one GEMV and one GEMM shape.
      for (const WMode wm : kWModes) {
        for (const XMode xm : kXModes) {
          for (const int64_t n_x : {int64_t{1}, int64_t{mk.col_tile + 1}}) {
            for (const int64_t rows : {int64_t{2 * mk.row_tile + 5}, int64_t{16}}) {
              check_case(*table, *t, {rows, 3 * tern::kQkK, n_x, 0, rows}, wm, xm, ++seed);
              ++n_cases;
            }
          }
        }
      }
      CHECK(n_cases > 100);
    }
  }
}

TEST_CASE("the TQ1_0 repack keeps every code and scale", "[kernels][repack]") {
  const TypeTraits& tq1 = tern::type_traits(TensorType::TQ1_0);
  const TypeTraits& tq2 = tern::type_traits(TensorType::TQ2_0);
  std::mt19937_64 rng(7);
  for (const bool raw : {false, true}) {
    for (const int64_t blocks : {1, 3, 27}) {
      const int64_t k = blocks * tern::kQkK;
      std::vector<std::byte> w(tern::row_bytes(tq1, k));
      std::vector<float> f(static_cast<size_t>(k));
      if (raw) {
        REQUIRE(fill_raw_weights(tq1, w.data(), k, rng));
      } else {
        std::normal_distribution<float> normal;
        for (float& v : f) v = normal(rng);
        tq1.quantize_row(f.data(), w.data(), k);
      }
      std::vector<std::byte> packed(tern::row_bytes(tq2, k));
      tern::quant::repack_tq1_0_as_tq2_0(w.data(), packed.data(), k);
      // Round trip through the values: both layouts dequantize to the same bits.
      std::vector<float> a(static_cast<size_t>(k)), b(static_cast<size_t>(k));
      tq1.dequantize_row(w.data(), a.data(), k);
      tq2.dequantize_row(packed.data(), b.data(), k);
      CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
      // And back to the file's bytes: quantizing the values again gives the TQ1_0 row (for rows a
      // quantizer wrote, whose scale is the row's absolute maximum).
      if (!raw) {
        std::vector<std::byte> again(w.size());
        tq1.quantize_row(b.data(), again.data(), k);
        CHECK(again == w);
      }
      // The fast kernels rely on this: the TQ2_0 dot of the repacked row is the TQ1_0 dot.
      std::vector<std::byte> x(tern::row_bytes(tern::type_traits(TensorType::Q8_K), k));
      REQUIRE(fill_raw_activations(tern::type_traits(TensorType::Q8_K), XMode::kExtremes, x.data(),
                                   k, rng));
      CHECK(bits(tq1.vec_dot(k, w.data(), x.data())) ==
            bits(tq2.vec_dot(k, packed.data(), x.data())));
    }
  }
}

TEST_CASE("tables form a best-first chain over the scalar reference", "[kernels][isa]") {
  const auto built = tern::kernels::built_isas();
  const auto supported = tern::kernels::supported_isas();
  REQUIRE(!built.empty());
  CHECK(built.front() == Isa::kScalar);
  CHECK(supported.front() == Isa::kScalar);
  for (Isa isa : supported) {
    CHECK(std::find(built.begin(), built.end(), isa) != built.end());
    const KernelTable* t = tern::kernels::table_for(isa);
    REQUIRE(t != nullptr);
    CHECK(t->isa == isa);
    CHECK(t->name == tern::kernels::isa_name(isa));
    for (const TypeTraits& tt : tern::all_type_traits()) {
      const MatmulKernel& mk = t->matmul_for(tt);
      // Every weight type has a kernel, named <op>_<weights>_<activations>__<isa> for the ISA
      // that implements it (inherited entries keep the lower ISA's name).
      CHECK((mk.fn != nullptr) == (tt.vec_dot != nullptr));
      if (mk.fn == nullptr) continue;
      std::string prefix = "matmul_";
      prefix.append(tt.name)
          .append("_")
          .append(tern::type_traits(tt.vec_dot_type).name)
          .append("__");
      CHECK(mk.name.substr(0, prefix.size()) == prefix);
      CHECK((mk.pack == nullptr) == (mk.packed_row_bytes == nullptr));
    }
  }
  // The default choice is the best supported ISA (unless TERN_ISA says otherwise).
  const auto best = tern::kernels::choose_table("", "TERN_ISA");
  REQUIRE(best.table != nullptr);
  CHECK(best.table->isa == supported.back());
}

TEST_CASE("an unknown or unsupported ISA request is a clear error", "[kernels][isa]") {
  const auto unknown = tern::kernels::choose_table("avx9", "TERN_ISA");
  CHECK(unknown.table == nullptr);
  CHECK_THAT(unknown.error, Catch::Contains("TERN_ISA=avx9") && Catch::Contains("unknown ISA"));
  const auto scalar = tern::kernels::choose_table("scalar", "TERN_ISA");
  REQUIRE(scalar.table != nullptr);
  CHECK(scalar.table == &tern::kernels::scalar_table());
  for (Isa isa : {Isa::kNeon, Isa::kAvx2, Isa::kAvx512}) {
    const auto c = tern::kernels::choose_table(tern::kernels::isa_name(isa), "TERN_ISA");
    const auto s = tern::kernels::supported_isas();
    if (std::find(s.begin(), s.end(), isa) != s.end()) {
      CHECK(c.table != nullptr);
    } else {
      CHECK(c.table == nullptr);
      CHECK_THAT(c.error, Catch::Contains("not built") || Catch::Contains("not supported"));
    }
  }
}
