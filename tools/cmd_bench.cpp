// `tern bench`: llama-bench's pp (one batch of N prompt tokens) and tg (N single-token steps)
// tests, with its field names, so that results compare line by line with llama-bench.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "engine/error.h"
#include "engine/model.h"
#include "engine/session.h"
#include "kernels/kernels.h"
#include "tools/commands.h"

namespace tern::cli {
namespace {

struct BenchArgs {
  std::vector<std::string> models;
  std::vector<int> n_prompt{512}, n_gen{128}, threads;
  int reps = 5;
  std::string output = "md";
  FileMemory memory = FileMemory::automatic;
};

struct BenchResult {
  std::string model, test;
  uint64_t size = 0, params = 0;
  int n_prompt = 0, n_gen = 0, n_threads = 0;
  std::vector<double> samples_ns;

  double avg_ns() const {
    double s = 0;
    for (double x : samples_ns) s += x;
    return s / static_cast<double>(samples_ns.size());
  }
  std::vector<double> ts() const {
    std::vector<double> out;
    for (double ns : samples_ns) out.push_back(1e9 * (n_prompt + n_gen) / ns);
    return out;
  }
  static double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  }
  static double stddev(const std::vector<double>& v) {
    if (v.size() < 2) return 0.0;
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(v.size() - 1));
  }
};

// Random prompt tokens, as llama-bench uses: the speed does not depend on the text.
std::vector<TokenId> random_tokens(int n, int32_t n_vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<TokenId> pick(0, n_vocab - 1);
  std::vector<TokenId> out(static_cast<size_t>(n));
  for (auto& t : out) t = pick(rng);
  return out;
}

