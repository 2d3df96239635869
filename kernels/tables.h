// Internal to kernels/: the table definitions (tables.cpp) that kernels.cpp's choice logic uses.
// The engine and tools include kernels.h only.
#pragma once

#include "kernels/kernels.h"

namespace tern::kernels::detail {

// Whether the ISA's sources were compiled into this binary (TERN_HAVE_<ISA>).
bool isa_built(Isa isa);
// The ISA's table, constructed on first use. Only call it for supported ISAs: construction runs no
// ISA code, but nothing else may either.
const KernelTable& build_table(Isa isa);
// Index of a type in all_type_traits(), the slot of KernelTable::matmul.
size_t type_slot(const TypeTraits& t);

}  // namespace tern::kernels::detail
