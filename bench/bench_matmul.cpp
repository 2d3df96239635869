// Matmul kernel microbenchmarks: every weight type with a fast kernel, on every supported ISA
// table (scalar: decode and M = 8 only), plus each table's alternative kernels, at BitNet b1.58
// 2B4T and 700M shapes, one thread. Weights are cold (in huge pages, as the engine keeps them)
// (rotated through copies larger than the L3 cache) and activations warm, as in decode. Counters:
// weight bytes read per second (GB/s), weights per second (Gw/s), multiply-adds x 2 per second
// (GOPS) and the share of a one-thread streaming read (roofline%).
// Not a test: numbers go to docs/BENCHMARKS.md. Run with --benchmark_filter=__avx512 and the like.
#include <benchmark/benchmark.h>
#include <emmintrin.h>
#include <xmmintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/read_bandwidth.h"
#include "engine/huge_pages.h"
#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "quant/types.h"

namespace {

using tern::TensorType;
using tern::TypeTraits;
using tern::kernels::KernelTable;
using tern::kernels::MatmulKernel;

// Copies of the weights span at least this much, twice the 32 MiB L3 of the machine the numbers
// were taken on, so that every call reads its weights from memory. TERN_BENCH_COLD_MIB=0 keeps
// one warm copy instead: the kernel's compute ceiling.
size_t g_cold_bytes = size_t{64} << 20;

// (k, rows) of the 2B4T projections: q/o, k/v, gate/up, down; then the 700M shape's (tern synth
// --shape 700m) q/o, down and gate/up; then Llama-2-7B's q/k/v/o, gate/up and down; last the
// 700M shape's output head (32000 rows: Q6_K in llama-quantize's Q4_K_M and ternary files).
constexpr std::pair<int64_t, int64_t> kShapes[] = {
    {2560, 2560}, {2560, 640},  {2560, 6912},  {6912, 2560},  {1536, 1536}, {4096, 1536},
    {1536, 4096}, {4096, 4096}, {4096, 11008}, {11008, 4096}, {1536, 32000}};
constexpr int64_t kBatches[] = {1, 8, 32, 128};

// Bytes per second of one thread streaming through `bytes` of `buf`, best of 5.
double read_bandwidth(const std::byte* buf, size_t bytes, bool prefetch) {
  double best = 0;
  __m128i sink = _mm_setzero_si128();
  for (int rep = 0; rep < 5; ++rep) {
    best = std::max(
        best, static_cast<double>(bytes) / tern::bench::read_seconds(buf, bytes, prefetch, sink));
  }
  benchmark::DoNotOptimize(sink);
  return best;
}

// The roofline: the fastest one-thread streaming read over 256 MiB, of 4 KiB-page memory (a
// vector) and of 2 MiB-page memory (where the engine keeps weights), each with and without
// software prefetch. Each variant is printed.
double measure_read_bandwidth() {
  constexpr size_t kBytes = size_t{256} << 20;
  std::vector<std::byte> small(kBytes + 64, std::byte{1});
  const auto huge = tern::allocate_huge_page_memory(kBytes);
  std::memset(huge.get(), 1, kBytes);
  const std::byte* small_base =
      small.data() + (64 - reinterpret_cast<uintptr_t>(small.data()) % 64) % 64;
  double best = 0;
  for (const bool use_huge : {false, true}) {
    for (const bool prefetch : {true, false}) {
      const double bw = read_bandwidth(use_huge ? huge.get() : small_base, kBytes, prefetch);
      std::printf("streaming read, 1 thread, %s pages, %s: %.1f GB/s\n",
                  use_huge ? "2 MiB" : "4 KiB", prefetch ? "prefetched" : "no prefetch", bw / 1e9);
      best = std::max(best, bw);
    }
  }
  return best;
}

double g_roofline = 0;  // bytes per second

struct Setup {
  std::vector<std::shared_ptr<std::byte[]>> weights;  // copies, in the kernel's layout
  size_t w_stride = 0;
  std::vector<std::byte> x;
  size_t x_stride = 0;
  std::vector<float> y;
};

// Random rows quantized by the type's reference quantizer (the file's layout), packed when the
// kernel asks for it.
Setup make_setup(const TypeTraits& t, const MatmulKernel& mk, int64_t k, int64_t rows, int64_t m) {
  Setup s;
  std::mt19937_64 rng(42);
  const size_t file_stride = tern::row_bytes(t, k);
  s.w_stride = tern::kernels::packed_stride(mk, k, file_stride);
  const size_t matrix = tern::kernels::packed_matrix_bytes(mk, rows, k, file_stride);
  const size_t copies =
      std::max<size_t>(g_cold_bytes > 0 ? 2 : 1, (g_cold_bytes + matrix - 1) / matrix);
  std::vector<std::byte> file(file_stride * static_cast<size_t>(rows));
  std::normal_distribution<float> normal;
  std::vector<float> f(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : f) v = normal(rng);
    t.quantize_row(f.data(), file.data() + static_cast<size_t>(r) * file_stride, k);
  }
  // In huge pages, as the engine keeps weights (engine/huge_pages.h).
  tern::HugePageArena arena(matrix * copies);
  for (size_t c = 0; c < copies; ++c) {
    std::shared_ptr<std::byte[]> w = arena.allocate(matrix);
    tern::kernels::pack_matrix(mk, file.data(), file_stride, rows, k, w.get());
    s.weights.push_back(std::move(w));
  }
  const TypeTraits& at = tern::type_traits(t.vec_dot_type);
  s.x_stride = tern::row_bytes(at, k);
  s.x.resize(s.x_stride * static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    for (float& v : f) v = normal(rng);
    at.from_float(f.data(), s.x.data() + static_cast<size_t>(i) * s.x_stride, k);
  }
  s.y.resize(static_cast<size_t>(rows * m));
  return s;
}

