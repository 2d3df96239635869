// What the SPM and BPE tokenizers share (special-token partitioning, pieces, decode) and the UTF-8
// streamer.
#include <algorithm>
#include <string>
#include <utility>

#include "engine/error.h"
#include "engine/tokenizer.h"
#include "engine/tokenizer_impl.h"

namespace tern {

namespace {

void check_id(const Vocab& v, TokenId id, const char* what) {
  if (id < -1 || id >= static_cast<TokenId>(v.tokens.size())) {
    throw Error(std::string("tokenizer: ") + what + " id " + std::to_string(id) +
                " is outside the vocabulary of " + std::to_string(v.tokens.size()));
  }
}

// A Vocab need not come from load_vocab (tests build them by hand), so the invariants the
// tokenizers index by are checked again here.
void validate(Vocab& v) {
  if (v.tokens.empty()) throw Error("tokenizer: the vocabulary is empty");
  if (v.tokens.size() > static_cast<size_t>(INT32_MAX))
    throw Error("tokenizer: the vocabulary is too large");
  if (v.types.empty()) v.types.assign(v.tokens.size(), TokenKind::Normal);
  if (v.types.size() != v.tokens.size())
    throw Error("tokenizer: token types and tokens differ in number");
  if (!v.scores.empty() && v.scores.size() != v.tokens.size()) {
    throw Error("tokenizer: scores and tokens differ in number");
  }
  for (const auto& t : v.tokens) {
    if (t.empty()) throw Error("tokenizer: empty token text");
  }
  check_id(v, v.bos, "BOS");
  check_id(v, v.eos, "EOS");
  check_id(v, v.unk, "unknown-token");
  check_id(v, v.pad, "padding");
  check_id(v, v.eot, "EOT");
  for (const auto* list : {&v.lstrip, &v.rstrip}) {
    for (const TokenId id : *list) {
      if (id < 0) throw Error("tokenizer: negative id in a strip list");
      check_id(v, id, "strip-list");
    }
  }
  if (v.add_bos && v.bos < 0)
    throw Error("tokenizer: BOS is to be added but there is no BOS token");
  if (v.add_eos && v.eos < 0)
    throw Error("tokenizer: EOS is to be added but there is no EOS token");
}

// isspace() in the C locale, which is what llama.cpp strips around special tokens.
bool is_c_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

// llama.cpp's clean_up_tokenization_spaces, three in-place passes over the text. The passes read
// bytes they have already rewritten, so they are kept index for index to give the same output.
void clean_spaces(std::string& s) {
  auto n = s.size();
  // " ?", " !", " .", " ," lose the space.
  {
    const size_t n1 = n;
    n = n ? 1 : 0;
    for (size_t i = 1; i < n1; ++i) {
      const char x = s[i];
      if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --n;
      s[n++] = x;
    }
  }
  // " ' " becomes "'".
  {
    const size_t n2 = n;
    n = n ? 1 : 0;
    for (size_t i = 1; i < n2; ++i) {
      const char x = s[i];
      if (x == '\'' && i + 1 < n2 && s[i - 1] == ' ' && s[i + 1] == ' ') {
        --n;
        s[++i] = '\0';
      }
      s[n++] = x;
    }
  }
  // " 's", " 'm", " 're", " 've" lose the space.
  {
    const size_t n3 = n;
    n = n ? 1 : 0;
    for (size_t i = 1; i < n3; ++i) {
      const char x = s[i];
      if (s[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
        const char x1 = s[i + 1];
        if (x1 == 's' || x1 == 'm') {
          --n;
        } else if (i + 2 < n3) {
          const char x2 = s[i + 2];
          if ((x1 == 'r' || x1 == 'v') && x2 == 'e') --n;
        }
      }
      s[n++] = x;
    }
  }
  s.resize(n);
}

}  // namespace

TokenizerCommon::TokenizerCommon(Vocab vocab) : Tokenizer(std::move(vocab)) {
  const auto& v = vocab_;
  token_index_.reserve(v.tokens.size());
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    // Later duplicates win, as in llama.cpp's token_to_id map.
    token_index_[v.tokens[i]] = static_cast<TokenId>(i);
  }
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const TokenKind k = v.types[i];
    if (k == TokenKind::Control || k == TokenKind::UserDefined || k == TokenKind::Unknown) {
      special_tokens_.push_back(static_cast<TokenId>(i));
    }
  }
  strip_.assign(v.tokens.size(), 0);
  for (const TokenId id : v.lstrip) strip_[static_cast<size_t>(id)] |= kStripLeft;
  for (const TokenId id : v.rstrip) strip_[static_cast<size_t>(id)] |= kStripRight;
  // Same input order and the same (unstable) sort as llama.cpp, so equal-length tokens are tried
  // in the same order too.
  std::sort(special_tokens_.begin(), special_tokens_.end(), [&](TokenId a, TokenId b) {
    return v.tokens[static_cast<size_t>(a)].size() > v.tokens[static_cast<size_t>(b)].size();
  });
}

