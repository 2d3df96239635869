// ThreadPool: see the theory of operation in thread_pool.h.
#include "engine/thread_pool.h"

#include <algorithm>
#include <chrono>

#include <hwloc.h>

#include "engine/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tern {
namespace {

using Clock = std::chrono::steady_clock;

// How long a waiting thread polls before it sleeps: first with a pause instruction, then with
// yield (which hands the core to another runnable thread if the machine is loaded). The budget
// must cover the serial gaps inside a forward pass (norms, attention, products below
// kMinParallelWork: about 100 us between two regions on the tiny test model with the scalar
// kernels), or workers drop out of the next region and the caller does its tasks alone. Measured
// on the 2-core Zen 4 VM, tiny model, scalar kernels, 2 threads, tg128: 50 + 200 us gave 614 t/s
// (530-674 over 5 rounds), 300 + 700 us 676 t/s (659-694), 1000 + 0 us 622 t/s; libgomp, which
// spins for about a millisecond and never yields, 618 t/s. An idle pool sleeps after kSpin +
// kYield; waking it costs 30-70 us here, which the next region's caller does not wait for.
constexpr auto kSpin = std::chrono::microseconds(300);
constexpr auto kYield = std::chrono::microseconds(700);

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// Polls ready() until it returns true or the spin and yield budgets are spent; returns ready().
template <class Ready>
bool poll(Ready ready) noexcept {
  const auto t0 = Clock::now();
  for (uint32_t i = 1;; ++i) {
    if (ready()) return true;
    cpu_relax();
    if (i % 64 == 0 && Clock::now() - t0 > kSpin) break;  // read the clock now and then
  }
  for (;;) {
    if (ready()) return true;
    std::this_thread::yield();
    if (Clock::now() - t0 > kSpin + kYield) return ready();
  }
}

// A slot word: the end of a home in the high half, its next unclaimed task in the low.
constexpr uint64_t make_word(uint32_t next, uint32_t end) {
  return uint64_t{end} << 32 | next;
}
constexpr uint32_t next_of(uint64_t word) {
  return static_cast<uint32_t>(word);
}
constexpr uint32_t end_of(uint64_t word) {
  return static_cast<uint32_t>(word >> 32);
}

// The first task of thread t's home, for n tasks over n_threads threads.
uint32_t home_begin(uint32_t n, int t, int n_threads) {
  return static_cast<uint32_t>(uint64_t{n} * static_cast<uint64_t>(t) /
                               static_cast<uint64_t>(n_threads));
}

}  // namespace

// hwloc state for placing workers; see ThreadPool::ThreadPool.
struct ThreadPool::Placement {
  hwloc_topology_t topo = nullptr;
  hwloc_bitmap_t allowed = nullptr;  // the caller's CPUs: where workers may run once started
  hwloc_bitmap_t start = nullptr;    // where they start: those, less the caller's core

  Placement() = default;
  Placement(const Placement&) = delete;
  Placement& operator=(const Placement&) = delete;
  ~Placement() {
    hwloc_bitmap_free(allowed);
    hwloc_bitmap_free(start);
  }
};

namespace {

// One topology per process, loaded on first use (about 1 ms); hwloc's binding calls on a loaded
// topology may run concurrently. Null if hwloc cannot load it: then threads are not placed.
hwloc_topology_t process_topology() {
  struct Holder {
    hwloc_topology_t topo = nullptr;
    Holder() {
      if (hwloc_topology_init(&topo) != 0) {
        topo = nullptr;
      } else if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        topo = nullptr;
      }
    }
    ~Holder() {
      if (topo) hwloc_topology_destroy(topo);
    }
  };
  static const Holder holder;
  return holder.topo;
}

}  // namespace

// The CPUs the workers of a pool created on this thread start on: the thread's allowed CPUs less
// the core it is running on (less only that CPU if that would leave none). Null if there are
// none, or binding is not supported here.
std::unique_ptr<ThreadPool::Placement> ThreadPool::make_placement() {
  auto p = std::make_unique<ThreadPool::Placement>();
  p->topo = process_topology();
  p->allowed = hwloc_bitmap_alloc();
  p->start = hwloc_bitmap_alloc();
  hwloc_bitmap_t here = hwloc_bitmap_alloc();
  bool ok = p->topo && p->allowed && p->start && here &&
            hwloc_get_cpubind(p->topo, p->allowed, HWLOC_CPUBIND_THREAD) == 0 &&
            hwloc_get_last_cpu_location(p->topo, here, HWLOC_CPUBIND_THREAD) == 0;
  if (ok) {
    const hwloc_obj_t core =
        hwloc_get_next_obj_covering_cpuset_by_type(p->topo, here, HWLOC_OBJ_CORE, nullptr);
    hwloc_bitmap_andnot(p->start, p->allowed, core ? core->cpuset : here);
    if (hwloc_bitmap_iszero(p->start)) hwloc_bitmap_andnot(p->start, p->allowed, here);
    ok = !hwloc_bitmap_iszero(p->start);
  }
  hwloc_bitmap_free(here);
  return ok ? std::move(p) : nullptr;
}

