// UTF-8 coding, Unicode classes via ICU, and the GPT-2 byte alphabet.
#include "engine/unicode.h"

#include <unicode/uchar.h>

#include <array>

namespace tern {

size_t utf8_len_from_lead(uint8_t lead) {
  static constexpr std::array<uint8_t, 16> kLen = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

namespace {

bool is_continuation(uint8_t b) {
  return (b & 0xC0) == 0x80;
}

// Decodes one sequence at `pos`; returns its length, or 0 when the bytes there are not a sequence.
size_t decode_one(std::string_view s, size_t pos, uint32_t& cpt) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[pos + i]); };
  const uint8_t b0 = byte(0);
  const size_t avail = s.size() - pos;
  if (b0 < 0x80) {
    cpt = b0;
    return 1;
  }
  if ((b0 & 0x40) == 0) return 0;  // a continuation byte cannot start a sequence
  size_t len = 0;
  uint32_t value = 0;
  if ((b0 & 0x20) == 0) {
    len = 2;
    value = b0 & 0x1Fu;
  } else if ((b0 & 0x10) == 0) {
    len = 3;
    value = b0 & 0x0Fu;
  } else if ((b0 & 0x08) == 0) {
    len = 4;
    value = b0 & 0x07u;
  } else {
    return 0;
  }
  if (avail < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    if (!is_continuation(byte(i))) return 0;
    value = (value << 6) | (byte(i) & 0x3Fu);
  }
  cpt = value;
  return len;
}

}  // namespace

std::vector<uint32_t> utf8_decode_lenient(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cpt = 0;
    const size_t len = decode_one(text, pos, cpt);
    if (len == 0) {
      out.push_back(kReplacementChar);
      ++pos;
    } else {
      out.push_back(cpt);
      pos += len;
    }
  }
  return out;
}

void utf8_append(std::string& out, uint32_t cpt) {
  const auto put = [&](uint32_t b) { out.push_back(static_cast<char>(static_cast<uint8_t>(b))); };
  if (cpt > kMaxCodepoint) cpt = kReplacementChar;
  if (cpt < 0x80) {
    put(cpt);
  } else if (cpt < 0x800) {
    put(0xC0 | (cpt >> 6));
    put(0x80 | (cpt & 0x3F));
  } else if (cpt < 0x10000) {
    put(0xE0 | (cpt >> 12));
    put(0x80 | ((cpt >> 6) & 0x3F));
    put(0x80 | (cpt & 0x3F));
  } else {
    put(0xF0 | (cpt >> 18));
    put(0x80 | ((cpt >> 12) & 0x3F));
    put(0x80 | ((cpt >> 6) & 0x3F));
    put(0x80 | (cpt & 0x3F));
  }
}

std::string utf8_encode(uint32_t cpt) {
  std::string s;
  utf8_append(s, cpt);
  return s;
}

namespace {

CharClass class_from_icu(int8_t type) {
  switch (type) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return CharClass::Letter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return CharClass::Number;
    case U_SPACE_SEPARATOR:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
      return CharClass::Separator;
    case U_NON_SPACING_MARK:
    case U_ENCLOSING_MARK:
    case U_COMBINING_SPACING_MARK:
      return CharClass::Mark;
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
      return CharClass::Punctuation;
    case U_MATH_SYMBOL:
    case U_CURRENCY_SYMBOL:
    case U_MODIFIER_SYMBOL:
    case U_OTHER_SYMBOL:
      return CharClass::Symbol;
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_PRIVATE_USE_CHAR:
    case U_SURROGATE:
      return CharClass::Control;
    default:
      return CharClass::Undefined;
  }
}

// llama.cpp's tables are Unicode 15.1; the system ICU may be older (72 is Unicode 15.0). These are
// the 15.1 additions, so that a code point unknown to ICU still gets the class llama.cpp gives it.
struct AddedRange {
  uint32_t first, last;
  CharClass cls;
};
constexpr std::array<AddedRange, 3> kUnicode151Additions = {{
    {0x2FFC, 0x2FFF, CharClass::Symbol},    // ideographic description characters
    {0x31EF, 0x31EF, CharClass::Symbol},    // CJK stroke HXG
    {0x2EBF0, 0x2EE5D, CharClass::Letter},  // CJK Unified Ideographs Extension I
}};

CodepointProps compute_props(uint32_t cpt) {
  CodepointProps p;
  if (cpt > kMaxCodepoint) return p;
  const auto c = static_cast<UChar32>(cpt);
  p.cls = class_from_icu(static_cast<int8_t>(u_charType(c)));
  if (p.cls == CharClass::Undefined) {
    for (const auto& r : kUnicode151Additions) {
      if (cpt >= r.first && cpt <= r.last) p.cls = r.cls;
    }
  }
  p.whitespace = u_isUWhiteSpace(c) != 0;
  return p;
}

}  // namespace

CodepointProps codepoint_props(uint32_t cpt) {
  // ASCII dominates real text; a table keeps ICU out of the common path.
  static const std::array<CodepointProps, 128> kAscii = [] {
    std::array<CodepointProps, 128> t{};
    for (uint32_t i = 0; i < 128; ++i) t[i] = compute_props(i);
    return t;
  }();
  if (cpt < 128) return kAscii[cpt];
  return compute_props(cpt);
}

namespace {

bool byte_is_printable(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct ByteAlphabet {
  std::array<std::string, 256> to_unicode;
  std::array<int16_t, 512> from_unicode{};  // indexed by code point; every stand-in is below 512

  ByteAlphabet() {
    from_unicode.fill(-1);
    // Printable bytes stand for themselves; the rest take code points 256, 257, ... in byte order.
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cpt = byte_is_printable(b) ? static_cast<uint32_t>(b) : next++;
      to_unicode[static_cast<size_t>(b)] = utf8_encode(cpt);
      from_unicode[cpt] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet kAlphabet;
  return kAlphabet;
}

}  // namespace

std::string_view byte_to_unicode(uint8_t byte) {
  return byte_alphabet().to_unicode[byte];
}

int unicode_to_byte(uint32_t cpt) {
  if (cpt >= byte_alphabet().from_unicode.size()) return -1;
  return byte_alphabet().from_unicode[cpt];
}

}  // namespace tern
