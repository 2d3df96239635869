// tern quantize's engine: llama-quantize's per-tensor type rules and a streamed, threaded rewrite.
#include "engine/quantize_model.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <utility>

#include "engine/error.h"
#include "engine/thread_pool.h"
#include "quant/blocks.h"
#include "quant/kquants.h"
#include "quant/q5.h"

namespace tern {
namespace {

using TT = TensorType;
using FT = QuantFtype;

// The order is llama-quantize's listing order for the types tern has.
constexpr std::array<QuantFtypeInfo, 15> kFtypes{{
    {FT::Q4_0, "Q4_0", TT::Q4_0, "4.5 bpw, blocks of 32"},
    {FT::Q5_0, "Q5_0", TT::Q5_0, "5.5 bpw, blocks of 32"},
    {FT::Q5_1, "Q5_1", TT::Q5_1, "6 bpw, blocks of 32 with a minimum"},
    {FT::TQ1_0, "TQ1_0", TT::TQ1_0, "1.69 bpw ternary (token_embd q4_K, output q6_K)"},
    {FT::TQ2_0, "TQ2_0", TT::TQ2_0, "2.06 bpw ternary (token_embd q4_K, output q6_K)"},
    {FT::Q4_K_S, "Q4_K_S", TT::Q4_K, "q4_K; first attn_v and ffn_down layers q5_K"},
    {FT::Q4_K_M, "Q4_K_M", TT::Q4_K, "q4_K; about half of attn_v and ffn_down q6_K"},
    {FT::Q5_K_S, "Q5_K_S", TT::Q5_K, "q5_K"},
    {FT::Q5_K_M, "Q5_K_M", TT::Q5_K, "q5_K; about half of attn_v and ffn_down q6_K"},
    {FT::Q6_K, "Q6_K", TT::Q6_K, "q6_K"},
    {FT::Q8_0, "Q8_0", TT::Q8_0, "8.5 bpw, blocks of 32"},
    {FT::F16, "F16", TT::F16, "IEEE half"},
    {FT::BF16, "BF16", TT::BF16, "bfloat16"},
    {FT::ALL_F32, "F32", TT::F32, "float"},
    {FT::MXFP4, "MXFP4", TT::MXFP4, "tern only: 4.25 bpw OCP microscaling FP4, pure"},
}};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool contains(const std::string& s, const char* what) {
  return s.find(what) != std::string::npos;
}

std::string type_name(TT t) {
  return std::string(type_traits(t).name);
}

// ggml_n_dims: trailing dimensions of 1 do not count, and llama.cpp writes only the others.
int effective_dims(const GgufTensor& t) {
  int n = 4;
  while (n > 1 && t.ne[static_cast<size_t>(n - 1)] == 1) --n;
  return n;
}

// The layer a tensor name belongs to, -1 for none: what llama.cpp's loader sorts tensors by before
// their names. sscanf on purpose: the order must be exactly the one its sscanf gives ("blk.7x" is
// layer 7, "blk.-1.x" layer -1).
int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) layer = -1;
  return layer;
}

// An integer hyperparameter that may be a scalar or a per-layer array (then its first element,
// which is what llama.cpp's n_head() and n_head_kv() return).
std::optional<int64_t> first_int(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return std::nullopt;
  const GgufValue* scalar = v;
  std::vector<GgufValue> items;
  if (v->type == GgufType::ARRAY) {
    items = std::get<GgufArray>(v->value).decode(1);
    if (items.empty()) return std::nullopt;
    scalar = &items[0];
  }
  if (!scalar->is_integer()) return std::nullopt;
  if (const auto* u = std::get_if<uint64_t>(&scalar->value)) return static_cast<int64_t>(*u);
  return std::get<int64_t>(scalar->value);
}

// What llama_tensor_get_type needs to know about the model, and its running counters.
struct RuleState {
  std::string arch;
  bool falcon = false;
  bool is_70b = false;  // llama.cpp's LLM_TYPE_70B: its attn_v gets q5_K where the mix says q4_K
  bool has_output = false;
  int64_t n_expert = 0;
  int n_layer = 0;
  int n_attention_wv = 0;
  int i_attention_wv = 0, i_ffn_down = 0, i_ffn_gate = 0, i_ffn_up = 0;
};

