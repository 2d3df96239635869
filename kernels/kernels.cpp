// Choosing a kernel table: ISA names, what was built, what this CPU supports, and TERN_ISA.
#include "kernels/kernels.h"

#include <cstdlib>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/tables.h"

namespace tern::kernels {
namespace {

constexpr std::array<Isa, 4> kAllIsas = {Isa::kScalar, Isa::kNeon, Isa::kAvx2, Isa::kAvx512};

bool cpu_supports(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kNeon:
      return f.neon;
    case Isa::kAvx2:
      return f.avx2 && f.fma && f.f16c;
    case Isa::kAvx512:
      return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.fma && f.f16c;
  }
  return false;
}

std::string isa_list(std::span<const Isa> isas) {
  std::string s;
  for (Isa isa : isas) s += (s.empty() ? "" : ", ") + std::string(isa_name(isa));
  return s;
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kNeon:
      return "neon";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa isa : kAllIsas) {
    if (isa_name(isa) == name) return isa;
  }
  return std::nullopt;
}

std::span<const Isa> built_isas() {
  static const std::vector<Isa> built = [] {
    std::vector<Isa> v;
    for (Isa isa : kAllIsas) {
      if (detail::isa_built(isa)) v.push_back(isa);
    }
    return v;
  }();
  return built;
}

std::span<const Isa> supported_isas() {
  static const std::vector<Isa> supported = [] {
    std::vector<Isa> v;
    for (Isa isa : built_isas()) {
      if (cpu_supports(isa)) v.push_back(isa);
    }
    return v;
  }();
  return supported;
}

const KernelTable* table_for(Isa isa) {
  for (Isa s : supported_isas()) {
    if (s == isa) return &detail::build_table(isa);
  }
  return nullptr;
}

TableChoice choose_table(std::string_view request, std::string_view origin) {
  TableChoice c;
  if (request.empty()) {
    c.table = table_for(supported_isas().back());
    return c;
  }
  const std::string what = std::string(origin) + "=" + std::string(request) + ": ";
  const std::optional<Isa> isa = parse_isa(request);
  if (!isa) {
    c.error = what + "unknown ISA (expected one of scalar, avx2, avx512, neon)";
  } else if (!detail::isa_built(*isa)) {
    c.error = what + "not built into this binary (built: " + isa_list(built_isas()) + ")";
  } else if ((c.table = table_for(*isa)) == nullptr) {
    c.error = what + "not supported by this CPU (supported: " + isa_list(supported_isas()) + ")";
  }
  return c;
}

const TableChoice& active_choice() {
  static const TableChoice choice = [] {
    const char* env = std::getenv("TERN_ISA");
    return choose_table(env != nullptr ? env : "", "TERN_ISA");
  }();
  return choice;
}

const KernelTable& active_table() {
  const TableChoice& c = active_choice();
  return c.table != nullptr ? *c.table : scalar_table();
}

const MatmulKernel& KernelTable::matmul_for(const TypeTraits& w_type) const {
  return matmul[detail::type_slot(w_type)];
}

QuantizeRowFn KernelTable::from_float_for(const TypeTraits& act_type) const {
  return from_float[detail::type_slot(act_type)];
}

}  // namespace tern::kernels
