// GGUF reader on hostile input: truncations, bad headers, huge counts, bad tensor infos, byte-flip
// fuzzing, and the model loader on files missing or misshaping what it needs.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <limits>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/model.h"

// Allocation tracking: the largest single allocation and the total, so that tests can prove that
// a hostile count does not make the reader allocate. Replacing the global operator new is allowed
// and stays compatible with ASan (it still sees malloc/free). The aligned forms are left alone:
// they pair with their own deletes.
namespace {
std::atomic<size_t> g_largest_alloc{0};
std::atomic<size_t> g_total_alloc{0};

void note_alloc(size_t n) {
  g_total_alloc.fetch_add(n, std::memory_order_relaxed);
  size_t prev = g_largest_alloc.load(std::memory_order_relaxed);
  while (n > prev && !g_largest_alloc.compare_exchange_weak(prev, n, std::memory_order_relaxed)) {
  }
}
void* tracked_alloc(size_t n) {
  note_alloc(n);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(size_t n) {
  return tracked_alloc(n);
}
void* operator new[](size_t n) {
  return tracked_alloc(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  note_alloc(n);
  return std::malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  note_alloc(n);
  return std::malloc(n ? n : 1);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using tern::GgufFile;
using tern::GgufType;
using tern::GgufValue;
using tern::GgufWriter;
using tern::TensorType;

namespace {

const std::string kModels = std::string(TERN_SHARED_DIR) + "/models";
constexpr uint32_t kMagic = 0x46554747;
constexpr uint32_t kF32 = 0, kQ8_0 = 8, kTQ2_0 = 35;
constexpr uint32_t tid(GgufType t) {
  return static_cast<uint32_t>(t);
}

// Little-endian builder for hand-made (and deliberately broken) GGUF files.
struct Raw {
  std::vector<std::byte> b;

  template <typename T>
  Raw& put(T x) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &x, sizeof(T));
    return *this;
  }
  Raw& u8(uint8_t x) { return put(x); }
  Raw& u32(uint32_t x) { return put(x); }
  Raw& u64(uint64_t x) { return put(x); }
  Raw& str(const std::string& s) {
    u64(s.size());
    const size_t at = b.size();
    b.resize(at + s.size());
    if (!s.empty()) std::memcpy(b.data() + at, s.data(), s.size());
    return *this;
  }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return u32(kMagic).u32(version).u64(n_tensors).u64(n_kv);
  }
  Raw& kv_u32(const std::string& key, uint32_t v) {
    return str(key).u32(tid(GgufType::U32)).u32(v);
  }
  Raw& kv_str(const std::string& key, const std::string& v) {
    return str(key).u32(tid(GgufType::STRING)).str(v);
  }
  Raw& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  Raw& pad(size_t alignment = 32) {
    while (b.size() % alignment) b.push_back(std::byte{0});
    return *this;
  }
  Raw& zeros(size_t n) {
    b.resize(b.size() + n);
    return *this;
  }
};

// A file with one kv (general.architecture) and the given tensor infos, then `data` bytes of data.
std::vector<std::byte> tensors_file(const std::function<void(Raw&)>& infos, uint64_t n_tensors,
                                    size_t data, uint32_t alignment = 32) {
  Raw r;
  r.header(n_tensors, alignment == 32 ? 1 : 2).kv_str("general.architecture", "llama");
  if (alignment != 32) r.kv_u32("general.alignment", alignment);
  infos(r);
  r.pad(alignment).zeros(data);
  return r.b;
}

std::vector<std::byte> one_tensor(std::vector<uint64_t> dims, uint32_t type, uint64_t offset = 0,
                                  size_t data = 256, const std::string& name = "w") {
  return tensors_file([&](Raw& r) { r.tensor(name, dims, type, offset); }, 1, data);
}

// A file whose only kv is `key` of `type` with the given payload.
std::vector<std::byte> one_kv(const std::string& key, uint32_t type, const Raw& payload) {
  Raw r;
  r.header(0, 1).str(key).u32(type);
  r.b.insert(r.b.end(), payload.b.begin(), payload.b.end());
  return r.b;
}

// Parses `bytes`, requires a one-line tern::Error naming the file, and returns its message.
std::string error_of(const std::vector<std::byte>& bytes) {
  REQUIRE_THROWS_AS(GgufFile::from_bytes(bytes, "bad.gguf"), tern::Error);
  try {
    (void)GgufFile::from_bytes(bytes, "bad.gguf");
  } catch (const tern::Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    REQUIRE(msg.rfind("bad.gguf: ", 0) == 0);
    REQUIRE(msg.find('\n') == std::string::npos);
    REQUIRE(msg.size() < 400);
    return msg;
  }
  return {};
}

// Like error_of, and also requires that the parser allocated nothing large on the way.
std::string error_without_allocating(const std::vector<std::byte>& bytes) {
  g_largest_alloc = 0;
  g_total_alloc = 0;
  try {
    (void)GgufFile::from_bytes(bytes, "bad.gguf");
  } catch (const tern::Error&) {
  }
  const size_t largest = g_largest_alloc, total = g_total_alloc;
  INFO("largest allocation " << largest << ", total " << total << ", file " << bytes.size());
  // from_bytes copies the file once; anything else is small.
  REQUIRE(largest <= bytes.size() + 4096);
  REQUIRE(total <= 2 * bytes.size() + 64 * 1024);
  return error_of(bytes);
}

std::vector<std::byte> read_whole(const std::string& path) {
  std::vector<std::byte> out(fs::file_size(path));
  FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fread(out.data(), 1, out.size(), f) == out.size());
  std::fclose(f);
  return out;
}

// A small valid file from the writer: a spread of kv types and three tensors.
std::vector<std::byte> small_valid_file() {
  GgufWriter w(64);
  w.set_string("general.architecture", "llama");
  w.set_u32("t.u32", 7);
  w.set_bool("t.bool", true);
  w.set_f32("t.f32", 0.5f);
  w.set_string("t.str", "hello world");
  const std::vector<std::string> strs{"a", "bb", "", "dddd"};
  w.set_string_array("t.strs", strs);
  const std::vector<float> fl{1.0f, 2.0f, 3.0f};
  w.set_f32_array("t.floats", fl);
  const std::vector<int32_t> in{-1, 5};
  w.set_i32_array("t.ints", in);
  // A nested array [[u8 1, u8 2], [bool 1]].
  Raw nested;
  nested.u32(tid(GgufType::U8)).u64(2).u8(1).u8(2).u32(tid(GgufType::BOOL)).u64(1).u8(1);
  tern::GgufArray arr;
  arr.elem_type = GgufType::ARRAY;
  arr.count = 2;
  arr.raw = nested.b;
  w.copy_value("t.nested", GgufValue{GgufType::ARRAY, arr});
  std::vector<std::byte> d1(4 * 3 * 4, std::byte{1}), d2(34 * 2, std::byte{2}),
      d3(8 * 4, std::byte{3});
  const std::vector<int64_t> s1{4, 3}, s2{32, 2}, s3{8};
  w.add_tensor("a", TensorType::F32, s1, d1);
  w.add_tensor("b", TensorType::Q8_0, s2, d2);
  w.add_tensor("c", TensorType::F32, s3, d3);
  return w.bytes();
}

// Where the last tensor's data ends: every truncation before this must fail.
size_t end_of_data(const GgufFile& f) {
  size_t end = f.data_offset();
  for (const auto& t : f.tensors()) end = std::max(end, f.data_offset() + t.offset + t.nbytes);
  return end;
}

// Truncates `bytes` at each of `cuts`; each must fail with a message about truncation or an offset.
void require_truncations_fail(const std::vector<std::byte>& bytes,
                              const std::vector<size_t>& cuts) {
  std::vector<size_t> parsed, bad_message;
  std::string example;
  for (size_t n : cuts) {
    try {
      (void)GgufFile::from_bytes(
          std::vector<std::byte>(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n)),
          "cut.gguf");
      parsed.push_back(n);
    } catch (const tern::Error& e) {
      const std::string msg = e.what();
      const bool ok =
          msg.rfind("cut.gguf: ", 0) == 0 && msg.find('\n') == std::string::npos &&
          (msg.find("truncated") != std::string::npos || msg.find("offset") != std::string::npos);
      if (!ok) {
        bad_message.push_back(n);
        example = msg;
      }
    }
  }
  INFO("cuts that parsed: " << parsed.size()
                            << (parsed.empty() ? "" : ", first at " + std::to_string(parsed[0])));
  INFO("cuts with a poor message: " << bad_message.size() << " e.g. " << example);
  REQUIRE(parsed.empty());
  REQUIRE(bad_message.empty());
}