RuleState model_facts(const GgufFile& in, const std::vector<TensorQuantPlan>& order) {
  RuleState s;
  s.arch = in.opt_string("general.architecture").value_or("");
  s.falcon = s.arch == "falcon";
  s.n_expert = first_int(in, s.arch + ".expert_count").value_or(0);
  int max_layer = -1;
  for (const auto& p : order) {
    const std::string& name = p.tensor->name;
    if (contains(name, "attn_v.weight") || contains(name, "attn_qkv.weight") ||
        contains(name, "attn_kv_b.weight")) {
      ++s.n_attention_wv;
    } else if (name == "output.weight") {
      s.has_output = true;
    }
    max_layer = std::max(max_layer, layer_of(name));
  }
  // llama.cpp requires block_count; tern also takes a file without it, counting the layers.
  const auto block_count = first_int(in, s.arch + ".block_count");
  s.n_layer = static_cast<int>(block_count.value_or(max_layer + 1));
  const int64_t n_head = first_int(in, s.arch + ".attention.head_count").value_or(0);
  const int64_t n_head_kv = first_int(in, s.arch + ".attention.head_count_kv").value_or(n_head);
  // The architectures whose 80-layer models llama.cpp calls 70B (llama.cpp's load_hparams).
  if (s.n_layer == 80) {
    if (s.arch == "llama") {
      s.is_70b = s.n_expert != 8 && n_head != n_head_kv;  // equal head counts: 65B
    } else {
      s.is_70b = s.arch == "deci" || s.arch == "qwen2" || s.arch == "qwen2vl" || s.arch == "olmo";
    }
  }
  return s;
}

// llama-quantize quantizes only 2-D (and 3-D expert) weights, and not those that are small, read
// by index or precision-critical.
bool is_quantizable(const std::string& arch, const std::string& name, int n_dims) {
  // llama.cpp tests "ends with weight" as rfind("weight") == size() - 6, which a 5-character name
  // without "weight" also passes (npos == size() - 6); kept so such names are treated alike.
  if (name.rfind("weight") != name.size() - 6) return false;
  if (n_dims < 2) return false;
  if (contains(name, "_norm.weight") || contains(name, "ffn_gate_inp.weight")) return false;
  // Position embeddings and token types exist only in these architectures (elsewhere llama.cpp's
  // tensor name lookup yields no name, so a tensor called so is quantized like any other).
  const bool has_pos_embd =
      arch == "gpt2" || arch == "mpt" || arch == "starcoder" || arch == "bert";
  const bool has_token_types = arch == "bert" || arch == "nomic-bert" || arch == "jina-bert-v2";
  if (has_pos_embd && name == "position_embd.weight") return false;
  if (has_token_types && name == "token_types.weight") return false;
  for (const char* keep :
       {"ssm_conv1d.weight", "time_mix_first.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
        "attn_rel_b.weight"}) {
    if (contains(name, keep)) return false;
  }
  return true;
}

bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

int64_t block_of(TT t) {
  return type_traits(t).block_elems;
}

[[noreturn]] void fail_tensor(const std::string& name, const std::string& msg) {
  throw Error("tensor '" + name + "': " + msg);
}

// llama.cpp's choice when a tensor's row length is not a multiple of the chosen type's block.
TT fallback_type(const std::string& name, int64_t nx, TT chosen) {
  TT fb;
  switch (chosen) {
    case TT::TQ1_0:
    case TT::TQ2_0:
      fb = TT::Q4_0;
      break;
    case TT::Q6_K:
      fb = TT::Q8_0;
      break;
    case TT::Q4_K:
      fb = TT::Q5_0;
      break;
    case TT::Q5_K:
      fb = TT::Q5_1;
      break;
    default:
      fail_tensor(name, "rows of " + std::to_string(nx) + " are not a multiple of the " +
                            type_name(chosen) + " block size " + std::to_string(block_of(chosen)) +
                            " (llama-quantize refuses this too)");
  }
  return nx % block_of(fb) != 0 ? TT::F16 : fb;
}

