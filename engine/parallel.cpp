// OpenMP row splitting and hwloc core counting.
#include "engine/parallel.h"

#include <hwloc.h>
#include <omp.h>

#include <algorithm>

namespace tern {
namespace {
constexpr int64_t kMinParallelWork = 1 << 16;  // ~65k MACs: below this a fork/join costs more
}

void parallel_rows(int n_threads, int64_t n_rows, int64_t work,
                   const std::function<void(int64_t, int64_t)>& fn) {
  const int nt = static_cast<int>(std::min<int64_t>(n_threads, n_rows));
  if (nt <= 1 || work < kMinParallelWork) {
    fn(0, n_rows);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t n = omp_get_num_threads();
    const int64_t r0 = n_rows * t / n;
    const int64_t r1 = n_rows * (t + 1) / n;
    if (r0 < r1) fn(r0, r1);
  }
}

int default_thread_count() {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) return 1;
  int cores = 1;
  if (hwloc_topology_load(topo) == 0) {
    cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  }
  hwloc_topology_destroy(topo);
  return std::max(cores, 1);
}

}  // namespace tern
