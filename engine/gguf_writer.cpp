// GgufWriter: serialises metadata and tensor data in GGUF v3 layout with aligned data offsets.
#include "engine/gguf_writer.h"

#include <cstring>
#include <fstream>
#include <limits>

#include "engine/error.h"

namespace tern {
namespace {

// resize+memcpy rather than insert: GCC 12 warns falsely (stringop-overflow) on byte inserts.
void append(std::vector<std::byte>& out, const void* src, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, src, n);
}

template <typename T>
void put(std::vector<std::byte>& out, T v) {
  append(out, &v, sizeof(T));
}

void put_string(std::vector<std::byte>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  append(out, s.data(), s.size());
}

void pad_to(std::vector<std::byte>& out, size_t alignment) {
  while (out.size() % alignment != 0) out.push_back(std::byte{0});
}

void put_value(std::vector<std::byte>& out, const GgufValue& v) {
  switch (v.type) {
    case GgufType::U8:
      put<uint8_t>(out, static_cast<uint8_t>(std::get<uint64_t>(v.value)));
      break;
    case GgufType::U16:
      put<uint16_t>(out, static_cast<uint16_t>(std::get<uint64_t>(v.value)));
      break;
    case GgufType::U32:
      put<uint32_t>(out, static_cast<uint32_t>(std::get<uint64_t>(v.value)));
      break;
    case GgufType::U64:
      put<uint64_t>(out, std::get<uint64_t>(v.value));
      break;
    case GgufType::I8:
      put<int8_t>(out, static_cast<int8_t>(std::get<int64_t>(v.value)));
      break;
    case GgufType::I16:
      put<int16_t>(out, static_cast<int16_t>(std::get<int64_t>(v.value)));
      break;
    case GgufType::I32:
      put<int32_t>(out, static_cast<int32_t>(std::get<int64_t>(v.value)));
      break;
    case GgufType::I64:
      put<int64_t>(out, std::get<int64_t>(v.value));
      break;
    case GgufType::F32:
      put<float>(out, static_cast<float>(std::get<double>(v.value)));
      break;
    case GgufType::F64:
      put<double>(out, std::get<double>(v.value));
      break;
    case GgufType::BOOL:
      put<uint8_t>(out, std::get<bool>(v.value) ? 1 : 0);
      break;
    case GgufType::STRING:
      put_string(out, std::get<std::string>(v.value));
      break;
    case GgufType::ARRAY: {
      const auto& a = std::get<GgufArray>(v.value);
      put<uint32_t>(out, static_cast<uint32_t>(a.elem_type));
      put<uint64_t>(out, a.count);
      append(out, a.raw.data(), a.raw.size());
      break;
    }
  }
}

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > (1u << 20)) {
    throw Error("gguf writer: alignment " + std::to_string(alignment) +
                " is not a power of two up to 1 MiB");
  }
  if (alignment != 32) {
    set_u32("general.alignment", alignment);
    alignment_implicit_ = true;
  }
}

void GgufWriter::add_kv(const std::string& key, GgufType type, std::vector<std::byte> payload) {
  if (key.empty()) throw Error("gguf writer: empty key");
  if (key == "general.alignment") {
    uint32_t v = 0;
    if (type != GgufType::U32 || payload.size() != sizeof v) {
      throw Error("gguf writer: key 'general.alignment' must be a u32");
    }
    std::memcpy(&v, payload.data(), sizeof v);
    if (v != alignment_) {
      throw Error("gguf writer: key 'general.alignment' = " + std::to_string(v) +
                  " differs from the writer's alignment " + std::to_string(alignment_));
    }
    if (alignment_implicit_) {
      alignment_implicit_ = false;
      return;
    }
  }
  if (!keys_.insert(key).second) throw Error("gguf writer: duplicate key '" + key + "'");
  put_string(kv_bytes_, key);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(type));
  append(kv_bytes_, payload.data(), payload.size());
  ++n_kv_;
}

void GgufWriter::set_u32(const std::string& key, uint32_t v) {
  std::vector<std::byte> p;
  put(p, v);
  add_kv(key, GgufType::U32, std::move(p));
}
void GgufWriter::set_i32(const std::string& key, int32_t v) {
  std::vector<std::byte> p;
  put(p, v);
  add_kv(key, GgufType::I32, std::move(p));
}
void GgufWriter::set_u64(const std::string& key, uint64_t v) {
  std::vector<std::byte> p;
  put(p, v);
  add_kv(key, GgufType::U64, std::move(p));
}
void GgufWriter::set_f32(const std::string& key, float v) {
  std::vector<std::byte> p;
  put(p, v);
  add_kv(key, GgufType::F32, std::move(p));
}
void GgufWriter::set_bool(const std::string& key, bool v) {
  std::vector<std::byte> p;
  put<uint8_t>(p, v ? 1 : 0);
  add_kv(key, GgufType::BOOL, std::move(p));
}
void GgufWriter::set_string(const std::string& key, const std::string& v) {
  std::vector<std::byte> p;
  put_string(p, v);
  add_kv(key, GgufType::STRING, std::move(p));
}
void GgufWriter::set_string_array(const std::string& key, std::span<const std::string> v) {
  std::vector<std::byte> p;
  put<uint32_t>(p, static_cast<uint32_t>(GgufType::STRING));
  put<uint64_t>(p, v.size());
  for (const auto& s : v) put_string(p, s);
  add_kv(key, GgufType::ARRAY, std::move(p));
}
void GgufWriter::set_f32_array(const std::string& key, std::span<const float> v) {
  std::vector<std::byte> p;
  put<uint32_t>(p, static_cast<uint32_t>(GgufType::F32));
  put<uint64_t>(p, v.size());
  for (float f : v) put(p, f);
  add_kv(key, GgufType::ARRAY, std::move(p));
}
void GgufWriter::set_i32_array(const std::string& key, std::span<const int32_t> v) {
  std::vector<std::byte> p;
  put<uint32_t>(p, static_cast<uint32_t>(GgufType::I32));
  put<uint64_t>(p, v.size());
  for (int32_t i : v) put(p, i);
  add_kv(key, GgufType::ARRAY, std::move(p));
}
void GgufWriter::copy_value(const std::string& key, const GgufValue& v) {
  std::vector<std::byte> p;
  put_value(p, v);
  add_kv(key, v.type, std::move(p));
}

