// <immintrin.h> for the per-ISA x86 kernels, with one GCC 12 false positive silenced: its AVX-512
// intrinsics build "undefined" registers as `__m512i __Y = __Y;`, which -Wuninitialized reports
// inside the header once inlined (GCC bug 105593, fixed in GCC 13). Pragmas only: no inline code
// of ours may live in a header shared between ISAs (see docs/ADDING_A_KERNEL.md).
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