// After a successful parse, touches everything a caller could touch: ASan checks the bounds.
void exercise(const GgufFile& f) {
  size_t sum = 0;
  for (const auto& t : f.tensors()) {
    REQUIRE(f.data_offset() + t.offset + t.nbytes <= f.file_size());
    for (size_t i = 0; i < t.nbytes; ++i) sum += static_cast<size_t>(t.data[i]);
    (void)t.row_stride();
  }
  std::function<void(const tern::GgufArray&, int)> walk = [&](const tern::GgufArray& a, int depth) {
    REQUIRE(depth < 16);
    for (const auto& v : a.decode()) {
      if (const auto* inner = std::get_if<tern::GgufArray>(&v.value)) walk(*inner, depth + 1);
    }
  };
  for (const auto& [key, value] : f.metadata()) {
    if (const auto* a = std::get_if<tern::GgufArray>(&value.value)) walk(*a, 0);
    try {
      (void)f.opt_string(key);
    } catch (const tern::Error&) {
    }
    try {
      (void)f.opt_uint(key);
    } catch (const tern::Error&) {
    }
    try {
      (void)f.opt_int(key);
    } catch (const tern::Error&) {
    }
    try {
      (void)f.opt_float(key);
    } catch (const tern::Error&) {
    }
    try {
      (void)f.opt_bool(key);
    } catch (const tern::Error&) {
    }
    try {
      (void)f.opt_string_array(key);
    } catch (const tern::Error&) {
    }
    try {
      (void)f.opt_float_array(key);
    } catch (const tern::Error&) {
    }
    try {
      (void)f.opt_int_array(key);
    } catch (const tern::Error&) {
    }
  }
  (void)sum;
}

}  // namespace

TEST_CASE("hand-made corrupt-file templates parse when left intact", "[gguf][corrupt]") {
  const GgufFile f = GgufFile::from_bytes(one_tensor({32, 2}, kF32), "ok.gguf");
  REQUIRE(f.tensors().size() == 1);
  REQUIRE(f.tensors()[0].nbytes == 256);
  REQUIRE(GgufFile::from_bytes(one_tensor({32, 2}, kQ8_0, 0, 68), "ok.gguf").tensors()[0].nbytes ==
          68);
  Raw v2;
  v2.header(0, 1, 2).kv_str("general.architecture", "llama");
  REQUIRE(GgufFile::from_bytes(v2.b, "v2.gguf").version() == 2);
  REQUIRE(GgufFile::from_bytes(small_valid_file(), "small.gguf").tensors().size() == 3);
  Raw empty;
  empty.header(0, 0);
  REQUIRE(GgufFile::from_bytes(empty.b, "empty.gguf").metadata().empty());
}

