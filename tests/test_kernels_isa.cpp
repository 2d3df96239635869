// Every supported ISA's kernel table against the scalar reference table: one generic harness per
// kernel signature that enumerates ISA x table entry, sweeps shapes around each kernel's tiles,
// feeds random and adversarial data, and requires the same float bits (the integer cores are exact
// and the float steps are the reference's, so there is no tolerance to derive). Plus the dispatch
// rules: what is built, what is supported, and how a bad TERN_ISA-style request fails.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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
#include "quant/q5.h"
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
  // Kernels the AVX-512 table takes only where CPUID has an extension (kernels/tables.cpp).
  if (tern::kernels::table_for(Isa::kAvx512) != nullptr) {
    const auto& f = tern::kernels::cpu_features();
    if (!f.gfni) WARN("AVX-512 GFNI kernels (*__avx512_gfni) not tested: this CPU lacks GFNI");
    if (!f.avx512vbmi) WARN("AVX-512 VBMI kernels (*__avx512_vbmi) not tested: this CPU lacks it");
  }
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

// Raw float bits for F32, F16 and BF16 weights: random signs and mantissas; half the rows only
// subnormals and the smallest normals (BF16's dot flushes subnormal inputs and results, which
// shows only when a whole dot is that small), the others a quarter of those and the rest up to a
// bound that keeps every sum finite.
void fill_raw_floats(TensorType type, std::byte* row, int64_t k, std::mt19937_64& rng) {
  const bool f16 = type == TensorType::F16;
  const int mant_bits = f16 ? 10 : type == TensorType::BF16 ? 7 : 23;
  const uint32_t max_exp = f16 ? 30 : 147;
  const bool tiny_row = (rng() & 1) != 0;
  for (int64_t i = 0; i < k; ++i) {
    const uint64_t r = rng();
    const uint32_t sel = tiny_row ? r & 1 : r & 3;
    const uint32_t e = sel == 0 ? 0 : sel == 1 ? 1 + (r >> 2) % 4 : 1 + (r >> 2) % max_exp;
    const uint32_t mant = static_cast<uint32_t>(r >> 32) & ((1u << mant_bits) - 1);
    const uint32_t sign = static_cast<uint32_t>(r >> 20) & 1;
    const uint32_t bits = sign << (mant_bits + (f16 ? 5 : 8)) | e << mant_bits | mant;
    if (type == TensorType::F32) {
      std::memcpy(row + 4 * i, &bits, 4);
    } else {
      const auto h = static_cast<uint16_t>(bits);
      std::memcpy(row + 2 * i, &h, 2);
    }
  }
}

// Raw MXFP4 or BFP8 blocks: any code or mantissa (BFP8's -128 included), and a power-of-two
// exponent byte (its first) from 2^-128 to 2^16, so that sums stay finite: with BFP8 activations'
// exponents (about -8 for unit values) the scaled dots reach f32 subnormals and underflow.
bool fill_raw_exponent_blocks(const TypeTraits& t, std::byte* row, int64_t k,
                              std::mt19937_64& rng) {
  const size_t bytes = tern::row_bytes(t, k);
  for (size_t i = 0; i < bytes; ++i) row[i] = static_cast<std::byte>(rng() & 0xff);
  for (size_t b = 0; b < bytes / t.block_bytes; ++b) {
    const int e = static_cast<int>(rng() % 145) - 128;  // 2^e
    // MXFP4 stores e + 128 (its values are doubled); BFP8 stores e.
    const int stored = t.type == TensorType::MXFP4 ? e + 128 : e;
    row[b * t.block_bytes] = static_cast<std::byte>(static_cast<uint8_t>(stored));
  }
  return true;
}

