// ContiguousKvCache: fp16 K and V buffers of [n_layer][n_ctx][n_embd_kv].
#include "engine/kv_cache.h"

#include "quant/fp16.h"

namespace tern {

ContiguousKvCache::ContiguousKvCache(int32_t n_layer, int32_t n_ctx, int32_t n_embd_kv)
    : n_layer_(n_layer),
      n_ctx_(n_ctx),
      n_embd_kv_(n_embd_kv),
      k_(static_cast<size_t>(n_layer) * n_ctx * n_embd_kv),
      v_(static_cast<size_t>(n_layer) * n_ctx * n_embd_kv) {}

void ContiguousKvCache::store(int32_t layer, int32_t pos, const float* k, const float* v) {
  const size_t base = (static_cast<size_t>(layer) * n_ctx_ + pos) * n_embd_kv_;
  for (int32_t i = 0; i < n_embd_kv_; ++i) {
    k_[base + i] = fp32_to_fp16(k[i]);
    v_[base + i] = fp32_to_fp16(v[i]);
  }
}

KvCache::LayerView ContiguousKvCache::layer(int32_t layer) const {
  const size_t base = static_cast<size_t>(layer) * n_ctx_ * n_embd_kv_;
  return {k_.data() + base, v_.data() + base, static_cast<size_t>(n_embd_kv_)};
}

}  // namespace tern
