// `tern synth`: a random-weight llama-architecture model of a real shape, with ternary weights
// drawn as BitNet b1.58 produces them, for benchmarks. llama.cpp loads the files too (the i2_s
// ones, with bitnet.cpp's type id 36 and file type 40, are for bitnet.cpp and tern only).
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <unistd.h>

#include "engine/error.h"
#include "engine/gguf_writer.h"
#include "quant/fp16.h"
#include "quant/kquants.h"
#include "quant/types.h"
#include "tools/commands.h"

namespace tern::cli {
namespace {

struct Shape {
  const char* name;
  int32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
};

constexpr Shape kShapes[] = {
    {"tiny", 256, 2, 4, 2, 768, 512},
    {"700m", 1536, 24, 16, 16, 4096, 32000},
    {"2b4t", 2560, 30, 20, 5, 6912, 128256},
    {"7b", 4096, 32, 32, 32, 11008, 32000},
};

// splitmix64: a tiny deterministic generator seeded per row, so rows can be filled independently.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  float normal() {  // Box-Muller; u1 > 0 so the log is finite
    const double u1 = (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) *
                              std::cos(6.283185307179586 * uniform()));
  }
};

enum class Init { Ternary, Normal, Norm };

struct TensorPlan {
  std::string name;
  std::vector<int64_t> ne;
  TensorType type;
  Init init;
  float sigma;
  std::optional<I2sLayout> i2s = std::nullopt;  // stored as bitnet.cpp's I2_S (type: TQ2_0)
};

uint32_t file_type_id(TensorType t) {
  switch (t) {
    case TensorType::F32:
      return 0;
    case TensorType::F16:
      return 1;
    case TensorType::Q4_0:
      return 2;
    case TensorType::Q8_0:
      return 7;
    case TensorType::BF16:
      return 32;
    case TensorType::TQ1_0:
      return 36;
    case TensorType::TQ2_0:
      return 37;
    default:
      return 0;
  }
}

// One row of f32 values of a tensor, drawn from the row's own generator.
void draw_row(Init init, float sigma, float scale, Rng rng, std::span<float> row) {
  for (auto& v : row) {
    switch (init) {
      case Init::Ternary: {
        const float z = rng.normal() * 0.7978846f;  // x / mean|x|
        v = std::fabs(z) < 0.5f ? 0.0f : (z > 0 ? scale : -scale);
        break;
      }
      case Init::Normal:
        v = rng.normal() * sigma;
        break;
      case Init::Norm:
        v = 1.0f + 0.1f * rng.normal();
        break;
    }
  }
}

