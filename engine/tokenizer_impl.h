// Private to the tokenizer sources (and tests): the SPM/BPE classes, their shared base, the BPE
// pre-tokenizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer.h"

namespace tern {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIndex = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// A piece of the input after special tokens are cut out: either a token or a span of raw text.
struct Fragment {
  TokenId token = -1;  // >= 0: a special token that matched
  size_t begin = 0;
  size_t size = 0;
};

inline constexpr uint8_t kStripLeft = 1;
inline constexpr uint8_t kStripRight = 2;

class TokenizerCommon : public Tokenizer {
 public:
  std::string token_to_piece(TokenId id, bool special) const override;

 protected:
  explicit TokenizerCommon(Vocab vocab);

  std::optional<TokenId> find_token(std::string_view text) const;
  // Cuts `text` around special tokens like llama.cpp's tokenizer_st_partition: longest token text
  // first, each occurrence left to right. Without parse_special only user-defined tokens count.
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;

  StringIndex token_index_;
  std::vector<TokenId> special_tokens_;  // control, user-defined and unknown tokens, longest first
  std::vector<std::string> pieces_;      // token_to_piece(id, special = true), filled by subclasses
  std::vector<uint8_t> strip_;           // per token: kStripLeft | kStripRight
};

class SpmTokenizer final : public TokenizerCommon {
 public:
  explicit SpmTokenizer(Vocab vocab);
  std::vector<TokenId> encode(std::string_view text, bool add_special,
                              bool parse_special) const override;

 private:
  void encode_text(std::string_view text, bool space_prefix, std::vector<TokenId>& out) const;
  TokenId byte_token(uint8_t byte) const;
  std::string make_piece(TokenId id) const;
};

enum class PreTokenizer { Default, Gpt2, Llama3 };

// The llama.cpp pre-tokenizer a `tokenizer.ggml.pre` value selects; nullopt when unsupported.
std::optional<PreTokenizer> pre_tokenizer_for(std::string_view pre);
// Splits code points into words; returns each word's length in code points.
std::vector<size_t> pre_tokenize(const std::vector<uint32_t>& cpts, PreTokenizer kind);
// Whether llama.cpp tidies spaces before punctuation when detokenizing this BPE vocabulary.
bool bpe_clean_spaces(std::string_view pre);

class BpeTokenizer final : public TokenizerCommon {
 public:
  explicit BpeTokenizer(Vocab vocab);
  std::vector<TokenId> encode(std::string_view text, bool add_special,
                              bool parse_special) const override;

 private:
  void encode_text(std::string_view text, std::vector<TokenId>& out) const;
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;
  int32_t merge_rank(std::string_view left, std::string_view right, std::string& scratch) const;
  std::string make_piece(TokenId id) const;

  PreTokenizer pre_kind_ = PreTokenizer::Gpt2;
  bool ignore_merges_ = false;
  StringIndex merge_ranks_;  // "left right" -> rank
};

// A piece of the text during pair merging (both tokenizers): a doubly linked list over the
// input, where a symbol merged into its left neighbour keeps size 0.
struct MergeSymbol {
  int prev = -1;
  int next = -1;
  size_t begin = 0;  // byte offset into the text being merged
  size_t size = 0;   // 0 once merged into its left neighbour
};

// Pops queued pairs in priority order and merges them, as llama.cpp's SPM and BPE tokenizers do.
// A queued pair records its merged length; symbols only grow, so a different length now means the
// entry is stale. try_add(left, right) queues the pair of two live symbols if it may merge.
template <typename Queue, typename TryAdd>
void run_merges(std::vector<MergeSymbol>& symbols, Queue& queue, TryAdd&& try_add) {
  while (!queue.empty()) {
    const auto b = queue.top();
    queue.pop();
    MergeSymbol& l = symbols[static_cast<size_t>(b.left)];
    MergeSymbol& r = symbols[static_cast<size_t>(b.right)];
    if (l.size == 0 || r.size == 0 || l.size + r.size != b.size) continue;
    l.size += r.size;
    r.size = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
}

}  // namespace tern
