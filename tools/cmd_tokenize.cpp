// `tern tokenize`: prints a text's token ids like llama-tokenize.
#include <cstdio>
#include <memory>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "tools/commands.h"

namespace tern::cli {
namespace {

struct TokenizeArgs {
  std::string model, prompt;
  bool ids = false, no_bos = false, no_parse_special = false;
};

int run_tokenize(const TokenizeArgs& a) {
  // Only the vocabulary is needed: vocab-only GGUF files work too.
  const GgufFile file = GgufFile::open(model_path_or_default(a.model));
  const auto tok = Tokenizer::create(load_vocab(file));
  const std::vector<TokenId> ids = tok->encode(a.prompt, !a.no_bos, !a.no_parse_special);
  if (a.ids) {
    std::printf("[");
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? ", " : "", ids[i]);
    std::printf("]\n");
  } else {
    for (TokenId id : ids) {
      const std::string piece = tok->token_to_piece(id, /*special=*/true);
      std::printf("%6d -> '%s'\n", id, piece.c_str());
    }
  }
  return 0;
}

}  // namespace

Command add_tokenize(CLI::App& root) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* app = root.add_subcommand("tokenize", "Print the tokens of a text");
  app->add_option("-m,--model", args->model,
                  "GGUF model or vocabulary file (default: the bundled model)");
  app->add_option("-p,--prompt", args->prompt, "Text to tokenize")->required();
  app->add_flag("--ids", args->ids, "Print only the ids, as [1, 2, 3]");
  app->add_flag("--no-bos", args->no_bos, "Do not add the BOS (or EOS) token the model asks for");
  app->add_flag("--no-parse-special", args->no_parse_special,
                "Treat special-token text like <s> as plain text");
  return {app, [args] { return run_tokenize(*args); }};
}

}  // namespace tern::cli
