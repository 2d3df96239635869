// Attention and element-wise kernel microbenchmarks on every supported ISA table, one thread, at
// the 700M (head_dim 96) and BitNet 2B4T (head_dim 128) shapes: one head over n_pos cached cells
// for a single token (n_batch 1, ggml_vec_dot_f16 order) and inside a prompt batch (tinyBLAS
// order); silu_mul, rms_norm, softmax and rope over one row. The cache is warm (a head's K/V is a
// few hundred KiB at most). Counter: cells/s (attention) or elements/s.
// Not a test. Run with --benchmark_filter=__avx512 and the like.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "quant/fp16.h"

namespace {

using tern::kernels::KernelTable;

std::vector<float> random_floats(size_t n, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// One head of a cache laid out as the engine's (engine/kv_cache.h): each head's positions
// contiguous, rows of head_dim. TERN_BENCH_KV_ROWS=N interleaves N heads per position instead
// (llama.cpp's layout: 16 on the 700M shape, 5 on 2B4T).
void bench_attention(benchmark::State& state, const KernelTable* t, int64_t hd, int64_t n_pos,
                     int64_t n_batch) {
  const char* rows = std::getenv("TERN_BENCH_KV_ROWS");
  const size_t stride = static_cast<size_t>(hd) * (rows ? std::max(1, std::atoi(rows)) : 1);
  const auto cells = static_cast<size_t>(n_pos);
  std::vector<uint16_t> k(cells * stride), v(cells * stride);
  const auto kf = random_floats(k.size(), 1.0f, 1), vf = random_floats(v.size(), 1.0f, 2);
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = tern::fp32_to_fp16(kf[i]);
    v[i] = tern::fp32_to_fp16(vf[i]);
  }
  const auto q = random_floats(static_cast<size_t>(hd), 1.0f, 3);
  std::vector<float> out(static_cast<size_t>(hd)), scratch(cells);
  const int64_t n_kv = (n_pos + 31) / 32 * 32;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (auto _ : state) {
    t->attention(q.data(), k.data(), stride, v.data(), stride, n_pos, n_kv, n_batch, hd, scale,
                 out.data(), scratch.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["cells/s"] =
      benchmark::Counter(static_cast<double>(n_pos), benchmark::Counter::kIsIterationInvariantRate);
}

enum class Op { kSiluMul, kRmsNorm, kSoftmax, kRope };

void bench_row(benchmark::State& state, const KernelTable* t, Op op, int64_t n) {
  const auto a = random_floats(static_cast<size_t>(n), 3.0f, 4);
  const auto b = random_floats(static_cast<size_t>(n), 1.0f, 5);
  std::vector<float> y(a.size());
  for (auto _ : state) {
    switch (op) {
      case Op::kSiluMul:
        t->silu_mul(a.data(), b.data(), y.data(), n);
        break;
      case Op::kRmsNorm:
        t->rms_norm(a.data(), b.data(), y.data(), n, 1e-5f);
        break;
      case Op::kSoftmax:
        y = a;
        t->softmax(y.data(), n, (n + 31) / 32 * 32);
        break;
      case Op::kRope:  // n / 96 heads of 96, all pairs rotated; b holds the cos/sin
        y = a;
        t->rope(y.data(), n / 96, 96, b.data(), 48);
        break;
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["elem/s"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  for (tern::kernels::Isa isa : tern::kernels::supported_isas()) {
    const KernelTable* t = tern::kernels::table_for(isa);
    const std::string suffix = "__" + std::string(t->name);
    const bool scalar = isa == tern::kernels::Isa::kScalar;
    for (const int64_t hd : {96, 128}) {
      for (const int64_t n_pos : {32, 256, 2048}) {
        if (scalar && n_pos > 256) continue;  // milliseconds per call
        for (const int64_t n_batch : {1, 128}) {
          const std::string name = "attention_hd" + std::to_string(hd) + "_pos" +
                                   std::to_string(n_pos) + "_b" + std::to_string(n_batch) + suffix;
          benchmark::RegisterBenchmark(name.c_str(), bench_attention, t, hd, n_pos, n_batch);
        }
      }
    }
    const std::pair<const char*, Op> ops[] = {
        {"silu_mul", Op::kSiluMul}, {"rms_norm", Op::kRmsNorm}, {"softmax", Op::kSoftmax}};
    for (const auto& [op_name, op] : ops) {
      for (const int64_t n : {int64_t{1536}, int64_t{6912}}) {
        const std::string name = std::string(op_name) + "_n" + std::to_string(n) + suffix;
        benchmark::RegisterBenchmark(name.c_str(), bench_row, t, op, n);
      }
    }
    benchmark::RegisterBenchmark(("rope_16x96" + suffix).c_str(), bench_row, t, Op::kRope,
                                 int64_t{16 * 96});
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("cpu: %s\ndefault isa: %s; threads: 1\n\n",
              tern::kernels::cpu_features().brand.c_str(),
              std::string(tern::kernels::active_table().name).c_str());
  std::fflush(stdout);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
