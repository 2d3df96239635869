// The dispatch tables: the scalar reference table and the choice of the active one.
#include "kernels/kernels.h"

#include "kernels/scalar/scalar.h"

namespace tern::kernels {

const KernelTable& scalar_table() {
  static const KernelTable table{
      .isa = "scalar",
      .matmul = scalar::matmul,
      .rms_norm = scalar::rms_norm,
      .rope = scalar::rope,
      .silu_mul = scalar::silu_mul,
      .attention = scalar::attention,
  };
  return table;
}

const KernelTable& active_table() { return scalar_table(); }

}  // namespace tern::kernels
