// tern: the command-line entry point. Parses the subcommand, runs it, and turns every error into a
// one-line message on stderr and a non-zero exit.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include "tools/commands.h"

namespace tern::cli {

std::string model_path_or_default(const std::string& given) {
  if (!given.empty()) return given;
  const std::string bundled = TERN_BUNDLED_MODEL;
  if (!std::filesystem::exists(bundled)) {
    throw CLI::ValidationError("-m",
                               "no model given and the bundled model " + bundled + " is missing");
  }
  return bundled;
}

void add_file_memory_flags(CLI::App* app, FileMemory* memory) {
  CLI::Option* map = app->add_flag_callback(
      "--mmap", [memory] { *memory = FileMemory::mapped; },
      "Map the model file and run from its pages (fast start, no copy into huge pages)");
  CLI::Option* read = app->add_flag_callback(
      "--no-mmap", [memory] { *memory = FileMemory::read; },
      "Read the whole model file into memory (huge pages where the kernel offers them)");
  map->excludes(read);
}

}  // namespace tern::cli

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_st("tern"));
  spdlog::set_pattern("%^%l%$: %v");
  spdlog::set_level(spdlog::level::warn);

  CLI::App app{"tern: run ternary and 4-bit LLMs (GGUF) on the CPU"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  std::vector<tern::cli::Command> commands{
      tern::cli::add_generate(app), tern::cli::add_tokenize(app), tern::cli::add_info(app),
      tern::cli::add_bench(app),    tern::cli::add_synth(app),    tern::cli::add_quantize(app)};
  const auto is_command = [&](const std::string& name) {
    for (const auto& c : commands) {
      if (c.app->get_name() == name) return true;
    }
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
    std::fprintf(stderr,
                 "tern: error: unknown command '%s' (generate, tokenize, info, bench, synth, "
                 "quantize)\nusage: tern COMMAND [OPTIONS]; see 'tern --help'\n",
                 argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "tern";
    for (const auto* sub : app.get_subcommands()) where += " " + sub->get_name();
    std::fprintf(stderr, "%s: error: %s\nusage: %s [OPTIONS]; see '%s --help'\n", where.c_str(),
                 e.what(), where.c_str(), where.c_str());
    return 2;
  }
  for (auto& c : commands) {
    if (!c.app->parsed()) continue;
    try {
      return c.run();
    } catch (const CLI::Error& e) {
      const std::string name = "tern " + c.app->get_name();
      std::fprintf(stderr, "%s: error: %s\nusage: %s [OPTIONS]; see '%s --help'\n", name.c_str(),
                   e.what(), name.c_str(), name.c_str());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tern %s: error: %s\n", c.app->get_name().c_str(), e.what());
      return 1;
    }
  }
  return 2;
}
