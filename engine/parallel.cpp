// Row splitting on the pool, and hwloc core counting.
#include "engine/parallel.h"

#include <hwloc.h>

#include <algorithm>

namespace tern {

void parallel_rows(ThreadPool& pool, int64_t n_rows, int64_t work,
                   FunctionRef<void(int64_t, int64_t)> fn, int64_t align) {
  if (pool.n_threads() <= 1 || n_rows <= 1 || work < kMinParallelWork) {
    if (n_rows > 0) fn(0, n_rows);
    return;
  }
  const int64_t chunks = work / (kChunkWork * pool.n_threads());
  pool.parallel_for(n_rows, fn,
                    static_cast<int>(std::clamp<int64_t>(chunks, 1, kMaxChunksPerThread)), align);
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
