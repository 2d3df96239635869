// GGUF v3 writer: metadata and tensors in, a file llama.cpp reads out. Used by tests (corrupt-file
// generation), `tern quantize` and `tern synth`.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "quant/types.h"

namespace tern {

class GgufWriter {
 public:
  // A non-default alignment is recorded as general.alignment, as readers expect. It must be a
  // power of two up to 1 MiB (what GgufFile accepts).
  explicit GgufWriter(uint32_t alignment = 32);

  // Every setter throws tern::Error on a key that was already set (readers reject duplicates).
  // `general.alignment` may only be set to the writer's own alignment, as a u32; when the
  // constructor already recorded it, setting it once more (e.g. copying every kv of a file with
  // the same alignment) is accepted and changes nothing.
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_string_array(const std::string& key, std::span<const std::string> v);
  void set_f32_array(const std::string& key, std::span<const float> v);
  void set_i32_array(const std::string& key, std::span<const int32_t> v);
  // Copies a value read from another file, bytes as they were (any type, nested arrays too;
  // llama.cpp's reader rejects nested arrays, so files meant for it must not contain them).
  void copy_value(const std::string& key, const GgufValue& v);

  // `data` must hold exactly the bytes of the tensor (ne[0] a multiple of the block size, every
  // dimension positive, the name non-empty and not used before); throws tern::Error otherwise.
  void add_tensor(const std::string& name, TensorType type, std::span<const int64_t> ne,
                  std::span<const std::byte> data);

  // A tensor whose bytes are produced only while the file is written, one tensor at a time, so
  // that a multi-gigabyte model never sits in memory whole (tern quantize, tern synth).
  // `fill` receives exactly the tensor's byte size.
  using FillFn = std::function<void(std::span<std::byte>)>;
  void add_tensor_lazy(const std::string& name, TensorType type, std::span<const int64_t> ne,
                       FillFn fill);

  // A bitnet.cpp I2_S tensor (type id 36 in its numbering, not a tern TensorType): `fill`
  // receives quant::i2_s_nbytes(n) bytes. The element count must be a multiple of 128 (a whole
  // code group of either layout at the alignment bitnet.cpp's writers keep). For tests and
  // `tern synth`; set kI2sLayoutKey or general.file_type 40 so that readers accept the id.
  void add_i2s_tensor_lazy(const std::string& name, std::span<const int64_t> ne, FillFn fill);

  // The whole file as bytes; write() puts them at `path` (throws tern::Error on I/O failure).
  std::vector<std::byte> bytes() const;
  void write(const std::string& path) const;

 private:
  void add_kv(const std::string& key, GgufType type, std::vector<std::byte> payload);

  struct Tensor {
    std::string name;
    uint32_t type_id;  // as stored: a TensorType, or kI2sTypeId
    std::vector<int64_t> ne;
    std::vector<std::byte> data;  // empty when `fill` produces it
    size_t nbytes = 0;
    FillFn fill;
  };
  size_t check_tensor(const std::string& name, TensorType type, std::span<const int64_t> ne);
  // Name and dimensions; returns the element count.
  int64_t check_name_and_shape(const std::string& name, std::span<const int64_t> ne);
  // Header, metadata, tensor infos and padding up to the data section.
  std::vector<std::byte> header_bytes() const;
  std::vector<std::byte> tensor_bytes(const Tensor& t) const;
  uint32_t alignment_;
  bool alignment_implicit_ = false;  // general.alignment was added by the constructor
  std::set<std::string> keys_;
  std::set<std::string> tensor_names_;
  uint64_t n_kv_ = 0;
  std::vector<std::byte> kv_bytes_;
  std::vector<Tensor> tensors_;
};

}  // namespace tern
