// Scalar reference attention for one query head over an fp16 KV cache, rounding like llama.cpp's
// CPU graph without flash attention: kq = mul_mat(K16, q16), soft_max_ext(kq * scale + mask),
// kqv = mul_mat(V16^T, p16). Each step copies the association of the kernel llama.cpp runs for
// it, because with quantized weights a 1-ulp difference here can change a later token.
#include <cmath>

#include "kernels/scalar/scalar.h"
#include "quant/float_dot.h"
#include "quant/fp16.h"

namespace tern::kernels::scalar {

namespace {

float round_to_fp16(float x) {
  return fp16_to_fp32(fp32_to_fp16(x));
}

// One output of an F16 mul_mat: ggml_vec_dot_f16 for a single token, llamafile's sgemm for a
// batch when tinyBLAS takes the shape (k % 16 == 0 and a row count divisible by 4).
template <class X, class Y>
float f16_matmul_dot(bool sgemm, int64_t n, X x, Y y) {
  return sgemm ? quant::dot_sgemm16(n, x, y) : quant::dot_f16_ggml(n, x, y);
}

}  // namespace

void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t n_kv, int64_t n_batch, int64_t head_dim,
               float scale, float* out, float* scratch) {
  // q is converted to fp16 (the K cache's vec_dot_type) before the product; `out` holds it until
  // the weighted sum overwrites it.
  for (int64_t d = 0; d < head_dim; ++d) out[d] = round_to_fp16(q[d]);

  // kq: m = n_kv rows (cached positions), k = head_dim. Masked positions (n_pos and later) are
  // -inf after the mask. tinyBLAS's conditions as in select_matmul_dot.
  const bool kq_sgemm = n_batch >= 2 && head_dim % 16 == 0 && n_kv % 4 == 0;
  for (int64_t p = 0; p < n_pos; ++p) {
    const uint16_t* kp = k + static_cast<size_t>(p) * k_pos_stride;
    const float dot = f16_matmul_dot(
        kq_sgemm, head_dim, [kp](int64_t i) { return fp16_to_fp32(kp[i]); },
        [out](int64_t i) { return out[i]; });
    scratch[p] = dot * scale;  // ggml_vec_scale_f32; adding the mask's 0 changes nothing
  }
  // soft_max_ext over the n_kv cells, the masked ones -inf; the probabilities are then converted
  // to fp16 for the product with V.
  softmax(scratch, n_pos, n_kv);
  for (int64_t p = 0; p < n_pos; ++p) scratch[p] = round_to_fp16(scratch[p]);

  // kqv: one row per head dimension (m = head_dim), k = n_kv cells, of which only the first n_pos
  // are nonzero. For one token ggml_vec_dot_f16 runs over all n_kv cells, so n_kv decides which
  // cells fall in its 64-wide vector part and which in its double-precision tail.
  const bool kqv_sgemm = n_batch >= 2 && head_dim % 4 == 0 && n_kv % 16 == 0;
  const float* p16 = scratch;
  for (int64_t d = 0; d < head_dim; ++d) {
    const uint16_t* vd = v + d;
    out[d] = f16_matmul_dot(
        kqv_sgemm, n_kv,
        [vd, v_pos_stride, n_pos](int64_t p) {
          return p < n_pos ? fp16_to_fp32(vd[static_cast<size_t>(p) * v_pos_stride]) : 0.0f;
        },
        [p16, n_pos](int64_t p) { return p < n_pos ? p16[p] : 0.0f; });
  }
}

}  // namespace tern::kernels::scalar
