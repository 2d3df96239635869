// ThreadPool and parallel_rows: coverage of rows and tasks, many tiny regions without lost
// wake-ups, shutdown in every state, no allocation per region, and a real model giving the same
// logits on any thread count. Every loop is finite: a hang fails through CTest's TIMEOUT.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <random>
#include <thread>
#include <vector>

#include "engine/generate.h"
#include "engine/model.h"
#include "engine/parallel.h"
#include "engine/thread_pool.h"

// Counts allocations while g_count_allocs is set, from any thread (this executable only).
namespace {
std::atomic<bool> g_count_allocs{false};
std::atomic<int64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t size) {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

using namespace std::chrono_literals;

// Runs parallel_for and checks that every row is covered once, by min(units, n_threads * chunks)
// non-empty ranges that start at multiples of `align` (units: n_rows / align, rounded up).
void check_cover(tern::ThreadPool& pool, int64_t n_rows, int chunks, int64_t align = 1) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(std::max<int64_t>(n_rows, 0)));
  std::atomic<int> calls{0};
  std::atomic<bool> empty_range{false}, misaligned{false};
  pool.parallel_for(
      n_rows,
      [&](int64_t r0, int64_t r1) {
        calls.fetch_add(1);
        if (r0 >= r1) empty_range = true;
        if (r0 % align != 0) misaligned = true;
        for (int64_t r = r0; r < r1; ++r) hits[static_cast<size_t>(r)].fetch_add(1);
      },
      chunks, align);
  INFO("n_threads " << pool.n_threads() << " n_rows " << n_rows << " chunks " << chunks << " align "
                    << align);
  CHECK_FALSE(empty_range.load());
  CHECK_FALSE(misaligned.load());
  const int64_t units = n_rows <= 0 ? 0 : (n_rows + align - 1) / align;
  CHECK(calls.load() == std::min<int64_t>(units, int64_t{pool.n_threads()} * chunks));
  int64_t wrong = 0;
  for (auto& h : hits) wrong += h.load() != 1;
  CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("parallel_for covers every row exactly once", "[thread_pool]") {
  for (int n_threads : {1, 2, 3, 4, 7, 16}) {
    tern::ThreadPool pool(n_threads);
    CHECK(pool.n_threads() == n_threads);
    for (int64_t n_rows : {-1, 0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 63, 64, 1000, 4097}) {
      for (int chunks : {1, 3, 8}) {
        for (int64_t align : {1, 4, 8}) check_cover(pool, n_rows, chunks, align);
      }
    }
  }
}