// llama_tensor_get_type for the file types tern writes: the mixture rules, then the row-length
// fallback. Called once per quantized tensor, in output order (the counters depend on it).
TT mixture_type(RuleState& s, TT t, const GgufTensor& x, QuantFtype ft, const QuantizeOptions& opt,
                std::optional<TT>& fallback_from) {
  const std::string& name = x.name;
  const int64_t nx = x.ne[0];
  // ffn tensors of a mixture-of-experts model are not in layer order, so the layer comes from the
  // name.
  const auto layer = [&](int counter) {
    if (s.n_expert <= 1) return counter;
    int l = 0;
    if (std::sscanf(name.c_str(), "blk.%d.", &l) != 1) fail_tensor(name, "cannot tell its layer");
    if (l < 0 || l >= s.n_layer) {
      fail_tensor(name, "layer " + std::to_string(l) + " is not below the block count " +
                            std::to_string(s.n_layer));
    }
    return l;
  };
  const bool k_m = ft == FT::Q4_K_M || ft == FT::Q5_K_M;

  if (name == "output.weight" || (!s.has_output && name == "token_embd.weight")) {
    // A model without output.weight reads its logits off token_embd: that tensor gets the output's
    // type.
    if (opt.output_tensor_type) {
      t = *opt.output_tensor_type;
    } else if (s.falcon || nx % block_of(t) != 0) {
      t = TT::Q8_0;
    } else if (t != TT::Q8_0) {
      t = TT::Q6_K;
    }
  } else if (name == "token_embd.weight") {
    if (opt.token_embedding_type) {
      t = *opt.token_embedding_type;
    } else if (ft == FT::TQ1_0 || ft == FT::TQ2_0) {
      t = TT::Q4_K;
    }
  } else if (contains(name, "attn_v.weight")) {
    if (k_m && use_more_bits(s.i_attention_wv, s.n_attention_wv)) {
      t = TT::Q6_K;
    } else if (ft == FT::Q4_K_S && s.i_attention_wv < 4) {
      t = TT::Q5_K;
    }
    if (s.is_70b && t == TT::Q4_K) t = TT::Q5_K;  // 8 heads share attn_v: more bits are cheap
    if (s.n_expert == 8) t = TT::Q8_0;
    ++s.i_attention_wv;
  } else if (contains(name, "attn_k.weight")) {
    if (s.n_expert == 8) t = TT::Q8_0;
  } else if (contains(name, "attn_q.weight")) {
    // only the IQ3 mixes change attn_q
  } else if (contains(name, "ffn_down")) {
    const int i_layer = layer(s.i_ffn_down), n_layer = s.n_layer;
    if (ft == FT::Q4_K_M) {
      if (s.falcon) {
        t = i_layer < n_layer / 16            ? TT::Q6_K
            : use_more_bits(i_layer, n_layer) ? TT::Q5_K
                                              : TT::Q4_K;
      } else if (use_more_bits(i_layer, n_layer)) {
        t = TT::Q6_K;
      }
    } else if (ft == FT::Q5_K_M && use_more_bits(i_layer, n_layer)) {
      t = TT::Q6_K;
    } else if (ft == FT::Q4_K_S && !s.falcon && i_layer < n_layer / 8) {
      t = TT::Q5_K;
    }
    ++s.i_ffn_down;
  } else if (contains(name, "attn_output.weight")) {
    if (!s.falcon && s.n_expert == 8 && (ft == FT::Q4_K_S || ft == FT::Q4_K_M)) t = TT::Q5_K;
  } else if (contains(name, "attn_qkv.weight")) {
    if (ft == FT::Q4_K_M) {
      t = TT::Q5_K;
    } else if (ft == FT::Q5_K_M) {
      t = TT::Q6_K;
    }
  } else if (contains(name, "ffn_gate")) {
    layer(s.i_ffn_gate);  // only validates the name in MoE models; the rules are for IQ3 mixes
    ++s.i_ffn_gate;
  } else if (contains(name, "ffn_up")) {
    layer(s.i_ffn_up);
    ++s.i_ffn_up;
  }

  if (nx % block_of(t) != 0) {
    fallback_from = t;
    t = fallback_type(name, nx, t);
  }
  return t;
}