TEST_CASE("bad magic, unsupported versions and big-endian files are rejected", "[gguf][corrupt]") {
  auto with_version = [](uint32_t v) {
    Raw r;
    r.header(0, 0, v);
    return r.b;
  };
  Raw magic;
  magic.u32(0x47554747).u32(3).u64(0).u64(0);
  REQUIRE_THAT(error_of(magic.b), Contains("magic"));
  REQUIRE_THAT(error_of({std::byte{'G'}, std::byte{'G'}, std::byte{'U'}, std::byte{'F'}}),
               Contains("truncated"));
  REQUIRE_THAT(error_of({}), Contains("not a GGUF file"));
  REQUIRE_THAT(error_of({std::byte{'G'}, std::byte{'G'}}), Contains("truncated"));
  REQUIRE_THAT(error_of(with_version(0)), Contains("version 0"));
  REQUIRE_THAT(error_of(with_version(1)), Contains("version 1"));
  REQUIRE_THAT(error_of(with_version(4)), Contains("version 4"));
  REQUIRE_THAT(error_of(with_version(0x03000000)), Contains("big-endian"));
  REQUIRE_THAT(error_of(with_version(0x02000000)), Contains("big-endian"));
  REQUIRE_THAT(error_of(with_version(0xFFFFFFFF)), Contains("version"));
}

TEST_CASE("huge tensor and metadata counts fail fast without allocating", "[gguf][corrupt]") {
  for (uint64_t n : {uint64_t{1} << 63, uint64_t{1} << 40, UINT64_MAX, uint64_t{1000}}) {
    INFO(n);
    Raw t;
    t.header(n, 1)
        .kv_str("general.architecture", "llama")
        .tensor("w", {32}, kF32, 0)
        .pad()
        .zeros(128);
    REQUIRE_THAT(error_without_allocating(t.b), Contains("tensor count"));
    Raw k;
    k.header(0, n).kv_str("general.architecture", "llama");
    REQUIRE_THAT(error_without_allocating(k.b), Contains("metadata count"));
  }
  // Counts that the file size allows but that are lies: the reader must not reserve memory for
  // them up front (a 1 MiB file claiming 40000 tensors would otherwise reserve several MiB).
  Raw lie_t;
  lie_t.header((1u << 20) / 25, 0).zeros(1u << 20);
  REQUIRE_THAT(error_without_allocating(lie_t.b), Contains("empty tensor name"));
  Raw lie_k;
  lie_k.header(0, (1u << 20) / 14).zeros(1u << 20);
  REQUIRE_THAT(error_without_allocating(lie_k.b), Contains("empty key"));
  // Each count alone fits, but not both together.
  Raw both;
  both.header(4, 4).zeros(100);
  REQUIRE_THAT(error_without_allocating(both.b), Contains("tensor count"));
}

TEST_CASE("huge string lengths and array counts fail fast without allocating", "[gguf][corrupt]") {
  for (uint64_t n :
       {uint64_t{1} << 63, uint64_t{1} << 62, uint64_t{1} << 40, UINT64_MAX, uint64_t{200}}) {
    INFO(n);
    // The key's own length.
    Raw key;
    key.header(0, 1).u64(n).zeros(64);
    std::string msg = error_without_allocating(key.b);
    REQUIRE_THAT(msg, Contains("metadata entry 0"));
    REQUIRE_THAT(msg, Contains("offset 24"));
    // A string value.
    Raw value;
    value.header(0, 1).str("general.name").u32(tid(GgufType::STRING)).u64(n).zeros(64);
    msg = error_without_allocating(value.b);
    REQUIRE_THAT(msg, Contains("general.name"));
    REQUIRE_THAT(msg, Contains("truncated"));
    // A tensor name.
    Raw name;
    name.header(1, 0).u64(n).zeros(64);
    REQUIRE_THAT(error_without_allocating(name.b), Contains("tensor info 0"));
    // Arrays of each element size, of strings, and of arrays.
    for (GgufType elem : {GgufType::U8, GgufType::U64, GgufType::STRING, GgufType::ARRAY}) {
      Raw payload;
      payload.u32(tid(elem)).u64(n).zeros(64);
      msg =
          error_without_allocating(one_kv("tokenizer.ggml.tokens", tid(GgufType::ARRAY), payload));
      REQUIRE_THAT(msg, Contains("tokenizer.ggml.tokens"));
      REQUIRE_THAT(msg, Contains("array length"));
    }
    // A string inside an array of strings.
    Raw strs;
    strs.u32(tid(GgufType::STRING)).u64(2).str("ok").u64(n).zeros(16);
    msg = error_without_allocating(one_kv("tokenizer.ggml.merges", tid(GgufType::ARRAY), strs));
    REQUIRE_THAT(msg, Contains("tokenizer.ggml.merges"));
    REQUIRE_THAT(msg, Contains("array string"));
  }
}

TEST_CASE("arrays nested too deep are rejected without recursing further", "[gguf][corrupt]") {
  auto nested = [](int levels) {
    Raw p;  // `levels` arrays, each holding one array, the innermost holding one u8
    for (int i = 1; i < levels; ++i) p.u32(tid(GgufType::ARRAY)).u64(1);
    p.u32(tid(GgufType::U8)).u64(1).u8(42);
    return one_kv("deep", tid(GgufType::ARRAY), p);
  };
  const GgufFile ok = GgufFile::from_bytes(nested(8), "ok.gguf");
  REQUIRE(std::get<tern::GgufArray>(ok.find("deep")->value).count == 1);
  REQUIRE_THAT(error_of(nested(9)), Contains("deep") && Contains("nested"));
  // A million levels: must fail at the limit, not overflow the stack.
  REQUIRE_THAT(error_without_allocating(nested(1000000)), Contains("nested"));
}

