// Reading bitnet.cpp's I2_S tensors: the evidence rule that tells them from upstream type id 36,
// their validation, and the conversion to TQ2_0 while the file is opened. The rule and its
// reasons are in docs/QUANT_FORMATS.md ("I2_S in GGUF files"); keep the two in step.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace tern {
namespace {

// general.architecture values of bitnet.cpp's models (its fork's "bitnet", the 2B4T converter's
// "bitnet-b1.58" and "bitnet-25"). Its llama-architecture models are recognised by file type.
constexpr std::array<std::string_view, 3> kBitnetArchs = {"bitnet", "bitnet-b1.58", "bitnet-25"};

std::string num(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

// The scale becomes every TQ2_0 block's f16 d. Accepted: 0, any scale that is a half exactly,
// and scales in the normal half range (rounded to nearest, relative error <= 2^-11). Rejected:
// NaN, infinities, negative scales (bitnet.cpp writes max |w| or mean |w|), and magnitudes that
// would turn into 0 or infinity, or lose most of their bits as subnormal halves.
const char* scale_problem(float scale) {
  if (std::isnan(scale)) return "is NaN";
  if (std::isinf(scale)) return "is infinite";
  if (scale < 0.0f) return "is negative (bitnet.cpp writes a magnitude)";
  if (scale == 0.0f || quant::i2_s_scale_fits_fp16(scale)) return nullptr;
  if (scale >= 65520.0f) return "is too large for TQ2_0's f16 block scale (at most 65504)";
  if (scale < 0x1p-14f) return "is below the normal f16 range TQ2_0's block scale needs (6.1e-05)";
  return nullptr;
}

}  // namespace

std::optional<I2sLayout> parse_i2s_layout(std::string_view name) {
  if (name == "x86") return I2sLayout::kX86;
  if (name == "arm") return I2sLayout::kArm;
  return std::nullopt;
}

const char* i2s_layout_name(I2sLayout layout) {
  return layout == I2sLayout::kX86 ? "x86" : "arm";
}

void GgufFile::convert_i2s_tensors(const GgufOptions& options) {
  const auto first = std::find_if(tensors_.begin(), tensors_.end(),
                                  [](const GgufTensor& t) { return t.i2s_layout.has_value(); });
  if (first == tensors_.end()) return;
  const auto where = [&](const GgufTensor& t) {
    return "tensor '" + printable_name(t.name) + "' (type id " + std::to_string(kI2sTypeId) +
           ", bitnet.cpp's I2_S)";
  };

  // 1. Metadata: the file must say it comes from bitnet.cpp (or from tern writing its format).
  const std::optional<uint64_t> file_type = opt_uint("general.file_type");
  const std::string arch = opt_string("general.architecture").value_or("");
  const std::optional<std::string> layout_key = opt_string(kI2sLayoutKey);
  const bool bitnet_arch =
      std::find(kBitnetArchs.begin(), kBitnetArchs.end(), arch) != kBitnetArchs.end();
  if (file_type != kI2sFileType && !bitnet_arch && !layout_key) {
    fail(where(*first) + ": upstream GGUF no longer assigns that id, and nothing else marks a " +
         "bitnet.cpp file (general.file_type is " +
         (file_type ? std::to_string(*file_type) : std::string("missing")) + ", not " +
         std::to_string(kI2sFileType) + " = MOSTLY_I2_S; architecture '" + printable_name(arch) +
         "' is not a bitnet one)");
  }

  // 2. The code layout: the bytes cannot tell, so it is the caller's word, the file's key, or x86.
  std::optional<I2sLayout> from_key;
  if (layout_key) {
    from_key = parse_i2s_layout(*layout_key);
    if (!from_key)
      fail("key '" + std::string(kI2sLayoutKey) + "' is '" + printable_name(*layout_key) +
           "', expected 'x86' or 'arm'");
  }
  if (options.i2s_layout && from_key && *options.i2s_layout != *from_key) {
    fail(std::string("the I2_S layout was given as ") + i2s_layout_name(*options.i2s_layout) +
         " but the file's key '" + kI2sLayoutKey + "' says " + i2s_layout_name(*from_key));
  }
  const I2sLayout layout = options.i2s_layout.value_or(from_key.value_or(I2sLayout::kX86));
  const int64_t group = layout == I2sLayout::kX86 ? kI2sGroupX86 : kI2sGroupArm;

  // 3. Size: writers (ggml's gguf and gguf-py) place each tensor at the previous one's offset
  // plus its size rounded up to the alignment. So the bytes up to the next tensor, or to the end
  // of the file, must be the I2_S size n/4 + 32 padded to the alignment. A type-36 tensor of any
  // other size (such as upstream's retired IQ4_NL_4_4, 18 bytes per 32) is not taken for I2_S.
  // Overlaps and short data were rejected by parse().
  std::vector<const GgufTensor*> by_offset;
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](auto* a, auto* b) { return a->offset < b->offset; });
  const size_t data_size = file_.size() - data_offset_;
  for (size_t i = 0; i < by_offset.size(); ++i) {
    const GgufTensor& t = *by_offset[i];
    if (!t.i2s_layout) continue;
    const uint64_t end = i + 1 < by_offset.size() ? by_offset[i + 1]->offset : data_size;
    const uint64_t padded = (t.file_nbytes + alignment_ - 1) / alignment_ * alignment_;
    if (end - t.offset > padded) {
      fail(where(t) + ": its slot of " + std::to_string(end - t.offset) +
           " bytes is larger than the I2_S size of " + std::to_string(t.n_elements()) +
           " weights (n/4 + 32 = " + std::to_string(t.file_nbytes) +
           " bytes, padded to the alignment): not an I2_S tensor");
    }
  }

  // 4. Shape and scale, then the conversion.
  for (auto& t : tensors_) {
    if (!t.i2s_layout) continue;
    const int64_t n = t.n_elements();
    if (n % group != 0) {
      fail(where(t) + ": " + std::to_string(n) + " weights are not a multiple of the " +
           i2s_layout_name(layout) + " layout's group of " + std::to_string(group) +
           (layout == I2sLayout::kX86 ? " (if an ARM build of bitnet.cpp wrote the file, set the "
                                        "I2_S layout to arm)"
                                      : ""));
    }
    if (t.ne[0] % kQkK != 0) {
      fail(where(t) + ": row length " + std::to_string(t.ne[0]) +
           " is not a multiple of 256, so it cannot become TQ2_0, the form tern runs I2_S in");
    }
    const float scale = quant::i2_s_scale(t.data, static_cast<size_t>(n));
    if (const char* problem = scale_problem(scale)) {
      fail(where(t) + ": the scale " + num(scale) + " (f32 at byte " +
           std::to_string(t.offset + static_cast<uint64_t>(n / 4)) + " of the data section) " +
           problem);
    }
    const size_t bytes = static_cast<size_t>(n / kQkK) * sizeof(BlockTQ2_0);
    std::shared_ptr<std::byte[]> converted = converted_arena_.allocate(bytes);
    quant::i2_s_to_tq2_0(t.data, static_cast<size_t>(n), layout, converted.get(), true);
    t.i2s_layout = layout;
    t.data = converted.get();
    t.nbytes = bytes;
    converted_.push_back(std::move(converted));
  }
}

}  // namespace tern
