// The KV cache interface the architectures write to and attend over, and its first
// implementation: one contiguous fp16 buffer per layer (llama.cpp's default cache type).
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
  // fp16 rows of positions [0, n_pos) for one layer: row p starts at k_rows + p * pos_stride.
  struct LayerView {
    const uint16_t* k;
    const uint16_t* v;
    size_t pos_stride;  // in elements
  };
  virtual LayerView layer(int32_t layer) const = 0;
};

class ContiguousKvCache final : public KvCache {
 public:
  // Rows are rounded to fp16 by `to_fp16` (the model's kernel table entry: F16C where the CPU
  // has it). The buffers are not cleared: attention reads only positions that were stored.
  ContiguousKvCache(int32_t n_layer, int32_t n_ctx, int32_t n_embd_kv,
                    kernels::Fp32ToFp16RowFn to_fp16);

  int32_t n_ctx() const override { return n_ctx_; }
  void store(int32_t layer, int32_t pos, const float* k, const float* v) override;
  LayerView layer(int32_t layer) const override;

 private:
  int32_t n_layer_, n_ctx_, n_embd_kv_;
  kernels::Fp32ToFp16RowFn to_fp16_;
  std::unique_ptr<uint16_t[]> k_;  // [n_layer][n_ctx][n_embd_kv]
  std::unique_ptr<uint16_t[]> v_;  // [n_layer][n_ctx][n_embd_kv]
};

}  // namespace tern