// Placement. A new thread starts on its creator's CPU, and Linux moves it to an idle one only at a
// later load balance: measured on the 2-core VM, a fresh pool's worker shared the caller's core
// for 3 to 30 regions of 100 us (up to 16 ms of 1 ms regions), so the caller did all the work of
// a short prompt alone. So each worker starts bound to the caller's other cores and, once it
// runs, widens its binding back to all the caller's CPUs: a nudge, not pinning. Pinning gained
// nothing once the threads had settled (wake-up latency 60 us either way), and a pinned worker
// cannot leave a core that another process is using.
ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  if (n_threads < 1) throw Error("thread count must be positive, got " + std::to_string(n_threads));
  if (n_threads == 1) return;
  slots_ = std::make_unique<Slot[]>(static_cast<size_t>(n_threads));
  placement_ = make_placement();
  workers_.reserve(static_cast<size_t>(n_threads - 1));
  try {
    for (int t = 1; t < n_threads; ++t) {
      workers_.emplace_back([this, t] { worker_main(t); });
      if (placement_) {
        hwloc_set_thread_cpubind(placement_->topo, workers_.back().native_handle(),
                                 placement_->start, 0);
      }
    }
  } catch (...) {
    stop_workers();
    throw;
  }
  placed_.store(true, std::memory_order_release);
}

ThreadPool::~ThreadPool() {
  stop_workers();
}

void ThreadPool::stop_workers() noexcept {
  placed_.store(true, std::memory_order_release);  // a failed constructor has not set it
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);  // publishes stop_
  generation_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
}

void ThreadPool::run(int n_tasks, TaskFn fn) noexcept {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (int t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  // Between regions: no thread holds a claimed task, so nobody reads these.
  const auto n = static_cast<uint32_t>(n_tasks);
  fn_ = fn;
  n_tasks_.store(n, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  for (int t = 0; t < n_threads_; ++t) {  // opens the region
    slots_[static_cast<size_t>(t)].word.store(
        make_word(home_begin(n, t, n_threads_), home_begin(n, t + 1, n_threads_)),
        std::memory_order_release);
  }
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
  work(0);
  wait_done(n);
}

void ThreadPool::parallel_for(int64_t n_rows, FunctionRef<void(int64_t, int64_t)> fn,
                              int chunks_per_thread, int64_t align) noexcept {
  if (n_rows <= 0) return;
  align = std::max<int64_t>(align, 1);
  const int64_t units = (n_rows + align - 1) / align;
  const int64_t n = std::min<int64_t>(units, int64_t{n_threads_} * std::max(chunks_per_thread, 1));
  run(static_cast<int>(n), [&](int task, int) {
    fn(std::min(units * task / n * align, n_rows),
       std::min(units * (task + 1) / n * align, n_rows));
  });
}

void ThreadPool::work(int thread) noexcept {
  for (int i = 0; i < n_threads_; ++i) {
    Slot& slot = slots_[static_cast<size_t>((thread + i) % n_threads_)];  // home first
    uint64_t word = slot.word.load(std::memory_order_acquire);
    while (next_of(word) < end_of(word)) {
      if (!slot.word.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
        continue;  // `word` was reloaded
      }
      // Claimed: the region cannot end before this task's increment of done_, so these are its.
      const uint32_t n = n_tasks_.load(std::memory_order_relaxed);
      fn_(static_cast<int>(next_of(word)), thread);
      if (done_.fetch_add(1, std::memory_order_seq_cst) + 1 == n &&
          caller_sleeping_.load(std::memory_order_seq_cst)) {
        done_.notify_one();
      }
      ++word;  // expect the next task; a failed exchange corrects it
    }
  }
}

void ThreadPool::wait_done(uint32_t n_tasks) noexcept {
  if (poll([&] { return done_.load(std::memory_order_acquire) == n_tasks; })) return;
  caller_sleeping_.store(true, std::memory_order_seq_cst);
  for (uint32_t d; (d = done_.load(std::memory_order_seq_cst)) != n_tasks;) {
    done_.wait(d, std::memory_order_seq_cst);
  }
  caller_sleeping_.store(false, std::memory_order_relaxed);
}

void ThreadPool::worker_main(int thread) noexcept {
  // Widen the start binding once the constructor has set it (see ThreadPool::ThreadPool).
  while (!placed_.load(std::memory_order_acquire)) std::this_thread::yield();
  if (placement_) hwloc_set_cpubind(placement_->topo, placement_->allowed, HWLOC_CPUBIND_THREAD);
  uint32_t seen = 0;  // the last generation this worker looked at
  for (;;) {
    uint32_t g = 0;
    auto changed = [&] { return (g = generation_.load(std::memory_order_acquire)) != seen; };
    if (!poll(changed)) {
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      generation_.wait(seen, std::memory_order_seq_cst);
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      changed();
    }
    if (stop_.load(std::memory_order_relaxed)) return;
    seen = g;
    work(thread);
  }
}

}  // namespace tern
