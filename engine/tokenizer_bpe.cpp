// Byte-level BPE tokenizer ("gpt2" vocabularies) and its hand-written regex pre-tokenizers.
#include <algorithm>
#include <array>
#include <cstdio>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "engine/tokenizer_impl.h"
#include "engine/unicode.h"

namespace tern {

namespace {

constexpr std::array<std::string_view, 14> kGpt2Pre = {
    "gpt2",       "gpt-2",      "phi-2",        "jina-es",     "jina-de", "gigachat", "jina-v1-en",
    "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt",     "olmo",     "jais"};
constexpr std::array<std::string_view, 7> kLlama3Pre = {
    "llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "chatglm-bpe"};
// These also take the llama3 vocabulary's habit of keeping whole words that are tokens.
constexpr std::array<std::string_view, 4> kIgnoreMergesPre = {"llama3", "llama-v3", "llama-bpe",
                                                              "falcon3"};
// Pre-tokenizers llama.cpp detokenizes without the space clean-up.
constexpr std::array<std::string_view, 11> kNoCleanSpacesPre = {
    "deepseek-llm", "deepseek-coder", "deepseek-v3", "command-r", "qwen2",    "deepseek-r1-qwen",
    "poro-chat",    "viking",         "tekken",      "smollm",    "chameleon"};

template <size_t N>
bool one_of(std::string_view s, const std::array<std::string_view, N>& set) {
  for (const auto& x : set) {
    if (x == s) return true;
  }
  return false;
}

// Per-code-point classes the splitters test. A position past the segment has none of them, not
// even kInside, which is how llama.cpp's splitters see the end of a segment.
enum : uint8_t {
  kInside = 1,
  kLetter = 2,
  kNumber = 4,
  kSpace = 8,
  kPunctRun = 16,  // [\p{P}$+<=>^~|], the first regex of the "default" pre-tokenizer
};

uint8_t classify(uint32_t cpt) {
  const CodepointProps p = codepoint_props(cpt);
  uint8_t k = kInside;
  if (p.cls == CharClass::Letter) k |= kLetter;
  if (p.cls == CharClass::Number) k |= kNumber;
  if (p.whitespace) k |= kSpace;
  if (cpt < 128) {
    // llama.cpp runs that regex with std::regex over ASCII punctuation and symbols (all but '`').
    static constexpr std::string_view kAsciiPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_{|}~";
    if (kAsciiPunct.find(static_cast<char>(cpt)) != std::string_view::npos) k |= kPunctRun;
  } else if (p.cls == CharClass::Punctuation && !p.whitespace) {
    k |= kPunctRun;
  }
  return k;
}

bool is_other(uint8_t k) {
  return (k & kInside) && !(k & (kLetter | kNumber | kSpace));
}

bool is_newline(uint32_t c) {
  return c == '\r' || c == '\n';
}

uint32_t ascii_lower(uint32_t c) {
  return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

constexpr uint32_t kOutside = 0xFFFFFFFF;

// One segment of the text being split further; emit() closes a word at a position.
class Segment {
 public:
  Segment(const std::vector<uint32_t>& cpts, const std::vector<uint8_t>& cls, size_t begin,
          size_t end, std::vector<size_t>& out)
      : cpts_(cpts), cls_(cls), begin_(begin), end_(end), last_(begin), out_(out) {}

  size_t begin() const { return begin_; }
  size_t end() const { return end_; }
  uint32_t cp(size_t i) const { return i < end_ ? cpts_[i] : kOutside; }
  uint8_t cl(size_t i) const { return i < end_ ? cls_[i] : 0; }
  void emit(size_t to) {
    if (to > last_) out_.push_back(to - last_);
    last_ = to;
  }

 private:
  const std::vector<uint32_t>& cpts_;
  const std::vector<uint8_t>& cls_;
  size_t begin_, end_, last_;
  std::vector<size_t>& out_;
};

// 's|'t|'re|'ve|'m|'ll|'d (optionally case-insensitive): the length of the contraction at pos, or
// 0.
size_t contraction_at(const Segment& s, size_t pos, bool any_case) {
  if (s.cp(pos) != '\'' || pos + 1 >= s.end()) return 0;
  const auto fold = [&](uint32_t c) { return any_case ? ascii_lower(c) : c; };
  const uint32_t c1 = fold(s.cp(pos + 1));
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (pos + 2 >= s.end()) return 0;
  const uint32_t c2 = fold(s.cp(pos + 2));
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void split_gpt2(Segment& s) {
  size_t pos = s.begin();
  while (pos < s.end()) {
    if (const size_t n = contraction_at(s, pos, false)) {
      pos += n;
      s.emit(pos);
      continue;
    }
    const bool lead_space = s.cp(pos) == ' ';
    const uint8_t k = s.cl(lead_space ? pos + 1 : pos);
    const size_t start = lead_space ? pos + 1 : pos;
    if (k & (kLetter | kNumber)) {
      const uint8_t want = (k & kLetter) ? kLetter : kNumber;
      pos = start;
      while (s.cl(pos) & want) ++pos;
      s.emit(pos);
      continue;
    }
    if (is_other(k)) {
      pos = start;
      while (is_other(s.cl(pos))) ++pos;
      s.emit(pos);
      continue;
    }
    size_t n_space = 0;
    while (s.cl(pos + n_space) & kSpace) ++n_space;
    if (n_space > 1 && pos + n_space < s.end()) {
      pos += n_space - 1;  // \s+(?!\S): the last space goes with the next word
    } else if (n_space > 0) {
      pos += n_space;
    } else {
      ++pos;
    }
    s.emit(pos);
  }
}

// Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
void split_llama3(Segment& s) {
  size_t pos = s.begin();
  while (pos < s.end()) {
    if (const size_t n = contraction_at(s, pos, true)) {
      pos += n;
      s.emit(pos);
      continue;
    }
    const uint32_t c = s.cp(pos);
    const uint8_t k = s.cl(pos);
    if (!is_newline(c) && !(k & kNumber) && ((k & kLetter) || (s.cl(pos + 1) & kLetter))) {
      ++pos;  // a letter, or the one non-letter allowed in front of the letters
      while (s.cl(pos) & kLetter) ++pos;
      s.emit(pos);
      continue;
    }
    if (k & kNumber) {
      size_t group = pos;
      while (s.cl(pos) & kNumber) {
        if (++pos - group >= 3) {
          s.emit(pos);
          group = pos;
        }
      }
      s.emit(pos);
      continue;
    }
    const uint8_t k2 = (c == ' ') ? s.cl(pos + 1) : k;
    if (!(k2 & (kSpace | kLetter | kNumber))) {
      if (c == ' ') ++pos;
      for (uint8_t kk = k2; is_other(kk);) kk = s.cl(++pos);
      while (is_newline(s.cp(pos))) ++pos;
      s.emit(pos);
      continue;
    }
    size_t n_space = 0;
    size_t newline_end = 0;
    while (s.cl(pos + n_space) & kSpace) {
      if (is_newline(s.cp(pos + n_space))) newline_end = pos + n_space + 1;
      ++n_space;
    }
    if (newline_end > 0) {
      pos = newline_end;  // \s*[\r\n]+
    } else if (n_space > 1 && pos + n_space < s.end()) {
      pos += n_space - 1;
    } else if (n_space > 0) {
      pos += n_space;
    } else {
      ++pos;
    }
    s.emit(pos);
  }
}

// A regex of the form [class]+: matches and the gaps between them both become words.
void split_runs(Segment& s, uint8_t bit) {
  size_t pos = s.begin();
  while (pos < s.end()) {
    const bool in = (s.cl(pos) & bit) != 0;
    while (pos < s.end() && ((s.cl(pos) & bit) != 0) == in) ++pos;
    s.emit(pos);
  }
}

// [0-9][0-9][0-9]: ASCII digit triples, leftmost first.
void split_digit_triples(Segment& s) {
  const auto digit = [&](size_t i) {
    const uint32_t c = s.cp(i);
    return c >= '0' && c <= '9';
  };
  size_t pos = s.begin();
  while (pos + 3 <= s.end()) {
    if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
      s.emit(pos);
      pos += 3;
      s.emit(pos);
    } else {
      ++pos;
    }
  }
  s.emit(s.end());
}

}  // namespace

std::optional<PreTokenizer> pre_tokenizer_for(std::string_view pre) {
  if (pre.empty() || pre == "default") return PreTokenizer::Default;
  if (one_of(pre, kGpt2Pre)) return PreTokenizer::Gpt2;
  if (one_of(pre, kLlama3Pre)) return PreTokenizer::Llama3;
  return std::nullopt;
}

bool bpe_clean_spaces(std::string_view pre) {
  return !one_of(pre, kNoCleanSpacesPre);
}

std::vector<size_t> pre_tokenize(const std::vector<uint32_t>& cpts, PreTokenizer kind) {
  std::vector<size_t> words;
  if (cpts.empty()) return words;
  std::vector<uint8_t> cls(cpts.size());
  for (size_t i = 0; i < cpts.size(); ++i) cls[i] = classify(cpts[i]);

  // Like llama.cpp, a list of regexes applied in turn, each splitting the words of the last.
  enum class Stage { PunctRuns, Gpt2, Llama3, NumberRuns, DigitTriples };
  std::vector<Stage> stages;
  switch (kind) {
    case PreTokenizer::Default:
      stages = {Stage::PunctRuns, Stage::Gpt2, Stage::NumberRuns, Stage::DigitTriples};
      break;
    case PreTokenizer::Gpt2:
      stages = {Stage::Gpt2};
      break;
    case PreTokenizer::Llama3:
      stages = {Stage::Llama3};
      break;
  }

  words.push_back(cpts.size());
  std::vector<size_t> next;
  for (const Stage stage : stages) {
    next.clear();
    size_t begin = 0;
    for (const size_t len : words) {
      Segment seg(cpts, cls, begin, begin + len, next);
      switch (stage) {
        case Stage::PunctRuns:
          split_runs(seg, kPunctRun);
          break;
        case Stage::Gpt2:
          split_gpt2(seg);
          break;
        case Stage::Llama3:
          split_llama3(seg);
          break;
        case Stage::NumberRuns:
          split_runs(seg, kNumber);
          break;
        case Stage::DigitTriples:
          split_digit_triples(seg);
          break;
      }
      begin += len;
    }
    words.swap(next);
  }
  return words;
}

BpeTokenizer::BpeTokenizer(Vocab vocab) : TokenizerCommon(std::move(vocab)) {
  if (auto kind = pre_tokenizer_for(vocab_.pre)) {
    pre_kind_ = *kind;
  } else {
    spdlog::warn(
        "tokenizer: pre-tokenizer '{}' is not supported; splitting text like GPT-2, so tokens may "
        "differ from the model's own tokenizer",
        vocab_.pre);
    pre_kind_ = PreTokenizer::Gpt2;
  }
  ignore_merges_ = one_of(vocab_.pre, kIgnoreMergesPre);

  merge_ranks_.reserve(vocab_.merges.size());
  for (size_t i = 0; i < vocab_.merges.size(); ++i) {
    // Keyed by the merge line itself: words never contain a raw space (the byte alphabet maps it
    // to 'Ġ'), so "left right" has one reading. The first of duplicate lines keeps its rank.
    merge_ranks_.try_emplace(vocab_.merges[i], static_cast<int32_t>(i));
  }

  pieces_.reserve(vocab_.tokens.size());
  for (size_t i = 0; i < vocab_.tokens.size(); ++i)
    pieces_.push_back(make_piece(static_cast<TokenId>(i)));
}

std::string BpeTokenizer::make_piece(TokenId id) const {
  const std::string& text = vocab_.tokens[static_cast<size_t>(id)];
  switch (vocab_.types[static_cast<size_t>(id)]) {
    case TokenKind::Control:
    case TokenKind::Unknown:
    case TokenKind::UserDefined:
      return text;
    case TokenKind::Normal: {
      std::string out;
      for (const uint32_t cpt : utf8_decode_lenient(text)) {
        const int byte = unicode_to_byte(cpt);
        if (byte >= 0) {
          out.push_back(static_cast<char>(static_cast<uint8_t>(byte)));
          continue;
        }
        // A character outside the byte alphabet: llama.cpp writes this marker (with the whole
        // token text in it), and so must we to detokenize alike.
        out += "[UNK_BYTE_0x";
        for (const char b : utf8_encode(cpt)) {
          char hex[3];
          std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned>(static_cast<uint8_t>(b)));
          out += hex;
        }
        out += text;
        out += "]";
      }
      return out;
    }
    case TokenKind::Byte:
    case TokenKind::Undefined:
    case TokenKind::Unused:
      break;
  }
  return {};
}

int32_t BpeTokenizer::merge_rank(std::string_view left, std::string_view right,
                                 std::string& scratch) const {
  scratch.assign(left);
  scratch.push_back(' ');
  scratch.append(right);
  const auto it = merge_ranks_.find(std::string_view(scratch));
  return it == merge_ranks_.end() ? -1 : it->second;
}

namespace {

struct BpeBigram {
  int left = 0;
  int right = 0;
  int32_t rank = 0;
  size_t size = 0;  // merged length when queued; symbols only grow, so a mismatch means stale
};

// Lowest rank first, then leftmost, as llama.cpp's queue.
struct BpeBigramOrder {
  bool operator()(const BpeBigram& a, const BpeBigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

void BpeTokenizer::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  if (ignore_merges_) {
    if (auto id = find_token(word)) {
      out.push_back(*id);
      return;
    }
  }
  std::vector<MergeSymbol> symbols;
  symbols.reserve(word.size());
  for (size_t pos = 0; pos < word.size();) {
    MergeSymbol s;
    s.begin = pos;
    s.size = std::min(utf8_len_from_lead(static_cast<uint8_t>(word[pos])), word.size() - pos);
    pos += s.size;
    s.prev = static_cast<int>(symbols.size()) - 1;
    s.next = pos == word.size() ? -1 : static_cast<int>(symbols.size()) + 1;
    symbols.push_back(s);
  }
  if (symbols.empty()) return;

  std::string scratch;
  std::priority_queue<BpeBigram, std::vector<BpeBigram>, BpeBigramOrder> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const MergeSymbol& l = symbols[static_cast<size_t>(left)];
    const MergeSymbol& r = symbols[static_cast<size_t>(right)];
    const int32_t rank =
        merge_rank(word.substr(l.begin, l.size), word.substr(r.begin, r.size), scratch);
    if (rank < 0) return;
    queue.push(BpeBigram{left, right, rank, l.size + r.size});
  };
  for (size_t i = 1; i < symbols.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

  run_merges(symbols, queue, try_add);

  for (int i = 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
    const MergeSymbol& s = symbols[static_cast<size_t>(i)];
    const std::string_view piece = word.substr(s.begin, s.size);
    if (auto id = find_token(piece)) {
      out.push_back(*id);
      continue;
    }
    // Not a token: llama.cpp tries each raw byte as a token and silently drops the ones that
    // are not (in a byte-level vocabulary that is nearly all of them).
    for (size_t j = 0; j < piece.size(); ++j) {
      if (auto id = find_token(piece.substr(j, 1))) out.push_back(*id);
    }
  }
}

void BpeTokenizer::encode_text(std::string_view text, std::vector<TokenId>& out) const {
  const std::vector<uint32_t> cpts = utf8_decode_lenient(text);
  const std::vector<size_t> words = pre_tokenize(cpts, pre_kind_);
  std::string word;
  std::string utf8;
  size_t begin = 0;
  for (const size_t len : words) {
    // Re-encoding the decoded code points turns invalid input bytes into U+FFFD, as llama.cpp does.
    word.clear();
    for (size_t i = begin; i < begin + len; ++i) {
      utf8.clear();
      utf8_append(utf8, cpts[i]);
      for (const char b : utf8) word.append(byte_to_unicode(static_cast<uint8_t>(b)));
    }
    begin += len;
    encode_word(word, out);
  }
}

std::vector<TokenId> BpeTokenizer::encode(std::string_view text, bool add_special,
                                          bool parse_special) const {
  std::vector<TokenId> out;
  const std::vector<Fragment> frags = partition(text, parse_special);
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
  for (const Fragment& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
    } else {
      encode_text(text.substr(f.begin, f.size), out);
    }
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

}  // namespace tern
