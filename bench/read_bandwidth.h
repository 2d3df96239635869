// The machine's streaming-read bandwidth, the roofline kernel and end-to-end numbers are quoted
// against: bench_matmul's one-thread figure and bench_read's for any thread count share this loop.
#pragma once

#include <emmintrin.h>
#include <xmmintrin.h>

#include <chrono>
#include <cstddef>

namespace tern::bench {

// Seconds for one thread to stream through `bytes` of `buf` (64-byte aligned), with or without
// the software prefetch the kernels use (4 KiB ahead). SSE2 only, which every x86-64 CPU runs.
// `sink` keeps the loads.
inline double read_seconds(const std::byte* buf, size_t bytes, bool prefetch, __m128i& sink) {
  const size_t n = bytes / 16;  // 16-byte vectors
  const auto at = [buf](size_t i) {
    return _mm_load_si128(reinterpret_cast<const __m128i*>(buf + 16 * i));
  };
  const auto t0 = std::chrono::steady_clock::now();
  __m128i s[4] = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128(),
                  _mm_setzero_si128()};
  for (size_t i = 0; i + 4 <= n; i += 4) {
    if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(buf + 16 * i) + 4096, _MM_HINT_T0);
    for (int j = 0; j < 4; ++j) s[j] = _mm_add_epi64(s[j], at(i + static_cast<size_t>(j)));
  }
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sink = _mm_add_epi64(sink, _mm_add_epi64(_mm_add_epi64(s[0], s[1]), _mm_add_epi64(s[2], s[3])));
  return sec;
}

}  // namespace tern::bench
