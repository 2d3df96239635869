// The streaming-read roofline for T threads: each thread streams its own 256 MiB of huge-page
// memory (where the engine keeps weights), all started together; bytes / (latest end - earliest
// start), best of 5, with and without software prefetch (the faster counts). bench/compare_peers.py
// runs it in every round, so that tg cells are quoted against the bandwidth of that moment and
// thread count (on shared machines it moves by 2x within an hour).
//   bench_read [-t 1,2]   prints "threads T: G GB/s" per count
// Not a test: numbers go to docs/BENCHMARKS.md.
#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/read_bandwidth.h"
#include "engine/huge_pages.h"

namespace {

constexpr size_t kBytesPerThread = size_t{256} << 20;

// Bytes per second of `threads` threads (the caller is thread 0, so a 2-core machine runs no
// third thread that could be scheduled between the start and the clock) each streaming its part,
// best of kReps. A round spans the earliest start to the latest end, each thread's own clock
// readings: a thread preempted at the barrier makes the round slower, never faster.
double read_bandwidth(int threads, bool prefetch) {
  using Clock = std::chrono::steady_clock;
  const size_t total = kBytesPerThread * static_cast<size_t>(threads);
  const auto buf = tern::allocate_huge_page_memory(total);
  std::memset(buf.get(), 1, total);
  constexpr int kReps = 5;
  std::barrier sync(threads);
  std::vector<Clock::time_point> starts(static_cast<size_t>(threads) * kReps);
  std::vector<Clock::time_point> ends(starts.size());
  std::vector<long long> sinks(static_cast<size_t>(threads), 0);
  const auto reader = [&](int t) {
    const std::byte* part = buf.get() + kBytesPerThread * static_cast<size_t>(t);
    __m128i sink = _mm_setzero_si128();
    for (int rep = 0; rep < kReps; ++rep) {
      sync.arrive_and_wait();
      const size_t i = static_cast<size_t>(rep * threads + t);
      starts[i] = Clock::now();
      tern::bench::read_seconds(part, kBytesPerThread, prefetch, sink);
      ends[i] = Clock::now();
    }
    sinks[static_cast<size_t>(t)] = _mm_cvtsi128_si64(sink);
  };
  {
    std::vector<std::jthread> workers;
    for (int t = 1; t < threads; ++t) workers.emplace_back(reader, t);
    reader(0);
  }  // joined
  double best = 0;
  for (int rep = 0; rep < kReps; ++rep) {
    const auto first = starts.begin() + rep * threads, last = ends.begin() + rep * threads;
    const double sec = std::chrono::duration<double>(*std::max_element(last, last + threads) -
                                                     *std::min_element(first, first + threads))
                           .count();
    best = std::max(best, static_cast<double>(total) / sec);
  }
  long long all = 0;
  for (const long long v : sinks) all += v;
  if (all == 42) std::puts("");  // keeps the loads
  return best;
}

int usage(const char* msg) {
  std::fprintf(stderr, "bench_read: %s\nusage: bench_read [-t 1,2]\n", msg);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts = {1};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg != "-t" || i + 1 == argc) return usage("unknown argument or missing value");
    counts.clear();
    const std::string list = argv[++i];
    size_t pos = 0;
    while (pos <= list.size()) {
      const size_t comma = std::min(list.find(',', pos), list.size());
      const std::string item = list.substr(pos, comma - pos);
      char* end = nullptr;
      const long v = std::strtol(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || v < 1 || v > 256) {
        return usage(("bad thread count '" + item + "'").c_str());
      }
      counts.push_back(static_cast<int>(v));
      pos = comma + 1;
    }
  }
  for (const int t : counts) {
    const double bw = std::max(read_bandwidth(t, true), read_bandwidth(t, false));
    std::printf("threads %d: %.1f GB/s\n", t, bw / 1e9);
    std::fflush(stdout);
  }
  return 0;
}
