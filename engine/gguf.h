// GGUF v2/v3 reader: an untrusted file is parsed into metadata and tensor views, every field
// validated against the file size before use. Tensor data stays in the (memory-mapped) file.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/huge_pages.h"
#include "engine/mapped_file.h"
#include "quant/kquants.h"
#include "quant/types.h"

namespace tern {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
const char* gguf_type_name(GgufType t);
// A key or tensor name from a file, fit for a one-line error message: control bytes escaped,
// long names cut.
std::string printable_name(std::string_view s);

struct GgufValue;
// An array stays as its validated bytes in the file (no per-element allocation at load: a hostile
// file cannot make tern allocate more than the file's size); decode() expands it on demand.
struct GgufArray {
  GgufType elem_type = GgufType::U8;
  uint64_t count = 0;
  std::span<const std::byte> raw;  // the elements as stored, after the type and count

  std::vector<GgufValue> decode(uint64_t max_items = UINT64_MAX) const;
};

// One metadata value. Integers are widened to 64 bits, floats to double; `type` keeps the stored
// type.
struct GgufValue {
  GgufType type = GgufType::U8;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> value;

  bool is_integer() const;
  bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
};

// bitnet.cpp's tensor type id for I2_S. Upstream GGUF retired id 36 (IQ4_NL_4_4), so the id alone
// is not trusted: see GgufFile and docs/QUANT_FORMATS.md ("I2_S in GGUF files").
inline constexpr uint32_t kI2sTypeId = 36;
// bitnet.cpp's general.file_type for mostly-I2_S files (LLAMA_FTYPE_MOSTLY_I2_S; unused upstream).
inline constexpr uint32_t kI2sFileType = 40;
// tern's own key naming the I2_S code layout ("x86" or "arm"); bitnet.cpp writes no such key.
inline constexpr const char* kI2sLayoutKey = "tern.i2_s.layout";

// "x86" or "arm" (as in the key and TERN_I2S_LAYOUT); nullopt for anything else.
std::optional<I2sLayout> parse_i2s_layout(std::string_view name);
const char* i2s_layout_name(I2sLayout layout);

struct GgufOptions {
  // The code layout of I2_S tensors, which their bytes cannot reveal. nullopt: the file's
  // tern.i2_s.layout key, else x86 (what bitnet.cpp's converters and x86 builds write).
  std::optional<I2sLayout> i2s_layout;
};

struct GgufTensor {
  std::string name;
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // ne[0] is the row length
  const TypeTraits* traits = nullptr;
  uint64_t offset = 0;  // relative to the data section
  size_t nbytes = 0;
  const std::byte* data = nullptr;
  // Set when the file stores the tensor as bitnet.cpp's I2_S: the reader has converted it to TQ2_0
  // and traits, nbytes and data describe that copy (owned by the GgufFile).
  std::optional<I2sLayout> i2s_layout;
  size_t file_nbytes = 0;  // bytes the tensor occupies in the file (nbytes unless converted)

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_stride() const { return nbytes / static_cast<size_t>(n_rows()); }
};

class GgufFile {
 public:
  // Throws tern::Error "PATH: what is wrong (where)" for any defect.
  static GgufFile open(const std::string& path, bool use_mmap = true,
                       const GgufOptions& options = {});
  // Parses a file already in memory (tests, fuzzing); `name` is used in error messages.
  static GgufFile from_bytes(std::vector<std::byte> bytes, const std::string& name,
                             const GgufOptions& options = {});

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }
  size_t file_size() const { return file_.size(); }
  // False when the file was read into (huge-page) memory instead of mapped.
  bool is_mapped() const { return file_.is_mapped(); }
  // See MappedFile::drop_pages: for tensor bytes the engine has copied elsewhere.
  void drop_pages(std::span<const std::byte> range) const { file_.drop_pages(range); }

  // Metadata in file order, and lookup by key.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;

  // Typed accessors. get_* throw naming the key when missing or of the wrong type;
  // opt_* return nullopt when missing and throw when present with the wrong type.
  std::string get_string(const std::string& key) const;
  std::optional<std::string> opt_string(const std::string& key) const;
  uint64_t get_uint(const std::string& key) const;  // any non-negative integer type
  std::optional<uint64_t> opt_uint(const std::string& key) const;
  std::optional<int64_t> opt_int(const std::string& key) const;
  std::optional<double> opt_float(const std::string& key) const;  // f32/f64 (or integer)
  std::optional<bool> opt_bool(const std::string& key) const;
  // Arrays: nullopt when missing; throws if not an array of the expected element type.
  std::optional<std::vector<std::string>> opt_string_array(const std::string& key) const;
  std::optional<std::vector<float>> opt_float_array(const std::string& key) const;
  std::optional<std::vector<int64_t>> opt_int_array(const std::string& key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(const std::string& name) const;

  // "PATH: msg" error, for model loaders that validate shapes against hyperparameters.
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  GgufFile() = default;
  void parse();
  // Weighs the evidence for every type-36 tensor and converts the I2_S ones to TQ2_0
  // (gguf_i2s.cpp); throws for any that is not a well-formed I2_S tensor.
  void convert_i2s_tensors(const GgufOptions& options);

  std::string path_;
  MappedFile file_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  // Tensors converted at load (I2_S), in huge pages: they are weights decoding streams.
  HugePageArena converted_arena_;
  std::vector<std::shared_ptr<std::byte[]>> converted_;
};

}  // namespace tern
