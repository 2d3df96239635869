// GGUF reader: parses the header, metadata and tensor infos of an untrusted file, checking every
// count, length, offset and shape against the file size before it is used.
#include "engine/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>
#include <string_view>

#include "engine/error.h"

namespace tern {

// A key or tensor name from the file, fit for a one-line error message: control bytes escaped,
// long names cut.
std::string printable_name(std::string_view s) {
  constexpr size_t kMax = 96;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    if (ch < 0x20 || ch == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
  }
  if (s.size() > kMax) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 8;            // nested arrays deeper than this are rejected
constexpr uint32_t kMaxDims = 4;

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::STRING:
    case GgufType::ARRAY:
      return 0;
  }
  return 0;
}

bool known_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(GgufType::F64);
}

std::string hex(uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

// Bounds-checked little-endian reader over the file bytes. Every failure names the offset, and
// the item being read (a key or tensor, set by the parser as the context).
class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }
  void set_context(std::string context) { context_ = std::move(context); }

  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(path_ + ": " + (context_.empty() ? msg : context_ + ": " + msg));
  }

  void need(size_t n, const char* what) const {
    if (n > remaining()) {
      fail(std::string("truncated file: ") + what + " needs " + std::to_string(n) +
           " bytes at offset " + std::to_string(pos_) + ", file has " +
           std::to_string(bytes_.size()));
    }
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::span<const std::byte> since(size_t start) const {
    return bytes_.subspan(start, pos_ - start);
  }

  std::span<const std::byte> take(size_t n, const char* what) {
    need(n, what);
    auto s = bytes_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

  std::string read_string(const char* what) {
    const size_t len = string_length(what);
    auto s = take(len, what);
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }

  void skip_string(const char* what) { pos_ += string_length(what); }

 private:
  // Reads a string's u64 length and checks that many bytes follow.
  size_t string_length(const char* what) {
    const auto len = read<uint64_t>(what);
    if (len > remaining()) {
      fail(std::string("truncated file: ") + what + " of length " + std::to_string(len) +
           " at offset " + std::to_string(pos_ - 8) + " exceeds the " +
           std::to_string(remaining()) + " bytes left in the file");
    }
    return static_cast<size_t>(len);
  }

  std::span<const std::byte> bytes_;
  const std::string& path_;
  std::string context_;
  size_t pos_ = 0;
};

// Validates one array's elements (recursively) and returns the span they occupy.
GgufArray read_array(Cursor& c, int depth) {
  if (depth > kMaxArrayDepth) {
    c.fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " at offset " +
           std::to_string(c.pos()));
  }
  const auto elem = c.read<uint32_t>("array element type");
  if (!known_value_type(elem)) {
    c.fail("unknown array element type " + std::to_string(elem) + " at offset " +
           std::to_string(c.pos() - 4));
  }
  const auto count = c.read<uint64_t>("array length");
  GgufArray arr;
  arr.elem_type = static_cast<GgufType>(elem);
  arr.count = count;
  const size_t start = c.pos();
  const size_t fixed = scalar_size(arr.elem_type);
  // Smallest encoding of one element: a scalar's size, 8 for a string length, 12 for an array.
  const size_t min_elem = fixed ? fixed : (arr.elem_type == GgufType::STRING ? 8 : 12);
  if (count > c.remaining() / min_elem) {
    c.fail("truncated file: array length " + std::to_string(count) + " at offset " +
           std::to_string(start - 8) + " cannot fit in the " + std::to_string(c.remaining()) +
           " bytes left in the file");
  }
  if (fixed) {
    const auto data = c.take(static_cast<size_t>(count) * fixed, "array data");
    if (arr.elem_type == GgufType::BOOL) {
      for (size_t i = 0; i < data.size(); ++i) {
        if (static_cast<uint8_t>(data[i]) > 1) {
          c.fail("bool array element " + std::to_string(i) + " at offset " +
                 std::to_string(start + i) + " is " +
                 std::to_string(static_cast<uint8_t>(data[i])) + ", not 0 or 1");
        }
      }
    }
  } else if (arr.elem_type == GgufType::STRING) {
    for (uint64_t i = 0; i < count; ++i) c.skip_string("array string");
  } else {
    for (uint64_t i = 0; i < count; ++i) read_array(c, depth + 1);
  }
  arr.raw = c.since(start);
  return arr;
}

