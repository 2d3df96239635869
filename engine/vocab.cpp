// Reads tokenizer.ggml.* from a GGUF file into a validated Vocab, with llama.cpp's defaults.
#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "engine/gguf.h"
#include "engine/tokenizer.h"

namespace tern {

namespace {

constexpr const char* kModelKey = "tokenizer.ggml.model";
constexpr const char* kPreKey = "tokenizer.ggml.pre";
constexpr const char* kTokensKey = "tokenizer.ggml.tokens";
constexpr const char* kScoresKey = "tokenizer.ggml.scores";
constexpr const char* kTypesKey = "tokenizer.ggml.token_type";
constexpr const char* kMergesKey = "tokenizer.ggml.merges";

// GGUF writers mark an absent special token with -1 or its uint32 image; llama.cpp then keeps
// the default, and so do we.
bool is_unset_id(int64_t v) {
  return v < 0 || v == 0xFFFFFFFF;
}

// An id the tokenizer depends on: a bad one is an error.
void read_required_id(const GgufFile& f, const std::string& key, size_t n_tokens, TokenId& id) {
  const auto v = f.opt_int(key);
  if (!v || is_unset_id(*v)) return;
  if (static_cast<uint64_t>(*v) >= n_tokens) {
    f.fail(key + " = " + std::to_string(*v) + " is not a token id (the vocabulary has " +
           std::to_string(n_tokens) + " tokens)");
  }
  id = static_cast<TokenId>(*v);
}

// Ids that only mark tokens as control (FIM, EOM): out of range is ignored, as llama.cpp does.
bool has_valid_id(const GgufFile& f, const std::vector<const char*>& keys, size_t n_tokens) {
  for (const char* key : keys) {
    const auto v = f.opt_int(key);
    if (!v || is_unset_id(*v)) continue;
    if (static_cast<uint64_t>(*v) < n_tokens) return true;
    spdlog::warn("{}: {} = {} is not a token id; ignored", f.path(), key, *v);
  }
  return false;
}

// Token text quoted in an error message: control bytes escaped (keeps the message on one line), cut
// short.
std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 64)) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 15];
    } else {
      out += c;
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

TokenKind kind_from_type(int64_t t) {
  switch (t) {
    case 1:
      return TokenKind::Normal;
    case 2:
      return TokenKind::Unknown;
    case 3:
      return TokenKind::Control;
    case 4:
      return TokenKind::UserDefined;
    case 5:
      return TokenKind::Unused;
    case 6:
      return TokenKind::Byte;
    default:
      return TokenKind::Undefined;  // llama.cpp maps unknown values to "undefined" too
  }
}

// llama.cpp recognises end-of-turn and fill-in-the-middle tokens by their text when the file does
// not name them, and makes them control tokens. That changes tokenizing (control tokens are only
// matched with parse_special) and detokenizing (they print as ""), so it is mirrored here.
struct TextRule {
  std::vector<const char*> keys;  // GGUF keys that name the token explicitly
  std::vector<std::string_view> texts;
};

const std::vector<std::string_view> kEotTexts = {"<|eot_id|>",
                                                 "<|im_end|>",
                                                 "<|end|>",
                                                 "<end_of_turn>",
                                                 "<|endoftext|>",
                                                 "<EOT>",
                                                 "<\xEF\xBD\x9C"
                                                 "end\xE2\x96\x81"
                                                 "of\xE2\x96\x81"
                                                 "sentence\xEF\xBD\x9C>"};  // DeepSeek
const std::vector<std::string_view> kEogTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"};

void apply_text_rules(const GgufFile& f, Vocab& v,
                      const std::unordered_map<std::string_view, TokenId>& index) {
  const size_t n = v.tokens.size();
  const auto lowest_with_text = [&](const std::vector<std::string_view>& texts) -> TokenId {
    TokenId best = -1;
    for (const auto t : texts) {
      const auto it = index.find(t);
      if (it != index.end() && (best < 0 || it->second < best)) best = it->second;
    }
    return best;
  };
  const auto make_control = [&](TokenId id) {
    auto& kind = v.types[static_cast<size_t>(id)];
    if (kind != TokenKind::Control) {
      spdlog::warn(
          "{}: token {} '{}' looks like a control token but is not typed so; treating it as one",
          f.path(), id, v.tokens[static_cast<size_t>(id)]);
      kind = TokenKind::Control;
    }
  };

  if (v.eot < 0) {
    v.eot = lowest_with_text(kEotTexts);
    if (v.eot >= 0) make_control(v.eot);
  }
  const TextRule rules[] = {
      {{"tokenizer.ggml.eom_token_id"}, {"<|eom_id|>"}},
      {{"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"},
       {"<|fim_prefix|>", "<fim-prefix>",
        "<\xEF\xBD\x9C"
        "fim\xE2\x96\x81"
        "begin\xEF\xBD\x9C>",
        "<PRE>"}},
      {{"tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"},
       {"<|fim_suffix|>", "<fim-suffix>",
        "<\xEF\xBD\x9C"
        "fim\xE2\x96\x81"
        "hole\xEF\xBD\x9C>",
        "<SUF>"}},
      {{"tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"},
       {"<|fim_middle|>", "<fim-middle>",
        "<\xEF\xBD\x9C"
        "fim\xE2\x96\x81"
        "end\xEF\xBD\x9C>",
        "<MID>"}},
      {{"tokenizer.ggml.fim_pad_token_id"}, {"<|fim_pad|>", "<fim-pad>", "<PAD>"}},
      {{"tokenizer.ggml.fim_rep_token_id"},
       {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"}},
      {{"tokenizer.ggml.fim_sep_token_id"}, {"<|file_sep|>"}},
  };
  for (const auto& rule : rules) {
    if (has_valid_id(f, rule.keys, n)) continue;
    const TokenId id = lowest_with_text(rule.texts);
    if (id >= 0) make_control(id);
  }
  for (const auto t : kEogTexts) {
    const auto it = index.find(t);
    if (it != index.end()) make_control(it->second);
  }
}

// llama.cpp hard-codes whitespace stripping around special tokens for some models by name.
void apply_strip_rules(const GgufFile& f, Vocab& v,
                       const std::unordered_map<std::string_view, TokenId>& index) {
  std::string name = f.opt_string("general.name").value_or("");
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto contains = [](std::string_view s, std::string_view part) {
    return s.find(part) != std::string_view::npos;
  };
  if (contains(v.pre, "jina-v2-de") || contains(v.pre, "jina-v2-es") ||
      contains(v.pre, "jina-v2-code")) {
    if (const auto it = index.find("<mask>"); it != index.end()) v.lstrip.push_back(it->second);
  } else if (contains(name, "phi-3") || contains(name, "phi3")) {
    std::set<TokenId> rstrip;
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      const TokenKind k = v.types[i];
      if (k == TokenKind::Control || k == TokenKind::UserDefined || k == TokenKind::Unknown) {
        rstrip.insert(static_cast<TokenId>(i));
      }
    }
    if (const auto it = index.find("</s>"); it != index.end()) rstrip.insert(it->second);
    for (const std::string_view t : {"<unk>", "<s>", "<|endoftext|>"}) {
      if (const auto it = index.find(t); it != index.end()) rstrip.erase(it->second);
    }
    v.rstrip.assign(rstrip.begin(), rstrip.end());
  }
}

}  // namespace

Vocab load_vocab(const GgufFile& f) {
  Vocab v;
  const std::string model = f.get_string(kModelKey);
  if (model == "llama") {
    v.kind = VocabKind::Spm;
  } else if (model == "gpt2") {
    v.kind = VocabKind::Bpe;
  } else {
    f.fail(std::string(kModelKey) + " = '" + printable(model) +
           "' is not supported (tern reads 'llama' and 'gpt2')");
  }
  v.pre = f.opt_string(kPreKey).value_or("");

  auto tokens = f.opt_string_array(kTokensKey);
  if (!tokens) f.fail(std::string("missing required key '") + kTokensKey + "'");
  if (tokens->empty()) f.fail(std::string(kTokensKey) + " is empty");
  if (tokens->size() > static_cast<size_t>(INT32_MAX))
    f.fail(std::string(kTokensKey) + " has too many tokens");
  v.tokens = std::move(*tokens);
  const size_t n = v.tokens.size();

  for (size_t i = 0; i < n; ++i) {
    if (v.tokens[i].empty()) {
      // llama.cpp's stand-in, which keeps the token unreachable from text.
      spdlog::warn("{}: {}[{}] is empty", f.path(), kTokensKey, i);
      v.tokens[i] = "[EMPTY_" + std::to_string(i) + "]";
    }
  }
  std::unordered_map<std::string_view, TokenId> index;
  index.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto [it, fresh] = index.emplace(v.tokens[i], static_cast<TokenId>(i));
    if (!fresh) {
      f.fail(std::string(kTokensKey) + " has '" + printable(v.tokens[i]) + "' twice (ids " +
             std::to_string(it->second) + " and " + std::to_string(i) + ")");
    }
  }

  if (auto scores = f.opt_float_array(kScoresKey)) {
    if (scores->size() != n) {
      f.fail(std::string(kScoresKey) + " has " + std::to_string(scores->size()) + " entries for " +
             std::to_string(n) + " tokens");
    }
    v.scores = std::move(*scores);
  }
  v.types.assign(n, TokenKind::Normal);
  if (auto types = f.opt_int_array(kTypesKey)) {
    if (types->size() != n) {
      f.fail(std::string(kTypesKey) + " has " + std::to_string(types->size()) + " entries for " +
             std::to_string(n) + " tokens");
    }
    for (size_t i = 0; i < n; ++i) v.types[i] = kind_from_type((*types)[i]);
  }

  if (v.kind == VocabKind::Bpe) {
    auto merges = f.opt_string_array(kMergesKey);
    if (!merges)
      f.fail(std::string("missing required key '") + kMergesKey +
             "' (a gpt2 tokenizer needs merges)");
    for (size_t i = 0; i < merges->size(); ++i) {
      if ((*merges)[i].find(' ', 1) == std::string::npos) {
        f.fail(std::string(kMergesKey) + "[" + std::to_string(i) + "] = '" +
               printable((*merges)[i]) + "' is not two parts separated by a space");
      }
    }
    v.merges = std::move(*merges);
  }

  // Defaults by tokenizer family, then what the file says.
  if (v.kind == VocabKind::Spm) {
    v.bos = 1;
    v.eos = 2;
    v.unk = 0;
    v.add_bos = true;
    v.add_space_prefix = true;
  } else {
    v.bos = 11;
    v.eos = 11;
    if (v.pre.empty()) {
      spdlog::warn("{}: {} is missing; using llama.cpp's 'default' pre-tokenizer", f.path(),
                   kPreKey);
    }
    if (v.pre == "llama3" || v.pre == "llama-v3" || v.pre == "llama-bpe" || v.pre == "falcon3")
      v.add_bos = true;
    if (v.pre == "chatglm-bpe") v.bos = -1;
  }
  // A default the vocabulary is too small for is no token at all.
  for (TokenId* id : {&v.bos, &v.eos, &v.unk}) {
    if (*id >= static_cast<TokenId>(n)) *id = -1;
  }
  if (auto b = f.opt_bool("tokenizer.ggml.add_space_prefix")) v.add_space_prefix = *b;
  read_required_id(f, "tokenizer.ggml.bos_token_id", n, v.bos);
  read_required_id(f, "tokenizer.ggml.eos_token_id", n, v.eos);
  read_required_id(f, "tokenizer.ggml.unknown_token_id", n, v.unk);
  read_required_id(f, "tokenizer.ggml.padding_token_id", n, v.pad);
  read_required_id(f, "tokenizer.ggml.eot_token_id", n, v.eot);
  if (auto b = f.opt_bool("tokenizer.ggml.add_bos_token")) v.add_bos = *b;
  if (auto b = f.opt_bool("tokenizer.ggml.add_eos_token")) v.add_eos = *b;
  if (v.add_bos && v.bos < 0) {
    f.fail(
        "BOS is to be added (tokenizer.ggml.add_bos_token or its default) but there is no BOS "
        "token id");
  }
  if (v.add_eos && v.eos < 0)
    f.fail("tokenizer.ggml.add_eos_token is set but there is no EOS token id");

  apply_text_rules(f, v, index);
  apply_strip_rules(f, v, index);
  v.chat_template = f.opt_string("tokenizer.chat_template");
  return v;
}

}  // namespace tern