// Byte offsets of the f16 scales in one block: what ggml_validate_row_data checks for finiteness.
struct ScaleLayout {
  TT type;
  std::array<size_t, 2> offsets;
  size_t n;
};
constexpr std::array<ScaleLayout, 9> kScales{{
    {TT::Q4_0, {offsetof(BlockQ4_0, d), 0}, 1},
    {TT::Q5_0, {offsetof(BlockQ5_0, d), 0}, 1},
    {TT::Q5_1, {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)}, 2},
    {TT::Q8_0, {offsetof(BlockQ8_0, d), 0}, 1},
    {TT::Q4_K, {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)}, 2},
    {TT::Q5_K, {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)}, 2},
    {TT::Q6_K, {offsetof(BlockQ6_K, d), 0}, 1},
    {TT::TQ1_0, {offsetof(BlockTQ1_0, d), 0}, 1},
    {TT::TQ2_0, {offsetof(BlockTQ2_0, d), 0}, 1},
}};

uint16_t load_u16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Whether data of type t holds no NaN or infinity (in its values, or its blocks' f16 scales), as
// llama.cpp checks every tensor it reads and every tensor it quantizes. MXFP4 has no such check.
bool data_is_finite(TT t, const std::byte* p, size_t nbytes) {
  switch (t) {
    case TT::F32: {
      bool ok = true;
      for (size_t i = 0; i + 4 <= nbytes; i += 4) {
        uint32_t v;
        std::memcpy(&v, p + i, sizeof v);
        ok &= (v & 0x7f800000u) != 0x7f800000u;
      }
      return ok;
    }
    case TT::F16:
    case TT::BF16: {
      const uint16_t exp = t == TT::F16 ? 0x7c00 : 0x7f80;
      bool ok = true;
      for (size_t i = 0; i + 2 <= nbytes; i += 2) ok &= (load_u16(p + i) & exp) != exp;
      return ok;
    }
    default:
      break;
  }
  for (const auto& s : kScales) {
    if (s.type != t) continue;
    const size_t bb = type_traits(t).block_bytes;
    for (size_t b = 0; b + bb <= nbytes; b += bb) {
      for (size_t j = 0; j < s.n; ++j) {
        if ((load_u16(p + b + s.offsets[j]) & 0x7c00) == 0x7c00) return false;
      }
    }
  }
  return true;
}

// Rows per parallel task: enough work to repay claiming a task, little scratch per thread.
constexpr int64_t kChunkElems = int64_t{1} << 16;

// Produces one output tensor into `out` (exactly its size): copies or converts the input rows in
// parallel. Every row is quantized on its own, so the bytes do not depend on the thread count.
void produce_tensor(ThreadPool& pool, const TensorQuantPlan& p, std::span<std::byte> out) {
  const GgufTensor& x = *p.tensor;
  const TypeTraits& src = *x.traits;
  const TypeTraits& dst = type_traits(p.type);
  const int64_t k = x.ne[0];
  const int64_t rows = x.n_rows();
  const size_t src_stride = row_bytes(src, k), dst_stride = row_bytes(dst, k);
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkElems / k);
  const int64_t n_chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  if (n_chunks > INT32_MAX) fail_tensor(x.name, "too many rows");
  const bool from_f32 = src.type == TT::F32;

  // Allocated here, not in the tasks: a task must not throw (not even bad_alloc).
  std::vector<std::vector<float>> scratch;
  if (p.convert && !from_f32) {
    scratch.resize(static_cast<size_t>(pool.n_threads()));
    for (auto& s : scratch) s.resize(static_cast<size_t>(std::min(rows, rows_per_chunk) * k));
  }
  std::atomic<bool> bad_input{false}, bad_output{false};
  pool.run(static_cast<int>(n_chunks), [&](int chunk, int thread) {
    const int64_t r0 = chunk * rows_per_chunk, r1 = std::min(rows, r0 + rows_per_chunk);
    const std::byte* in = x.data + static_cast<size_t>(r0) * src_stride;
    const size_t in_bytes = static_cast<size_t>(r1 - r0) * src_stride;
    if (!data_is_finite(src.type, in, in_bytes)) bad_input.store(true, std::memory_order_relaxed);
    std::byte* o = out.data() + static_cast<size_t>(r0) * dst_stride;
    if (!p.convert) {
      std::memcpy(o, in, in_bytes);
      return;
    }
    const int64_t n = (r1 - r0) * k;
    const float* f = nullptr;
    if (from_f32) {
      f = reinterpret_cast<const float*>(in);  // tensor data is aligned (GGUF alignment >= 32)
    } else {
      float* buf = scratch[static_cast<size_t>(thread)].data();
      src.dequantize_row(in, buf, n);
      f = buf;
    }
    dst.quantize_row(f, o, n);
    if (!data_is_finite(dst.type, o, static_cast<size_t>(r1 - r0) * dst_stride)) {
      bad_output.store(true, std::memory_order_relaxed);
    }
  });
  if (bad_input) {
    fail_tensor(x.name,
                "invalid data (NaN or infinity in its " + std::string(src.name) + " values)");
  }
  if (bad_output) {
    fail_tensor(x.name, "values out of range of " + std::string(dst.name) +
                            " (the result holds infinities)");
  }
}

