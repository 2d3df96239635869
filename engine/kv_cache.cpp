// ContiguousKvCache: fp16 K and V buffers of [n_layer][n_ctx][n_embd_kv].
#include "engine/kv_cache.h"

namespace tern {

ContiguousKvCache::ContiguousKvCache(int32_t n_layer, int32_t n_ctx, int32_t n_embd_kv,
                                     kernels::Fp32ToFp16RowFn to_fp16)
    : n_layer_(n_layer),
      n_ctx_(n_ctx),
      n_embd_kv_(n_embd_kv),
      to_fp16_(to_fp16),
      // Uninitialised: a default 4096-position context of a 700M model is 600 MiB, which clearing
      // would page in (and write) before the first token; pages are touched as positions fill.
      k_(std::make_unique_for_overwrite<uint16_t[]>(static_cast<size_t>(n_layer) * n_ctx *
                                                    n_embd_kv)),
      v_(std::make_unique_for_overwrite<uint16_t[]>(static_cast<size_t>(n_layer) * n_ctx *
                                                    n_embd_kv)) {}

void ContiguousKvCache::store(int32_t layer, int32_t pos, const float* k, const float* v) {
  const size_t base = (static_cast<size_t>(layer) * n_ctx_ + pos) * n_embd_kv_;
  to_fp16_(k, k_.get() + base, n_embd_kv_);
  to_fp16_(v, v_.get() + base, n_embd_kv_);
}

KvCache::LayerView ContiguousKvCache::layer(int32_t layer) const {
  const size_t base = static_cast<size_t>(layer) * n_ctx_ * n_embd_kv_;
  return {k_.get() + base, v_.get() + base, static_cast<size_t>(n_embd_kv_)};
}

}  // namespace tern
