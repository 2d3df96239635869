// ThreadPool: see the theory of operation in thread_pool.h.
#include "engine/thread_pool.h"

#include <algorithm>
#include <chrono>

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
// on the 2-core Zen 4 VM, tiny model, 2 threads, tg128: 50 + 200 us gave 614 t/s (530-674 over 5
// rounds), 300 + 700 us 676 t/s (659-694), 1000 + 0 us 622 t/s; libgomp, which spins for about
// a millisecond and never yields, 618 t/s. An idle pool sleeps after kSpin + kYield (a futex
// wake-up, 20-40 us here, then costs the next region's caller nothing: it starts without them).
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
    if (i % 64 == 0 && Clock::now() - t0 > kSpin) break;  // the clock costs ~20 pauses
  }
  for (;;) {
    if (ready()) return true;
    std::this_thread::yield();
    if (Clock::now() - t0 > kSpin + kYield) return ready();
  }
}

// The claim word: the region's generation in the high half, the next unclaimed task in the low.
constexpr uint64_t make_word(uint32_t generation, uint32_t next) {
  return uint64_t{generation} << 32 | next;
}
constexpr uint32_t next_of(uint64_t word) {
  return static_cast<uint32_t>(word);
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  if (n_threads < 1) throw Error("thread count must be positive, got " + std::to_string(n_threads));
  workers_.reserve(static_cast<size_t>(n_threads - 1));
  try {
    for (int t = 1; t < n_threads; ++t) workers_.emplace_back([this, t] { worker_main(t); });
  } catch (...) {
    stop_workers();
    throw;
  }
}

ThreadPool::~ThreadPool() {
  stop_workers();
}

void ThreadPool::stop_workers() noexcept {
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
  fn_ = fn;
  n_tasks_.store(static_cast<uint32_t>(n_tasks), std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint32_t g = ++last_generation_;
  claim_.store(make_word(g, 0), std::memory_order_release);  // opens the region
  generation_.store(g, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
  work(make_word(g, 0), 0);
  wait_done(static_cast<uint32_t>(n_tasks));
}

void ThreadPool::parallel_for(int64_t n_rows, FunctionRef<void(int64_t, int64_t)> fn) noexcept {
  if (n_rows <= 0) return;
  const int nt = static_cast<int>(std::min<int64_t>(n_threads_, n_rows));
  run(nt, [&](int task, int) { fn(n_rows * task / nt, n_rows * (task + 1) / nt); });
}

void ThreadPool::work(uint64_t word, int thread) noexcept {
  for (;;) {
    // Read after the acquire load of `word`: this region's count, or a later region's if the
    // region is already over (then the compare-exchange below fails).
    const uint32_t n = n_tasks_.load(std::memory_order_relaxed);
    if (next_of(word) >= n) return;
    if (claim_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      fn_(static_cast<int>(next_of(word)), thread);
      if (done_.fetch_add(1, std::memory_order_seq_cst) + 1 == n &&
          caller_sleeping_.load(std::memory_order_seq_cst)) {
        done_.notify_one();
      }
      ++word;
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
    work(claim_.load(std::memory_order_acquire), thread);
  }
}

}  // namespace tern