// Deletes a temporary output file unless it was renamed into place.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove(path_, ec);
    }
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  void keep() { path_.clear(); }

 private:
  std::string path_;
};

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::exists(b, ec) && std::filesystem::equivalent(a, b, ec);
}

}  // namespace

std::span<const QuantFtypeInfo> all_quant_ftypes() {
  return kFtypes;
}

const QuantFtypeInfo& quant_ftype_info(QuantFtype ftype) {
  for (const auto& f : kFtypes) {
    if (f.ftype == ftype) return f;
  }
  throw Error("unknown quantization file type " + std::to_string(static_cast<uint32_t>(ftype)));
}

std::optional<QuantFtype> parse_quant_ftype(std::string_view name) {
  for (const auto& f : kFtypes) {
    if (iequals(f.name, name)) return f.ftype;
  }
  if (iequals(name, "Q4_K")) return FT::Q4_K_M;
  if (iequals(name, "Q5_K")) return FT::Q5_K_M;
  // llama-quantize also takes its numeric ids; 38 is not one of them (see QuantFtype::MXFP4).
  uint32_t id = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
  if (ec == std::errc() && end == name.data() + name.size() && !name.empty()) {
    for (const auto& f : kFtypes) {
      if (static_cast<uint32_t>(f.ftype) == id && f.ftype != FT::MXFP4) return f.ftype;
    }
  }
  return std::nullopt;
}

std::optional<TensorType> parse_weight_type(std::string_view name) {
  const auto t = parse_type_name(name);
  // Q8_K is an activation format and BFP8 tern-internal: neither belongs in a model file.
  if (!t || *t == TT::Q8_K || *t == TT::BFP8 || type_traits(*t).quantize_row == nullptr) {
    return std::nullopt;
  }
  return t;
}

QuantizePlan plan_quantization(const GgufFile& in, const QuantizeOptions& opt) {
  const QuantFtypeInfo& ft = quant_ftype_info(opt.ftype);
  QuantizePlan plan;
  plan.file_type = static_cast<uint32_t>(opt.ftype);

  // llama.cpp's loader keeps tensors in a map ordered by layer, then name; it writes them so.
  std::vector<std::pair<int, const GgufTensor*>> order;
  for (const auto& t : in.tensors()) order.emplace_back(layer_of(t.name), &t);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->name < b.second->name;
  });
  for (const auto& [layer, t] : order) {
    TensorQuantPlan p;
    p.tensor = t;
    p.n_dims = effective_dims(*t);
    p.type = t->traits->type;
    plan.tensors.push_back(p);
  }

  RuleState s = model_facts(in, plan.tensors);
  // MXFP4 is tern's own type and has no mixture rules of llama.cpp's to follow.
  const bool mix = !opt.pure && type_traits(ft.default_type).is_quantized && opt.ftype != FT::MXFP4;
  for (auto& p : plan.tensors) {
    const GgufTensor& x = *p.tensor;
    if (!is_quantizable(s.arch, x.name, p.n_dims)) continue;
    TT t = ft.default_type;
    if (mix) t = mixture_type(s, t, x, opt.ftype, opt, p.fallback_from);
    // The overrides win over everything, the row-length fallback included (an override that
    // does not fit is an error below, where llama-quantize would crash).
    std::optional<TT> override_type;
    if (x.name == "token_embd.weight") override_type = opt.token_embedding_type;
    if (x.name == "output.weight") override_type = opt.output_tensor_type;
    if (override_type) {
      t = *override_type;
      p.fallback_from.reset();
    }
    if (x.ne[0] % block_of(t) != 0) {
      fail_tensor(x.name, "rows of " + std::to_string(x.ne[0]) + " are not a multiple of the " +
                              type_name(t) + " block size " + std::to_string(block_of(t)));
    }
    if (p.fallback_from) ++plan.n_fallback;
    p.type = t;
    p.convert = t != x.traits->type;
    if (p.convert && x.traits->is_quantized && !opt.allow_requantize) {
      fail_tensor(x.name,
                  "requantizing from " + std::string(x.traits->name) +
                      " is disabled (it loses quality twice; --allow-requantize permits it)");
    }
  }
  return plan;
}

