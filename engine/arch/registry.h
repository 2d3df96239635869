// The architecture registry: `general.architecture` name -> loader. Adding an architecture is a
// new engine/arch/<name>.cpp plus one line in registry.cpp.
#pragma once

#include <memory>

#include "engine/model.h"

namespace tern::arch {

// Builds the model and prepares its weights for the given kernel table. With
// `copy_weights_to_huge_pages`, matrix rows the kernels read straight from the (mapped) file are
// copied into huge-page memory (see FileMemory::automatic).
using LoaderFn = std::unique_ptr<Model> (*)(GgufFile file, const kernels::KernelTable& kernels,
                                            bool copy_weights_to_huge_pages);

// nullptr when the architecture is unknown.
LoaderFn find_loader(const std::string& arch);
std::string supported_architectures();

std::unique_ptr<Model> load_llama(GgufFile file, const kernels::KernelTable& kernels,
                                  bool copy_weights_to_huge_pages);

}  // namespace tern::arch