GgufValue read_value(Cursor& c, GgufType type, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::U8:
      v.value = uint64_t{c.read<uint8_t>("u8 value")};
      break;
    case GgufType::U16:
      v.value = uint64_t{c.read<uint16_t>("u16 value")};
      break;
    case GgufType::U32:
      v.value = uint64_t{c.read<uint32_t>("u32 value")};
      break;
    case GgufType::U64:
      v.value = c.read<uint64_t>("u64 value");
      break;
    case GgufType::I8:
      v.value = int64_t{c.read<int8_t>("i8 value")};
      break;
    case GgufType::I16:
      v.value = int64_t{c.read<int16_t>("i16 value")};
      break;
    case GgufType::I32:
      v.value = int64_t{c.read<int32_t>("i32 value")};
      break;
    case GgufType::I64:
      v.value = c.read<int64_t>("i64 value");
      break;
    case GgufType::F32:
      v.value = double{c.read<float>("f32 value")};
      break;
    case GgufType::F64:
      v.value = c.read<double>("f64 value");
      break;
    case GgufType::BOOL: {
      const auto b = c.read<uint8_t>("bool value");
      if (b > 1)
        c.fail("bool value " + std::to_string(b) + " at offset " + std::to_string(c.pos() - 1) +
               " is not 0 or 1");
      v.value = b != 0;
      break;
    }
    case GgufType::STRING:
      v.value = c.read_string("string value");
      break;
    case GgufType::ARRAY:
      v.value = read_array(c, depth + 1);
      break;
  }
  return v;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8:
      return "u8";
    case GgufType::I8:
      return "i8";
    case GgufType::U16:
      return "u16";
    case GgufType::I16:
      return "i16";
    case GgufType::U32:
      return "u32";
    case GgufType::I32:
      return "i32";
    case GgufType::F32:
      return "f32";
    case GgufType::BOOL:
      return "bool";
    case GgufType::STRING:
      return "string";
    case GgufType::ARRAY:
      return "array";
    case GgufType::U64:
      return "u64";
    case GgufType::I64:
      return "i64";
    case GgufType::F64:
      return "f64";
  }
  return "?";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::U16:
    case GgufType::I16:
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::U64:
    case GgufType::I64:
      return true;
    default:
      return false;
  }
}

std::vector<GgufValue> GgufArray::decode(uint64_t max_items) const {
  // The bytes were validated at load, so a cursor over them cannot fail; it still checks.
  static const std::string kName = "<array>";
  Cursor c(raw, kName);
  std::vector<GgufValue> out;
  const uint64_t n = std::min(count, max_items);
  out.reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) out.push_back(read_value(c, elem_type, 1));
  return out;
}

GgufFile GgufFile::open(const std::string& path, bool use_mmap, const GgufOptions& options) {
  GgufFile f;
  f.path_ = path;
  f.file_ = MappedFile::open(path, use_mmap);
  f.parse();
  f.convert_i2s_tensors(options);
  return f;
}

GgufFile GgufFile::from_bytes(std::vector<std::byte> bytes, const std::string& name,
                              const GgufOptions& options) {
  GgufFile f;
  f.path_ = name;
  f.file_ = MappedFile::from_bytes(std::move(bytes));
  f.parse();
  f.convert_i2s_tensors(options);
  return f;
}

void GgufFile::fail(const std::string& msg) const {
  throw Error(path_ + ": " + msg);
}

