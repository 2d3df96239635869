// `tern generate`: text in, generated text streamed to stdout (or one JSON object with --json).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "engine/error.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "tools/commands.h"

namespace tern::cli {
namespace {

struct GenerateArgs {
  std::string model, prompt, prompt_file;
  int32_t n_predict = 128;
  int n_threads = 0;
  int32_t n_ctx = 0;
  int32_t n_batch = 512;
  SamplerParams sampling;
  int64_t seed = -1;
  FileMemory memory = FileMemory::automatic;
  bool ignore_eos = false, json = false;
};

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open prompt file");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

int run_generate(const GenerateArgs& a) {
  const std::string prompt = a.prompt_file.empty() ? a.prompt : read_text_file(a.prompt_file);
  auto model =
      Model::load(model_path_or_default(a.model), LoadOptions{.memory = a.memory, .isa = {}});
  const Tokenizer& tok = model->tokenizer();
  const std::vector<TokenId> prompt_ids =
      tok.encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  if (prompt_ids.empty()) throw Error("the prompt is empty and the model adds no BOS token");

  Session session(*model,
                  SessionOptions{.n_ctx = a.n_ctx, .n_batch = a.n_batch, .n_threads = a.n_threads});
  SamplerParams sp = a.sampling;
  sp.seed = a.seed < 0 ? std::random_device{}() : static_cast<uint64_t>(a.seed);
  if (a.ignore_eos) {
    for (TokenId t : {tok.vocab().eos, tok.vocab().eot}) {
      if (t >= 0) sp.banned.push_back(t);
    }
  }
  Sampler sampler(sp);
  spdlog::info("{} tokens in the prompt, {} threads, context {}", prompt_ids.size(),
               session.n_threads(), session.n_ctx());

  std::vector<TokenId> generated;
  std::string text;
  Utf8StreamDecoder utf8;
  const GenerateTimings t = generate(
      session, sampler, prompt_ids,
      GenerateOptions{.n_predict = a.n_predict, .ignore_eos = a.ignore_eos}, [&](TokenId id) {
        generated.push_back(id);
        const std::string piece = utf8.push(tok.token_to_piece(id));
        if (a.json) {
          text += piece;
        } else if (!piece.empty()) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        }
        return true;
      });
  const std::string rest = utf8.flush();
  if (a.json) {
    text += rest;
    nlohmann::json j;
    j["prompt_tokens"] = prompt_ids;
    j["tokens"] = generated;
    j["text"] = text;
    j["timings"] = {{"prompt_n", t.n_prompt},
                    {"prompt_ms", t.prompt_ms},
                    {"prompt_per_second", t.prompt_tps()},
                    {"predicted_n", t.n_generated},
                    {"predicted_ms", t.generate_ms},
                    {"predicted_per_second", t.generate_tps()}};
    const std::string out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::printf("%s\n", out.c_str());
  } else {
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::printf("\n");
  }
  std::fflush(stdout);
  std::fprintf(stderr,
               "tern: prompt %d tokens in %.2f ms (%.2f tok/s), generated %d tokens in %.2f ms "
               "(%.2f tok/s)\n",
               t.n_prompt, t.prompt_ms, t.prompt_tps(), t.n_generated, t.generate_ms,
               t.generate_tps());
  return 0;
}

}  // namespace

Command add_generate(CLI::App& root) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* app = root.add_subcommand("generate", "Generate text from a prompt");
  app->add_option("-m,--model", args->model, "GGUF model file (default: the bundled demo model)");
  auto* p = app->add_option("-p,--prompt", args->prompt, "Prompt text");
  auto* f = app->add_option("-f,--file", args->prompt_file, "Read the prompt from a file")
                ->check(CLI::ExistingFile);
  p->excludes(f);
  f->excludes(p);
  app->add_option("-n,--n-predict", args->n_predict,
                  "Tokens to generate (-1: until end of sequence)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 1 << 30));
  app->add_option("-t,--threads", args->n_threads, "Threads (default: physical cores)")
      ->check(CLI::Range(1, 1024));
  app->add_option("-c,--ctx-size", args->n_ctx, "Context size (default: the model's, at most 4096)")
      ->check(CLI::Range(1, 1 << 24));
  app->add_option("-b,--batch-size", args->n_batch, "Prompt tokens per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  app->add_option("--temp", args->sampling.temp, "Temperature (0: greedy)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  app->add_option("--top-k", args->sampling.top_k, "Top-k (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));
  app->add_option("--top-p", args->sampling.top_p, "Top-p (1: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--min-p", args->sampling.min_p, "Min-p (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--repeat-penalty", args->sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  app->add_option("--repeat-last-n", args->sampling.repeat_last_n,
                  "Tokens the penalty looks back over")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 24));
  app->add_option("-s,--seed", args->seed, "Random seed (-1: random)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{-1}, INT64_MAX));
  add_file_memory_flags(app, &args->memory);
  app->add_flag("--ignore-eos", args->ignore_eos, "Never sample end-of-sequence; keep generating");
  app->add_flag("--json", args->json,
                "Print one JSON object (ids, text, timings) instead of streaming text");
  app->add_flag_callback(
      "-v,--verbose", [] { spdlog::set_level(spdlog::level::info); }, "Log progress to stderr");
  return {app, [args] {
            if (args->prompt.empty() && args->prompt_file.empty()) {
              throw CLI::RequiredError("-p or -f");
            }
            return run_generate(*args);
          }};
}

}  // namespace tern::cli
