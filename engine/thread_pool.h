// ThreadPool: tern's persistent workers for the parallel regions of a forward pass (matrix
// products today). One pool per Session, created with its thread count; a different thread count
// is a different pool.
//
// Theory of operation
// -------------------
// Threads. A pool of n threads is n-1 worker threads plus the caller: the thread that calls run()
// takes part as thread 0, so a 1-thread pool has no workers and run() is a plain loop. Only one
// thread (the owner, normally the Session's user) may call run() at a time, and a task must not
// call run() on its own pool: a pool is not a shared scheduler and run() is not reentrant.
//
// A region. run(n_tasks, fn) is one parallel region. Each thread has a home: a contiguous share
// of the tasks (thread t: tasks n*t/T .. n*(t+1)/T - 1 of n, T threads). A thread claims its home
// tasks in order, then claims what is left in the other homes; so with a quiet machine each thread
// runs one contiguous range (the contiguous rows of parallel_for), and the caller, which starts at
// once, also takes the tasks of a worker that is asleep or preempted instead of waiting for it (on
// a loaded machine a worker may not run for a whole time slice). run() returns when every task has
// finished: that wait is the one barrier of a region.
//
// Shared state and who may touch it:
//  - fn_, n_tasks_, done_: written by the caller only, between regions (every task of the last
//    region has finished, no task of the next one is claimable yet). A thread reads them only
//    after it has claimed a task, which orders the read after the writes.
//  - slots_[t]: thread t's home as one 64-bit word {end, next}: the tasks next..end-1 are not
//    claimed yet. The caller stores every slot to open a region (release stores: they publish
//    fn_, n_tasks_, done_ = 0); a thread claims task `next` with a compare-exchange of next+1 on
//    the whole word. Everything a claimant needs before claiming is in the word, so a worker that
//    lags behind (it read a word of region g and was preempted while the caller finished g and
//    opened g+1) either fails its compare-exchange, or its expected word equals the new region's
//    and it claims a task of the new region, whose fn_ it then reads: both are correct.
//  - done_: tasks finished in the current region. Each thread adds 1 after its task returns; the
//    caller returns once it reaches n_tasks_. Only a thread holding a claimed task increments it,
//    so no increment can land in another region.
//  - generation_: counts regions (and shutdown): the word idle workers watch and sleep on (a futex
//    through std::atomic::wait). The slots are stored before it, so a worker that sees a new
//    generation finds that region's tasks.
//  - sleepers_ / caller_sleeping_: how many workers sleep on generation_, whether the caller
//    sleeps on done_. They let the common case (everyone spinning) skip the wake-up system call.
//    Both are Dekker pairs with seq_cst operations: a thread announces itself, then re-checks the
//    word it sleeps on (std::atomic::wait compares before blocking); the waker changes the word,
//    then reads the announcement. One of the two always sees the other, so no wake-up is lost.
//
// Waiting. Workers and the caller spin on the word they wait for (with a pause instruction), then
// spin with std::this_thread::yield, then sleep. An idle pool costs no CPU after kSpin + kYield;
// back-to-back regions (a forward pass) never sleep.
//
// Shutdown. The destructor (owner thread, no region running) sets stop_, bumps generation_,
// wakes every sleeper and joins the workers. A worker checks stop_ each time it sees a new
// generation, before looking for tasks.
//
// Placement. A worker starts bound to the caller's other cores, then widens its binding to all
// the caller's CPUs (placement_, read-only after construction); placed_ tells it the constructor
// has finished binding. See ThreadPool::ThreadPool for the measurements.
//
// Tasks of one region must not wait for each other: one thread may run all of them in turn.
//
// Exceptions. Tasks must not throw (kernels don't): run() is noexcept, so an exception from a task
// on any thread, caller included, calls std::terminate rather than unwinding while other threads
// still use the region's fn and its captures.
//
// Allocation. run() allocates nothing: fn is a FunctionRef (a pointer to the caller's callable),
// and all state lives in the pool.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace tern {

// A non-owning reference to a callable (std::function_ref before C++26): two pointers, never
// allocates. The callable must outlive every call through the reference.
template <class Signature>
class FunctionRef;

namespace detail {
// F can be referred to by Ref, a FunctionRef<R(Args...)> (and is not a Ref: that is a copy).
template <class F, class Ref, class R, class... Args>
concept RefTarget =
    !std::is_same_v<std::remove_cvref_t<F>, Ref> && std::is_invocable_r_v<R, F&, Args...>;
}  // namespace detail

template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  // Implicit, like binding a reference: callers pass lambdas straight to FunctionRef parameters.
  template <detail::RefTarget<FunctionRef, R, Args...> F>
  FunctionRef(F&& f) noexcept
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(obj_, std::forward<Args>(args)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

class ThreadPool {
 public:
  // fn(task, thread): task in [0, n_tasks); thread in [0, n_threads()), 0 being the caller, for
  // per-thread scratch. Must not throw.
  using TaskFn = FunctionRef<void(int task, int thread)>;

  // Starts n_threads - 1 workers (n_threads >= 1). Throws std::system_error if a thread cannot
  // start (the ones already started are joined).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Runs fn for every task once, spread over the pool; returns when all have finished.
  void run(int n_tasks, TaskFn fn) noexcept;

  // Splits [0, n_rows) into min(units, n_threads * chunks_per_thread) contiguous ranges of
  // nearly equal size, one per task, and calls fn(r0, r1) on each; ranges start at multiples of
  // `align` (units = n_rows / align, rounded up), so that a kernel's row tiles are not cut. Each
  // thread's home tasks are adjacent, so without stealing a thread works through one contiguous
  // range of rows; more chunks let the others take over more of a preempted thread's share.
  // Nothing if n_rows <= 0.
  void parallel_for(int64_t n_rows, FunctionRef<void(int64_t r0, int64_t r1)> fn,
                    int chunks_per_thread = 1, int64_t align = 1) noexcept;

 private:
  static constexpr size_t kLine = 64;  // keeps words written by different threads apart

  struct Placement;  // hwloc state: where workers start (thread_pool.cpp)
  static std::unique_ptr<Placement> make_placement();

  // A home: {end, next} (see the theory of operation), alone on its cache line.
  struct alignas(kLine) Slot {
    std::atomic<uint64_t> word{0};
  };

  void worker_main(int thread) noexcept;
  // Claims and runs tasks, its own home's first, until no slot has any left.
  void work(int thread) noexcept;
  void wait_done(uint32_t n_tasks) noexcept;
  void stop_workers() noexcept;

  static constexpr auto kNoTask = [](int, int) {};  // fn_ before the first region

  int n_threads_;
  std::unique_ptr<Placement> placement_;  // null: workers start wherever the OS puts them
  std::atomic<bool> placed_{false};       // the constructor has bound every worker's start
  std::vector<std::thread> workers_;
  std::unique_ptr<Slot[]> slots_;  // one per thread, allocated once

  // Read by every thread in a region; written by the caller between regions.
  alignas(kLine) std::atomic<uint32_t> n_tasks_{0};
  TaskFn fn_{kNoTask};
  // Written by every thread in a region.
  alignas(kLine) std::atomic<uint32_t> done_{0};
  std::atomic<bool> caller_sleeping_{false};
  // Watched by idle workers; written once per region.
  alignas(kLine) std::atomic<uint32_t> generation_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace tern