TEST_CASE("unknown value types, duplicate and empty keys, bad bools are rejected naming the key",
          "[gguf][corrupt]") {
  for (uint32_t type : {13u, 14u, 0xFFFFFFFFu}) {
    Raw r;
    r.header(0, 2).kv_str("general.architecture", "llama").str("odd.key").u32(type).u64(0);
    REQUIRE_THAT(error_of(r.b), Contains("odd.key") && Contains("unknown value type"));
    Raw payload;
    payload.u32(type).u64(1).u64(0);
    REQUIRE_THAT(error_of(one_kv("odd.array", tid(GgufType::ARRAY), payload)),
                 Contains("odd.array") && Contains("unknown array element type"));
  }
  Raw dup;
  dup.header(0, 3)
      .kv_u32("llama.block_count", 5)
      .kv_str("general.architecture", "llama")
      .kv_u32("llama.block_count", 6);
  REQUIRE_THAT(error_of(dup.b), Contains("llama.block_count") && Contains("duplicate"));
  Raw empty;
  empty.header(0, 1).str("").u32(tid(GgufType::U32)).u32(1);
  REQUIRE_THAT(error_of(empty.b), Contains("empty key"));

  for (uint8_t b : {uint8_t{2}, uint8_t{255}}) {
    Raw v;
    v.u8(b);
    REQUIRE_THAT(error_of(one_kv("tokenizer.ggml.add_bos_token", tid(GgufType::BOOL), v)),
                 Contains("tokenizer.ggml.add_bos_token") && Contains("bool"));
    Raw arr;
    arr.u32(tid(GgufType::BOOL)).u64(3).u8(1).u8(0).u8(b);
    REQUIRE_THAT(error_of(one_kv("flags", tid(GgufType::ARRAY), arr)),
                 Contains("flags") && Contains("bool"));
  }
  // Truncated inside a value: the message names the key being read.
  Raw cut;
  cut.header(0, 2)
      .kv_str("general.architecture", "llama")
      .str("llama.context_length")
      .u32(tid(GgufType::U64))
      .u32(0);
  REQUIRE_THAT(error_of(cut.b), Contains("llama.context_length") && Contains("truncated"));
  // A key full of control bytes and very long still gives a short one-line message.
  Raw ugly;
  ugly.header(0, 1).str("line1\nline2\r\x01" + std::string(5000, 'k')).u32(99).u64(0);
  REQUIRE_THAT(error_of(ugly.b), Contains("line1\\x0aline2") && Contains("unknown value type"));
}

TEST_CASE("general.alignment must be a u32 power of two", "[gguf][corrupt]") {
  for (uint32_t al : {0u, 3u, 48u, 1u << 21, 0x80000000u}) {
    INFO(al);
    Raw r;
    r.header(0, 1).kv_u32("general.alignment", al);
    REQUIRE_THAT(error_of(r.b), Contains("general.alignment"));
  }
  Raw u64;
  u64.header(0, 1).str("general.alignment").u32(tid(GgufType::U64)).u64(32);
  REQUIRE_THAT(error_of(u64.b), Contains("general.alignment") && Contains("u64"));
  Raw i32;
  i32.header(0, 1).str("general.alignment").u32(tid(GgufType::I32)).u32(32);
  REQUIRE_THAT(error_of(i32.b), Contains("general.alignment"));
  Raw s;
  s.header(0, 1).kv_str("general.alignment", "32");
  REQUIRE_THAT(error_of(s.b), Contains("general.alignment"));
  // A valid non-default alignment is honoured: offset 32 is then misaligned.
  const auto at64 = [](uint64_t offset) {
    return tensors_file([&](Raw& r) { r.tensor("w", {8}, kF32, offset); }, 1, 128, 64);
  };
  REQUIRE(GgufFile::from_bytes(at64(64), "ok.gguf").tensors()[0].offset == 64);
  REQUIRE_THAT(error_of(at64(32)), Contains("'w'") && Contains("alignment 64"));
}