// Fills one tensor: draws f32 values row by row, then the type's reference quantizer (per row, or
// over the whole tensor for I2_S). The values do not depend on the type, so files of different
// types with the same seed hold the same ternary weights.
void fill_tensor(const TensorPlan& p, uint64_t seed, size_t index, std::span<std::byte> out) {
  const int64_t k = p.ne[0];
  const int64_t rows = p.ne.size() > 1 ? p.ne[1] : 1;
  Rng tensor_rng{seed * 1000003u + index};
  // BitNet b1.58 absmean: w = clip(round(x / mean|x|), -1, 1) * mean|x|. For x ~ N(0, s^2) the
  // mean |x| is s*sqrt(2/pi); round(x/mean) is 0 with probability P(|z| < 0.5*sqrt(2/pi)) ~ 0.31.
  // The scale is a half, so TQ2_0 blocks and I2_S's f32 scale both hold it exactly.
  const float scale = fp16_to_fp32(
      fp32_to_fp16(p.sigma * 0.7978846f * static_cast<float>(0.8 + 0.4 * tensor_rng.uniform())));
  const auto row_rng = [&](int64_t r) {
    return Rng{seed ^ (index << 40) ^ static_cast<uint64_t>(r) * 0x2545f4914f6cdd1dull};
  };
  const auto uk = static_cast<size_t>(k);
  if (p.i2s) {
    std::vector<float> all(uk * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      draw_row(p.init, p.sigma, scale, row_rng(r),
               std::span(all).subspan(uk * static_cast<size_t>(r), uk));
    if (*p.i2s == I2sLayout::kX86) {
      quant::quantize_i2_s_x86(all.data(), out.data(), all.size());
    } else {
      quant::quantize_i2_s_arm(all.data(), out.data(), all.size());
    }
    return;
  }
  const TypeTraits& t = type_traits(p.type);
  const size_t stride = row_bytes(t, k);
  std::vector<float> row(uk);
  for (int64_t r = 0; r < rows; ++r) {
    draw_row(p.init, p.sigma, scale, row_rng(r), row);
    t.quantize_row(row.data(), out.data() + static_cast<size_t>(r) * stride, k);
  }
}

struct SynthArgs {
  std::string out, shape = "tiny", type = "tq2_0", output_type, embd_type, i2s_layout = "x86";
  uint64_t seed = 42;
};

int run_synth(const SynthArgs& a) {
  const Shape* shape = nullptr;
  for (const auto& s : kShapes) {
    if (a.shape == s.name) shape = &s;
  }
  if (!shape)
    throw CLI::ValidationError("--shape", "unknown shape '" + a.shape + "' (tiny, 700m, 2b4t, 7b)");
  const auto parse = [](const std::string& opt, const std::string& name) {
    auto t = parse_type_name(name);
    if (!t || type_traits(*t).quantize_row == nullptr)
      throw CLI::ValidationError(opt, "unknown weight type '" + name + "'");
    return *t;
  };
  // i2_s: bitnet.cpp's whole-tensor ternary format, written with its type id; the matrices hold
  // the same values as --type tq2_0 with the same seed.
  const bool i2s = a.type == "i2_s" || a.type == "I2_S";
  const std::optional<I2sLayout> layout = parse_i2s_layout(a.i2s_layout);
  if (!layout) throw CLI::ValidationError("--i2s-layout", "expected x86 or arm");
  const TensorType wtype = i2s ? TensorType::TQ2_0 : parse("--type", a.type);
  const bool quantized = type_traits(wtype).is_quantized;
  const Shape& s = *shape;
  // Defaults as llama-quantize (llama.cpp c392e50) picks them for a file of this type, so that a
  // synthetic file reads the bytes a real one does: the output head Q6_K (Q8_0 for Q8_0 files and
  // rows that are not whole 256-blocks), token embeddings Q4_K for ternary files (Q5_0 when the
  // rows do not fit K-quants), else the weight type.
  const bool k_rows = s.n_embd % 256 == 0;
  const bool ternary = i2s || wtype == TensorType::TQ1_0 || wtype == TensorType::TQ2_0;
  const TensorType default_otype = !quantized                             ? wtype
                                   : wtype == TensorType::Q8_0 || !k_rows ? TensorType::Q8_0
                                                                          : TensorType::Q6_K;
  const TensorType default_etype = !ternary ? wtype : k_rows ? TensorType::Q4_K : TensorType::Q5_0;
  const TensorType otype =
      a.output_type.empty() ? default_otype : parse("--output-tensor-type", a.output_type);
  const TensorType etype =
      a.embd_type.empty() ? default_etype : parse("--token-embedding-type", a.embd_type);

  const int64_t n_embd_kv = static_cast<int64_t>(s.n_embd) / s.n_head * s.n_head_kv;
  std::vector<TensorPlan> plan;
  plan.push_back({"token_embd.weight", {s.n_embd, s.n_vocab}, etype, Init::Normal, 1.0f});
  plan.push_back({"output_norm.weight", {s.n_embd}, TensorType::F32, Init::Norm, 0});
  plan.push_back({"output.weight", {s.n_embd, s.n_vocab}, otype, Init::Normal, 0.1f});
  for (int32_t i = 0; i < s.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    plan.push_back({p + "attn_norm.weight", {s.n_embd}, TensorType::F32, Init::Norm, 0});
    plan.push_back({p + "attn_q.weight", {s.n_embd, s.n_embd}, wtype, Init::Ternary, 0.02f});
    plan.push_back({p + "attn_k.weight", {s.n_embd, n_embd_kv}, wtype, Init::Ternary, 0.02f});
    plan.push_back({p + "attn_v.weight", {s.n_embd, n_embd_kv}, wtype, Init::Ternary, 0.02f});
    plan.push_back({p + "attn_output.weight", {s.n_embd, s.n_embd}, wtype, Init::Ternary, 0.02f});
    plan.push_back({p + "ffn_norm.weight", {s.n_embd}, TensorType::F32, Init::Norm, 0});
    plan.push_back({p + "ffn_gate.weight", {s.n_embd, s.n_ff}, wtype, Init::Ternary, 0.02f});
    plan.push_back({p + "ffn_up.weight", {s.n_embd, s.n_ff}, wtype, Init::Ternary, 0.02f});
    plan.push_back({p + "ffn_down.weight", {s.n_ff, s.n_embd}, wtype, Init::Ternary, 0.02f});
  }

  if (i2s) {
    for (auto& t : plan) {
      if (t.init == Init::Ternary) t.i2s = layout;
    }
  }

  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", std::string("tern-synth-") + s.name);
  w.set_u32("general.file_type", i2s ? kI2sFileType : file_type_id(wtype));
  if (i2s) w.set_string(kI2sLayoutKey, i2s_layout_name(*layout));
  w.set_u32("general.quantization_version", 2);
  w.set_u32("llama.context_length", 4096);
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set_u32("llama.block_count", static_cast<uint32_t>(s.n_layer));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(s.n_embd / s.n_head));
  w.set_f32("llama.rope.freq_base", 10000.0f);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_u32("llama.vocab_size", static_cast<uint32_t>(s.n_vocab));

  // A SentencePiece-style vocabulary: unk, bos, eos, the 256 byte tokens, then filler pieces.
  std::vector<std::string> tokens{"<unk>", "<s>", "</s>"};
  std::vector<float> scores{0.0f, 0.0f, 0.0f};
  std::vector<int32_t> types{2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.emplace_back(buf);
    scores.push_back(0.0f);
    types.push_back(6);
  }
  for (int32_t i = static_cast<int32_t>(tokens.size()); i < s.n_vocab; ++i) {
    tokens.push_back("\xe2\x96\x81t" + std::to_string(i));
    scores.push_back(-static_cast<float>(i));
    types.push_back(1);
  }
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);

  // A counter that rewrites itself on a terminal; logs and pipes get only the final line.
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  for (size_t i = 0; i < plan.size(); ++i) {
    auto fill = [&plan, i, tty, seed = a.seed, n = plan.size()](std::span<std::byte> out) {
      fill_tensor(plan[i], seed, i, out);
      if (!tty) return;
      std::fprintf(stderr, "\rtern synth: %zu/%zu tensors", i + 1, n);
      if (i + 1 == n) std::fprintf(stderr, "\n");
    };
    if (plan[i].i2s) {
      w.add_i2s_tensor_lazy(plan[i].name, plan[i].ne, std::move(fill));
    } else {
      w.add_tensor_lazy(plan[i].name, plan[i].type, plan[i].ne, std::move(fill));
    }
  }
  w.write(a.out);
  const std::string wname = i2s ? std::string("i2_s (") + i2s_layout_name(*layout) + ")"
                                : std::string(type_traits(wtype).name);
  std::fprintf(stderr, "tern synth: wrote %s (%s, %s weights)\n", a.out.c_str(), s.name,
               wname.c_str());
  return 0;
}

}  // namespace

Command add_synth(CLI::App& root) {
  auto args = std::make_shared<SynthArgs>();
  CLI::App* app =
      root.add_subcommand("synth", "Write a random-weight model of a real shape (for benchmarks)");
  app->add_option("out", args->out, "Output GGUF file")->required();
  app->add_option("--shape", args->shape, "tiny, 700m, 2b4t or 7b")->capture_default_str();
  app->add_option("--type", args->type,
                  "Type of the block weight matrices (a tern type, or i2_s for bitnet.cpp's)")
      ->capture_default_str();
  app->add_option("--i2s-layout", args->i2s_layout,
                  "Code layout of i2_s: x86 or arm (bitnet.cpp's builds differ)")
      ->capture_default_str();
  app->add_option(
      "--output-tensor-type", args->output_type,
      "Type of output.weight (default: llama-quantize's, q6_K for most quantized types)");
  app->add_option("--token-embedding-type", args->embd_type,
                  "Type of token_embd.weight (default: llama-quantize's, q4_K for ternary types)");
  app->add_option("-s,--seed", args->seed, "Random seed")->capture_default_str();
  return {app, [args] { return run_synth(*args); }};
}

}  // namespace tern::cli
