// ContiguousKvCache: fp16 K and V buffers of [n_layer][n_head_kv][n_ctx][head_dim].
#include "engine/kv_cache.h"

#include "engine/huge_pages.h"

namespace tern {
namespace {

size_t bytes(int32_t n_layer, int32_t n_ctx, int32_t n_head_kv, int32_t head_dim) {
  return static_cast<size_t>(n_layer) * static_cast<size_t>(n_ctx) *
         static_cast<size_t>(n_head_kv) * static_cast<size_t>(head_dim) * sizeof(uint16_t);
}

}  // namespace

ContiguousKvCache::ContiguousKvCache(int32_t n_layer, int32_t n_ctx, int32_t n_head_kv,
                                     int32_t head_dim, kernels::Fp32ToFp16RowFn to_fp16)
    : n_layer_(n_layer),
      n_ctx_(n_ctx),
      n_head_kv_(n_head_kv),
      head_dim_(head_dim),
      to_fp16_(to_fp16),
      // Uninitialised: a default 4096-position context of a 700M model is 600 MiB, which clearing
      // would page in (and write) before the first token; pages are touched as positions fill.
      k_mem_(allocate_small_page_memory(bytes(n_layer, n_ctx, n_head_kv, head_dim))),
      v_mem_(allocate_small_page_memory(bytes(n_layer, n_ctx, n_head_kv, head_dim))),
      k_(reinterpret_cast<uint16_t*>(k_mem_.get())),
      v_(reinterpret_cast<uint16_t*>(v_mem_.get())) {}

void ContiguousKvCache::store(int32_t layer, int32_t pos, const float* k, const float* v) {
  const size_t head_stride = static_cast<size_t>(n_ctx_) * head_dim_;
  size_t at =
      static_cast<size_t>(layer) * n_head_kv_ * head_stride + static_cast<size_t>(pos) * head_dim_;
  for (int32_t h = 0; h < n_head_kv_; ++h, at += head_stride) {
    to_fp16_(k + static_cast<size_t>(h) * head_dim_, k_ + at, head_dim_);
    to_fp16_(v + static_cast<size_t>(h) * head_dim_, v_ + at, head_dim_);
  }
}

KvCache::LayerView ContiguousKvCache::layer(int32_t layer) const {
  const size_t head_stride = static_cast<size_t>(n_ctx_) * head_dim_;
  const size_t base = static_cast<size_t>(layer) * n_head_kv_ * head_stride;
  return {k_ + base, v_ + base, static_cast<size_t>(head_dim_), head_stride};
}

}  // namespace tern