TEST_CASE("bad tensor infos are rejected naming the tensor", "[gguf][corrupt]") {
  // Type ids tern does not know (3 = Q4_1, 10 = Q2_K, nonsense), and 36 (bitnet.cpp's I2_S)
  // without the metadata that would make it believable.
  for (uint32_t type : {3u, 10u, 36u, 1000u, 0xFFFFFFFFu}) {
    INFO(type);
    REQUIRE_THAT(error_of(one_tensor({32, 2}, type, 0, 256, "blk.0.attn_q.weight")),
                 Contains("blk.0.attn_q.weight") && Contains("type id " + std::to_string(type)));
  }
  for (uint32_t n_dims : {5u, 0xFFFFFFFFu}) {
    Raw r;
    r.header(1, 0).str("w5").u32(n_dims).u64(1).u64(1).u64(1).u64(1).u64(1).u32(kF32).u64(0).zeros(
        64);
    REQUIRE_THAT(error_of(r.b), Contains("'w5'") && Contains("dimensions"));
  }
  for (uint64_t bad : {uint64_t{0}, UINT64_MAX, uint64_t{1} << 63}) {
    INFO(bad);
    REQUIRE_THAT(error_of(one_tensor({32, bad}, kF32)), Contains("'w'") && Contains("dimension 1"));
    REQUIRE_THAT(error_of(one_tensor({bad}, kF32)), Contains("'w'") && Contains("dimension 0"));
  }
  // Element counts that overflow 64 bits, byte sizes that do, and sizes larger than the file.
  REQUIRE_THAT(error_of(one_tensor({uint64_t{1} << 40, uint64_t{1} << 40}, kF32)),
               Contains("'w'") && Contains("overflow"));
  REQUIRE_THAT(error_of(one_tensor({uint64_t{1} << 32, uint64_t{1} << 32, 2, 2}, kF32)),
               Contains("overflow"));
  REQUIRE_THAT(error_of(one_tensor({uint64_t{1} << 62}, kF32)),
               Contains("'w'") && Contains("overflow"));
  REQUIRE_THAT(error_of(one_tensor({uint64_t{1} << 40}, kF32)),
               Contains("'w'") && Contains("cannot fit"));
  REQUIRE_THAT(error_of(one_tensor({32, 3}, kF32)),
               Contains("'w'") && Contains("outside the file"));
  // Rows that are not whole blocks.
  REQUIRE_THAT(error_of(one_tensor({33, 2}, kQ8_0)), Contains("'w'") && Contains("block size 32"));
  REQUIRE_THAT(error_of(one_tensor({128, 2}, kTQ2_0)),
               Contains("'w'") && Contains("block size 256"));
  // Offsets: misaligned, beyond the file, wrapping around.
  REQUIRE_THAT(error_of(one_tensor({8}, kF32, 4)), Contains("'w'") && Contains("alignment"));
  REQUIRE_THAT(error_of(one_tensor({8}, kF32, 16)), Contains("'w'") && Contains("alignment"));
  REQUIRE_THAT(error_of(one_tensor({8}, kF32, uint64_t{1} << 40)),
               Contains("'w'") && Contains("outside the file"));
  REQUIRE_THAT(error_of(one_tensor({8}, kF32, UINT64_MAX - 31)),
               Contains("'w'") && Contains("outside the file"));
  REQUIRE_THAT(error_of(one_tensor({8}, kF32, 256)), Contains("'w'") && Contains("offset 256"));
  // Names: empty, duplicated.
  REQUIRE_THAT(error_of(one_tensor({8}, kF32, 0, 256, "")), Contains("empty tensor name"));
  REQUIRE_THAT(error_of(tensors_file(
                   [](Raw& r) { r.tensor("x", {8}, kF32, 0).tensor("x", {8}, kF32, 32); }, 2, 64)),
               Contains("'x'") && Contains("duplicate"));
  // Overlapping data: partly, and at the same offset.
  REQUIRE_THAT(
      error_of(tensors_file(
          [](Raw& r) { r.tensor("p", {32}, kF32, 0).tensor("q", {32}, kF32, 64); }, 2, 256)),
      Contains("'p'") && Contains("'q'") && Contains("overlap"));
  REQUIRE_THAT(
      error_of(tensors_file([](Raw& r) { r.tensor("p", {8}, kF32, 32).tensor("q", {8}, kF32, 32); },
                            2, 256)),
      Contains("overlap"));
  // Adjacent is fine.
  REQUIRE(GgufFile::from_bytes(
              tensors_file([](Raw& r) { r.tensor("p", {8}, kF32, 0).tensor("q", {8}, kF32, 32); },
                           2, 64),
              "ok.gguf")
              .tensors()
              .size() == 2);
  // Data section missing entirely.
  Raw nodata;
  nodata.header(1, 0).tensor("w", {8}, kF32, 0);
  REQUIRE_THAT(error_of(nodata.b), Contains("truncated"));
  // A long name with a newline is shown escaped and cut, on one line.
  REQUIRE_THAT(error_of(one_tensor({8}, 77, 0, 256, "evil\nname" + std::string(10000, 'n'))),
               Contains("evil\\x0aname") && Contains("10009 bytes"));
}

namespace {

// A bitnet.cpp-style file: general.architecture `arch`, general.file_type `file_type` (0: none),
// and I2_S tensors (type id 36) laid out as its writers do, each right after the previous one's
// n/4 + 32 bytes rounded up to 32. The codes are all 1 (zero weights) and the scale is `scale`.
// `edit` may change the infos (dims, offsets) before they are written; `data` overrides the size
// of the data section.
struct I2sInfo {
  std::string name;
  std::vector<uint64_t> dims;
  uint64_t offset;
};
std::vector<std::byte> i2s_file(std::vector<I2sInfo> infos, float scale,
                                const std::string& arch = "llama", uint32_t file_type = 40,
                                std::optional<size_t> data = std::nullopt,
                                const std::string& layout_key = "") {
  Raw r;
  r.header(infos.size(), 1 + (file_type ? 1 : 0) + (layout_key.empty() ? 0 : 1))
      .kv_str("general.architecture", arch);
  if (file_type) r.kv_u32("general.file_type", file_type);
  if (!layout_key.empty()) r.kv_str("tern.i2_s.layout", layout_key);
  size_t end = 0;
  for (const auto& t : infos) {
    r.tensor(t.name, t.dims, 36, t.offset);
    uint64_t n = 1;
    for (uint64_t d : t.dims) n *= d;
    end = std::max<size_t>(end, t.offset + (n / 4 + 32 + 31) / 32 * 32);
  }
  r.pad();
  const size_t base = r.b.size();
  r.zeros(data.value_or(end));
  for (const auto& t : infos) {
    uint64_t n = 1;
    for (uint64_t d : t.dims) n *= d;
    for (uint64_t i = 0; i < n / 4 && base + t.offset + i < r.b.size(); ++i)
      r.b[base + t.offset + i] = std::byte{0x55};  // four codes 1
    if (base + t.offset + n / 4 + 4 <= r.b.size())
      std::memcpy(r.b.data() + base + t.offset + n / 4, &scale, sizeof scale);
  }
  return r.b;
}

}  // namespace