void bench_matmul(benchmark::State& state, const MatmulKernel* kernel, TensorType type, int64_t k,
                  int64_t rows, int64_t m) {
  const TypeTraits& t = tern::type_traits(type);
  const MatmulKernel& mk = *kernel;
  Setup s = make_setup(t, mk, k, rows, m);
  size_t i = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const auto& w = s.weights[i++ % s.weights.size()];
    mk.fn(t, w.get(), s.w_stride, rows, s.x.data(), s.x_stride, m, k, s.y.data(), rows, 0, rows);
    benchmark::DoNotOptimize(s.y.data());
    benchmark::ClobberMemory();
  }
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double per_sec = static_cast<double>(state.iterations()) / sec;
  const double bytes = static_cast<double>(s.w_stride) * static_cast<double>(rows) * per_sec;
  const double weights = static_cast<double>(k) * static_cast<double>(rows) * per_sec;
  state.counters["GB/s"] = bytes / 1e9;
  state.counters["Gw/s"] = weights / 1e9;
  state.counters["GOPS"] = 2 * weights * static_cast<double>(m) / 1e9;
  state.counters["roofline%"] = 100 * bytes / g_roofline;
}

// The weight types some supported table has a fast kernel for (the scalar entry is the baseline).
std::vector<TensorType> fast_types() {
  std::vector<TensorType> out;
  for (const TypeTraits& t : tern::all_type_traits()) {
    const auto ref = tern::kernels::scalar_table().matmul_for(t).fn;
    for (tern::kernels::Isa isa : tern::kernels::supported_isas()) {
      const auto fn = tern::kernels::table_for(isa)->matmul_for(t).fn;
      if (fn != nullptr && fn != ref) {
        out.push_back(t.type);
        break;
      }
    }
  }
  return out;
}

void register_kernel(const KernelTable* table, TensorType type, const MatmulKernel* mk) {
  for (const auto& [k, rows] : kShapes) {
    for (const int64_t m : kBatches) {
      // The scalar reference is the specification, not a contender: decode and one batch.
      if (table->isa == tern::kernels::Isa::kScalar && m > 8) continue;
      const std::string name = std::string(mk->name) + "/" + std::to_string(k) + "x" +
                               std::to_string(rows) + "/M" + std::to_string(m);
      benchmark::RegisterBenchmark(name.c_str(), bench_matmul, mk, type, k, rows, m)
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

// Each supported table's fast entries, then its alternatives (the candidates that lost, for
// measuring the choice again).
void register_all() {
  const std::vector<TensorType> types = fast_types();
  for (tern::kernels::Isa isa : tern::kernels::supported_isas()) {
    const KernelTable* table = tern::kernels::table_for(isa);
    for (const TensorType type : types) {
      register_kernel(table, type, &table->matmul_for(tern::type_traits(type)));
    }
    for (const auto& alt : table->alternatives()) register_kernel(table, alt.type, &alt.kernel);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto& f = tern::kernels::cpu_features();
  std::string built, supported;
  for (auto isa : tern::kernels::built_isas())
    built.append(" ").append(tern::kernels::isa_name(isa));
  for (auto isa : tern::kernels::supported_isas()) {
    supported.append(" ").append(tern::kernels::isa_name(isa));
  }
  if (const char* cold = std::getenv("TERN_BENCH_COLD_MIB")) {
    g_cold_bytes = static_cast<size_t>(std::strtoull(cold, nullptr, 10)) << 20;
  }
  g_roofline = measure_read_bandwidth();
  std::printf("cpu: %s\nfeatures: %s\nisa: built%s; supported%s; default %s\n", f.brand.c_str(),
              f.summary().c_str(), built.c_str(), supported.c_str(),
              std::string(tern::kernels::active_table().name).c_str());
  std::printf("threads: 1 (kernels are single-threaded; the engine splits rows)\n");
  std::printf("roofline (fastest read above): %.1f GB/s (roofline%% = 100)\n", g_roofline / 1e9);
  std::printf("weights: rotated through >= %zu MiB of copies (%s); activations warm\n\n",
              g_cold_bytes >> 20, g_cold_bytes > 0 ? "cold" : "warm: TERN_BENCH_COLD_MIB=0");
  std::fflush(stdout);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
