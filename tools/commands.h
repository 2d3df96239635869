// The `tern` subcommands. Each registers its options on a CLI11 subcommand and runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "engine/model.h"

namespace tern::cli {

// A registered subcommand: run() is called after parsing when the subcommand was chosen.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_generate(CLI::App& root);
Command add_tokenize(CLI::App& root);
Command add_info(CLI::App& root);
Command add_bench(CLI::App& root);
Command add_synth(CLI::App& root);
Command add_quantize(CLI::App& root);

// The -m path, or the bundled demo model when none was given.
std::string model_path_or_default(const std::string& given);

// --mmap / --no-mmap (exclusive), setting where the model's bytes live; default automatic.
void add_file_memory_flags(CLI::App* app, FileMemory* memory);

}  // namespace tern::cli
