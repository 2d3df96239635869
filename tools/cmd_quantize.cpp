// `tern quantize`: rewrites a GGUF model in another type, tensor for tensor as llama-quantize does.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "engine/parallel.h"
#include "engine/quantize_model.h"
#include "tools/commands.h"

namespace tern::cli {
namespace {

struct QuantizeArgs {
  std::string in, out, type, output_type, embd_type;
  bool pure = false, allow_requantize = false;
  int n_threads = 0;
};

std::string ftype_list() {
  std::string s;
  for (const auto& f : all_quant_ftypes()) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s;
}

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

// A bar redrawn in place on a terminal; in a log (not a TTY), one line per tenth of the input.
class ProgressBar {
 public:
  ProgressBar() : tty_(::isatty(STDERR_FILENO) == 1) {}

  void update(const QuantizeProgress& p) {
    const double frac =
        p.bytes_total == 0 ? 1.0
                           : static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total);
    const int pct = static_cast<int>(frac * 100.0);
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(frac * kWidth);
      std::fprintf(stderr, "\rtern quantize: [%s%s] %3d%% %zu/%zu tensors",
                   std::string(static_cast<size_t>(filled), '#').c_str(),
                   std::string(static_cast<size_t>(kWidth - filled), ' ').c_str(), pct,
                   p.tensors_done, p.n_tensors);
      if (p.tensors_done == p.n_tensors) std::fprintf(stderr, "\n");
    } else if (pct / 10 > last_decile_ || p.tensors_done == p.n_tensors) {
      last_decile_ = pct / 10;
      std::fprintf(stderr, "tern quantize: %3d%% %zu/%zu tensors\n", pct, p.tensors_done,
                   p.n_tensors);
    }
    std::fflush(stderr);
  }

 private:
  bool tty_;
  int last_decile_ = 0;
};

int run_quantize(const QuantizeArgs& a) {
  const auto ftype = parse_quant_ftype(a.type);
  if (!ftype) {
    throw CLI::ValidationError("TYPE",
                               "unknown type '" + a.type + "' (one of " + ftype_list() + ")");
  }
  const auto weight_type = [](const std::string& opt, const std::string& name) {
    const auto t = parse_weight_type(name);
    if (!t) {
      throw CLI::ValidationError(
          opt, "unknown tensor type '" + name +
                   "' (f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K, tq1_0, tq2_0, mxfp4)");
    }
    return *t;
  };
  QuantizeOptions opt;
  opt.ftype = *ftype;
  if (!a.output_type.empty()) {
    opt.output_tensor_type = weight_type("--output-tensor-type", a.output_type);
  }
  if (!a.embd_type.empty()) {
    opt.token_embedding_type = weight_type("--token-embedding-type", a.embd_type);
  }
  opt.pure = a.pure;
  opt.allow_requantize = a.allow_requantize;
  opt.n_threads = a.n_threads > 0 ? a.n_threads : default_thread_count();

  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar bar;
  QuantizeCallbacks cb;
  cb.on_plan = [](const QuantizePlan& plan) {
    for (const auto& p : plan.tensors) {
      if (!p.fallback_from) continue;
      std::fprintf(stderr,
                   "tern quantize: warning: %s: rows of %lld do not fit %s blocks; using %s, as "
                   "llama-quantize does\n",
                   p.tensor->name.c_str(), static_cast<long long>(p.tensor->ne[0]),
                   std::string(type_traits(*p.fallback_from).name).c_str(),
                   std::string(type_traits(p.type).name).c_str());
    }
  };
  cb.on_progress = [&bar](const QuantizeProgress& p) { bar.update(p); };
  const QuantizeResult r = quantize_model(a.in, a.out, opt, cb);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(
      stderr, "tern quantize: wrote %s (%s): %s -> %s in %.2f s; %zu tensors, %zu converted",
      a.out.c_str(), std::string(quant_ftype_info(opt.ftype).name).c_str(),
      mib(r.input_bytes).c_str(), mib(r.output_bytes).c_str(), secs, r.n_tensors, r.n_converted);
  if (r.n_fallback > 0) std::fprintf(stderr, ", %zu by fallback type", r.n_fallback);
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace

Command add_quantize(CLI::App& root) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* app =
      root.add_subcommand("quantize", "Convert a GGUF model to another type, like llama-quantize");
  app->add_option("in", args->in, "Input GGUF model")->required();
  app->add_option("out", args->out, "Output GGUF file (must not be the input)")->required();
  app->add_option("type", args->type,
                  "File type: " + ftype_list() + " (Q4_K = Q4_K_M, Q5_K = Q5_K_M)")
      ->required();
  app->add_option("--output-tensor-type", args->output_type, "Type of output.weight (e.g. q8_0)");
  app->add_option("--token-embedding-type", args->embd_type,
                  "Type of token_embd.weight (e.g. q8_0)");
  app->add_flag("--pure", args->pure, "No k-quant mixture: every quantized tensor gets TYPE");
  app->add_flag("--allow-requantize", args->allow_requantize,
                "Convert tensors that are already quantized (quality suffers)");
  app->add_option("-t,--threads", args->n_threads, "Threads (default: physical cores)")
      ->check(CLI::Range(1, 1024));
  return {app, [args] { return run_quantize(*args); }};
}

}  // namespace tern::cli
