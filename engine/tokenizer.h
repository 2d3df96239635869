// Tokenizers that match llama.cpp token for token: SentencePiece-style ("llama") and byte-level
// BPE ("gpt2", with the gpt2 and llama3 pre-tokenizers). The vocabulary is read from GGUF metadata.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern {

class GgufFile;

using TokenId = int32_t;

enum class VocabKind { Spm, Bpe };

// Token attributes as stored in tokenizer.ggml.token_type.
enum class TokenKind : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

struct Vocab {
  VocabKind kind = VocabKind::Spm;
  std::string pre;  // tokenizer.ggml.pre ("default", "gpt2", "llama3"/"llama-bpe", ...)
  std::vector<std::string> tokens;
  std::vector<float> scores;        // empty when the file has none
  std::vector<TokenKind> types;     // defaults to Normal
  std::vector<std::string> merges;  // BPE: "left right"
  TokenId bos = -1, eos = -1, unk = -1, pad = -1, eot = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
  std::optional<std::string> chat_template;
  // Special tokens that, when found in text, swallow the whitespace before (lstrip) or after
  // (rstrip) them. llama.cpp sets these by model name (phi-3, jina-v2); GGUF has no key for it.
  std::vector<TokenId> lstrip, rstrip;
};

// Reads and validates tokenizer.ggml.* (lengths agree, ids in range). Throws tern::Error.
Vocab load_vocab(const GgufFile& file);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // add_special: BOS/EOS as the vocab says. parse_special: control tokens written in the text
  // ("<s>") become their ids; user-defined tokens are always matched, as in llama.cpp.
  virtual std::vector<TokenId> encode(std::string_view text, bool add_special,
                                      bool parse_special = false) const = 0;
  // The bytes of one token as it appears in text (may be part of a UTF-8 character).
  // Control tokens give "" unless `special` is true.
  virtual std::string token_to_piece(TokenId id, bool special = false) const = 0;
  std::string decode(const std::vector<TokenId>& ids, bool special = false) const;

  const Vocab& vocab() const { return vocab_; }
  int32_t n_vocab() const { return static_cast<int32_t>(vocab_.tokens.size()); }
  bool is_eog(TokenId id) const { return id == vocab_.eos || id == vocab_.eot; }

  static std::unique_ptr<Tokenizer> create(Vocab vocab);

 protected:
  explicit Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
  Vocab vocab_;
};

// Streams decoded pieces as complete UTF-8: bytes of a character split across tokens are held back
// until the character is whole. Invalid sequences are passed through once they cannot complete.
class Utf8StreamDecoder {
 public:
  // Returns the text that is now complete.
  std::string push(std::string_view piece);
  // Returns whatever is still held (end of generation).
  std::string flush();

 private:
  std::string pending_;
};

}  // namespace tern
