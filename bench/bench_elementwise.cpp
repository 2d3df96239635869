// Element-wise kernel microbenchmarks: layer_norm (with weight and bias), add_layer_norm, gelu,
// relu_sqr and layer_norm_gelu_add on every supported ISA table (scalar is the baseline), one row
// of GPT-2 / BitNet widths, one thread, warm data (these run on activations that were just
// written). layer_norm_gelu_add_unfused is the same result from the table's layer_norm and gelu
// and a plain add loop (the baseline of the fusion). GB/s counts the bytes of the arrays the op
// reads and writes once each (layer_norm: x, w, b, y; add_layer_norm: x, r, w, b, sum, y; the
// activations: x, y; layer_norm_gelu_add, fused or not: x, w, b, residual, out), not the kernel's
// extra passes over x.
// Not a test: run with --benchmark_filter=__avx512 and the like.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"

namespace {

using tern::kernels::KernelTable;

constexpr int64_t kWidths[] = {2560, 4096, 6912};
constexpr float kEps = 1e-5f;

enum class Op { kLayerNorm, kAddLayerNorm, kGelu, kReluSqr, kLnGeluAdd, kLnGeluAddUnfused };

struct OpInfo {
  Op op;
  const char* name;
  int arrays;  // rows of n floats read or written once
};
constexpr OpInfo kOps[] = {{Op::kLayerNorm, "layer_norm", 4},
                           {Op::kAddLayerNorm, "add_layer_norm", 6},
                           {Op::kGelu, "gelu", 2},
                           {Op::kReluSqr, "relu_sqr", 2},
                           {Op::kLnGeluAdd, "layer_norm_gelu_add", 5},
                           {Op::kLnGeluAddUnfused, "layer_norm_gelu_add_unfused", 5}};

std::vector<float> normal_row(int64_t n, float scale, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = normal(rng);
  return v;
}

void bench_op(benchmark::State& state, const KernelTable* t, OpInfo op, int64_t n) {
  std::mt19937_64 rng(42);
  const auto x = normal_row(n, 2.0f, rng);
  const auto r = normal_row(n, 2.0f, rng);
  const auto w = normal_row(n, 1.0f, rng);
  const auto b = normal_row(n, 0.1f, rng);
  std::vector<float> sum(x.size()), y(x.size());
  for (auto _ : state) {
    switch (op.op) {
      case Op::kLayerNorm:
        t->layer_norm(x.data(), w.data(), b.data(), y.data(), n, kEps);
        break;
      case Op::kAddLayerNorm:
        t->add_layer_norm(x.data(), r.data(), sum.data(), w.data(), b.data(), y.data(), n, kEps);
        break;
      case Op::kGelu:
        t->gelu(x.data(), y.data(), n);
        break;
      case Op::kReluSqr:
        t->relu_sqr(x.data(), y.data(), n);
        break;
      case Op::kLnGeluAdd:
        t->layer_norm_gelu_add(x.data(), w.data(), b.data(), r.data(), y.data(), n, kEps);
        break;
      case Op::kLnGeluAddUnfused:
        t->layer_norm(x.data(), w.data(), b.data(), sum.data(), n, kEps);
        t->gelu(sum.data(), sum.data(), n);
        for (size_t i = 0; i < y.size(); ++i) y[i] = r[i] + sum[i];
        break;
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double bytes = static_cast<double>(op.arrays) * 4.0 * static_cast<double>(n);
  state.counters["GB/s"] = benchmark::Counter(bytes * static_cast<double>(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
}

void register_all() {
  for (const tern::kernels::Isa isa : tern::kernels::supported_isas()) {
    const KernelTable* t = tern::kernels::table_for(isa);
    for (const OpInfo& op : kOps) {
      for (const int64_t n : kWidths) {
        const std::string name =
            std::string(op.name) + "__" + std::string(t->name) + "/" + std::to_string(n);
        benchmark::RegisterBenchmark(name.c_str(), bench_op, t, op, n)
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("cpu: %s\nisa: default %s; threads: 1; data warm\n\n",
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
