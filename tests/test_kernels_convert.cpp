// Tests of the f32 -> fp16 row conversion (KernelTable::fp32_to_fp16_row, the KV cache store):
// the scalar entry is quant/fp16.h's conversion, and every supported ISA's entry gives its bits
// on the rounding boundaries of every half, every NaN and infinity class, subnormals, random bit
// patterns, and every row length and alignment around the vector widths.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kernels/kernels.h"
#include "quant/fp16.h"

namespace {

using tern::fp32_from_bits;
using tern::fp32_to_bits;
using tern::kernels::Isa;
using tern::kernels::KernelTable;

// Every table this CPU runs, scalar included (test_kernels_isa names built ones it skips).
std::vector<const KernelTable*> tables() {
  std::vector<const KernelTable*> out;
  for (const Isa isa : tern::kernels::supported_isas())
    out.push_back(tern::kernels::table_for(isa));
  return out;
}

// Floats where rounding to half is decided: for every non-negative finite half h, h itself, the
// midpoint to the next half (a tie) and the floats just below and above it, each with both signs;
// then infinities, NaNs (quiet and signalling, empty and full payloads), f32 subnormals, and the
// overflow threshold 65520.
std::vector<float> boundary_values() {
  std::vector<float> v;
  const auto both_signs = [&v](float f) {
    v.push_back(f);
    v.push_back(-f);
  };
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    const float lo = tern::fp16_to_fp32(static_cast<uint16_t>(h));
    const float hi = tern::fp16_to_fp32(static_cast<uint16_t>(h + 1));  // 0x7c00: infinity
    // The midpoint of two adjacent halves needs 12 significant bits: exact in f32 (and in
    // double, where it is computed, so the infinity case gives 65520).
    const auto mid = static_cast<float>((static_cast<double>(lo) + static_cast<double>(hi)) / 2);
    both_signs(lo);
    both_signs(mid);
    both_signs(std::nextafter(mid, 0.0f));
    both_signs(std::nextafter(mid, std::numeric_limits<float>::infinity()));
  }
  both_signs(std::numeric_limits<float>::infinity());
  both_signs(std::numeric_limits<float>::max());
  both_signs(std::numeric_limits<float>::denorm_min());
  both_signs(std::numeric_limits<float>::min());
  both_signs(fp32_from_bits(0x007fffffu));  // largest f32 subnormal
  for (const uint32_t nan : {0x7fc00000u, 0x7f800001u, 0x7fffffffu, 0x7fa00000u, 0x7fc00001u,
                             0x7f802000u, 0x7f801fffu, 0x7fe01234u}) {
    v.push_back(fp32_from_bits(nan));
    v.push_back(fp32_from_bits(nan | 0x80000000u));
  }
  return v;
}

// One row converted by table t, at element offset `offset` into the buffers (unaligned starts),
// with guard halves after the row that must stay untouched.
std::vector<uint16_t> convert(const KernelTable& t, const std::vector<float>& x, size_t offset) {
  constexpr uint16_t kGuard = 0xabcd;
  std::vector<float> in(offset + x.size());
  std::memcpy(in.data() + offset, x.data(), x.size() * sizeof(float));
  std::vector<uint16_t> out(offset + x.size() + 16, kGuard);
  t.fp32_to_fp16_row(in.data() + offset, out.data() + offset, static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < offset; ++i) REQUIRE(out[i] == kGuard);
  for (size_t i = offset + x.size(); i < out.size(); ++i) REQUIRE(out[i] == kGuard);
  return {out.begin() + static_cast<std::ptrdiff_t>(offset),
          out.begin() + static_cast<std::ptrdiff_t>(offset + x.size())};
}

// The first mismatch as a readable line, or "" when a and b are equal.
std::string first_difference(const std::vector<float>& x, const std::vector<uint16_t>& got,
                             const std::vector<uint16_t>& want) {
  for (size_t i = 0; i < x.size(); ++i) {
    if (got[i] != want[i]) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "element %zu: f32 bits 0x%08x gave 0x%04x, want 0x%04x", i,
                    fp32_to_bits(x[i]), got[i], want[i]);
      return buf;
    }
  }
  return "";
}

}  // namespace

TEST_CASE("the scalar fp32_to_fp16_row is quant/fp16.h's conversion", "[kernels][fp16]") {
  const auto x = boundary_values();
  const auto got = convert(tern::kernels::scalar_table(), x, 0);
  std::vector<uint16_t> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = tern::fp32_to_fp16(x[i]);
  CHECK(first_difference(x, got, want).empty());
  // The NaN policy: sign kept, payload replaced by the canonical quiet NaN.
  const auto nan = convert(tern::kernels::scalar_table(),
                           {fp32_from_bits(0x7f800001u), fp32_from_bits(0xffffffffu)}, 0);
  CHECK(nan[0] == 0x7e00);
  CHECK(nan[1] == 0xfe00);
}

TEST_CASE("every ISA's fp32_to_fp16_row gives the scalar reference's bits",
          "[kernels][isa][fp16]") {
  const KernelTable& ref = tern::kernels::scalar_table();
  std::mt19937_64 rng(7);
  std::vector<std::vector<float>> rows;
  rows.push_back(boundary_values());
  // Random bit patterns: every exponent, NaNs and infinities included.
  std::vector<float> bits(100003);
  for (auto& f : bits) f = fp32_from_bits(static_cast<uint32_t>(rng()));
  rows.push_back(std::move(bits));
  // Every short length (the tails), and lengths around the 8- and 16-lane steps.
  std::normal_distribution<float> normal(0.0f, 100.0f);
  for (const int64_t n : {1,  2,  3,  5,  7,  8,  9,  15,  16,  17,  23,  24,  31,
                          32, 33, 47, 63, 64, 65, 96, 127, 128, 129, 255, 256, 1537}) {
    std::vector<float> r(static_cast<size_t>(n));
    for (auto& f : r) f = normal(rng);
    rows.push_back(std::move(r));
  }
  for (const KernelTable* t : tables()) {
    for (const auto& x : rows) {
      const auto want = convert(ref, x, 0);
      for (const size_t offset : {size_t{0}, size_t{1}, size_t{3}}) {
        INFO(t->name << ", n = " << x.size() << ", offset " << offset);
        CHECK(first_difference(x, convert(*t, x, offset), want).empty());
      }
    }
  }
}
