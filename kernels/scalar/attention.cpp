// Scalar reference attention for one query head over an fp16 KV cache, rounding q and the
// probabilities to fp16 where llama.cpp's F16-cache path does.
#include <cmath>

#include "kernels/scalar/scalar.h"
#include "quant/fp16.h"

namespace tern::kernels::scalar {

void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t head_dim, float scale, float* out,
               float* scratch) {
  float max = -INFINITY;
  for (int64_t p = 0; p < n_pos; ++p) {
    const uint16_t* kp = k + static_cast<size_t>(p) * k_pos_stride;
    float dot = 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) {
      dot += fp16_to_fp32(fp32_to_fp16(q[d])) * fp16_to_fp32(kp[d]);
    }
    scratch[p] = dot * scale;
    max = std::fmax(max, scratch[p]);
  }
  double sum = 0.0;
  for (int64_t p = 0; p < n_pos; ++p) {
    scratch[p] = std::exp(scratch[p] - max);
    sum += static_cast<double>(scratch[p]);
  }
  const auto inv = static_cast<float>(1.0 / sum);
  for (int64_t d = 0; d < head_dim; ++d) out[d] = 0.0f;
  for (int64_t p = 0; p < n_pos; ++p) {
    const float prob = fp16_to_fp32(fp32_to_fp16(scratch[p] * inv));
    const uint16_t* vp = v + static_cast<size_t>(p) * v_pos_stride;
    for (int64_t d = 0; d < head_dim; ++d) out[d] += prob * fp16_to_fp32(vp[d]);
  }
}

}  // namespace tern::kernels::scalar