// Raw bytes for the types whose every byte pattern is a valid block once the scale is finite
// (and raw float bits): returns false for other types (the mode is then skipped).
bool fill_raw_weights(const TypeTraits& t, std::byte* row, int64_t k, std::mt19937_64& rng) {
  if (t.type == TensorType::F32 || t.type == TensorType::F16 || t.type == TensorType::BF16) {
    fill_raw_floats(t.type, row, k, rng);
    return true;
  }
  size_t d_offset = 0;
  if (t.type == TensorType::TQ2_0)
    d_offset = offsetof(tern::BlockTQ2_0, d);
  else if (t.type == TensorType::Q4_0)
    d_offset = offsetof(tern::BlockQ4_0, d);
  else if (t.type == TensorType::TQ1_0)
    d_offset = offsetof(tern::BlockTQ1_0, d);
  else if (t.type == TensorType::Q8_0)
    d_offset = offsetof(tern::BlockQ8_0, d);  // -128 included
  else if (t.type == TensorType::Q4_0)
    d_offset = offsetof(tern::BlockQ4_0, d);
  else if (t.type == TensorType::Q6_K)
    d_offset = offsetof(tern::BlockQ6_K, d);  // any code, any int8 sub-block scale
  else if (t.type == TensorType::Q4_K)
    d_offset = offsetof(tern::BlockQ4_K, d);  // any code, 6-bit scale and min
  else if (t.type == TensorType::Q5_K)
    d_offset = offsetof(tern::BlockQ5_K, d);
  else if (t.type == TensorType::Q5_0)
    d_offset = offsetof(tern::BlockQ5_0, d);  // any code, every qh bit
  else if (t.type == TensorType::Q5_1)
    d_offset = offsetof(tern::BlockQ5_1, d);
  else if (t.type == TensorType::MXFP4 || t.type == TensorType::BFP8)
    return fill_raw_exponent_blocks(t, row, k, rng);
  else
    return false;
  // Q4_K and Q5_K carry a second scale (the mins'), Q5_1 its minimum, right after d.
  const bool has_dmin =
      t.type == TensorType::Q4_K || t.type == TensorType::Q5_K || t.type == TensorType::Q5_1;
  const size_t bytes = tern::row_bytes(t, k);
  for (size_t i = 0; i < bytes; ++i) row[i] = static_cast<std::byte>(rng() & 0xff);
  std::uniform_real_distribution<float> scale(-2.0f, 2.0f);
  for (size_t b = 0; b < bytes / t.block_bytes; ++b) {
    const uint16_t d = tern::fp32_to_fp16(scale(rng));
    std::memcpy(row + b * t.block_bytes + d_offset, &d, sizeof d);
    if (has_dmin) {
      const uint16_t dmin = tern::fp32_to_fp16(scale(rng));
      std::memcpy(row + b * t.block_bytes + d_offset + sizeof d, &dmin, sizeof dmin);
    }
  }
  return true;
}

