// A Session is one conversation with a model: its KV cache, scratch and position. It feeds
// tokens through the model in batches and exposes the last token's logits.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "engine/model.h"
#include "engine/thread_pool.h"

namespace tern {

struct SessionOptions {
  int32_t n_ctx = 0;      // 0: the model's training context, capped at kDefaultMaxCtx
  int32_t n_batch = 512;  // tokens per forward pass while reading a prompt
  int n_threads = 0;      // 0: one per physical core
};

class Session {
 public:
  static constexpr int32_t kDefaultMaxCtx = 4096;

  Session(const Model& model, const SessionOptions& options);

  // Appends tokens to the context (in n_batch chunks) and computes the logits of the last one.
  // Throws tern::Error if the context would overflow or an id is outside the vocabulary.
  std::span<const float> decode(std::span<const TokenId> tokens);
  std::span<const float> logits() const { return logits_; }

  int32_t n_past() const { return n_past_; }
  int32_t n_ctx() const { return n_ctx_; }
  int n_threads() const { return pool_->n_threads(); }
  void reset() { n_past_ = 0; }
  const Model& model() const { return model_; }

 private:
  const Model& model_;
  int32_t n_ctx_;
  int32_t n_batch_;
  int32_t n_past_ = 0;
  std::unique_ptr<ThreadPool> pool_;  // the session's threads, started once (a pointer: movable)
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<ForwardContext> ctx_;
  std::vector<float> logits_;
};

}  // namespace tern
