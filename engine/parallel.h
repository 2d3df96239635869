// Splits a row range across threads (OpenMP for now; the thread-pool scheduler replaces this
// one function). Work below a size threshold runs on the calling thread: a fork/join costs more.
#pragma once

#include <cstdint>
#include <functional>

namespace tern {

// Calls fn(r0, r1) over disjoint ranges covering [0, n_rows). `work` is the total cost in
// multiply-adds; below kMinParallelWork everything runs on one thread.
void parallel_rows(int n_threads, int64_t n_rows, int64_t work,
                   const std::function<void(int64_t, int64_t)>& fn);

// Physical cores of this machine (hwloc), at least 1: the default thread count.
int default_thread_count();

}  // namespace tern