void GgufFile::parse() {
  Cursor c(file_.bytes(), path_);
  if (file_.size() < 4)
    fail("not a GGUF file: only " + std::to_string(file_.size()) + " bytes (truncated?)");
  const auto magic = c.read<uint32_t>("magic");
  if (magic != kGgufMagic) fail("not a GGUF file: bad magic " + hex(magic) + " at offset 0");
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) fail("GGUF version 1 is not supported (re-convert the model)");
  if (version_ != 2 && version_ != 3) {
    if (version_ == 0x02000000u || version_ == 0x03000000u) {
      fail("big-endian GGUF files are not supported (version field " + hex(version_) +
           " at offset 4)");
    }
    fail("unsupported GGUF version " + std::to_string(version_) + " at offset 4 (expected 2 or 3)");
  }
  const auto n_tensors = c.read<uint64_t>("tensor count");
  const auto n_kv = c.read<uint64_t>("metadata count");
  // A key/value pair needs at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes; a tensor info
  // 8 + 1 + 4 + 4 + 8. Together they must fit in what is left of the file.
  const size_t left = c.remaining();
  if (n_kv > left / 14) {
    fail("truncated file: metadata count " + std::to_string(n_kv) +
         " at offset 16 cannot fit in the " + std::to_string(left) + " bytes left in the file");
  }
  if (n_tensors > left / 25 || n_kv * 14 + n_tensors * 25 > left) {
    fail("truncated file: tensor count " + std::to_string(n_tensors) + " at offset 8 (with " +
         std::to_string(n_kv) + " metadata entries) cannot fit in the " + std::to_string(left) +
         " bytes left in the file");
  }

  // The counts are bounded by the file size, but the reservations are capped further so that a
  // large file with a corrupt count does not reserve many times its size in memory.
  kv_.reserve(static_cast<size_t>(std::min<uint64_t>(n_kv, 1024)));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const size_t at = c.pos();
    c.set_context("metadata entry " + std::to_string(i) + " (at offset " + std::to_string(at) +
                  ")");
    std::string key = c.read_string("metadata key");
    if (key.empty()) c.fail("empty key");
    c.set_context("key '" + printable_name(key) + "' (at offset " + std::to_string(at) + ")");
    if (kv_index_.count(key)) c.fail("duplicate key");
    const auto type = c.read<uint32_t>("metadata value type");
    if (!known_value_type(type))
      c.fail("unknown value type " + std::to_string(type) + " at offset " +
             std::to_string(c.pos() - 4));
    GgufValue v = read_value(c, static_cast<GgufType>(type), 0);
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }
  c.set_context("");

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::U32) {
      fail(std::string("key 'general.alignment' has type ") + gguf_type_name(a->type) +
           ", expected u32");
    }
    const auto al = std::get<uint64_t>(a->value);
    if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20)) {
      fail("key 'general.alignment' = " + std::to_string(al) +
           " is not a power of two up to 1 MiB");
    }
    alignment_ = static_cast<uint32_t>(al);
  }

  tensors_.reserve(static_cast<size_t>(std::min<uint64_t>(n_tensors, 4096)));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const size_t at = c.pos();
    c.set_context("tensor info " + std::to_string(i) + " (at offset " + std::to_string(at) + ")");
    GgufTensor t;
    t.name = c.read_string("tensor name");
    if (t.name.empty()) c.fail("empty tensor name");
    c.set_context("tensor '" + printable_name(t.name) + "' (info at offset " + std::to_string(at) +
                  ")");
    if (tensor_index_.count(t.name)) c.fail("duplicate tensor name");
    const auto n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims > kMaxDims) c.fail(std::to_string(n_dims) + " dimensions, at most 4 allowed");
    t.n_dims = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = c.read<int64_t>("tensor dimension");
      if (ne <= 0)
        c.fail("dimension " + std::to_string(d) + " is " + std::to_string(ne) +
               ", must be positive");
      t.ne[d] = ne;
    }
    int64_t total = 1;
    for (int64_t ne : t.ne) {
      if (total > std::numeric_limits<int64_t>::max() / ne)
        c.fail("element count overflows 64 bits");
      total *= ne;
    }
    const auto type_id = c.read<uint32_t>("tensor type");
    uint64_t nbytes = 0;
    if (type_id == kI2sTypeId) {
      // A candidate only: convert_i2s_tensors weighs the evidence once every extent is known.
      // Until then the tensor is its stored I2_S bytes (n/4 codes and a 32-byte tail).
      t.i2s_layout = I2sLayout::kX86;
      t.traits = &type_traits(TensorType::TQ2_0);
      nbytes = quant::i2_s_nbytes(total);
    } else {
      t.traits = find_type_traits(type_id);
      if (t.traits == nullptr)
        c.fail("unknown or unsupported tensor type id " + std::to_string(type_id));
      if (t.ne[0] % t.traits->block_elems != 0) {
        c.fail("row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
               std::string(t.traits->name) + " block size " +
               std::to_string(t.traits->block_elems));
      }
      // nbytes = total/block_elems*block_bytes; bounded by the file size check below, but the
      // multiplication itself must not overflow first.
      const uint64_t blocks = static_cast<uint64_t>(total / t.traits->block_elems);
      if (blocks > std::numeric_limits<uint64_t>::max() / t.traits->block_bytes)
        c.fail("byte size overflows 64 bits");
      nbytes = blocks * t.traits->block_bytes;
    }
    t.offset = c.read<uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0) {
      c.fail("data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
             std::to_string(alignment_));
    }
    if (nbytes > file_.size()) {
      c.fail(std::to_string(nbytes) + " bytes of data cannot fit in the file (" +
             std::to_string(file_.size()) + " bytes)");
    }
    t.nbytes = static_cast<size_t>(nbytes);
    t.file_nbytes = t.nbytes;
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }
  c.set_context("");

  // The data section starts at the next multiple of the alignment.
  const size_t end_of_infos = c.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_offset_ > file_.size()) {
    fail("truncated file: data section at offset " + std::to_string(data_offset_) +
         " starts past the end of the file (" + std::to_string(file_.size()) + " bytes)");
  }
  const size_t data_size = file_.size() - std::min(data_offset_, file_.size());
  for (auto& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      fail("tensor '" + printable_name(t.name) + "': " + std::to_string(t.nbytes) +
           " bytes of data at offset " + std::to_string(t.offset) +
           " of the data section lie outside the file (truncated? the data section is " +
           std::to_string(data_size) + " bytes at offset " + std::to_string(data_offset_) + ")");
    }
    t.data = file_.bytes().data() + data_offset_ + t.offset;
  }
  // Overlapping tensors would mean a corrupt index; sort by offset and check neighbours.
  std::vector<const GgufTensor*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i - 1]->offset + by_offset[i - 1]->nbytes > by_offset[i]->offset) {
      fail("tensors '" + printable_name(by_offset[i - 1]->name) + "' and '" +
           printable_name(by_offset[i]->name) + "' overlap in the data section (at offsets " +
           std::to_string(by_offset[i - 1]->offset) + " and " +
           std::to_string(by_offset[i]->offset) + ")");
    }
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
[[noreturn]] void wrong_type(const GgufFile& f, const std::string& key, const GgufValue& v,
                             const char* want) {
  f.fail("key '" + key + "' has type " + gguf_type_name(v.type) + ", expected " + want);
}
}  // namespace

