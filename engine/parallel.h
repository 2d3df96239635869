// Splits a matrix product's rows over a Session's ThreadPool (engine/thread_pool.h). Products too
// small to repay a parallel region run on the calling thread.
#pragma once

#include <cstdint>

#include "engine/thread_pool.h"

namespace tern {

// Below this many multiply-adds a product runs on the calling thread. Measured on the 2-core
// Zen 4 VM: a region with both threads awake costs about 0.2 us (a 0.6 us job ran 1.28x faster
// on 2 threads), so with fast kernels (tens of MACs per ns) the break-even is near 2^14 MACs; a
// worker that has gone to sleep costs a 20-40 us wake-up, which small products should not wait
// for. With the scalar kernels (about 0.8 MAC/ns) 2^12 and 2^16 gave the same tg speed on the
// tiny model within noise. Real models' smallest products (2.4M MACs at 700M) are far above.
inline constexpr int64_t kMinParallelWork = int64_t{1} << 16;

// A product above kMinParallelWork is cut into chunks of at least kChunkWork multiply-adds, at
// most kMaxChunksPerThread per thread. Each thread still works through one contiguous range when
// nothing disturbs it (ThreadPool::parallel_for), but the chunks of a preempted thread that it
// has not started are taken over by the others instead of waiting for it. Measured on the 2-core
// VM, 700M TQ2_0, 2 threads, one core busy with another process: 8 chunks per thread instead of
// 1 took tg8 from 42.4 to 47.4 t/s and pp16 from 59.5 to 63.6; no change on a quiet machine.
inline constexpr int64_t kChunkWork = int64_t{1} << 18;
inline constexpr int kMaxChunksPerThread = 8;

// Calls fn(r0, r1) over disjoint contiguous ranges covering [0, n_rows), spread over the pool,
// each starting at a multiple of `align` (the kernels' row tile: a cut tile is computed twice).
// `work` is the product's cost in multiply-adds; below kMinParallelWork it is one fn(0, n_rows)
// call on this thread.
void parallel_rows(ThreadPool& pool, int64_t n_rows, int64_t work,
                   FunctionRef<void(int64_t, int64_t)> fn, int64_t align = 1);

// Physical cores of this machine (hwloc), at least 1: the default thread count.
int default_thread_count();

}  // namespace tern