void add_quantized_model(GgufWriter& w, const GgufFile& in, const QuantizePlan& plan,
                         const QuantizeOptions& opt,
                         const std::function<void(size_t tensor_index)>& on_tensor_done) {
  // The input's metadata in its order, less what describes the old file: then the two keys
  // llama-quantize sets, at the end as its gguf_set_val_* puts them.
  for (const auto& [key, value] : in.metadata()) {
    if (key == "general.quantization_version" || key == "general.file_type" || key == "split.no" ||
        key == "split.count" || key == "split.tensors.count") {
      continue;
    }
    w.copy_value(key, value);
  }
  w.set_u32("general.quantization_version", 2);  // GGML_QNT_VERSION
  w.set_u32("general.file_type", plan.file_type);

  auto pool = std::make_shared<ThreadPool>(std::max(1, opt.n_threads));
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const TensorQuantPlan& p = plan.tensors[i];
    const std::span<const int64_t> ne(p.tensor->ne.data(), static_cast<size_t>(p.n_dims));
    w.add_tensor_lazy(p.tensor->name, p.type, ne,
                      [pool, p, i, on_tensor_done](std::span<std::byte> out) {
                        produce_tensor(*pool, p, out);
                        if (on_tensor_done) on_tensor_done(i);
                      });
  }
}

QuantizeResult quantize_model(const std::string& in_path, const std::string& out_path,
                              const QuantizeOptions& opt, const QuantizeCallbacks& callbacks) {
  const GgufFile in = GgufFile::open(in_path);
  const std::string tmp_path = out_path + ".tmp";
  if (same_file(in_path, out_path) || same_file(in_path, tmp_path)) {
    throw Error(out_path + ": is the input file; write the quantized model elsewhere");
  }
  if (in.opt_uint("split.count").value_or(1) > 1) {
    throw Error(in_path +
                ": split models are not supported (merge them with llama-gguf-split first)");
  }
  const QuantizePlan plan = plan_quantization(in, opt);
  if (callbacks.on_plan) callbacks.on_plan(plan);

  QuantizeResult r;
  r.input_bytes = in.file_size();
  r.n_tensors = plan.tensors.size();
  r.n_fallback = plan.n_fallback;
  QuantizeProgress progress;
  progress.n_tensors = plan.tensors.size();
  for (const auto& p : plan.tensors) {
    progress.bytes_total += p.tensor->nbytes;
    r.n_converted += p.convert ? 1 : 0;
  }

  GgufWriter w(in.alignment());
  add_quantized_model(w, in, plan, opt, [&](size_t i) {
    progress.tensors_done = i + 1;
    progress.bytes_done += plan.tensors[i].tensor->nbytes;
    if (callbacks.on_progress) callbacks.on_progress(progress);
  });
  TempFile tmp(tmp_path);
  w.write(tmp_path);
  std::error_code ec;
  std::filesystem::rename(tmp_path, out_path, ec);
  if (ec) throw Error(out_path + ": cannot rename " + tmp_path + " into place: " + ec.message());
  tmp.keep();
  r.output_bytes = std::filesystem::file_size(out_path, ec);
  return r;
}

}  // namespace tern
