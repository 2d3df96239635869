// The AVX-512 TQ2_0 kernel again, built with -mgfni (kernels/CMakeLists.txt, this file only):
// in decode, unpack() takes groups 2 and 3 of each code byte by one vgf2p8affineqb instead of a
// shift and a mask. The AVX-512 table takes this entry where the CPU has GFNI.
#ifndef __GFNI__
#error "matmul_tq2_0_gfni.cpp must be compiled with -mgfni"
#endif

#include "kernels/x86/avx512/tq2_0_quads.h"

namespace tern::kernels::avx512 {

void matmul_tq2_0_q8_K_gfni(const TypeTraits& /*w_type*/, const std::byte* w, size_t w_stride,
                            int64_t /*n_rows*/, const std::byte* x, size_t x_stride, int64_t n_x,
                            int64_t k, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  tq2_0_quads_matmul(w, w_stride, x, x_stride, n_x, k, y, ldy, r0, r1);
}

}  // namespace tern::kernels::avx512
