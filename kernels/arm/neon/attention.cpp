// NEON attention (the KernelTable entry): kernels/attention_lanes.h (theory of operation there)
// over simd.h's 4-lane policy, with the reference's 16-lane accumulators held as four registers
// (lanes 0..3, 4..7, 8..11, 12..15) and the weighted sum's 16 lane chains in 16 registers, 4 head
// dimensions each. Here: the tree's last steps over 4 positions at once and the transposing loads
// of the scores' double tail; bit-identical to scalar::attention.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "kernels/arm/neon/neon.h"
#include "kernels/arm/neon/simd.h"
#include "kernels/attention_lanes.h"

namespace tern::kernels::neon {
namespace {

struct AttentionLanes : Lanes {
  static constexpr int kChains = 16;

  static float half(uint16_t h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
  }

  // The rest of reduce_add_16 for 4 positions at once (t[p] from the tree's first two steps): lane
  // p of the result is (t[p]0 + t[p]2) + (t[p]1 + t[p]3), each add pairing the reference's lanes.
  static float32x4_t reduce_positions(const float32x4_t (&t)[4]) {
    float32x4_t s[2];
    for (int k = 0; k < 2; ++k) {
      const float32x4_t a = t[2 * k], b = t[2 * k + 1];
      // [a0 + a2, a1 + a3, b0 + b2, b1 + b3]
      s[k] = vaddq_f32(vcombine_f32(vget_low_f32(a), vget_low_f32(b)),
                       vcombine_f32(vget_high_f32(a), vget_high_f32(b)));
    }
    return vpaddq_f32(s[0], s[1]);
  }

  // The columns [0, n4) (n4 a multiple of 4) of ggml_vec_dot_f16's double tail for 4 positions side
  // by side: acc lane l += double(k16[l][i] * q16[i]) in element order. ld4 into lane l reads 4
  // halves of row l as one element of each column; rows past cnt stay zero (their lanes are never
  // stored).
  static void score_columns(DV (&acc)[2], const float* q16, const uint16_t* k, size_t k_stride,
                            int64_t cnt, int64_t n4) {
    for (int64_t i = 0; i < n4; i += 4) {
      uint16x4x4_t cols = {{vdup_n_u16(0), vdup_n_u16(0), vdup_n_u16(0), vdup_n_u16(0)}};
      const uint16_t* kp = k + i;
      if (cnt > 0) cols = vld4_lane_u16(kp, cols, 0);
      if (cnt > 1) cols = vld4_lane_u16(kp + k_stride, cols, 1);
      if (cnt > 2) cols = vld4_lane_u16(kp + 2 * k_stride, cols, 2);
      if (cnt > 3) cols = vld4_lane_u16(kp + 3 * k_stride, cols, 3);
      for (int c = 0; c < 4; ++c) {
        const float32x4_t pr =
            vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u16(cols.val[c])), vdupq_n_f32(q16[i + c]));
        acc[0] = vaddq_f64(acc[0], vcvt_f64_f32(vget_low_f32(pr)));
        acc[1] = vaddq_f64(acc[1], vcvt_high_f64_f32(pr));
      }
    }
  }

  static void dstore(double* p, const DV (&d)[2]) {
    vst1q_f64(p, d[0]);
    vst1q_f64(p + 2, d[1]);
  }
  static void dload(const double* p, DV (&d)[2]) {
    d[0] = vld1q_f64(p);
    d[1] = vld1q_f64(p + 2);
  }
};

}  // namespace

void attention(const float* q, const uint16_t* k, size_t k_pos_stride, const uint16_t* v,
               size_t v_pos_stride, int64_t n_pos, int64_t n_kv, int64_t n_batch, int64_t head_dim,
               float scale, float* out, float* scratch) {
  attention_lanes::attention<AttentionLanes>(q, k, k_pos_stride, v, v_pos_stride, n_pos, n_kv,
                                             n_batch, head_dim, scale, out, scratch, softmax);
}

}  // namespace tern::kernels::neon
