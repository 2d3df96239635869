// What this CPU (and OS) can run: detected once with CPUID/XGETBV on x86 and getauxval on ARM.
// The dispatcher uses it to pick the best compiled ISA table; `tern info --cpu` prints it.
#pragma once

#include <string>

namespace tern::kernels {

struct CpuFeatures {
  std::string vendor, brand;
  // x86
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false, avx512vbmi = false, avx_vnni = false, gfni = false;
  bool os_avx = false, os_avx512 = false;  // XGETBV: the OS saves the wider register state
  // ARM
  bool neon = false, dotprod = false, i8mm = false;

  // Names of the present features, space-separated, for logs and `tern info --cpu`.
  std::string summary() const;
};

// Detected once, on first use.
const CpuFeatures& cpu_features();

}  // namespace tern::kernels
