// SentencePiece-style tokenizer ("llama" vocabularies): greedy bigram merging by score, byte
// fallback.
#include <algorithm>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer_impl.h"
#include "engine/unicode.h"

namespace tern {

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

struct Bigram {
  int left = 0;
  int right = 0;
  float score = 0.0f;
  size_t size = 0;  // the merged length when queued; a mismatch later means the entry is stale
};

// Highest score first; among equal scores the leftmost pair, as llama.cpp orders its queue.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

SpmTokenizer::SpmTokenizer(Vocab vocab) : TokenizerCommon(std::move(vocab)) {
  pieces_.reserve(vocab_.tokens.size());
  for (size_t i = 0; i < vocab_.tokens.size(); ++i)
    pieces_.push_back(make_piece(static_cast<TokenId>(i)));
}

std::string SpmTokenizer::make_piece(TokenId id) const {
  const std::string& text = vocab_.tokens[static_cast<size_t>(id)];
  switch (vocab_.types[static_cast<size_t>(id)]) {
    case TokenKind::Control:
    case TokenKind::Unknown:
    case TokenKind::UserDefined:
      return text;
    case TokenKind::Normal: {
      std::string out;
      out.reserve(text.size());
      for (size_t i = 0; i < text.size();) {
        if (text.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
          out.push_back(' ');
          i += kSpaceMarker.size();
        } else {
          out.push_back(text[i++]);
        }
      }
      return out;
    }
    case TokenKind::Byte: {
      // "<0xAB>": llama.cpp reads the two characters after "<0x" with strtol, so a malformed
      // byte token still gives whatever hex digits lead there (or 0).
      int value = 0;
      for (size_t i = 3; i < text.size() && i < 5; ++i) {
        const int d = hex_digit(text[i]);
        if (d < 0) break;
        value = value * 16 + d;
      }
      return std::string(1, static_cast<char>(static_cast<uint8_t>(value)));
    }
    case TokenKind::Undefined:
    case TokenKind::Unused:
      break;
  }
  return {};
}

TokenId SpmTokenizer::byte_token(uint8_t byte) const {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char name[6] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
  if (auto id = find_token(std::string_view(name, sizeof name))) return *id;
  const char raw = static_cast<char>(byte);
  if (auto id = find_token(std::string_view(&raw, 1))) return *id;
  // llama.cpp throws here (a vocabulary without byte fallback); the unknown token is the
  // honest stand-in.
  return vocab_.unk;
}

void SpmTokenizer::encode_text(std::string_view fragment, bool space_prefix,
                               std::vector<TokenId>& out) const {
  std::string text;
  text.reserve(fragment.size() + 8);
  if (space_prefix) text.append(kSpaceMarker);
  for (const char c : fragment) {
    if (c == ' ') {
      text.append(kSpaceMarker);
    } else {
      text.push_back(c);
    }
  }

  std::vector<MergeSymbol> symbols;
  symbols.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    MergeSymbol s;
    s.begin = pos;
    s.size = std::min(utf8_len_from_lead(static_cast<uint8_t>(text[pos])), text.size() - pos);
    pos += s.size;
    s.prev = static_cast<int>(symbols.size()) - 1;
    s.next = pos == text.size() ? -1 : static_cast<int>(symbols.size()) + 1;
    symbols.push_back(s);
  }
  if (symbols.empty()) return;

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const MergeSymbol& l = symbols[static_cast<size_t>(left)];
    const MergeSymbol& r = symbols[static_cast<size_t>(right)];
    const std::string_view joined(text.data() + l.begin, l.size + r.size);
    const auto id = find_token(joined);
    if (!id) return;
    const float score = vocab_.scores.empty() ? 0.0f : vocab_.scores[static_cast<size_t>(*id)];
    queue.push(Bigram{left, right, score, joined.size()});
  };

  for (size_t i = 1; i < symbols.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

  run_merges(symbols, queue, try_add);

  // Every merged symbol is a vocabulary token (it was queued only if it was one), so only single
  // characters can miss; they fall back to their bytes. llama.cpp's rev_merge lookup never fires.
  for (int i = 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
    const MergeSymbol& s = symbols[static_cast<size_t>(i)];
    const std::string_view piece(text.data() + s.begin, s.size);
    if (auto id = find_token(piece)) {
      out.push_back(*id);
      continue;
    }
    for (const char c : piece) {
      const TokenId id = byte_token(static_cast<uint8_t>(c));
      if (id >= 0) out.push_back(id);
    }
  }
}

std::vector<TokenId> SpmTokenizer::encode(std::string_view text, bool add_special,
                                          bool parse_special) const {
  std::vector<TokenId> out;
  const std::vector<Fragment> frags = partition(text, parse_special);
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
  // Raw text gets the leading space at the very start and again after every special token.
  bool prev_special = true;
  for (const Fragment& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
    } else {
      encode_text(text.substr(f.begin, f.size), vocab_.add_space_prefix && prev_special, out);
      prev_special = false;
    }
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

}  // namespace tern