bool fill_raw_activations(const TypeTraits& at, XMode mode, std::byte* row, int64_t k,
                          std::mt19937_64& rng) {
  if (at.type == TensorType::Q8_0 || at.type == TensorType::Q8_1 || at.type == TensorType::BFP8) {
    // Their from_float rounds to -127..127 (never -128, which the AVX2 sign trick relies on): the
    // extremes are +-127 here. The header: Q8_0 and Q8_1 an fp16 d, then Q8_1 its s = d * sum
    // (random for kRawBsums: the reference takes it as given); BFP8 an exponent byte.
    if (mode == XMode::kRawBsums && at.type != TensorType::Q8_1) return false;
    std::uniform_real_distribution<float> scale(-0.1f, 0.1f);
    for (int64_t b = 0; b < k / at.block_elems; ++b) {
      std::byte* block = row + static_cast<size_t>(b) * at.block_bytes;
      const size_t qs_offset = at.block_bytes - 32;
      int sum = 0;
      for (size_t j = 0; j < 32; ++j) {
        int v = static_cast<int>(rng() % 255) - 127;
        if (mode == XMode::kMin) v = -127;
        if (mode == XMode::kMax) v = 127;
        if (mode == XMode::kExtremes) v = (rng() & 1) != 0 ? 127 : -127;
        block[qs_offset + j] = static_cast<std::byte>(static_cast<int8_t>(v));
        sum += v;
      }
      if (at.type == TensorType::BFP8) {
        block[0] = static_cast<std::byte>(static_cast<int8_t>(static_cast<int>(rng() % 40) - 30));
        continue;
      }
      const float d = scale(rng);
      const uint16_t dh = tern::fp32_to_fp16(d);
      std::memcpy(block, &dh, sizeof dh);
      if (at.type == TensorType::Q8_1) {
        const uint16_t sh = tern::fp32_to_fp16(
            mode == XMode::kRawBsums ? scale(rng) * 100.0f
                                     : tern::fp16_to_fp32(dh) * static_cast<float>(sum));
        std::memcpy(block + sizeof dh, &sh, sizeof sh);
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
  if (tern::kernels::repacks(mk, s.rows)) {
    w_stride = tern::kernels::packed_stride(mk, s.k, m.w_stride);
    packed.resize(tern::kernels::packed_matrix_bytes(mk, s.rows, s.k, m.w_stride));
    tern::kernels::pack_matrix(mk, m.w.data(), m.w_stride, s.rows, s.k, packed.data());
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

// One case: a kernel of the table against the scalar entry of the same type on the same data.
void check_case(const KernelTable& table, const MatmulKernel& fast, const TypeTraits& t,
                const Shape& s, WMode wm, XMode xm, uint64_t seed) {
  Matrices m;
  if (!make_data(t, s.rows, s.k, s.n_x, wm, xm, seed, m)) return;
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

// The kernels of a table to test: the entries it overrides (the rest are the scalar kernel
// itself) and its alternatives.
struct TableKernel {
  const TypeTraits* type;
  const MatmulKernel* kernel;
};
std::vector<TableKernel> kernels_to_test(const KernelTable& table) {
  std::vector<TableKernel> out;
  for (const TypeTraits& t : tern::all_type_traits()) {
    const MatmulKernel& mk = table.matmul_for(t);
    if (mk.fn != nullptr && mk.fn != tern::kernels::scalar_table().matmul_for(t).fn) {
      out.push_back({&t, &mk});
    }
  }
  for (const auto& alt : table.alternatives()) {
    out.push_back({&tern::type_traits(alt.type), &alt.kernel});
  }
  return out;
}

}  // namespace

TEST_CASE("every ISA's matmul kernels give the scalar reference's bits", "[kernels][isa][matmul]") {
  for (const KernelTable* table : fast_tables()) {
    for (const auto& [t, kernel] : kernels_to_test(*table)) {
      const MatmulKernel& mk = *kernel;
      INFO(mk.name);
      // Multiples of 8 too: Q4_0 matrices of 8k rows take llama.cpp's repacked order.
      const auto row_counts = around({mk.row_tile, mk.gemv_row_tile}, {1, 2, 3, 8, 24});
      // 3 x col_tile: whole tiles in a batch; 3 x col_tile + 1 has narrower ones.
      const auto batch_sizes = around({mk.col_tile}, {1, 2, 3, 4, 5, 8, 9, 3 * mk.col_tile});
      uint64_t seed = 1;
      int n_cases = 0;
      // k: one block, two, odd counts, and BitNet 2B4T's n_ff (27 blocks), counted in the type's
      // own blocks and in 256-element super-blocks (one and the same for K and ternary types).
      std::vector<int64_t> ks;
      for (const int64_t unit : {t->block_elems, tern::kQkK}) {
        for (const int64_t blocks : {1, 2, 3, 5, 27}) ks.push_back(blocks * unit);
      }
      // Float rows: every tail of the vec_dot order (64-element steps, then groups of 16 and 8,
      // then single elements) and k % 16 == 0 or not (the tinyBLAS order, or vec_dot's).
      if (t->block_elems == 1) ks.insert(ks.end(), {8, 16, 40, 48, 64, 72, 96, 108, 172, 1000});
      std::sort(ks.begin(), ks.end());
      ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
      for (const int64_t k : ks) {
        for (const int64_t rows : row_counts) {
          for (const int64_t n_x : batch_sizes) {
            ++seed;
            // Cycle the data modes over the sweep so that every shape class sees several.
            const WMode wm = kWModes[seed % std::size(kWModes)];
            const XMode xm = kXModes[(seed / 3) % std::size(kXModes)];
            check_case(*table, mk, *t, {rows, k, n_x, 0, rows}, wm, xm, seed);
            // A scheduler's part of the rows: the kernel writes only [r0, r1).
            if (rows >= 3) check_case(*table, mk, *t, {rows, k, n_x, 1, rows - 1}, wm, xm, seed);
            ++n_cases;
          }
        }
      }
      // A kernel's large-batch path (the AVX-512 TQ2_0 kernel's unpack-once tiles): at, below
      // and above its threshold, whole and partial row ranges, short and 2B4T-long rows.
      if (mk.large_batch_cols > 0) {
        const int64_t at = mk.large_batch_cols;
        for (const int64_t n_x : {at - 1, at, at + mk.col_tile + 1}) {
          for (const int64_t rows : {int64_t{mk.row_tile + 1}, int64_t{2 * mk.gemv_row_tile + 3}}) {
            // 48 blocks fill the unpack-once path's stack buffer; 49 take the other path.
            for (const int64_t blocks : {1, 3, 27, 48, 49}) {
              ++seed;
              const WMode wm = kWModes[seed % std::size(kWModes)];
              const XMode xm = kXModes[(seed / 3) % std::size(kXModes)];
              check_case(*table, mk, *t, {rows, blocks * t->block_elems, n_x, 0, rows}, wm, xm,
                         seed);
              check_case(*table, mk, *t, {rows, blocks * t->block_elems, n_x, 1, rows - 1}, wm, xm,
                         seed);
            }
          }
        }
      }
      // Rows longer than the table budgets of the lookup kernels (32 blocks).
      for (const int64_t n_x : {int64_t{1}, int64_t{mk.col_tile + 1}}) {
        const int64_t rows = mk.row_tile + 1;
        check_case(*table, mk, *t, {rows, 40 * tern::kQkK, n_x, 0, rows}, WMode::kRawBytes,
                   XMode::kRandom, ++seed);
        check_case(*table, mk, *t, {rows, 40 * tern::kQkK, n_x, 0, rows}, WMode::kRandom,
                   XMode::kExtremes, ++seed);
      }
      // Every weight mode against every activation mode at one GEMV and one GEMM shape.
      for (const WMode wm : kWModes) {
        for (const XMode xm : kXModes) {
          for (const int64_t n_x : {int64_t{1}, int64_t{mk.col_tile + 1}}) {
            for (const int64_t rows : {int64_t{2 * mk.row_tile + 5}, int64_t{16}}) {
              check_case(*table, mk, *t, {rows, 3 * tern::kQkK, n_x, 0, rows}, wm, xm, ++seed);
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

// The dense layout's codes are read here from its description in quant/kquants.h (six bits per
// element, little-endian), not from the repack's code, and must give the file's values.
TEST_CASE("the Q6_K dense-code repack keeps every code and scale", "[kernels][repack]") {
  const TypeTraits& q6 = tern::type_traits(TensorType::Q6_K);
  std::mt19937_64 rng(11);
  for (const int64_t blocks : {1, 3, 11}) {
    const int64_t k = blocks * tern::kQkK;
    std::vector<std::byte> w(tern::row_bytes(q6, k));
    REQUIRE(fill_raw_weights(q6, w.data(), k, rng));
    std::vector<tern::BlockQ6KDense> dense(static_cast<size_t>(blocks));
    REQUIRE(dense.size() * sizeof(dense[0]) == w.size());
    tern::quant::repack_q6_K_dense_codes(w.data(), dense.data(), k);
    std::vector<float> want(static_cast<size_t>(k));
    q6.dequantize_row(w.data(), want.data(), k);
    int64_t mismatches = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const auto& blk = dense[static_cast<size_t>(b)];
      const float d = tern::fp16_to_fp32(blk.d);
      for (int e = 0; e < tern::kQkK; ++e) {
        const int bit = 6 * e;
        const unsigned pair =
            blk.codes[bit / 8] |
            (bit / 8 + 1 < static_cast<int>(sizeof blk.codes) ? blk.codes[bit / 8 + 1] << 8 : 0u);
        const int q = static_cast<int>((pair >> (bit % 8)) & 63);
        const float got = d * static_cast<float>(blk.scales[e / 16]) * static_cast<float>(q - 32);
        if (bits(got) != bits(want[static_cast<size_t>(b * tern::kQkK + e)])) ++mismatches;
      }
    }
    CHECK(mismatches == 0);
  }
}

// Rows the process owns are repacked where they are (engine/arch/weights.cpp) when the kernel
// allows it: that must give pack_matrix's bytes.
TEST_CASE("packing in place gives pack_matrix's bytes", "[kernels][repack]") {
  std::mt19937_64 rng(13);
  int checked = 0;
  for (const KernelTable* t : fast_tables()) {
    const auto check = [&](const MatmulKernel& mk, const TypeTraits& tt) {
      for (const int64_t n_rows : {16, 32, 34}) {
        if (!tern::kernels::packs_in_place(mk, n_rows)) continue;
        const int64_t k = 3 * tern::kQkK;
        const size_t stride = tern::row_bytes(tt, k);
        std::vector<std::byte> rows(stride * static_cast<size_t>(n_rows));
        for (int64_t r = 0; r < n_rows; ++r) {
          REQUIRE(fill_raw_weights(tt, rows.data() + static_cast<size_t>(r) * stride, k, rng));
        }
        std::vector<std::byte> want(tern::kernels::packed_matrix_bytes(mk, n_rows, k, stride));
        tern::kernels::pack_matrix(mk, rows.data(), stride, n_rows, k, want.data());
        tern::kernels::pack_matrix_in_place(mk, rows.data(), stride, n_rows, k);
        INFO(mk.name << ", " << n_rows << " rows");
        CHECK(rows == want);
        ++checked;
      }
    };
    for (const TypeTraits& tt : tern::all_type_traits()) {
      if (tt.vec_dot != nullptr) check(t->matmul_for(tt), tt);
    }
    for (const auto& alt : t->alternatives()) check(alt.kernel, tern::type_traits(alt.type));
  }
  if (checked == 0) WARN("no kernel here packs in place");
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
    // Alternatives are named like entries and run types that have a fast kernel.
    for (const auto& alt : t->alternatives()) {
      const TypeTraits& tt = tern::type_traits(alt.type);
      std::string prefix = "matmul_";
      prefix.append(tt.name).append("_").append(tern::type_traits(tt.vec_dot_type).name);
      prefix.append("__").append(t->name);
      CHECK(alt.kernel.name.substr(0, prefix.size()) == prefix);
      CHECK(alt.kernel.fn != nullptr);
      CHECK((alt.kernel.pack == nullptr) == (alt.kernel.packed_row_bytes == nullptr));
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

TEST_CASE("every ISA's activation quantizers give the reference's bytes",
          "[kernels][isa][q8_K][q8_0]") {
  // Blocks of normal values at several scales, of integers and half-integers (exact ties after
  // the scaling when the largest is 127 or 63.5), a largest magnitude held by both signs, all
  // zeros, and the special values (NaN, quiet or signalling, is never the largest; inf makes the
  // scale 0; a subnormal largest overflows it).
  const float specials[] = {
      0.0f,   -0.0f,   INFINITY, -INFINITY, NAN,
      1e-40f, -1e-40f, 3e38f,    -3e38f,    std::numeric_limits<float>::signaling_NaN()};
  int n_fast = 0;
  for (const auto& [table, type] : [] {
         std::vector<std::pair<const KernelTable*, TensorType>> v;
         for (const KernelTable* t : fast_tables()) {
           for (const TensorType a : {TensorType::Q8_K, TensorType::Q8_0, TensorType::Q8_1})
             v.emplace_back(t, a);
         }
         return v;
       }()) {
    const TypeTraits& act = tern::type_traits(type);
    const auto fast = table->from_float_for(act);
    const auto reference = tern::kernels::scalar_table().from_float_for(act);
    if (fast == reference) continue;
    ++n_fast;
    const int64_t blk = act.block_elems;
    std::mt19937_64 rng(13);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    int n_cases = 0;
    for (int mode = 0; mode < 10; ++mode) {
      for (const int64_t blocks : {1, 2, 3, 6}) {
        const int64_t n = blocks * blk;
        std::vector<float> x(static_cast<size_t>(n));
        for (size_t i = 0; i < x.size(); ++i) {
          const float r = normal(rng);
          switch (mode) {
            case 0:
              x[i] = r;
              break;
            case 1:
              x[i] = 1e-3f * r;
              break;
            case 2:
              x[i] = 1e4f * r;
              break;
            case 3:
              x[i] = static_cast<float>(static_cast<int>(i % 255) - 127);
              break;
            case 4:
              x[i] = 0.5f * static_cast<float>(static_cast<int>(i % 255) - 127);
              break;
            case 5:
              x[i] = i % 7 == 3 ? (i % 2 == 0 ? 4.0f : -4.0f) : r;
              break;
            case 6:
              x[i] = i < static_cast<size_t>(blk) ? 0.0f : r;
              break;
            case 7:
              x[i] = i % 3 == 0 ? specials[(i / 3) % std::size(specials)] : r;
              break;
            case 8:
              x[i] = i % 5 == 0
                         ? specials[(i / 5 + i / static_cast<size_t>(blk)) % std::size(specials)]
                         : 1e-42f;
              break;
            default:
              // The largest, then a signalling NaN in the same lane of every vector width: a
              // lane maximum that let the NaN through would lose the largest.
              x[i] = i % static_cast<size_t>(blk) == 0 ? -30.0f
                     : i % static_cast<size_t>(blk) == 16
                         ? std::numeric_limits<float>::signaling_NaN()
                         : r;
          }
        }
        std::vector<std::byte> want(tern::row_bytes(act, n));
        std::vector<std::byte> got(want.size(), std::byte{0x5a});
        reference(x.data(), want.data(), n);
        fast(x.data(), got.data(), n);
        if (std::memcmp(want.data(), got.data(), want.size()) != 0) {
          FAIL_CHECK(table->name << " from_float to " << act.name << ", mode " << mode
                                 << ", blocks " << blocks);
        }
        ++n_cases;
      }
    }
    CHECK(n_cases == 40);
  }
  if (n_fast == 0) WARN("no ISA table with its own activation quantizer here");
}

TEST_CASE("the NEON table runs the sdot kernels exactly where the CPU has dotprod",
          "[kernels][isa]") {
  const KernelTable* neon = tern::kernels::table_for(Isa::kNeon);
  if (neon == nullptr) {
    WARN("no NEON table on this CPU or in this build");
    return;
  }
  const bool dotprod = tern::kernels::cpu_features().dotprod;
  const auto kernels = kernels_to_test(*neon);
  CHECK(!kernels.empty());
  for (const auto& [t, kernel] : kernels) {
    const std::string_view name = kernel->name;
    INFO(name << ", CPU features: " << tern::kernels::cpu_features().summary());
    CHECK(name.ends_with("__neon_dotprod") == dotprod);
  }
}

// ---- Element-wise kernels and attention ---------------------------------------------------------

namespace {

// Random floats of a given spread, with the special values a row can hold: `specials` of them
// (-inf, +inf, NaN, 0, -0, huge, tiny) at random places.
std::vector<float> random_row(std::mt19937_64& rng, int64_t n, float sigma, int specials = 0) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = normal(rng);
  const float special[] = {-INFINITY, INFINITY, NAN, 0.0f, -0.0f, 3e38f, 1e-40f, -150.0f, 150.0f};
  for (int i = 0; i < specials && n > 0; ++i) {
    v[rng() % v.size()] = special[rng() % std::size(special)];
  }
  return v;
}

// The outputs of `fast` and the scalar entry must be the same bits.
void check_same(const std::vector<float>& want, const std::vector<float>& got, const char* entry,
                const KernelTable& table, const std::string& what) {
  const std::string diff = compare(want, got, static_cast<int64_t>(want.size()) + 1);
  if (!diff.empty()) FAIL_CHECK(entry << " (" << table.name << ") " << what << ": " << diff);
}

std::string describe(std::initializer_list<std::pair<const char*, double>> fields) {
  std::ostringstream s;
  for (const auto& [k, v] : fields) s << k << " " << v << " ";
  return s.str();
}

constexpr int64_t kRowLengths[] = {1,  2,  3,  4,  5,  7,  8,  9,   15,  16,
                                   17, 31, 32, 33, 63, 64, 65, 100, 1541};
constexpr float kSpreads[] = {1.0f, 30.0f, 1e4f, 1e-20f};

}  // namespace

// SiLU rows: (a) every tail around the 16-element groups and model widths, gates normal at several
// scales (exp overflows past 88 and reaches subnormal results between -88 and -104) or the special
// values cycled among random ones; (b) the element-wise row lengths and spreads, with and without
// specials in the gate (a NaN in both operands of a product has no defined winner, in the
// reference or here).
namespace {

struct SiluRow {
  std::string what;
  std::vector<float> gate, up;
};
std::vector<SiluRow> silu_rows() {
  std::vector<SiluRow> rows;
  std::vector<int64_t> sizes;
  for (int64_t n = 1; n <= 70; ++n) sizes.push_back(n);
  for (const int64_t n : {255, 256, 257, 2560, 4097}) sizes.push_back(n);
  const float specials[] = {0.0f,    -0.0f,  INFINITY, -INFINITY, NAN,     88.0f,   -88.0f,
                            88.7f,   -88.7f, 100.0f,   -100.0f,   103.9f,  -103.9f, 104.0f,
                            -104.0f, 133.2f, -133.2f,  1e-40f,    -1e-40f, 3e38f,   -3e38f};
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const float scale : {1.0f, 10.0f, 60.0f, 0.0f}) {
    for (const int64_t n : sizes) {
      SiluRow r{describe({{"n", static_cast<double>(n)}, {"gate scale", scale}}),
                std::vector<float>(static_cast<size_t>(n)),
                std::vector<float>(static_cast<size_t>(n))};
      for (size_t i = 0; i < r.gate.size(); ++i) {
        // scale 0: the special values, cycled, among random ones.
        r.gate[i] = scale != 0.0f ? scale * normal(rng)
                    : i % 2 == 0  ? specials[(i / 2) % std::size(specials)]
                                  : 90.0f * normal(rng);
        r.up[i] = normal(rng);
      }
      rows.push_back(std::move(r));
    }
  }
  std::mt19937_64 rng2(42);
  for (const int64_t n : kRowLengths) {
    for (const float sigma : kSpreads) {
      for (const int n_specials : {0, 3}) {
        auto gate = random_row(rng2, n, sigma, n_specials);
        auto up = random_row(rng2, n, 1.0f);
        rows.push_back(
            {describe({{"n", static_cast<double>(n)}, {"sigma", sigma}, {"specials", n_specials}}),
             std::move(gate), std::move(up)});
      }
    }
  }
  return rows;
}

}  // namespace

TEST_CASE("every ISA's silu_mul gives the scalar reference's bits", "[kernels][isa][silu]") {
  const KernelTable& ref = tern::kernels::scalar_table();
  const std::vector<SiluRow> rows = silu_rows();
  for (const KernelTable* table : fast_tables()) {
    int n_cases = 0;
    for (const SiluRow& r : rows) {
      const auto n = static_cast<int64_t>(r.gate.size());
      std::vector<float> want(r.gate.size()), got(want.size());
      ref.silu_mul(r.gate.data(), r.up.data(), want.data(), n);
      table->silu_mul(r.gate.data(), r.up.data(), got.data(), n);
      check_same(want, got, "silu_mul", *table, r.what);
      // In place, as the engine calls it.
      got = r.gate;
      table->silu_mul(got.data(), r.up.data(), got.data(), n);
      check_same(want, got, "silu_mul in place", *table, r.what);
      ++n_cases;
    }
    CHECK(n_cases > 100);
  }
}

TEST_CASE("every ISA's rms_norm and softmax give the scalar reference's bits",
          "[kernels][isa][elementwise]") {
  const KernelTable& ref = tern::kernels::scalar_table();
  for (const KernelTable* table : fast_tables()) {
    std::mt19937_64 rng(42);
    int n_cases = 0;
    for (const int64_t n : kRowLengths) {
      for (const float sigma : kSpreads) {
        for (const int specials : {0, 3}) {
          const std::string what =
              describe({{"n", static_cast<double>(n)}, {"sigma", sigma}, {"specials", specials}});
          const auto x = random_row(rng, n, sigma, specials);
          const auto w = random_row(rng, n, 1.0f);
          std::vector<float> want(static_cast<size_t>(n)), got(want.size());
          for (const float eps : {1e-5f, 1e-6f}) {
            // Specials in rms_norm turn whole rows into NaN or 0; the spread alone reaches the
            // overflowing and underflowing squares.
            if (specials != 0) continue;
            ref.rms_norm(x.data(), w.data(), want.data(), n, eps);
            table->rms_norm(x.data(), w.data(), got.data(), n, eps);
            check_same(want, got, "rms_norm", *table, what);
          }
          // Softmax over spans from n to past the next multiple of 32; NaN-free rows (a NaN makes
          // the whole row NaN either way), with -inf as masked cells inside the row.
          auto s = random_row(rng, n, sigma);
          if (specials != 0) s[rng() % s.size()] = -INFINITY;
          for (const int64_t span : {n, (n + 15) / 16 * 16, (n + 31) / 32 * 32 + 32, n + 17}) {
            want = s;
            got = s;
            ref.softmax(want.data(), n, span);
            table->softmax(got.data(), n, span);
            check_same(want, got, "softmax", *table, what + "span " + std::to_string(span));
            ++n_cases;
          }
        }
      }
    }
    CHECK(n_cases > 100);
  }
}

// ggml_v_expf's edges, through SiLU (exp(-g)): a dense sweep of g over [-140, 140] reaches every
// exponent n = round(-g / ln 2) up to the |n| > 192 cut, subnormal results (n below -126), and
// n = 128 with a mantissa below 1 (a finite result past 2^127).
TEST_CASE("every ISA's ggml_v_expf matches the reference over its whole range",
          "[kernels][isa][elementwise]") {
  const KernelTable& ref = tern::kernels::scalar_table();
  const int64_t n = int64_t{1} << 17;
  std::vector<float> gate(static_cast<size_t>(n)), up(gate.size(), 1.0f);
  for (int64_t i = 0; i < n; ++i) {
    gate[static_cast<size_t>(i)] = -140.0f + 280.0f * static_cast<float>(i) / static_cast<float>(n);
  }
  std::vector<float> want(gate.size()), got(gate.size());
  ref.silu_mul(gate.data(), up.data(), want.data(), n);
  for (const KernelTable* table : fast_tables()) {
    table->silu_mul(gate.data(), up.data(), got.data(), n);
    check_same(want, got, "silu_mul", *table, "sweep of [-140, 140]");
  }
  // Softmax stores exp(x - max) itself (scaled by about 1/7 here): rows falling from 0 to -150,
  // shifted by a fraction of a step between rows, reach the subnormal results and the n < -192 cut.
  const int64_t len = 4096;
  for (int shift = 0; shift < 8; ++shift) {
    std::vector<float> row(static_cast<size_t>(len));
    for (int64_t i = 0; i < len; ++i) {
      row[static_cast<size_t>(i)] = -150.0f *
                                    (static_cast<float>(i) + 0.125f * static_cast<float>(shift)) /
                                    static_cast<float>(len);
    }
    std::vector<float> want_row = row;
    ref.softmax(want_row.data(), len, len);
    for (const KernelTable* table : fast_tables()) {
      std::vector<float> got_row = row;
      table->softmax(got_row.data(), len, len);
      check_same(want_row, got_row, "softmax", *table, "falling row " + std::to_string(shift));
    }
  }
}

TEST_CASE("every ISA's rope gives the scalar reference's bits", "[kernels][isa][elementwise]") {
  const KernelTable& ref = tern::kernels::scalar_table();
  for (const KernelTable* table : fast_tables()) {
    std::mt19937_64 rng(43);
    // Head sizes with pair counts of every remainder mod 4 and 8; partial rotations (n_rot below
    // the head size) leave the rest of each head alone.
    for (const int64_t hd : {2, 6, 12, 18, 22, 44, 64, 80, 96, 128}) {
      for (const int64_t n_pairs : {hd / 2, hd / 2 - 1, hd / 4}) {
        if (n_pairs <= 0) continue;
        for (const int64_t n_heads : {1, 3}) {
          for (const float sigma : kSpreads) {
            const auto x = random_row(rng, n_heads * hd, sigma);
            auto cs = random_row(rng, 2 * n_pairs, 1.0f);
            std::vector<float> want = x, got = x;
            ref.rope(want.data(), n_heads, hd, cs.data(), n_pairs);
            table->rope(got.data(), n_heads, hd, cs.data(), n_pairs);
            check_same(want, got, "rope", *table,
                       describe({{"head_dim", static_cast<double>(hd)},
                                 {"n_pairs", static_cast<double>(n_pairs)},
                                 {"n_heads", static_cast<double>(n_heads)},
                                 {"sigma", sigma}}));
          }
        }
      }
    }
  }
}

TEST_CASE("every ISA's attention gives the scalar reference's bits", "[kernels][isa][attention]") {
  const KernelTable& ref = tern::kernels::scalar_table();
  for (const KernelTable* table : fast_tables()) {
    std::mt19937_64 rng(44);
    int n_cases = 0;
    // Head sizes below, at and between the 16/64-element vector parts (odd pair counts: 18, 22),
    // and odd ones (tails in every vector width: 4, 8, 16 lanes).
    for (const int64_t hd : {12, 18, 22, 44, 64, 80, 96, 128, 5, 33, 71}) {
      for (const int64_t n_pos : {1, 2, 15, 16, 17, 33, 64, 65, 100, 130}) {
        // The engine's span (cells rounded up to 32) and others: exact, to 16, far beyond.
        for (const int64_t n_kv :
             {(n_pos + 31) / 32 * 32, n_pos, (n_pos + 15) / 16 * 16, n_pos + 70}) {
          for (const int64_t n_batch : {1, 2, 7}) {
            // Key spreads: ordinary scores, scores in the hundreds (exp underflows to subnormals
            // and to 0), and fp16 keys near their largest (products near the f32 range).
            const float k_sigma = std::array{0.5f, 8.0f, 2e4f}[static_cast<size_t>(++n_cases % 3)];
            const size_t stride = static_cast<size_t>(hd) * 3 + 5;  // other heads in between
            const auto cells = static_cast<size_t>(n_pos);
            std::vector<uint16_t> k(cells * stride), v(cells * stride);
            const auto kf = random_row(rng, static_cast<int64_t>(k.size()), k_sigma);
            const auto vf = random_row(rng, static_cast<int64_t>(v.size()), 2.0f);
            for (size_t i = 0; i < k.size(); ++i) {
              k[i] = tern::fp32_to_fp16(kf[i]);
              v[i] = tern::fp32_to_fp16(vf[i]);
            }
            const auto q = random_row(rng, hd, 3.0f);
            const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
            std::vector<float> want(static_cast<size_t>(hd)), got(want.size());
            std::vector<float> scratch(cells);
            ref.attention(q.data(), k.data(), stride, v.data(), stride, n_pos, n_kv, n_batch, hd,
                          scale, want.data(), scratch.data());
            table->attention(q.data(), k.data(), stride, v.data(), stride, n_pos, n_kv, n_batch, hd,
                             scale, got.data(), scratch.data());
            check_same(want, got, "attention", *table,
                       describe({{"head_dim", static_cast<double>(hd)},
                                 {"n_pos", static_cast<double>(n_pos)},
                                 {"n_kv", static_cast<double>(n_kv)},
                                 {"n_batch", static_cast<double>(n_batch)},
                                 {"k_sigma", k_sigma}}));
          }
        }
      }
    }
    CHECK(n_cases > 500);
  }
}

// The engine's layout and call pattern: a head-major cache ([kv head][position][head_dim], so the
// position stride is head_dim), groups of query heads reading one kv head (GQA), the span rounded
// to 32 cells, and contexts from one cell to many pages of a head's keys (a 4 KiB page holds 16
// positions of 128 halves), one token or a batch.
TEST_CASE("every ISA's attention gives the reference's bits on a head-major cache with GQA",
          "[kernels][isa][attention]") {
  const KernelTable& ref = tern::kernels::scalar_table();
  for (const KernelTable* table : fast_tables()) {
    std::mt19937_64 rng(45);
    int n_cases = 0;
    for (const int64_t hd : {64, 80, 96, 128, 40, 7}) {
      const int64_t n_head_kv = 2;
      for (const int64_t group : {1, 3}) {
        const int64_t n_ctx = 1100;
        const auto cells = static_cast<size_t>(n_ctx * hd);
        std::vector<uint16_t> k(static_cast<size_t>(n_head_kv) * cells), v(k.size());
        const auto kf = random_row(rng, static_cast<int64_t>(k.size()), 1.0f);
        const auto vf = random_row(rng, static_cast<int64_t>(v.size()), 2.0f);
        for (size_t i = 0; i < k.size(); ++i) {
          k[i] = tern::fp32_to_fp16(kf[i]);
          v[i] = tern::fp32_to_fp16(vf[i]);
        }
        const int64_t n_head = n_head_kv * group;
        const auto q = random_row(rng, n_head * hd, 3.0f);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        for (const int64_t n_pos : {1, 31, 32, 33, 64, 65, 257, 1100}) {
          for (const int64_t n_batch : {1, 4}) {
            const int64_t n_kv = (n_pos + 31) / 32 * 32;
            std::vector<float> want(static_cast<size_t>(n_head * hd)), got(want.size());
            std::vector<float> scratch(static_cast<size_t>(n_kv));
            for (int64_t h = 0; h < n_head; ++h) {
              const size_t at = static_cast<size_t>(h / group) * cells;
              const auto d = static_cast<size_t>(h * hd);
              ref.attention(q.data() + d, k.data() + at, static_cast<size_t>(hd), v.data() + at,
                            static_cast<size_t>(hd), n_pos, n_kv, n_batch, hd, scale,
                            want.data() + d, scratch.data());
              table->attention(q.data() + d, k.data() + at, static_cast<size_t>(hd), v.data() + at,
                               static_cast<size_t>(hd), n_pos, n_kv, n_batch, hd, scale,
                               got.data() + d, scratch.data());
            }
            check_same(want, got, "attention", *table,
                       describe({{"head_dim", static_cast<double>(hd)},
                                 {"group", static_cast<double>(group)},
                                 {"n_pos", static_cast<double>(n_pos)},
                                 {"n_batch", static_cast<double>(n_batch)}}));
            ++n_cases;
          }
        }
      }
    }
    CHECK(n_cases == 6 * 2 * 8 * 2);
  }
}
