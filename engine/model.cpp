// Model::load: open the GGUF file and hand it to the loader of its architecture.
#include "engine/model.h"

#include <cstdlib>

#include "engine/arch/registry.h"
#include "engine/error.h"
#include "engine/huge_pages.h"

namespace tern {

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  // The kernel table first: a bad TERN_ISA or isa option fails before the file is read.
  const kernels::TableChoice choice =
      options.isa.empty() ? kernels::active_choice() : kernels::choose_table(options.isa, "isa");
  if (choice.table == nullptr) throw Error(choice.error);
  GgufOptions gguf_options;
  gguf_options.i2s_layout = options.i2s_layout;
  if (const char* env = std::getenv("TERN_I2S_LAYOUT"); !gguf_options.i2s_layout && env) {
    gguf_options.i2s_layout = parse_i2s_layout(env);
    if (!gguf_options.i2s_layout)
      throw Error("TERN_I2S_LAYOUT is '" + printable_name(env) + "', expected x86 or arm");
  }
  // automatic: map the file and copy the matrices the token loop streams into huge pages (rows
  // that are repacked are copied anyway), so that RSS holds each weight once.
  const bool read = options.memory == FileMemory::read;
  const bool copy = options.memory == FileMemory::automatic && transparent_huge_pages_available();
  GgufFile file = GgufFile::open(path, !read, gguf_options);
  const std::string arch = file.get_string("general.architecture");
  auto loader = arch::find_loader(arch);
  if (!loader) {
    file.fail("unsupported architecture '" + arch +
              "' (supported: " + arch::supported_architectures() + ")");
  }
  return loader(std::move(file), *choice.table, copy);
}

}  // namespace tern
