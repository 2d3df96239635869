// The table of architectures tern can run.
#include "engine/arch/registry.h"

#include <array>
#include <utility>

namespace tern::arch {
namespace {
constexpr std::array<std::pair<const char*, LoaderFn>, 1> kArchitectures{{
    {"llama", load_llama},
}};
}

LoaderFn find_loader(const std::string& arch) {
  for (const auto& [name, fn] : kArchitectures) {
    if (arch == name) return fn;
  }
  return nullptr;
}

std::string supported_architectures() {
  std::string s;
  for (const auto& [name, fn] : kArchitectures) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

}  // namespace tern::arch