TEST_CASE("run executes every task once, each thread index on one thread at a time",
          "[thread_pool]") {
  for (int n_threads : {1, 2, 3, 5}) {
    tern::ThreadPool pool(n_threads);
    for (int n_tasks : {0, 1, 2, 3, 4, 9, 100, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n_tasks));
      std::vector<std::atomic<bool>> busy(static_cast<size_t>(n_threads));
      std::atomic<int> bad_thread{0}, overlap{0};
      pool.run(n_tasks, [&](int task, int thread) {
        if (thread < 0 || thread >= n_threads) {
          bad_thread.fetch_add(1);
          return;
        }
        // Per-thread scratch indexed by `thread` must never be used by two tasks at once.
        if (busy[static_cast<size_t>(thread)].exchange(true)) overlap.fetch_add(1);
        hits[static_cast<size_t>(task)].fetch_add(1);
        busy[static_cast<size_t>(thread)].store(false);
      });
      INFO("n_threads " << n_threads << " n_tasks " << n_tasks);
      CHECK(bad_thread.load() == 0);
      CHECK(overlap.load() == 0);
      int wrong = 0;
      for (auto& h : hits) wrong += h.load() != 1;
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("100k tiny regions lose no task and no wake-up", "[thread_pool]") {
  // 3 threads on a 2-core machine: workers get preempted in the middle of regions.
  for (int n_threads : {2, 3}) {
    tern::ThreadPool pool(n_threads);
    std::vector<int64_t> per_task(static_cast<size_t>(n_threads), 0);
    constexpr int kRegions = 100'000;
    for (int i = 0; i < kRegions; ++i) {
      // Plain increments: each task index runs once per region, and run() orders regions.
      pool.run(n_threads, [&](int task, int) { ++per_task[static_cast<size_t>(task)]; });
    }
    for (int64_t c : per_task) CHECK(c == kRegions);
  }
}

TEST_CASE("regions separated by pauses around the spin budget wake sleeping workers",
          "[thread_pool]") {
  // Gaps from 0 to beyond spin + yield, so that workers are caught spinning, yielding, falling
  // asleep and asleep when a region opens.
  tern::ThreadPool pool(2);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> gap_us(0, 400);
  int64_t sum = 0;
  for (int i = 0; i < 2000; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(gap_us(rng)));
    std::atomic<int64_t> region{0};
    pool.parallel_for(64, [&](int64_t r0, int64_t r1) { region.fetch_add(r1 - r0); });
    sum += region.load();
  }
  CHECK(sum == 2000 * 64);
}

// The caller takes the tasks of a worker that is slow to come, so coverage alone would not notice
// a worker that never wakes up. Here task 0 waits for task 1 to start, so the worker must run it
// (bounded: a missing worker fails the check after 10 s instead of hanging).
TEST_CASE("workers wake up for every region, asleep or spinning", "[thread_pool]") {
  tern::ThreadPool pool(2);
  int missed = 0;
  for (int i = 0; i < 150; ++i) {
    // No pause (spinning), a short one (spinning or yielding), a long one (asleep on the futex).
    std::this_thread::sleep_for(std::chrono::microseconds(i % 3 == 0   ? 0
                                                          : i % 3 == 1 ? 100
                                                                       : 3000));
    std::atomic<bool> started{false}, seen{true};
    pool.run(2, [&](int task, int) {
      if (task == 1) {
        started = true;
        return;
      }
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (!started.load()) {
        if (std::chrono::steady_clock::now() > deadline) {
          seen = false;
          return;
        }
        std::this_thread::yield();
      }
    });
    missed += !seen.load();
    if (missed > 0) break;  // one timeout is enough to fail
  }
  CHECK(missed == 0);
}

TEST_CASE("a pool shuts down in any state", "[thread_pool]") {
  SECTION("never used") {
    for (int i = 0; i < 200; ++i) tern::ThreadPool pool(3);
  }
  SECTION("right after a region, workers still spinning") {
    for (int i = 0; i < 200; ++i) {
      tern::ThreadPool pool(2);
      std::atomic<int> n{0};
      pool.run(2, [&](int, int) { n.fetch_add(1); });
      CHECK(n.load() == 2);
    }
  }
  SECTION("idle, workers asleep") {
    tern::ThreadPool pool(4);
    pool.run(4, [](int, int) {});
    std::this_thread::sleep_for(20ms);
  }
}

TEST_CASE("a thread count below 1 is an error", "[thread_pool]") {
  CHECK_THROWS(tern::ThreadPool(0));
  CHECK_THROWS(tern::ThreadPool(-3));
}

TEST_CASE("parallel_rows keeps small products on the calling thread", "[thread_pool]") {
  tern::ThreadPool pool(2);
  const auto self = std::this_thread::get_id();
  int calls = 0;
  bool on_caller = true;
  tern::parallel_rows(pool, 100, tern::kMinParallelWork - 1, [&](int64_t r0, int64_t r1) {
    ++calls;
    on_caller = on_caller && std::this_thread::get_id() == self && r0 == 0 && r1 == 100;
  });
  CHECK(calls == 1);
  CHECK(on_caller);
  std::atomic<int64_t> rows{0};
  tern::parallel_rows(pool, 100, tern::kMinParallelWork,
                      [&](int64_t r0, int64_t r1) { rows.fetch_add(r1 - r0); });
  CHECK(rows.load() == 100);
}

TEST_CASE("regions do not allocate", "[thread_pool]") {
  tern::ThreadPool pool(2);
  std::vector<float> out(256, 0.0f);
  const float a = 2.0f, b = 1.0f;
  int64_t allocs = -1;
  {
    g_allocs = 0;
    g_count_allocs = true;
    for (int i = 0; i < 1000; ++i) {
      // Captures more than std::function's small buffer would hold.
      tern::parallel_rows(pool, 256, tern::kMinParallelWork, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          out[static_cast<size_t>(r)] += a * b + static_cast<float>(i);
      });
    }
    g_count_allocs = false;
    allocs = g_allocs.load();
  }
  CHECK(allocs == 0);
}

TEST_CASE("a real model gives the same logits on 1, 2 and 3 threads", "[thread_pool]") {
  const std::string path = std::string(TERN_SHARED_DIR) + "/models/tiny-ternary-random-TQ2_0.gguf";
  auto model = tern::Model::load(path);
  const auto prompt = model->tokenizer().encode("Once upon a time, there was a cat who", true);
  // Prompt in one batch, then 24 single-token steps: every step's logits must match bit for bit.
  auto run = [&](int n_threads) {
    tern::Session session(*model, {.n_ctx = 64, .n_batch = 512, .n_threads = n_threads});
    std::vector<float> all;
    auto logits = session.decode(prompt);
    for (int i = 0; i < 24; ++i) {
      all.insert(all.end(), logits.begin(), logits.end());
      const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
      const tern::TokenId next[1] = {static_cast<tern::TokenId>(best)};
      logits = session.decode(next);
    }
    return all;
  };
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}

// The prompt is long enough for the attention of every layer to be spread over the pool (more
// than kMinParallelWork multiply-adds), with heads split across threads, each on its own scratch.
TEST_CASE("parallel attention gives the same logits on 1, 2 and 3 threads", "[thread_pool]") {
  const std::string path = std::string(TERN_SHARED_DIR) + "/models/tiny-ternary-random-TQ2_0.gguf";
  auto model = tern::Model::load(path);
  std::string text;
  for (int i = 0; i < 6; ++i) text.append("Once upon a time, there was a cat who liked the sun. ");
  const auto prompt = model->tokenizer().encode(text, true);
  const auto& hp = model->hparams();
  const auto n = static_cast<int64_t>(prompt.size());
  REQUIRE(int64_t{hp.n_head} * n * (n + 1) * hp.head_dim > tern::kMinParallelWork);
  auto run = [&](int n_threads) {
    tern::Session session(*model, {.n_ctx = 256, .n_batch = 512, .n_threads = n_threads});
    const auto logits = session.decode(prompt);
    return std::vector<float>(logits.begin(), logits.end());
  };
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}
