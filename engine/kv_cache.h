// The KV cache interface the architectures write to and attend over, and its first
// implementation: one contiguous fp16 buffer per layer (llama.cpp's default cache type), head by
// head.
// A paged cache replaces ContiguousKvCache without touching the model code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/kernels.h"

namespace tern {

class KvCache {
 public:
  virtual ~KvCache() = default;

  virtual int32_t n_ctx() const = 0;
  // Stores one position's keys and values (n_embd_kv floats each, rounded to fp16).
  virtual void store(int32_t layer, int32_t pos, const float* k, const float* v) = 0;
  // fp16 rows of positions [0, n_pos) for one layer: KV head h's row at position p starts at
  // k + h * head_stride + p * pos_stride (and likewise in v).
  struct LayerView {
    const uint16_t* k;
    const uint16_t* v;
    size_t pos_stride;   // in elements
    size_t head_stride;  // in elements
  };
  virtual LayerView layer(int32_t layer) const = 0;
};

class ContiguousKvCache final : public KvCache {
 public:
  // Rows are rounded to fp16 by `to_fp16` (the model's kernel table entry: F16C where the CPU
  // has it). The buffers are not cleared: attention reads only positions that were stored.
  // Each KV head's positions are contiguous ([n_layer][n_head_kv][n_ctx][head_dim]): attention
  // walks one head over every position, and with the heads of a position side by side instead
  // (llama.cpp's layout) that walk strides over n_embd_kv elements per position.
  ContiguousKvCache(int32_t n_layer, int32_t n_ctx, int32_t n_head_kv, int32_t head_dim,
                    kernels::Fp32ToFp16RowFn to_fp16);

  int32_t n_ctx() const override { return n_ctx_; }
  void store(int32_t layer, int32_t pos, const float* k, const float* v) override;
  LayerView layer(int32_t layer) const override;

 private:
  int32_t n_layer_, n_ctx_, n_head_kv_, head_dim_;
  kernels::Fp32ToFp16RowFn to_fp16_;
  // [n_layer][n_head_kv][n_ctx][head_dim] each. In 4 KiB pages, not huge ones: each head's
  // first positions would fault in a whole 2 MiB page apiece (hundreds of MiB cleared and held
  // for a short context: 9% of a 700M tg32 bench run went to clearing them).
  std::shared_ptr<std::byte[]> k_mem_, v_mem_;
  uint16_t* k_;
  uint16_t* v_;
};

}  // namespace tern