double run_once(Session& s, const std::vector<TokenId>& prompt, int n_gen, int32_t n_vocab) {
  using Clock = std::chrono::steady_clock;
  s.reset();
  const auto t0 = Clock::now();
  if (!prompt.empty()) s.decode(prompt);
  TokenId t = n_vocab / 2;
  for (int i = 0; i < n_gen; ++i) {
    const TokenId one[1] = {t};
    s.decode(one);
    t = (t + 1) % n_vocab;
  }
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

std::string human_size(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string human_params(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ull)
    std::snprintf(buf, sizeof buf, "%.2f B", static_cast<double>(n) / 1e9);
  else if (n >= 1000000ull)
    std::snprintf(buf, sizeof buf, "%.2f M", static_cast<double>(n) / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.2f K", static_cast<double>(n) / 1e3);
  return buf;
}

int run_bench(BenchArgs a) {
  if (a.threads.empty()) a.threads = {0};
  if (a.output != "md" && a.output != "json" && a.output != "csv") {
    throw CLI::ValidationError("-o", "must be md, json or csv, got '" + a.output + "'");
  }
  std::vector<BenchResult> results;
  for (const auto& path : a.models) {
    auto model = Model::load(path, LoadOptions{.memory = a.memory, .isa = {}});
    uint64_t size = 0, params = 0;
    for (const auto& t : model->file().tensors()) {
      size += t.nbytes;
      params += static_cast<uint64_t>(t.n_elements());
    }
    const int32_t n_vocab = model->hparams().n_vocab;
    std::vector<std::pair<int, int>> tests;  // (n_prompt, n_gen)
    for (int p : a.n_prompt)
      if (p > 0) tests.emplace_back(p, 0);
    for (int g : a.n_gen)
      if (g > 0) tests.emplace_back(0, g);
    for (int threads : a.threads) {
      for (const auto& [np, ng] : tests) {
        Session s(
            *model,
            SessionOptions{.n_ctx = np + ng + 1, .n_batch = std::max(np, 1), .n_threads = threads});
        const auto prompt = random_tokens(np, n_vocab, 1234);
        // Warm-up, as llama-bench: pages in the weights and the caches.
        run_once(s, np > 0 ? prompt : std::vector<TokenId>{}, ng > 0 ? 1 : 0, n_vocab);
        BenchResult r;
        r.model = std::filesystem::path(path).filename().string();
        r.size = size;
        r.params = params;
        r.n_prompt = np;
        r.n_gen = ng;
        r.n_threads = s.n_threads();
        r.test = np > 0 ? "pp" + std::to_string(np) : "tg" + std::to_string(ng);
        for (int i = 0; i < a.reps; ++i) r.samples_ns.push_back(run_once(s, prompt, ng, n_vocab));
        if (a.output == "md") {
          const auto ts = r.ts();
          std::fprintf(stderr, "%s %s t%d: %.2f t/s\n", path.c_str(), r.test.c_str(), r.n_threads,
                       BenchResult::mean(ts));
        }
        results.push_back(std::move(r));
      }
    }
  }

  const std::string isa(kernels::active_table().name);
  if (a.output == "md") {
    std::printf("| model | size | params | backend | threads | test | t/s |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    for (const auto& r : results) {
      const auto ts = r.ts();
      std::printf("| %s | %s | %s | CPU (%s) | %d | %s | %.2f ± %.2f |\n", r.model.c_str(),
                  human_size(r.size).c_str(), human_params(r.params).c_str(), isa.c_str(),
                  r.n_threads, r.test.c_str(), BenchResult::mean(ts), BenchResult::stddev(ts));
    }
  } else if (a.output == "csv") {
    std::printf(
        "model_filename,model_size,model_n_params,backend,n_threads,n_prompt,n_gen,avg_ns,stddev_"
        "ns,avg_ts,stddev_ts\n");
    for (const auto& r : results) {
      const auto ts = r.ts();
      std::printf("\"%s\",%llu,%llu,CPU,%d,%d,%d,%.0f,%.0f,%.6f,%.6f\n", r.model.c_str(),
                  static_cast<unsigned long long>(r.size),
                  static_cast<unsigned long long>(r.params), r.n_threads, r.n_prompt, r.n_gen,
                  r.avg_ns(), BenchResult::stddev(r.samples_ns), BenchResult::mean(ts),
                  BenchResult::stddev(ts));
    }
  } else {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : results) {
      const auto ts = r.ts();
      j.push_back({{"model_filename", r.model},
                   {"model_size", r.size},
                   {"model_n_params", r.params},
                   {"backend", "CPU"},
                   {"isa", isa},
                   {"n_threads", r.n_threads},
                   {"n_prompt", r.n_prompt},
                   {"n_gen", r.n_gen},
                   {"avg_ns", r.avg_ns()},
                   {"stddev_ns", BenchResult::stddev(r.samples_ns)},
                   {"avg_ts", BenchResult::mean(ts)},
                   {"stddev_ts", BenchResult::stddev(ts)},
                   {"samples_ns", r.samples_ns},
                   {"samples_ts", ts}});
    }
    std::printf("%s\n", j.dump(2).c_str());
  }
  return 0;
}

}  // namespace

Command add_bench(CLI::App& root) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* app = root.add_subcommand(
      "bench", "Measure prompt (pp) and generation (tg) speed, like llama-bench");
  app->add_option("-m,--model", args->models, "GGUF file(s); repeat or comma-separate")
      ->required()
      ->delimiter(',');
  app->add_option("-p,--n-prompt", args->n_prompt, "Prompt lengths for pp tests (0 skips)")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("-n,--n-gen", args->n_gen, "Generated lengths for tg tests (0 skips)")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("-t,--threads", args->threads,
                  "Thread counts, e.g. 1,2 (default: physical cores)")
      ->delimiter(',')
      ->check(CLI::Range(1, 1024));
  app->add_option("-r,--repetitions", args->reps, "Repetitions of each test")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app->add_option("-o,--output", args->output, "Output format: md, json or csv")
      ->capture_default_str();
  add_file_memory_flags(app, &args->memory);
  return {app, [args] { return run_bench(*args); }};
}

}  // namespace tern::cli