TEST_CASE("I2_S tensors: the evidence rule, sizes, shapes and scales", "[gguf][corrupt][i2_s]") {
  const std::vector<I2sInfo> two = {{"a", {256, 2}, 0}, {"b", {512, 3}, 160}};
  SECTION("well-formed files load as TQ2_0 with the scale in every block") {
    for (const char* arch : {"llama", "bitnet", "bitnet-b1.58", "bitnet-25"}) {
      INFO(arch);
      // The bitnet architectures are evidence enough; llama needs file type 40.
      const uint32_t file_type = std::string(arch) == "llama" ? 40 : 0;
      const GgufFile f = GgufFile::from_bytes(i2s_file(two, 0.25f, arch, file_type), "ok.gguf");
      REQUIRE(f.tensors().size() == 2);
      for (const auto& t : f.tensors()) {
        CHECK(t.traits->type == TensorType::TQ2_0);
        CHECK(t.i2s_layout == tern::I2sLayout::kX86);
        CHECK(t.nbytes == static_cast<size_t>(t.n_elements() / 256 * 66));
        CHECK(t.file_nbytes == static_cast<size_t>(t.n_elements() / 4 + 32));
        std::vector<float> v(static_cast<size_t>(t.n_elements()), 1.0f);
        t.traits->dequantize_row(t.data, v.data(), t.n_elements());
        CHECK(std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; }));
        uint16_t d = 0;
        std::memcpy(&d, t.data + 64, sizeof d);
        CHECK(d == 0x3400);  // 0.25 as a half
      }
    }
    // The file's layout key, and the caller's choice when it agrees.
    const auto arm = i2s_file(two, 0.25f, "llama", 0, std::nullopt, "arm");
    CHECK(GgufFile::from_bytes(arm, "ok.gguf").tensors()[0].i2s_layout == tern::I2sLayout::kArm);
    CHECK(GgufFile::from_bytes(arm, "ok.gguf", {tern::I2sLayout::kArm}).tensors()[1].i2s_layout ==
          tern::I2sLayout::kArm);
    CHECK(GgufFile::from_bytes(i2s_file(two, 0.25f), "ok.gguf", {tern::I2sLayout::kArm})
              .tensors()[0]
              .i2s_layout == tern::I2sLayout::kArm);
    // Scales that are not halves are rounded to the nearest one.
    CHECK(GgufFile::from_bytes(i2s_file(two, 0.1f), "ok.gguf").tensors().size() == 2);
    CHECK(GgufFile::from_bytes(i2s_file(two, 0.0f), "ok.gguf").tensors().size() == 2);
  }
  SECTION("id 36 without bitnet.cpp metadata is not trusted") {
    REQUIRE_THAT(error_of(i2s_file(two, 0.25f, "llama", 0)),
                 Contains("'a'") && Contains("type id 36") && Contains("file_type is missing"));
    REQUIRE_THAT(error_of(i2s_file(two, 0.25f, "llama", 37)),
                 Contains("type id 36") && Contains("file_type is 37"));
  }
  SECTION("short data, wrong sizes, overlaps") {
    // The file ends inside the second tensor's codes, or inside its tail.
    REQUIRE_THAT(error_of(i2s_file(two, 0.25f, "llama", 40, 160 + 300)),
                 Contains("'b'") && Contains("outside the file"));
    REQUIRE_THAT(error_of(i2s_file(two, 0.25f, "llama", 40, 160 + 384 + 31)),
                 Contains("'b'") && Contains("outside the file"));
    // A slot larger than n/4 + 32 padded: e.g. the size upstream's retired id 36 would have had.
    REQUIRE_THAT(error_of(i2s_file({{"a", {256, 2}, 0}, {"b", {512, 3}, 288}}, 0.25f)),
                 Contains("'a'") && Contains("slot of 288 bytes") && Contains("not an I2_S"));
    REQUIRE_THAT(error_of(i2s_file(two, 0.25f, "llama", 40, 160 + 416 + 32)),
                 Contains("'b'") && Contains("slot of 448 bytes"));
    // Overlapping: the second tensor starts inside the first one's tail.
    REQUIRE_THAT(error_of(i2s_file({{"a", {256, 2}, 0}, {"b", {512, 3}, 128}}, 0.25f)),
                 Contains("'a'") && Contains("'b'") && Contains("overlap"));
    // A tensor cut by the end of the file at the last byte of its scale.
    REQUIRE_THAT(error_of(i2s_file({{"a", {256, 2}, 0}}, 0.25f, "llama", 40, 131)),
                 Contains("'a'") && Contains("outside the file"));
  }
  SECTION("shapes tern cannot convert") {
    REQUIRE_THAT(error_of(i2s_file({{"a", {64, 1}, 0}}, 0.25f)),
                 Contains("'a'") && Contains("group of 128") && Contains("arm"));
    REQUIRE_THAT(error_of(i2s_file({{"a", {128, 2}, 0}}, 0.25f)),
                 Contains("'a'") && Contains("row length 128") && Contains("TQ2_0"));
    REQUIRE_THAT(error_of(i2s_file({{"a", {64, 4}, 0}}, 0.25f, "llama", 40, std::nullopt, "arm")),
                 Contains("'a'") && Contains("row length 64"));
  }
  SECTION("scales that are not a usable magnitude") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    const std::pair<float, const char*> bad[] = {
        {nan, "NaN"},         {-nan, "NaN"},       {inf, "infinite"},
        {-inf, "infinite"},   {-0.5f, "negative"}, {65520.0f, "too large"},
        {1e30f, "too large"}, {1e-6f, "below"},    {1e-40f, "below"}};
    for (const auto& [scale, what] : bad) {
      INFO(scale);
      REQUIRE_THAT(error_of(i2s_file(two, scale)),
                   Contains("'a'") && Contains("scale") && Contains(what));
    }
    // A subnormal half is fine when it is exact.
    CHECK(GgufFile::from_bytes(i2s_file(two, 0x1p-20f), "ok.gguf").tensors().size() == 2);
  }
  SECTION("the layout key must be valid and agree with the caller") {
    REQUIRE_THAT(error_of(i2s_file(two, 0.25f, "llama", 40, std::nullopt, "riscv")),
                 Contains("tern.i2_s.layout") && Contains("riscv"));
    const auto x86 = i2s_file(two, 0.25f, "llama", 40, std::nullopt, "x86");
    REQUIRE_THROWS_WITH(GgufFile::from_bytes(x86, "bad.gguf", {tern::I2sLayout::kArm}),
                        Contains("given as arm") && Contains("says x86"));
  }
  SECTION("truncations anywhere fail cleanly") {
    const auto bytes = i2s_file(two, 0.25f);
    std::vector<size_t> cuts;
    for (size_t n = 0; n < bytes.size(); ++n) cuts.push_back(n);
    require_truncations_fail(bytes, cuts);
  }
}

