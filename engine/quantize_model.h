// Model quantization behind `tern quantize`: llama-quantize's per-tensor type rules, then a
// streamed rewrite.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "quant/types.h"

namespace tern {

// The file types tern can write. Values are llama.cpp's llama_ftype ids (general.file_type).
enum class QuantFtype : uint32_t {
  ALL_F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 7,
  Q5_0 = 8,
  Q5_1 = 9,
  Q4_K_S = 14,
  Q4_K_M = 15,
  Q5_K_S = 16,
  Q5_K_M = 17,
  Q6_K = 18,
  BF16 = 32,
  TQ1_0 = 36,
  TQ2_0 = 37,
  // tern's own: llama.cpp c392e50 has no MXFP4 file type. 38 is the id later llama.cpp gives its
  // MXFP4 mix; tern's MXFP4 is pure (every quantized tensor MXFP4, no mixture rules).
  MXFP4 = 38,
};

struct QuantFtypeInfo {
  QuantFtype ftype;
  std::string_view name;  // as llama-quantize spells it: "Q4_K_M", "TQ2_0", ...
  TensorType default_type;
  std::string_view description;
};

std::span<const QuantFtypeInfo> all_quant_ftypes();
const QuantFtypeInfo& quant_ftype_info(QuantFtype ftype);
// Case-insensitive name, llama-quantize's aliases (Q4_K = Q4_K_M, Q5_K = Q5_K_M) or its numeric id.
std::optional<QuantFtype> parse_quant_ftype(std::string_view name);
// A tensor type a file may be written in (--output-tensor-type, --token-embedding-type):
// case-insensitive ggml name of a type tern has a weight quantizer for.
std::optional<TensorType> parse_weight_type(std::string_view name);

struct QuantizeOptions {
  QuantFtype ftype = QuantFtype::Q8_0;
  std::optional<TensorType> output_tensor_type;    // output.weight (and a tied token_embd)
  std::optional<TensorType> token_embedding_type;  // token_embd.weight
  bool pure = false;              // no mixture rules: every quantized tensor gets the default type
  bool allow_requantize = false;  // convert tensors that are already quantized (lossy twice)
  int n_threads = 1;              // rows are quantized in parallel; the bytes do not depend on it
};

// What happens to one tensor of the input.
struct TensorQuantPlan {
  const GgufTensor* tensor = nullptr;  // in the input file
  int n_dims = 1;                      // as written: trailing dimensions of 1 dropped, like ggml
  TensorType type = TensorType::F32;   // type in the output
  bool convert = false;                // false: the bytes are copied unchanged
  // The type the rules chose before the row length forced `type` (llama.cpp's "fallback").
  std::optional<TensorType> fallback_from;
};

struct QuantizePlan {
  std::vector<TensorQuantPlan> tensors;  // in output order (llama-quantize's: by layer, then name)
  uint32_t file_type = 0;
  size_t n_fallback = 0;
};

// Decides every tensor's output type as llama-quantize (llama.cpp c392e50) does for these options.
// Throws tern::Error for what it would refuse or crash on: a row length no fallback type fits, an
// override type that does not fit, a quantized tensor to convert without allow_requantize.
QuantizePlan plan_quantization(const GgufFile& in, const QuantizeOptions& opt);

// Puts the output's metadata and tensors into `w` (an empty writer with the input's alignment);
// each tensor is converted only when the writer asks for its bytes. on_tensor_done(i) runs after
// plan.tensors[i] has been produced.
void add_quantized_model(GgufWriter& w, const GgufFile& in, const QuantizePlan& plan,
                         const QuantizeOptions& opt,
                         const std::function<void(size_t tensor_index)>& on_tensor_done = {});

struct QuantizeProgress {
  size_t tensors_done = 0, n_tensors = 0;
  uint64_t bytes_done = 0, bytes_total = 0;  // input bytes
};

struct QuantizeResult {
  uint64_t input_bytes = 0, output_bytes = 0;  // file sizes
  size_t n_tensors = 0, n_converted = 0, n_fallback = 0;
};

// Quantizes the model at in_path into out_path: writes out_path + ".tmp" and renames it, so a
// failure never leaves a partial out_path (the temporary file is removed). Memory stays near one
// tensor: the input is mapped and each output tensor is produced just before it is written.
// Throws tern::Error for a missing or corrupt input, out_path naming the input, and plan errors.
struct QuantizeCallbacks {
  std::function<void(const QuantizePlan&)> on_plan;          // before anything is written
  std::function<void(const QuantizeProgress&)> on_progress;  // after each tensor
};
QuantizeResult quantize_model(const std::string& in_path, const std::string& out_path,
                              const QuantizeOptions& opt, const QuantizeCallbacks& callbacks = {});

}  // namespace tern
