// A loaded model: the GGUF file, hyperparameters, tokenizer and one architecture's forward pass.
// Architectures register by their `general.architecture` name (engine/arch/*.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "engine/gguf.h"
#include "engine/kv_cache.h"
#include "engine/tokenizer.h"
#include "kernels/kernels.h"

namespace tern {

// Where the file's bytes live while the model runs. Decoding streams every weight matrix once per
// token, and from memory backed by 2 MiB pages it ran faster than from a mapped file's 4 KiB pages
// (docs/BENCHMARKS.md), at the cost of a copy at start.
enum class FileMemory {
  automatic,  // map, and copy the weight matrices into huge pages when the kernel offers them
  mapped,     // mmap(2) only: instant start, weights read through the page cache's 4 KiB pages
  read,       // read the whole file into memory advised for huge pages
};

struct LoadOptions {
  FileMemory memory = FileMemory::automatic;
  // Kernel ISA: "scalar", "avx2", "avx512", "neon"; empty: TERN_ISA if set, else the best this
  // CPU supports. Chosen at load because weights may be repacked for the ISA's kernels.
  std::string isa;
  // Code layout of bitnet.cpp I2_S tensors (the bytes cannot tell; see GgufOptions). nullopt:
  // TERN_I2S_LAYOUT=x86|arm if set, else the file's tern.i2_s.layout key, else x86.
  std::optional<I2sLayout> i2s_layout = std::nullopt;
};

struct ModelHparams {
  std::string arch;
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t n_ff = 0;
  int32_t head_dim = 0;  // n_embd / n_head
  int32_t n_rot = 0;     // rotated dimensions per head
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  float norm_eps = 1e-5f;

  int32_t n_embd_kv() const { return head_dim * n_head_kv; }
};

// Per-call state of a forward pass: scratch buffers owned by the caller (a Session) so that the
// token loop does not allocate.
struct ForwardContext;
class ThreadPool;

class Model {
 public:
  virtual ~Model() = default;

  // Opens, validates and prepares a model. Throws tern::Error naming the file and the defect.
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& options = {});

  const GgufFile& file() const { return file_; }
  const ModelHparams& hparams() const { return hparams_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // The kernel table the model was prepared for and runs with.
  const kernels::KernelTable& kernels() const { return *kernels_; }

  // Scratch sized for up to n_batch tokens at once, a context of n_ctx, and forward passes on a
  // pool of up to n_threads threads (per-thread scratch).
  virtual std::unique_ptr<ForwardContext> make_context(int32_t n_ctx, int32_t n_batch,
                                                       int n_threads) const = 0;
  // Runs tokens at positions pos0.. through the model, appending their K/V to the cache, and
  // writes the last token's logits (n_vocab floats) into `logits`. Parallel work runs on `pool`.
  virtual void forward(std::span<const TokenId> tokens, int32_t pos0, KvCache& cache,
                       ForwardContext& ctx, ThreadPool& pool, std::span<float> logits) const = 0;

 protected:
  Model(GgufFile file, ModelHparams hparams, std::unique_ptr<Tokenizer> tokenizer,
        const kernels::KernelTable& kernels)
      : file_(std::move(file)),
        hparams_(std::move(hparams)),
        tokenizer_(std::move(tokenizer)),
        kernels_(&kernels) {}

  GgufFile file_;
  ModelHparams hparams_;
  std::unique_ptr<Tokenizer> tokenizer_;
  const kernels::KernelTable* kernels_;
};

// ForwardContext is defined by each architecture; the base only needs to destroy it.
struct ForwardContext {
  virtual ~ForwardContext() = default;
};

}  // namespace tern
