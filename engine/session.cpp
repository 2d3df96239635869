// Session: context bookkeeping around Model::forward.
#include "engine/session.h"

#include <algorithm>

#include "engine/error.h"
#include "engine/parallel.h"

namespace tern {

Session::Session(const Model& model, const SessionOptions& o) : model_(model) {
  const auto& hp = model.hparams();
  n_ctx_ = o.n_ctx > 0 ? o.n_ctx : std::min(hp.n_ctx_train, kDefaultMaxCtx);
  if (o.n_ctx < 0) throw Error("context size must be positive, got " + std::to_string(o.n_ctx));
  if (o.n_batch <= 0) throw Error("batch size must be positive, got " + std::to_string(o.n_batch));
  n_batch_ = std::min(o.n_batch, n_ctx_);
  cache_ = std::make_unique<ContiguousKvCache>(hp.n_layer, n_ctx_, hp.n_head_kv, hp.head_dim,
                                               model.kernels().fp32_to_fp16_row);
  const int n_threads = o.n_threads > 0 ? o.n_threads : default_thread_count();
  ctx_ = model.make_context(n_ctx_, n_batch_, n_threads);
  logits_.resize(static_cast<size_t>(hp.n_vocab));
  // Last: threads start only once every allocation has succeeded.
  pool_ = std::make_unique<ThreadPool>(n_threads);
}

std::span<const float> Session::decode(std::span<const TokenId> tokens) {
  if (tokens.empty()) throw Error("decode: no tokens");
  if (n_past_ + static_cast<int64_t>(tokens.size()) > n_ctx_) {
    throw Error("context is full: " + std::to_string(n_past_) + " + " +
                std::to_string(tokens.size()) + " tokens exceed the context size " +
                std::to_string(n_ctx_) + " (raise -c)");
  }
  for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(n_batch_)) {
    const auto chunk =
        tokens.subspan(i, std::min(tokens.size() - i, static_cast<size_t>(n_batch_)));
    model_.forward(chunk, n_past_, *cache_, *ctx_, *pool_, logits_);
    n_past_ += static_cast<int32_t>(chunk.size());
  }
  return logits_;
}

}  // namespace tern
