// `tern info`: a GGUF file's metadata and tensor table; `tern info --cpu`: the CPU, the kernel ISAs
// built, supported and chosen, and the matmul kernel each weight type runs with.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <sstream>

#include "engine/gguf.h"
#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "tools/commands.h"

namespace tern::cli {
namespace {

constexpr uint64_t kArrayPreview = 8;  // array items shown before "..."

std::string escape(const std::string& s, size_t max_len = 120) {
  std::string out;
  for (unsigned char ch : s.substr(0, max_len)) {
    if (ch == '\n')
      out += "\\n";
    else if (ch == '\t')
      out += "\\t";
    else if (ch < 0x20)
      out += "\\x" + std::string{"0123456789abcdef"[ch >> 4], "0123456789abcdef"[ch & 15]};
    else
      out += static_cast<char>(ch);
  }
  if (s.size() > max_len) out += "...";
  return out;
}

std::string format_value(const GgufValue& v) {
  std::ostringstream s;
  if (const auto* u = std::get_if<uint64_t>(&v.value))
    s << *u;
  else if (const auto* i = std::get_if<int64_t>(&v.value))
    s << *i;
  else if (const auto* d = std::get_if<double>(&v.value))
    s << *d;
  else if (const auto* b = std::get_if<bool>(&v.value))
    s << (*b ? "true" : "false");
  else if (const auto* str = std::get_if<std::string>(&v.value))
    s << '"' << escape(*str) << '"';
  else if (const auto* a = std::get_if<GgufArray>(&v.value)) {
    s << "[";
    const auto items = a->decode(kArrayPreview);
    for (size_t k = 0; k < items.size(); ++k) s << (k ? ", " : "") << format_value(items[k]);
    if (a->count > items.size()) s << ", ... (" << a->count << " items)";
    s << "]";
  }
  return s.str();
}

std::string isa_names(std::span<const kernels::Isa> isas) {
  std::string s;
  for (kernels::Isa isa : isas) s.append(s.empty() ? "" : " ").append(kernels::isa_name(isa));
  return s;
}

int run_cpu_info() {
  const kernels::CpuFeatures& f = kernels::cpu_features();
  std::printf("cpu: %s (%s)\nfeatures: %s\n", f.brand.empty() ? "unknown" : f.brand.c_str(),
              f.vendor.c_str(), f.summary().c_str());
  std::printf("isa built: %s\nisa supported: %s\n", isa_names(kernels::built_isas()).c_str(),
              isa_names(kernels::supported_isas()).c_str());
  const char* env = std::getenv("TERN_ISA");
  const kernels::TableChoice& choice = kernels::active_choice();
  if (choice.table == nullptr) {
    std::fprintf(stderr, "tern info: error: %s\n", choice.error.c_str());
    return 1;
  }
  const kernels::KernelTable& t = *choice.table;
  std::printf("isa chosen: %s (%s)\n", std::string(t.name).c_str(),
              env != nullptr ? "TERN_ISA" : "best supported; TERN_ISA overrides");
  std::printf("matmul kernels:\n");
  for (const TypeTraits& tt : all_type_traits()) {
    const kernels::MatmulKernel& mk = t.matmul_for(tt);
    if (mk.fn == nullptr) continue;
    std::string note;
    if (mk.pack != nullptr) {
      note = " (repacked at load: " + std::to_string(mk.packed_row_bytes(tt.block_elems)) +
             " B per " + std::to_string(tt.block_elems) + " weights, file " +
             std::to_string(tt.block_bytes) + " B)";
    }
    if (mk.interleave != nullptr) {
      note += " (rows interleaved in groups of " + std::to_string(mk.interleave_rows) + " at load";
      if (mk.interleave_row_multiple > 1) {
        note += ", in matrices of a multiple of " + std::to_string(mk.interleave_row_multiple) +
                " rows";
      }
      note += ")";
    }
    std::printf("  %-6s %s%s\n", std::string(tt.name).c_str(), std::string(mk.name).c_str(),
                note.c_str());
  }
  return 0;
}

int run_info(const std::string& model) {
  const GgufFile f = GgufFile::open(model_path_or_default(model));
  std::printf("file: %s\nGGUF version %u, %zu bytes, alignment %u, data at offset %zu\n",
              f.path().c_str(), f.version(), f.file_size(), f.alignment(), f.data_offset());
  std::printf("\nmetadata (%zu keys):\n", f.metadata().size());
  for (const auto& [key, value] : f.metadata()) {
    std::string type = gguf_type_name(value.type);
    if (const auto* a = std::get_if<GgufArray>(&value.value))
      type += std::string("[") + gguf_type_name(a->elem_type) + "]";
    std::printf("  %-40s %-12s %s\n", key.c_str(), type.c_str(), format_value(value).c_str());
  }
  std::printf("\ntensors (%zu):\n  %-32s %-6s %-24s %12s\n", f.tensors().size(), "name", "type",
              "shape", "bytes");
  size_t total = 0;
  for (const auto& t : f.tensors()) {
    std::string shape = "[";
    for (int d = 0; d < std::max(t.n_dims, 1); ++d)
      shape += (d ? ", " : "") + std::to_string(t.ne[static_cast<size_t>(d)]);
    shape += "]";
    std::printf("  %-32s %-6s %-24s %12zu\n", t.name.c_str(), std::string(t.traits->name).c_str(),
                shape.c_str(), t.nbytes);
    total += t.nbytes;
  }
  std::printf("  total %zu bytes of tensor data\n", total);
  return 0;
}

}  // namespace

Command add_info(CLI::App& root) {
  auto model = std::make_shared<std::string>();
  auto cpu = std::make_shared<bool>(false);
  CLI::App* app = root.add_subcommand("info", "Print a GGUF file's metadata and tensors");
  app->add_option("-m,--model", *model, "GGUF file (default: the bundled model)");
  app->add_flag("--cpu", *cpu,
                "Print the CPU's features, the kernel ISAs built, supported and chosen "
                "(TERN_ISA), and each weight type's matmul kernel, instead of a file");
  return {app, [model, cpu] { return *cpu ? run_cpu_info() : run_info(*model); }};
}

}  // namespace tern::cli
