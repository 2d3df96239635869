// Splits a matrix product's rows over a Session's ThreadPool (engine/thread_pool.h). Products too
// small to repay a parallel region run on the calling thread.
#pragma once

#include <cstdint>

#include "engine/thread_pool.h"

namespace tern {

// Below this many multiply-adds a product runs on the calling thread. A region costs the caller
// a few microseconds (publish, wait for the slowest range, sleeping workers' wake-up), and a
// product this small is done by one thread in about that time. Measured on the 2-core Zen 4 VM
// with the scalar kernels; faster kernels move the break-even up.
inline constexpr int64_t kMinParallelWork = int64_t{1} << 16;

// Calls fn(r0, r1) over disjoint contiguous ranges covering [0, n_rows), one per pool thread.
// `work` is the product's cost in multiply-adds; below kMinParallelWork it is one fn(0, n_rows)
// call on this thread.
void parallel_rows(ThreadPool& pool, int64_t n_rows, int64_t work,
                   FunctionRef<void(int64_t, int64_t)> fn);

// Physical cores of this machine (hwloc), at least 1: the default thread count.
int default_thread_count();

}  // namespace tern
