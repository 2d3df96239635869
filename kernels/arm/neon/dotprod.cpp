// The NEON matmul kernels again, built with the dotprod extension (kernels/CMakeLists.txt adds
// -march=armv8.2-a+dotprod to this file only): GroupLanes uses sdot, and every entry point is
// named <name>_dotprod. The NEON table takes these only where HWCAP_ASIMDDP is set.
#ifndef __ARM_FEATURE_DOTPROD
#error "dotprod.cpp must be compiled with the dotprod extension"
#endif

#define TERN_NEON_NAME(name) name##_dotprod

#include "kernels/arm/neon/matmul_bfp8.cpp"
#include "kernels/arm/neon/matmul_float.cpp"
#include "kernels/arm/neon/matmul_kquants.cpp"
#include "kernels/arm/neon/matmul_mxfp4.cpp"
#include "kernels/arm/neon/matmul_q4_0.cpp"
#include "kernels/arm/neon/matmul_q5.cpp"
#include "kernels/arm/neon/matmul_q8_0.cpp"
#include "kernels/arm/neon/matmul_tq2_0.cpp"