std::optional<TokenId> TokenizerCommon::find_token(std::string_view text) const {
  const auto it = token_index_.find(text);
  if (it == token_index_.end()) return std::nullopt;
  return it->second;
}

std::vector<Fragment> TokenizerCommon::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (const TokenId id : special_tokens_) {
    const TokenKind kind = vocab_.types[static_cast<size_t>(id)];
    if (!parse_special && (kind == TokenKind::Control || kind == TokenKind::Unknown)) continue;
    const std::string& needle = vocab_.tokens[static_cast<size_t>(id)];
    const uint8_t strip = strip_[static_cast<size_t>(id)];
    next.clear();
    bool found = false;
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t begin = f.begin;
      const size_t end = f.begin + f.size;
      while (begin < end) {
        const size_t hit = text.substr(begin, end - begin).find(needle);
        if (hit == std::string_view::npos) break;
        found = true;
        size_t left_end = begin + hit;
        if (strip & kStripLeft) {
          while (left_end > begin && is_c_space(text[left_end - 1])) --left_end;
        }
        if (left_end > begin) next.push_back({-1, begin, left_end - begin});
        next.push_back({id, begin + hit, needle.size()});
        begin += hit + needle.size();
        if (strip & kStripRight) {
          while (begin < end && is_c_space(text[begin])) ++begin;
        }
      }
      if (begin < end) next.push_back({-1, begin, end - begin});
    }
    if (found) frags.swap(next);
  }
  return frags;
}

std::string TokenizerCommon::token_to_piece(TokenId id, bool special) const {
  if (id < 0 || id >= n_vocab()) {
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(n_vocab()));
  }
  const TokenKind kind = vocab_.types[static_cast<size_t>(id)];
  if (!special && (kind == TokenKind::Control || kind == TokenKind::Unknown)) return {};
  return pieces_[static_cast<size_t>(id)];
}

std::unique_ptr<Tokenizer> Tokenizer::create(Vocab vocab) {
  validate(vocab);
  if (vocab.kind == VocabKind::Spm) return std::make_unique<SpmTokenizer>(std::move(vocab));
  return std::make_unique<BpeTokenizer>(std::move(vocab));
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool special) const {
  std::string text;
  // The space the encoder put in front of the text comes back with the first token; drop it.
  // llama.cpp spends this on the first token even when its piece is empty (a hidden BOS).
  bool strip_space = vocab_.add_space_prefix;
  for (const TokenId id : ids) {
    const std::string piece = token_to_piece(id, special);
    const size_t skip = (strip_space && !piece.empty() && piece.front() == ' ') ? 1 : 0;
    text.append(piece, skip, std::string::npos);
    strip_space = false;
  }
  if (vocab_.kind == VocabKind::Bpe && bpe_clean_spaces(vocab_.pre)) clean_spaces(text);
  return text;
}

namespace {

// How many bytes the sequence starting with `lead` should have; 0 if `lead` cannot start one.
size_t utf8_expected_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

}  // namespace

std::string Utf8StreamDecoder::push(std::string_view piece) {
  pending_.append(piece);
  size_t done = 0;  // bytes of pending_ that are settled: complete characters or hopeless bytes
  while (done < pending_.size()) {
    const size_t want = utf8_expected_len(static_cast<uint8_t>(pending_[done]));
    if (want <= 1) {  // ASCII, or a byte no continuation can rescue: pass it on
      ++done;
      continue;
    }
    size_t have = 1;
    while (have < want && done + have < pending_.size() &&
           (static_cast<uint8_t>(pending_[done + have]) & 0xC0) == 0x80) {
      ++have;
    }
    if (have == want) {
      done += have;
    } else if (done + have == pending_.size()) {
      break;  // a character still arriving: hold it
    } else {
      ++done;  // interrupted by a non-continuation byte: the lead is invalid, let it through
    }
  }
  std::string out = pending_.substr(0, done);
  pending_.erase(0, done);
  return out;
}

std::string Utf8StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace tern