TEST_CASE("truncating a file anywhere before the end of its tensor data is detected",
          "[gguf][corrupt]") {
  SECTION("stories260K-Q8_0: every offset of the header, a spread inside the data") {
    const auto bytes = read_whole(kModels + "/stories260K-Q8_0.gguf");
    const GgufFile f = GgufFile::from_bytes(bytes, "whole.gguf");
    const size_t end = end_of_data(f);
    REQUIRE(end <= bytes.size());
    std::vector<size_t> cuts;
    for (size_t n = 0; n <= f.data_offset(); ++n) cuts.push_back(n);
    for (size_t n = f.data_offset() + 1; n < end; n += 997) cuts.push_back(n);
    cuts.push_back(end - 1);
    require_truncations_fail(bytes, cuts);
    // Cutting the trailing padding after the last tensor loses nothing.
    REQUIRE(GgufFile::from_bytes(
                std::vector<std::byte>(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(end)),
                "end.gguf")
                .tensors()
                .size() == 48);
  }
  SECTION("a small writer file: every offset") {
    const auto bytes = small_valid_file();
    const GgufFile f = GgufFile::from_bytes(bytes, "whole.gguf");
    std::vector<size_t> cuts;
    for (size_t n = 0; n < end_of_data(f); ++n) cuts.push_back(n);
    require_truncations_fail(bytes, cuts);
  }
  SECTION("a vocabulary-only file: a spread of offsets") {
    const auto bytes = read_whole(kModels + "/vocab/ggml-vocab-gpt-2.gguf");
    std::vector<size_t> cuts;
    for (size_t n = 0; n < 4096; ++n) cuts.push_back(n);
    for (size_t n = 4096; n < bytes.size(); n += 8191) cuts.push_back(n);
    for (size_t n = bytes.size() - 64; n < bytes.size(); ++n) cuts.push_back(n);
    require_truncations_fail(bytes, cuts);
  }
  SECTION("the message names the key that was cut") {
    const auto bytes = read_whole(kModels + "/stories260K-Q8_0.gguf");
    const std::string key = "tokenizer.ggml.scores";
    const auto it =
        std::search(bytes.begin(), bytes.end(), reinterpret_cast<const std::byte*>(key.data()),
                    reinterpret_cast<const std::byte*>(key.data()) + key.size());
    REQUIRE(it != bytes.end());
    // Inside the array's floats: after the type (4), element type (4), count (8) and 100 bytes.
    const std::vector<std::byte> cut(bytes.begin(),
                                     it + static_cast<ptrdiff_t>(key.size() + 4 + 12 + 100));
    REQUIRE_THAT(error_of(cut), Contains("'tokenizer.ggml.scores'") && Contains("truncated"));
  }
}

TEST_CASE("random byte mutations of a valid file either parse or throw tern::Error",
          "[gguf][corrupt][fuzz]") {
  auto fuzz = [](const std::vector<std::byte>& base, size_t hot_end, int iterations,
                 uint32_t seed) {
    std::mt19937_64 rng(seed);
    int parsed = 0, rejected = 0;
    const uint64_t interesting[] = {0,
                                    1,
                                    2,
                                    4,
                                    5,
                                    31,
                                    32,
                                    33,
                                    0x7F,
                                    0x80,
                                    0xFF,
                                    0xFFFF,
                                    0x7FFFFFFF,
                                    0x80000000,
                                    0xFFFFFFFF,
                                    uint64_t{1} << 32,
                                    uint64_t{1} << 40,
                                    uint64_t{1} << 62,
                                    uint64_t{1} << 63,
                                    UINT64_MAX,
                                    base.size(),
                                    hot_end};
    for (int it = 0; it < iterations; ++it) {
      std::vector<std::byte> b = base;
      const int n_mut = 1 + static_cast<int>(rng() % 4);
      for (int m = 0; m < n_mut && !b.empty(); ++m) {
        // Mostly the header and tensor infos, where the structure is.
        const size_t limit = (rng() % 8 == 0) ? b.size() : std::min(hot_end, b.size());
        const size_t pos = static_cast<size_t>(rng() % limit);
        switch (rng() % 5) {
          case 0:
            b[pos] ^= static_cast<std::byte>(1u << (rng() % 8));
            break;
          case 1:
            b[pos] = static_cast<std::byte>(rng() & 0xFF);
            break;
          case 2: {
            const uint64_t v = interesting[rng() % std::size(interesting)];
            const size_t width = (rng() % 2) ? 8 : 4;
            for (size_t k = 0; k < width && pos + k < b.size(); ++k)
              b[pos + k] = static_cast<std::byte>((v >> (8 * k)) & 0xFF);
            break;
          }
          case 3:
            b.resize(pos);
            break;
          case 4:
            b.erase(b.begin() + static_cast<ptrdiff_t>(pos));
            break;
        }
      }
      try {
        g_largest_alloc = 0;
        const GgufFile f = GgufFile::from_bytes(b, "fuzz.gguf");
        const size_t largest = g_largest_alloc;
        if (largest > 16 * b.size() + 65536)
          FAIL("iteration " << it << ": allocated " << largest << " bytes at once");
        exercise(f);
        ++parsed;
      } catch (const tern::Error& e) {
        const size_t largest = g_largest_alloc;
        if (largest > 16 * b.size() + 65536)
          FAIL("iteration " << it << ": allocated " << largest << " bytes at once");
        const std::string msg = e.what();
        if (msg.rfind("fuzz.gguf: ", 0) != 0 || msg.find('\n') != std::string::npos)
          FAIL("bad message: " << msg);
        ++rejected;
      } catch (const std::exception& e) {
        FAIL("iteration " << it << ": unexpected exception " << e.what());
      }
    }
    INFO("parsed " << parsed << ", rejected " << rejected);
    REQUIRE(parsed + rejected == iterations);
    REQUIRE(rejected > iterations / 4);  // the mutations do hit the structure
  };
  SECTION("small writer file") {
    const auto base = small_valid_file();
    const GgufFile f = GgufFile::from_bytes(base, "base.gguf");
    fuzz(base, f.data_offset(), 5000, 20240501);
  }
  SECTION("stories260K-Q8_0 header") {
    const auto base = read_whole(kModels + "/stories260K-Q8_0.gguf");
    const GgufFile f = GgufFile::from_bytes(base, "base.gguf");
    fuzz(base, f.data_offset(), 300, 7);
  }
}

