// UTF-8 coding, Unicode character classes and the GPT-2 byte alphabet, as llama.cpp's tokenizers
// see them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tern {

inline constexpr uint32_t kReplacementChar = 0xFFFD;
inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;

// Length of the sequence a UTF-8 lead byte announces, judged from its top four bits only. Stray
// continuation bytes count as 1 and nothing is validated: llama.cpp cuts text into symbols this
// way.
size_t utf8_len_from_lead(uint8_t lead);

// Decodes UTF-8 the way llama.cpp does: a byte that does not start a well-formed sequence becomes
// U+FFFD and decoding resumes at the next byte. Overlong forms and surrogates are accepted as they
// come.
std::vector<uint32_t> utf8_decode_lenient(std::string_view text);

// Appends the UTF-8 form of `cpt`. Values past U+10FFFF (only reachable from 4-byte sequences with
// an F5..F7 lead) are written as U+FFFD; llama.cpp throws there.
void utf8_append(std::string& out, uint32_t cpt);
std::string utf8_encode(uint32_t cpt);

// General category, folded to the classes llama.cpp's regexes use (\p{L}, \p{N}, ...).
enum class CharClass : uint8_t {
  Undefined,  // unassigned (Cn), or not a code point at all
  Number,
  Letter,
  Separator,
  Mark,
  Punctuation,
  Symbol,
  Control,  // Cc, Cf, Co, Cs
};

struct CodepointProps {
  CharClass cls = CharClass::Undefined;
  bool whitespace = false;  // the Unicode White_Space property, which is what llama.cpp's \s means
};

CodepointProps codepoint_props(uint32_t cpt);

// GPT-2 byte-level BPE shows each byte as a printable character: the UTF-8 of that character.
std::string_view byte_to_unicode(uint8_t byte);
// The byte a printable stand-in represents, or -1 when `cpt` stands for none.
int unicode_to_byte(uint32_t cpt);

}  // namespace tern