int64_t GgufWriter::check_name_and_shape(const std::string& name, std::span<const int64_t> ne) {
  if (name.empty()) throw Error("gguf writer: empty tensor name");
  if (ne.empty() || ne.size() > 4)
    throw Error("gguf writer: tensor '" + name + "' needs 1 to 4 dimensions");
  int64_t n = 1;
  for (int64_t d : ne) {
    if (d <= 0 || n > std::numeric_limits<int64_t>::max() / d) {
      throw Error("gguf writer: tensor '" + name +
                  "' has a dimension that is not positive or too large");
    }
    n *= d;
  }
  if (tensor_names_.count(name)) throw Error("gguf writer: duplicate tensor name '" + name + "'");
  return n;
}

size_t GgufWriter::check_tensor(const std::string& name, TensorType type,
                                std::span<const int64_t> ne) {
  const TypeTraits& t = type_traits(type);
  const int64_t n = check_name_and_shape(name, ne);
  if (ne[0] % t.block_elems != 0) {
    throw Error("gguf writer: tensor '" + name +
                "' row length is not a multiple of the block size");
  }
  tensor_names_.insert(name);
  return row_bytes(t, n);
}

void GgufWriter::add_tensor(const std::string& name, TensorType type, std::span<const int64_t> ne,
                            std::span<const std::byte> data) {
  const size_t nbytes = check_tensor(name, type, ne);
  if (nbytes != data.size()) {
    tensor_names_.erase(name);
    throw Error("gguf writer: tensor '" + name + "' data size does not match its shape and type");
  }
  tensors_.push_back({name,
                      static_cast<uint32_t>(type),
                      {ne.begin(), ne.end()},
                      {data.begin(), data.end()},
                      nbytes,
                      {}});
}

void GgufWriter::add_tensor_lazy(const std::string& name, TensorType type,
                                 std::span<const int64_t> ne, FillFn fill) {
  const size_t nbytes = check_tensor(name, type, ne);
  tensors_.push_back(
      {name, static_cast<uint32_t>(type), {ne.begin(), ne.end()}, {}, nbytes, std::move(fill)});
}

void GgufWriter::add_i2s_tensor_lazy(const std::string& name, std::span<const int64_t> ne,
                                     FillFn fill) {
  const int64_t n = check_name_and_shape(name, ne);
  if (n % kI2sGroupX86 != 0)
    throw Error("gguf writer: I2_S tensor '" + name + "' needs a multiple of 128 elements");
  tensor_names_.insert(name);
  tensors_.push_back(
      {name, kI2sTypeId, {ne.begin(), ne.end()}, {}, quant::i2_s_nbytes(n), std::move(fill)});
}

std::vector<std::byte> GgufWriter::header_bytes() const {
  std::vector<std::byte> out;
  put<uint32_t>(out, 0x46554747);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, n_kv_);
  append(out, kv_bytes_.data(), kv_bytes_.size());
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put<int64_t>(out, d);
    put<uint32_t>(out, t.type_id);
    put<uint64_t>(out, offset);
    offset += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
  }
  pad_to(out, alignment_);
  return out;
}

std::vector<std::byte> GgufWriter::tensor_bytes(const Tensor& t) const {
  std::vector<std::byte> out;
  out.reserve((t.nbytes + alignment_ - 1) / alignment_ *
              alignment_);  // padding must not reallocate
  if (t.fill) {
    out.resize(t.nbytes);
    t.fill(out);
  } else {
    out = t.data;
  }
  pad_to(out, alignment_);
  return out;
}

std::vector<std::byte> GgufWriter::bytes() const {
  std::vector<std::byte> out = header_bytes();
  for (const auto& t : tensors_) {
    const auto b = tensor_bytes(t);
    append(out, b.data(), b.size());
  }
  return out;
}

void GgufWriter::write(const std::string& path) const {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(path + ": cannot open for writing");
  const auto put_all = [&](const std::vector<std::byte>& b) {
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    if (!f) throw Error(path + ": write failed");
  };
  put_all(header_bytes());
  for (const auto& t : tensors_) put_all(tensor_bytes(t));
  f.close();  // buffered bytes are written here: check that too
  if (!f) throw Error(path + ": write failed");
}

}  // namespace tern