namespace {

// Writes a copy of stories260K-F32 through GgufWriter to a temporary file; the hooks may drop or
// replace a kv (return true when handled) or a tensor.
struct Variant {
  std::function<bool(const std::string&, const GgufValue&, GgufWriter&)> kv;
  std::function<bool(const tern::GgufTensor&, GgufWriter&)> tensor;
};

std::string write_variant(const std::string& name, const Variant& v) {
  const GgufFile src = GgufFile::open(kModels + "/stories260K-F32.gguf");
  GgufWriter w(src.alignment());
  for (const auto& [key, value] : src.metadata()) {
    if (!v.kv || !v.kv(key, value, w)) w.copy_value(key, value);
  }
  for (const auto& t : src.tensors()) {
    if (!v.tensor || !v.tensor(t, w)) {
      w.add_tensor(t.name, t.traits->type,
                   std::span<const int64_t>(t.ne.data(), static_cast<size_t>(t.n_dims)),
                   std::span<const std::byte>(t.data, t.nbytes));
    }
  }
  const auto path = fs::temp_directory_path() /
                    ("tern_test_gguf_corrupt_" + std::to_string(::getpid()) + "_" + name + ".gguf");
  w.write(path.string());
  return path.string();
}

std::string load_error(const std::string& path) {
  std::string msg;
  try {
    (void)tern::Model::load(path);
  } catch (const tern::Error& e) {
    msg = e.what();
  }
  fs::remove(path);
  INFO(msg);
  REQUIRE_FALSE(msg.empty());
  REQUIRE(msg.find(path) != std::string::npos);
  REQUIRE(msg.find('\n') == std::string::npos);
  return msg;
}

Variant drop_key(const std::string& which) {
  return {[which](const std::string& key, const GgufValue&, GgufWriter&) { return key == which; },
          {}};
}
Variant drop_tensor(const std::string& which) {
  return {{}, [which](const tern::GgufTensor& t, GgufWriter&) { return t.name == which; }};
}
// Same bytes, other shape.
Variant reshape(const std::string& which, std::vector<int64_t> ne) {
  return {{}, [which, ne](const tern::GgufTensor& t, GgufWriter& w) {
            if (t.name != which) return false;
            w.add_tensor(t.name, t.traits->type, ne, std::span<const std::byte>(t.data, t.nbytes));
            return true;
          }};
}
Variant replace_key(const std::string& which, std::function<void(GgufWriter&)> set) {
  return {[which, set](const std::string& key, const GgufValue&, GgufWriter& w) {
            if (key != which) return false;
            set(w);
            return true;
          },
          {}};
}

}  // namespace

TEST_CASE("model loader names the missing or misshapen tensor or key", "[gguf][corrupt][model]") {
  // The unmodified copy loads: the failures below are due to the one change each makes.
  {
    const auto path = write_variant("intact", {});
    const auto model = tern::Model::load(path);
    REQUIRE(model->hparams().n_layer == 5);
    fs::remove(path);
  }
  for (const char* tensor : {"blk.2.ffn_up.weight", "blk.4.attn_k.weight", "output_norm.weight",
                             "token_embd.weight", "blk.0.attn_norm.weight"}) {
    INFO(tensor);
    REQUIRE_THAT(load_error(write_variant("drop_tensor", drop_tensor(tensor))), Contains(tensor));
  }
  REQUIRE_THAT(load_error(write_variant("reshape_embd", reshape("token_embd.weight", {128, 256}))),
               Contains("token_embd.weight"));
  REQUIRE_THAT(load_error(write_variant("reshape_k", reshape("blk.0.attn_k.weight", {32, 64}))),
               Contains("blk.0.attn_k.weight"));
  REQUIRE_THAT(load_error(write_variant("reshape_norm", reshape("blk.3.ffn_norm.weight", {32, 2}))),
               Contains("blk.3.ffn_norm.weight"));
  REQUIRE_THAT(
      load_error(write_variant("reshape_down", reshape("blk.1.ffn_down.weight", {172, 32, 2}))),
      Contains("blk.1.ffn_down.weight"));
  for (const char* key :
       {"general.architecture", "llama.embedding_length", "llama.block_count",
        "llama.attention.head_count", "llama.feed_forward_length", "tokenizer.ggml.tokens"}) {
    INFO(key);
    REQUIRE_THAT(load_error(write_variant("drop_key", drop_key(key))), Contains(key));
  }
  REQUIRE_THAT(load_error(write_variant(
                   "string_layers",
                   replace_key("llama.block_count",
                               [](GgufWriter& w) { w.set_string("llama.block_count", "five"); }))),
               Contains("llama.block_count"));
  // More layers than the file has tensors for: the first missing one is named.
  REQUIRE_THAT(
      load_error(write_variant(
          "six_layers", replace_key("llama.block_count",
                                    [](GgufWriter& w) { w.set_u32("llama.block_count", 6); }))),
      Contains("blk.5."));
  REQUIRE_THAT(load_error(write_variant("arch", replace_key("general.architecture",
                                                            [](GgufWriter& w) {
                                                              w.set_string("general.architecture",
                                                                           "mamba");
                                                            }))),
               Contains("mamba"));
}