std::optional<std::string> GgufFile::opt_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING) wrong_type(*this, key, *v, "string");
  return std::get<std::string>(v->value);
}

std::string GgufFile::get_string(const std::string& key) const {
  auto s = opt_string(key);
  if (!s) fail("missing required key '" + key + "'");
  return *s;
}

std::optional<uint64_t> GgufFile::opt_uint(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) wrong_type(*this, key, *v, "an integer");
  if (const auto* i = std::get_if<int64_t>(&v->value)) {
    if (*i < 0) fail("key '" + key + "' = " + std::to_string(*i) + " is negative");
    return static_cast<uint64_t>(*i);
  }
  return std::get<uint64_t>(v->value);
}

uint64_t GgufFile::get_uint(const std::string& key) const {
  auto u = opt_uint(key);
  if (!u) fail("missing required key '" + key + "'");
  return *u;
}

std::optional<int64_t> GgufFile::opt_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) wrong_type(*this, key, *v, "an integer");
  if (const auto* i = std::get_if<int64_t>(&v->value)) return *i;
  const auto u = std::get<uint64_t>(v->value);
  if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    fail("key '" + key + "' is out of range");
  return static_cast<int64_t>(u);
}

std::optional<double> GgufFile::opt_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_float()) return std::get<double>(v->value);
  if (v->is_integer()) {
    if (const auto* i = std::get_if<int64_t>(&v->value)) return static_cast<double>(*i);
    return static_cast<double>(std::get<uint64_t>(v->value));
  }
  wrong_type(*this, key, *v, "a number");
}

std::optional<bool> GgufFile::opt_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::BOOL) wrong_type(*this, key, *v, "bool");
  return std::get<bool>(v->value);
}

namespace {
const GgufArray* find_array(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY) wrong_type(f, key, *v, "an array");
  return &std::get<GgufArray>(v->value);
}
}  // namespace

std::optional<std::vector<std::string>> GgufFile::opt_string_array(const std::string& key) const {
  const GgufArray* a = find_array(*this, key);
  if (!a) return std::nullopt;
  if (a->elem_type != GgufType::STRING) {
    fail("key '" + key + "' is an array of " + gguf_type_name(a->elem_type) + ", expected strings");
  }
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(a->count));
  Cursor c(a->raw, path_);
  for (uint64_t i = 0; i < a->count; ++i) out.push_back(c.read_string("array string"));
  return out;
}

std::optional<std::vector<float>> GgufFile::opt_float_array(const std::string& key) const {
  const GgufArray* a = find_array(*this, key);
  if (!a) return std::nullopt;
  if (a->elem_type != GgufType::F32 && a->elem_type != GgufType::F64) {
    fail("key '" + key + "' is an array of " + gguf_type_name(a->elem_type) + ", expected floats");
  }
  std::vector<float> out;
  out.reserve(static_cast<size_t>(a->count));
  for (const auto& v : a->decode()) out.push_back(static_cast<float>(std::get<double>(v.value)));
  return out;
}

std::optional<std::vector<int64_t>> GgufFile::opt_int_array(const std::string& key) const {
  const GgufArray* a = find_array(*this, key);
  if (!a) return std::nullopt;
  GgufValue probe;
  probe.type = a->elem_type;
  if (!probe.is_integer()) {
    fail("key '" + key + "' is an array of " + gguf_type_name(a->elem_type) +
         ", expected integers");
  }
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(a->count));
  for (const auto& v : a->decode()) {
    if (const auto* i = std::get_if<int64_t>(&v.value)) {
      out.push_back(*i);
    } else {
      const auto u = std::get<uint64_t>(v.value);
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("key '" + key + "' has an out-of-range element");
      out.push_back(static_cast<int64_t>(u));
    }
  }
  return out;
}

}  // namespace tern
