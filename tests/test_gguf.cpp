// GGUF reader and writer on good input: the shared model files, and writer -> reader round trips.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/gguf_writer.h"

namespace fs = std::filesystem;
using tern::GgufFile;
using tern::GgufType;
using tern::GgufValue;
using tern::GgufWriter;
using tern::TensorType;

namespace {

const std::string kModels = std::string(TERN_SHARED_DIR) + "/models";

std::vector<std::string> shared_gguf_files() {
  std::vector<std::string> out;
  for (const char* dir : {"", "/vocab"}) {
    for (const auto& e : fs::directory_iterator(kModels + dir)) {
      if (e.path().extension() == ".gguf") out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Little-endian byte builder for array payloads.
struct Bytes {
  std::vector<std::byte> v;
  template <typename T>
  Bytes& put(T x) {
    const size_t at = v.size();
    v.resize(at + sizeof(T));
    std::memcpy(v.data() + at, &x, sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    const size_t at = v.size();
    v.resize(at + s.size());
    if (!s.empty()) std::memcpy(v.data() + at, s.data(), s.size());
    return *this;
  }
  Bytes& append(const Bytes& o) {
    v.insert(v.end(), o.v.begin(), o.v.end());
    return *this;
  }
};

GgufValue scalar(GgufType t, uint64_t u) {
  return GgufValue{t, u};
}
GgufValue scalar_i(GgufType t, int64_t i) {
  return GgufValue{t, i};
}
GgufValue scalar_f(GgufType t, double d) {
  return GgufValue{t, d};
}

// An array value whose elements are `raw` (which must outlive the copy_value call).
GgufValue array_of(GgufType elem, uint64_t count, const Bytes& raw) {
  tern::GgufArray a;
  a.elem_type = elem;
  a.count = count;
  a.raw = raw.v;
  return GgufValue{GgufType::ARRAY, a};
}

bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type) return false;
  if (a.type == GgufType::ARRAY) {
    const auto& x = std::get<tern::GgufArray>(a.value);
    const auto& y = std::get<tern::GgufArray>(b.value);
    return x.elem_type == y.elem_type && x.count == y.count && x.raw.size() == y.raw.size() &&
           std::equal(x.raw.begin(), x.raw.end(), y.raw.begin());
  }
  if (a.type == GgufType::F32 || a.type == GgufType::F64) {
    // Bitwise, so that NaN payloads and -0 are compared too.
    const double da = std::get<double>(a.value), db = std::get<double>(b.value);
    return std::memcmp(&da, &db, sizeof da) == 0;
  }
  if (const auto* s = std::get_if<std::string>(&a.value))
    return *s == std::get<std::string>(b.value);
  if (const auto* u = std::get_if<uint64_t>(&a.value)) return *u == std::get<uint64_t>(b.value);
  if (const auto* i = std::get_if<int64_t>(&a.value)) return *i == std::get<int64_t>(b.value);
  return std::get<bool>(a.value) == std::get<bool>(b.value);
}

std::span<const std::byte> tensor_bytes(const tern::GgufTensor& t) {
  return {t.data, t.nbytes};
}

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Copies every kv and tensor of `f` into a writer with the file's alignment (optionally skipping
// one tensor), the way `tern quantize` does.
GgufWriter copy_of(const GgufFile& f) {
  GgufWriter w(f.alignment());
  for (const auto& [key, value] : f.metadata()) w.copy_value(key, value);
  for (const auto& t : f.tensors()) {
    w.add_tensor(t.name, t.traits->type,
                 std::span<const int64_t>(t.ne.data(), static_cast<size_t>(t.n_dims)),
                 tensor_bytes(t));
  }
  return w;
}

void require_same_file(const GgufFile& a, const GgufFile& b) {
  REQUIRE(a.version() == b.version());
  REQUIRE(a.alignment() == b.alignment());
  REQUIRE(a.metadata().size() == b.metadata().size());
  for (size_t i = 0; i < a.metadata().size(); ++i) {
    INFO("key " << a.metadata()[i].first);
    REQUIRE(a.metadata()[i].first == b.metadata()[i].first);
    REQUIRE(same_value(a.metadata()[i].second, b.metadata()[i].second));
  }
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const auto& x = a.tensors()[i];
    const auto& y = b.tensors()[i];
    INFO("tensor " << x.name);
    REQUIRE(x.name == y.name);
    REQUIRE(x.n_dims == y.n_dims);
    REQUIRE(x.ne == y.ne);
    REQUIRE(x.traits == y.traits);
    REQUIRE(x.nbytes == y.nbytes);
    REQUIRE(same_bytes(tensor_bytes(x), tensor_bytes(y)));
  }
}

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng() & 0xFF);
  return out;
}

std::vector<std::byte> read_whole(const std::string& path) {
  std::vector<std::byte> out(fs::file_size(path));
  FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fread(out.data(), 1, out.size(), f) == out.size());
  std::fclose(f);
  return out;
}

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("tern_test_gguf_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace

TEST_CASE("every shared GGUF file opens as v3 with mmap and without, tensor data inside the file",
          "[gguf]") {
  const auto files = shared_gguf_files();
  REQUIRE(files.size() == 11);  // 9 models + 2 vocabularies
  for (const auto& path : files) {
    INFO(path);
    const GgufFile mapped = GgufFile::open(path, true);
    const GgufFile read = GgufFile::open(path, false);
    REQUIRE(mapped.version() == 3);
    REQUIRE(mapped.file_size() == fs::file_size(path));
    REQUIRE(mapped.alignment() == 32);
    REQUIRE(mapped.find("general.architecture") != nullptr);
    REQUIRE(mapped.metadata().size() == read.metadata().size());
    REQUIRE(mapped.tensors().size() == read.tensors().size());
    const auto raw = read_whole(path);
    for (size_t i = 0; i < mapped.tensors().size(); ++i) {
      const auto& t = mapped.tensors()[i];
      INFO(t.name);
      REQUIRE(t.traits != nullptr);
      REQUIRE(t.n_dims >= 1);
      REQUIRE(t.n_dims <= 4);
      REQUIRE(t.nbytes == tern::row_bytes(*t.traits, t.n_elements()));
      REQUIRE(t.offset % mapped.alignment() == 0);
      REQUIRE(mapped.data_offset() % mapped.alignment() == 0);
      REQUIRE(mapped.data_offset() + t.offset + t.nbytes <= mapped.file_size());
      // The pointer is where the offset says, in both modes.
      REQUIRE(t.data == mapped.tensors()[0].data + (t.offset - mapped.tensors()[0].offset));
      REQUIRE(same_bytes(tensor_bytes(t),
                         std::span(raw).subspan(mapped.data_offset() + t.offset, t.nbytes)));
      REQUIRE(same_bytes(tensor_bytes(t), tensor_bytes(read.tensors()[i])));
      REQUIRE(mapped.find_tensor(t.name) == &t);
    }
    // The kv data decodes identically in both modes.
    for (size_t i = 0; i < mapped.metadata().size(); ++i) {
      REQUIRE(mapped.metadata()[i].first == read.metadata()[i].first);
      REQUIRE(same_value(mapped.metadata()[i].second, read.metadata()[i].second));
    }
  }
}

TEST_CASE("stories260K-F32: metadata accessors and known tensor shapes", "[gguf]") {
  const GgufFile f = GgufFile::open(kModels + "/stories260K-F32.gguf");
  REQUIRE(f.tensors().size() == 48);  // 3 + 5 layers x 9
  REQUIRE(f.metadata().size() == 20);
  REQUIRE(f.get_string("general.architecture") == "llama");
  REQUIRE(f.get_string("general.name") == "stories260K");
  REQUIRE(f.get_string("tokenizer.ggml.model") == "llama");
  REQUIRE(f.get_uint("llama.embedding_length") == 64);
  REQUIRE(f.get_uint("llama.context_length") == 512);
  REQUIRE(f.get_uint("llama.feed_forward_length") == 172);
  REQUIRE(f.get_uint("llama.block_count") == 5);
  REQUIRE(f.get_uint("llama.attention.head_count") == 8);
  REQUIRE(f.get_uint("llama.attention.head_count_kv") == 4);
  REQUIRE(f.opt_uint("tokenizer.ggml.bos_token_id") == 1u);
  REQUIRE(f.opt_int("tokenizer.ggml.eos_token_id") == 2);
  REQUIRE(f.opt_uint("tokenizer.ggml.seperator_token_id") == 4294967295u);
  REQUIRE(f.opt_float("llama.attention.layer_norm_rms_epsilon").value() == Approx(1e-5));
  REQUIRE(f.find("llama.attention.layer_norm_rms_epsilon")->type == GgufType::F32);
  REQUIRE(f.opt_float("llama.embedding_length") == 64.0);  // integers widen to float
  REQUIRE_FALSE(f.opt_uint("llama.rope.freq_base").has_value());
  REQUIRE_FALSE(f.opt_string("general.file_type").has_value());
  REQUIRE(f.find("no.such.key") == nullptr);

  const auto tokens = f.opt_string_array("tokenizer.ggml.tokens");
  REQUIRE(tokens.has_value());
  REQUIRE(tokens->size() == 512);
  REQUIRE((*tokens)[0] == "<unk>");
  REQUIRE((*tokens)[1] == "<s>");
  REQUIRE((*tokens)[2] == "</s>");
  REQUIRE((*tokens)[3 + 0x41] == "<0x41>");
  const auto scores = f.opt_float_array("tokenizer.ggml.scores");
  REQUIRE(scores.has_value());
  REQUIRE(scores->size() == 512);
  REQUIRE(std::all_of(scores->begin(), scores->end(), [](float s) { return std::isfinite(s); }));
  REQUIRE(f.find("tokenizer.ggml.scores")->type == GgufType::ARRAY);
  REQUIRE(std::get<tern::GgufArray>(f.find("tokenizer.ggml.scores")->value).elem_type ==
          GgufType::F32);
  const auto types = f.opt_int_array("tokenizer.ggml.token_type");
  REQUIRE(types.has_value());
  REQUIRE(types->size() == 512);
  REQUIRE((*types)[0] == 2);  // unknown
  REQUIRE((*types)[1] == 3);  // control
  REQUIRE((*types)[3] == 6);  // byte
  REQUIRE(std::count(types->begin(), types->end(), 6) == 256);
  REQUIRE(std::count(types->begin(), types->end(), 1) == 253);

  const auto* emb = f.find_tensor("token_embd.weight");
  REQUIRE(emb != nullptr);
  REQUIRE(emb->traits->type == TensorType::F32);
  REQUIRE(emb->n_dims == 2);
  REQUIRE(emb->ne == std::array<int64_t, 4>{64, 512, 1, 1});
  REQUIRE(emb->nbytes == 64 * 512 * 4);
  REQUIRE(emb->n_rows() == 512);
  REQUIRE(emb->row_stride() == 256);
  const auto* norm = f.find_tensor("output_norm.weight");
  REQUIRE(norm != nullptr);
  REQUIRE(norm->n_dims == 1);
  REQUIRE(norm->ne == std::array<int64_t, 4>{64, 1, 1, 1});
  const auto* down = f.find_tensor("blk.4.ffn_down.weight");
  REQUIRE(down != nullptr);
  REQUIRE(down->ne == std::array<int64_t, 4>{172, 64, 1, 1});
  REQUIRE(f.find_tensor("blk.5.ffn_down.weight") == nullptr);
  // output.weight is a copy of the embedding in this file.
  const auto* out = f.find_tensor("output.weight");
  REQUIRE(out != nullptr);
  REQUIRE(same_bytes(tensor_bytes(*out), tensor_bytes(*emb)));
}

TEST_CASE("typed accessors throw naming the key on missing keys and wrong types", "[gguf]") {
  const GgufFile f = GgufFile::open(kModels + "/stories260K-F32.gguf");
  auto throws_with = [](auto fn, const std::string& fragment) {
    try {
      fn();
    } catch (const tern::Error& e) {
      const std::string msg = e.what();
      INFO(msg);
      REQUIRE(msg.find(fragment) != std::string::npos);
      REQUIRE(msg.find("stories260K-F32.gguf") != std::string::npos);
      REQUIRE(msg.find('\n') == std::string::npos);
      return;
    }
    FAIL("no tern::Error for " << fragment);
  };
  throws_with([&] { (void)f.get_string("llama.nope"); }, "llama.nope");
  throws_with([&] { (void)f.get_uint("llama.nope"); }, "llama.nope");
  throws_with([&] { (void)f.get_string("llama.block_count"); }, "llama.block_count");
  throws_with([&] { (void)f.get_uint("general.name"); }, "general.name");
  throws_with([&] { (void)f.opt_bool("llama.block_count"); }, "llama.block_count");
  throws_with([&] { (void)f.opt_float("general.name"); }, "general.name");
  throws_with([&] { (void)f.opt_string_array("tokenizer.ggml.scores"); }, "tokenizer.ggml.scores");
  throws_with([&] { (void)f.opt_float_array("tokenizer.ggml.tokens"); }, "tokenizer.ggml.tokens");
  throws_with([&] { (void)f.opt_int_array("tokenizer.ggml.scores"); }, "tokenizer.ggml.scores");
  throws_with([&] { (void)f.opt_string_array("general.name"); }, "general.name");
  throws_with([&] { f.fail("custom problem"); }, "custom problem");
}

TEST_CASE("ternary, quantized and vocabulary-only files have the documented types and shapes",
          "[gguf]") {
  {
    const GgufFile f = GgufFile::open(kModels + "/tiny-ternary-random-TQ2_0.gguf");
    REQUIRE(f.tensors().size() == 21);  // 3 + 2 layers x 9
    REQUIRE(f.get_uint("general.file_type") == 37);
    REQUIRE(f.get_uint("llama.embedding_length") == 256);
    REQUIRE(f.opt_float("llama.rope.freq_base") == 10000.0);
    const auto* q = f.find_tensor("blk.0.attn_q.weight");
    REQUIRE(q != nullptr);
    REQUIRE(q->traits->type == TensorType::TQ2_0);
    REQUIRE(q->traits->name == "tq2_0");
    REQUIRE(q->ne == std::array<int64_t, 4>{256, 256, 1, 1});
    REQUIRE(q->nbytes == 256 * 66);
    REQUIRE(q->row_stride() == 66);
    const auto* k = f.find_tensor("blk.1.attn_k.weight");
    REQUIRE(k->ne == std::array<int64_t, 4>{256, 128, 1, 1});
    REQUIRE(f.find_tensor("blk.0.ffn_down.weight")->ne == std::array<int64_t, 4>{768, 256, 1, 1});
    REQUIRE(f.find_tensor("token_embd.weight")->traits->type == TensorType::Q8_0);
    REQUIRE(f.find_tensor("output.weight")->traits->type == TensorType::Q8_0);
    REQUIRE(f.find_tensor("output_norm.weight")->traits->type == TensorType::F32);
  }
  {
    const GgufFile f = GgufFile::open(kModels + "/tiny-ternary-random-TQ1_0.gguf", false);
    const auto* up = f.find_tensor("blk.1.ffn_up.weight");
    REQUIRE(up->traits->type == TensorType::TQ1_0);
    REQUIRE(up->ne == std::array<int64_t, 4>{256, 768, 1, 1});
    REQUIRE(up->nbytes == 768 * 54);
  }
  {
    const GgufFile f = GgufFile::open(kModels + "/stories260K-Q8_0.gguf");
    REQUIRE(f.get_uint("general.file_type") == 7);
    const auto* emb = f.find_tensor("token_embd.weight");
    REQUIRE(emb->traits->type == TensorType::Q8_0);
    REQUIRE(emb->nbytes == 512 * 2 * 34);
    const auto* down = f.find_tensor("blk.0.ffn_down.weight");
    REQUIRE(down->traits->type == TensorType::F32);  // 172 columns: not a multiple of 32
    REQUIRE(down->ne == std::array<int64_t, 4>{172, 64, 1, 1});
  }
  {
    const GgufFile f = GgufFile::open(kModels + "/stories260K-Q4_0.gguf");
    REQUIRE(f.find_tensor("blk.0.ffn_gate.weight")->traits->type == TensorType::Q4_0);
    REQUIRE(f.find_tensor("blk.0.ffn_gate.weight")->nbytes == 172 * 2 * 18);
  }
  {
    const GgufFile f = GgufFile::open(kModels + "/stories260K-F16.gguf");
    REQUIRE(f.find_tensor("blk.0.attn_q.weight")->traits->type == TensorType::F16);
    REQUIRE(f.find_tensor("blk.0.attn_norm.weight")->traits->type == TensorType::F32);
  }
  {
    const GgufFile f = GgufFile::open(kModels + "/vocab/ggml-vocab-llama-spm.gguf");
    REQUIRE(f.tensors().empty());
    REQUIRE(f.get_string("general.architecture") == "llama");
    REQUIRE(f.opt_string_array("tokenizer.ggml.tokens")->size() == 32000);
    REQUIRE(f.opt_float_array("tokenizer.ggml.scores")->size() == 32000);
    REQUIRE(f.opt_bool("tokenizer.ggml.add_bos_token") == true);
    REQUIRE(f.opt_bool("tokenizer.ggml.add_eos_token") == false);
  }
  {
    const GgufFile f = GgufFile::open(kModels + "/vocab/ggml-vocab-gpt-2.gguf", false);
    REQUIRE(f.tensors().empty());
    REQUIRE(f.get_string("general.architecture") == "gpt2");
    REQUIRE(f.get_string("tokenizer.ggml.pre") == "gpt-2");
    REQUIRE(f.opt_string_array("tokenizer.ggml.tokens")->size() == 50257);
    const auto merges = f.opt_string_array("tokenizer.ggml.merges");
    REQUIRE(merges->size() == 50000);
    REQUIRE((*merges)[0] == "\xc4\xa0 t");
    REQUIRE(f.opt_int_array("tokenizer.ggml.token_type")->size() == 50257);
  }
}

TEST_CASE("writer round trip: every value type, nested arrays, several tensor types, any alignment",
          "[gguf][writer]") {
  const uint32_t alignment = GENERATE(1u, 8u, 32u, 64u, 4096u);
  INFO("alignment " << alignment);
  const GgufFile src = GgufFile::open(kModels + "/stories260K-F32.gguf");

  // Payloads for copy_value must outlive the calls.
  Bytes a_u8, a_i8, a_u16, a_i16, a_u32, a_i32, a_f32, a_bool, a_u64, a_i64, a_f64, a_str, a_empty;
  a_u8.put<uint8_t>(0).put<uint8_t>(7).put<uint8_t>(255);
  a_i8.put<int8_t>(-128).put<int8_t>(0).put<int8_t>(127);
  a_u16.put<uint16_t>(0).put<uint16_t>(1).put<uint16_t>(65535);
  a_i16.put<int16_t>(-32768).put<int16_t>(-1).put<int16_t>(32767);
  a_u32.put<uint32_t>(0).put<uint32_t>(4294967295u).put<uint32_t>(12345);
  a_i32.put<int32_t>(std::numeric_limits<int32_t>::min())
      .put<int32_t>(-7)
      .put<int32_t>(std::numeric_limits<int32_t>::max());
  a_f32.put<float>(-0.0f).put<float>(1.5f).put<float>(std::numeric_limits<float>::infinity());
  a_bool.put<uint8_t>(1).put<uint8_t>(0).put<uint8_t>(1);
  a_u64.put<uint64_t>(0).put<uint64_t>(UINT64_MAX).put<uint64_t>(1ull << 40);
  a_i64.put<int64_t>(INT64_MIN).put<int64_t>(-1).put<int64_t>(INT64_MAX);
  a_f64.put<double>(3.141592653589793).put<double>(-1e300).put<double>(5e-324);
  a_str.str("").str("two words").str(std::string("nul\0inside", 10));
  // An array of arrays: [u16 x3], [string x2], [] of i8, and [[u8 x2]] (three levels).
  Bytes inner_u16, inner_str, inner_inner;
  inner_u16.put<uint16_t>(1).put<uint16_t>(2).put<uint16_t>(65535);
  inner_str.str("alpha").str("\xc4\xa0\xe2\x96\x81");
  inner_inner.put<uint32_t>(static_cast<uint32_t>(GgufType::U8))
      .put<uint64_t>(2)
      .put<uint8_t>(9)
      .put<uint8_t>(10);
  Bytes a_nested;
  a_nested.put<uint32_t>(static_cast<uint32_t>(GgufType::U16)).put<uint64_t>(3).append(inner_u16);
  a_nested.put<uint32_t>(static_cast<uint32_t>(GgufType::STRING))
      .put<uint64_t>(2)
      .append(inner_str);
  a_nested.put<uint32_t>(static_cast<uint32_t>(GgufType::I8)).put<uint64_t>(0);
  a_nested.put<uint32_t>(static_cast<uint32_t>(GgufType::ARRAY))
      .put<uint64_t>(1)
      .append(inner_inner);

  GgufWriter w(alignment);
  w.set_string("general.architecture", "llama");
  w.set_u32("t.u32", 4294967295u);
  w.set_i32("t.i32", -2147483647 - 1);
  w.set_u64("t.u64", UINT64_MAX);
  w.set_f32("t.f32", -1.25f);
  w.set_bool("t.true", true);
  w.set_bool("t.false", false);
  w.set_string("t.string", "h\xc3\xa9llo");
  w.set_string("t.empty_string", "");
  w.set_string("t.nul_string", std::string("a\0b", 3));
  const std::vector<std::string> strs{"a", "", "\xe2\x96\x81the", std::string(300, 'x')};
  w.set_string_array("t.str_array", strs);
  const std::vector<float> floats{0.5f, -2.0f, 1e-30f};
  w.set_f32_array("t.f32_array", floats);
  const std::vector<int32_t> ints{-1, 0, 2147483647};
  w.set_i32_array("t.i32_array", ints);
  w.set_i32_array("t.empty_array", {});
  w.copy_value("t.u8", scalar(GgufType::U8, 255));
  w.copy_value("t.i8", scalar_i(GgufType::I8, -128));
  w.copy_value("t.u16", scalar(GgufType::U16, 65535));
  w.copy_value("t.i16", scalar_i(GgufType::I16, -32768));
  w.copy_value("t.i64", scalar_i(GgufType::I64, INT64_MIN));
  w.copy_value("t.f64", scalar_f(GgufType::F64, 2.718281828459045));
  w.copy_value("t.copied_string", GgufValue{GgufType::STRING, std::string("copied")});
  w.copy_value("a.u8", array_of(GgufType::U8, 3, a_u8));
  w.copy_value("a.i8", array_of(GgufType::I8, 3, a_i8));
  w.copy_value("a.u16", array_of(GgufType::U16, 3, a_u16));
  w.copy_value("a.i16", array_of(GgufType::I16, 3, a_i16));
  w.copy_value("a.u32", array_of(GgufType::U32, 3, a_u32));
  w.copy_value("a.i32", array_of(GgufType::I32, 3, a_i32));
  w.copy_value("a.f32", array_of(GgufType::F32, 3, a_f32));
  w.copy_value("a.bool", array_of(GgufType::BOOL, 3, a_bool));
  w.copy_value("a.u64", array_of(GgufType::U64, 3, a_u64));
  w.copy_value("a.i64", array_of(GgufType::I64, 3, a_i64));
  w.copy_value("a.f64", array_of(GgufType::F64, 3, a_f64));
  w.copy_value("a.string", array_of(GgufType::STRING, 3, a_str));
  w.copy_value("a.empty", array_of(GgufType::F64, 0, a_empty));
  w.copy_value("a.nested", array_of(GgufType::ARRAY, 4, a_nested));
  // Values read from another file, copied as they were.
  w.copy_value("tokenizer.ggml.tokens", *src.find("tokenizer.ggml.tokens"));
  w.copy_value("tokenizer.ggml.scores", *src.find("tokenizer.ggml.scores"));
  w.copy_value("llama.attention.layer_norm_rms_epsilon",
               *src.find("llama.attention.layer_norm_rms_epsilon"));

  // Tensors of several types; sizes from the block layouts, not from the traits table.
  const auto t_f32 = random_bytes(5 * 3 * 4, 1);
  const auto t_f16 = random_bytes(32 * 2 * 2, 2);
  const auto t_q8 = random_bytes(3 * 2 * 34, 3);      // [64, 3]: 2 blocks of 34 bytes per row
  const auto t_tq2 = random_bytes(2 * 66, 4);         // [256, 2]
  const auto t_q4 = random_bytes(2 * 3 * 4 * 18, 5);  // [32, 2, 3, 4]
  const auto t_vec = random_bytes(7 * 4, 6);          // [7]
  const std::vector<int64_t> s_f32{5, 3}, s_f16{32, 2}, s_q8{64, 3}, s_tq2{256, 2},
      s_q4{32, 2, 3, 4}, s_vec{7};
  w.add_tensor("f32", TensorType::F32, s_f32, t_f32);
  w.add_tensor("f16", TensorType::F16, s_f16, t_f16);
  w.add_tensor("q8_0", TensorType::Q8_0, s_q8, t_q8);
  w.add_tensor("tq2_0", TensorType::TQ2_0, s_tq2, t_tq2);
  w.add_tensor("q4_0 4d", TensorType::Q4_0, s_q4, t_q4);
  w.add_tensor("vec", TensorType::F32, s_vec, t_vec);

  const auto bytes = w.bytes();
  const GgufFile f = GgufFile::from_bytes(bytes, "roundtrip.gguf");
  REQUIRE(f.version() == 3);
  REQUIRE(f.alignment() == alignment);
  REQUIRE(f.data_offset() % alignment == 0);
  REQUIRE((alignment == 32) == (f.find("general.alignment") == nullptr));
  if (alignment != 32) {
    REQUIRE(f.find("general.alignment")->type == GgufType::U32);
    REQUIRE(f.get_uint("general.alignment") == alignment);
  }

  // Scalars.
  REQUIRE(f.get_string("general.architecture") == "llama");
  REQUIRE(f.find("t.u32")->type == GgufType::U32);
  REQUIRE(f.get_uint("t.u32") == 4294967295u);
  REQUIRE(f.find("t.i32")->type == GgufType::I32);
  REQUIRE(f.opt_int("t.i32") == -2147483648LL);
  REQUIRE(f.get_uint("t.u64") == UINT64_MAX);
  REQUIRE(f.find("t.f32")->type == GgufType::F32);
  REQUIRE(f.opt_float("t.f32") == -1.25);
  REQUIRE(f.opt_bool("t.true") == true);
  REQUIRE(f.opt_bool("t.false") == false);
  REQUIRE(f.get_string("t.string") == "h\xc3\xa9llo");
  REQUIRE(f.get_string("t.empty_string").empty());
  REQUIRE(f.get_string("t.nul_string") == std::string("a\0b", 3));
  REQUIRE(f.find("t.u8")->type == GgufType::U8);
  REQUIRE(f.get_uint("t.u8") == 255);
  REQUIRE(f.find("t.i8")->type == GgufType::I8);
  REQUIRE(f.opt_int("t.i8") == -128);
  REQUIRE(f.get_uint("t.u16") == 65535);
  REQUIRE(f.opt_int("t.i16") == -32768);
  REQUIRE(f.find("t.i64")->type == GgufType::I64);
  REQUIRE(f.opt_int("t.i64") == INT64_MIN);
  REQUIRE(f.find("t.f64")->type == GgufType::F64);
  REQUIRE(f.opt_float("t.f64") == 2.718281828459045);
  REQUIRE(f.get_string("t.copied_string") == "copied");
  // A negative integer is not an unsigned one, and u64 max is not an int64.
  REQUIRE_THROWS_AS(f.get_uint("t.i8"), tern::Error);
  REQUIRE_THROWS_AS(f.opt_int("t.u64"), tern::Error);

  // Arrays.
  REQUIRE(f.opt_string_array("t.str_array") == strs);
  REQUIRE(f.opt_float_array("t.f32_array") == floats);
  REQUIRE(f.opt_int_array("t.i32_array") == std::vector<int64_t>{-1, 0, 2147483647});
  REQUIRE(f.opt_int_array("t.empty_array")->empty());
  REQUIRE(f.opt_int_array("a.u8") == std::vector<int64_t>{0, 7, 255});
  REQUIRE(f.opt_int_array("a.i8") == std::vector<int64_t>{-128, 0, 127});
  REQUIRE(f.opt_int_array("a.u16") == std::vector<int64_t>{0, 1, 65535});
  REQUIRE(f.opt_int_array("a.i16") == std::vector<int64_t>{-32768, -1, 32767});
  REQUIRE(f.opt_int_array("a.u32") == std::vector<int64_t>{0, 4294967295LL, 12345});
  REQUIRE(f.opt_int_array("a.i32") == std::vector<int64_t>{-2147483648LL, -7, 2147483647});
  REQUIRE(f.opt_int_array("a.i64") == std::vector<int64_t>{INT64_MIN, -1, INT64_MAX});
  REQUIRE_THROWS_AS(f.opt_int_array("a.u64"), tern::Error);  // UINT64_MAX does not fit
  {
    const auto& arr = std::get<tern::GgufArray>(f.find("a.u64")->value);
    const auto vals = arr.decode();
    REQUIRE(vals.size() == 3);
    REQUIRE(std::get<uint64_t>(vals[1].value) == UINT64_MAX);
    REQUIRE(std::get<uint64_t>(vals[2].value) == (1ull << 40));
    REQUIRE(arr.decode(2).size() == 2);
  }
  {
    const auto fl = f.opt_float_array("a.f32").value();
    REQUIRE(fl.size() == 3);
    REQUIRE(std::signbit(fl[0]));
    REQUIRE(fl[1] == 1.5f);
    REQUIRE(std::isinf(fl[2]));
    const auto vals = std::get<tern::GgufArray>(f.find("a.f64")->value).decode();
    REQUIRE(std::get<double>(vals[0].value) == 3.141592653589793);
    REQUIRE(std::get<double>(vals[1].value) == -1e300);
    REQUIRE(std::get<double>(vals[2].value) == 5e-324);
  }
  {
    const auto vals = std::get<tern::GgufArray>(f.find("a.bool")->value).decode();
    REQUIRE(vals.size() == 3);
    REQUIRE(vals[0].type == GgufType::BOOL);
    REQUIRE(std::get<bool>(vals[0].value));
    REQUIRE_FALSE(std::get<bool>(vals[1].value));
  }
  REQUIRE(f.opt_string_array("a.string") ==
          std::vector<std::string>{"", "two words", std::string("nul\0inside", 10)});
  REQUIRE(std::get<tern::GgufArray>(f.find("a.empty")->value).count == 0);
  {
    const auto outer = std::get<tern::GgufArray>(f.find("a.nested")->value).decode();
    REQUIRE(outer.size() == 4);
    const auto& a0 = std::get<tern::GgufArray>(outer[0].value);
    REQUIRE(a0.elem_type == GgufType::U16);
    const auto v0 = a0.decode();
    REQUIRE(v0.size() == 3);
    REQUIRE(std::get<uint64_t>(v0[2].value) == 65535);
    const auto v1 = std::get<tern::GgufArray>(outer[1].value).decode();
    REQUIRE(v1.size() == 2);
    REQUIRE(std::get<std::string>(v1[0].value) == "alpha");
    REQUIRE(std::get<std::string>(v1[1].value) == "\xc4\xa0\xe2\x96\x81");
    REQUIRE(std::get<tern::GgufArray>(outer[2].value).count == 0);
    const auto v3 = std::get<tern::GgufArray>(outer[3].value).decode();
    REQUIRE(v3.size() == 1);
    const auto v33 = std::get<tern::GgufArray>(v3[0].value).decode();
    REQUIRE(v33.size() == 2);
    REQUIRE(std::get<uint64_t>(v33[1].value) == 10);
  }
  REQUIRE(same_value(*f.find("tokenizer.ggml.tokens"), *src.find("tokenizer.ggml.tokens")));
  REQUIRE(same_value(*f.find("tokenizer.ggml.scores"), *src.find("tokenizer.ggml.scores")));
  REQUIRE(f.opt_string_array("tokenizer.ggml.tokens") ==
          src.opt_string_array("tokenizer.ggml.tokens"));
  REQUIRE(f.opt_float_array("tokenizer.ggml.scores") ==
          src.opt_float_array("tokenizer.ggml.scores"));
  REQUIRE(f.opt_float("llama.attention.layer_norm_rms_epsilon") ==
          src.opt_float("llama.attention.layer_norm_rms_epsilon"));
  // File order is kept.
  REQUIRE(f.metadata().back().first == "llama.attention.layer_norm_rms_epsilon");

  // Tensors.
  struct Expect {
    const char* name;
    TensorType type;
    std::array<int64_t, 4> ne;
    int n_dims;
    size_t nbytes;
    const std::vector<std::byte>* data;
  };
  const Expect expect[] = {
      {"f32", TensorType::F32, {5, 3, 1, 1}, 2, 60, &t_f32},
      {"f16", TensorType::F16, {32, 2, 1, 1}, 2, 128, &t_f16},
      {"q8_0", TensorType::Q8_0, {64, 3, 1, 1}, 2, 204, &t_q8},
      {"tq2_0", TensorType::TQ2_0, {256, 2, 1, 1}, 2, 132, &t_tq2},
      {"q4_0 4d", TensorType::Q4_0, {32, 2, 3, 4}, 4, 432, &t_q4},
      {"vec", TensorType::F32, {7, 1, 1, 1}, 1, 28, &t_vec},
  };
  REQUIRE(f.tensors().size() == std::size(expect));
  for (size_t i = 0; i < std::size(expect); ++i) {
    const auto& t = f.tensors()[i];
    INFO(expect[i].name);
    REQUIRE(t.name == expect[i].name);
    REQUIRE(t.traits->type == expect[i].type);
    REQUIRE(t.ne == expect[i].ne);
    REQUIRE(t.n_dims == expect[i].n_dims);
    REQUIRE(t.nbytes == expect[i].nbytes);
    REQUIRE(t.offset % alignment == 0);
    REQUIRE(same_bytes(tensor_bytes(t), *expect[i].data));
  }

  // write -> read -> write gives the same bytes.
  REQUIRE(copy_of(f).bytes() == bytes);

  // write() puts the same bytes on disk, and open() reads them in both modes.
  const auto path = temp_path("roundtrip_" + std::to_string(alignment) + ".gguf");
  w.write(path.string());
  REQUIRE(read_whole(path.string()) == bytes);
  require_same_file(GgufFile::open(path.string(), true), f);
  require_same_file(GgufFile::open(path.string(), false), f);
  fs::remove(path);
}

TEST_CASE("copying every kv and tensor of stories260K-F32 through the writer reproduces the file",
          "[gguf][writer]") {
  const std::string path = kModels + "/stories260K-F32.gguf";
  const GgufFile src = GgufFile::open(path);
  const auto bytes = copy_of(src).bytes();
  const GgufFile copy = GgufFile::from_bytes(bytes, "copy.gguf");
  require_same_file(src, copy);
  // gguf-py laid this file out exactly as our writer does, so the copy is byte-identical.
  REQUIRE(bytes == read_whole(path));

  // The same holds for a quantized file with mixed tensor types.
  const std::string q8 = kModels + "/tiny-ternary-random-TQ2_0.gguf";
  const GgufFile src_q = GgufFile::open(q8);
  const GgufFile copy_q = GgufFile::from_bytes(copy_of(src_q).bytes(), "copy_q.gguf");
  require_same_file(src_q, copy_q);

  // A copy into a writer with another alignment still parses and keeps every tensor's bytes.
  GgufWriter w(256);
  for (const auto& [key, value] : src.metadata()) w.copy_value(key, value);
  for (const auto& t : src.tensors()) {
    w.add_tensor(t.name, t.traits->type,
                 std::span<const int64_t>(t.ne.data(), static_cast<size_t>(t.n_dims)),
                 tensor_bytes(t));
  }
  const GgufFile realigned = GgufFile::from_bytes(w.bytes(), "realigned.gguf");
  REQUIRE(realigned.alignment() == 256);
  REQUIRE(realigned.tensors().size() == src.tensors().size());
  for (size_t i = 0; i < src.tensors().size(); ++i) {
    REQUIRE(realigned.tensors()[i].offset % 256 == 0);
    REQUIRE(same_bytes(tensor_bytes(realigned.tensors()[i]), tensor_bytes(src.tensors()[i])));
  }
}

TEST_CASE("writer rejects input that would make an unreadable file", "[gguf][writer]") {
  REQUIRE_THROWS_AS(GgufWriter(0), tern::Error);
  REQUIRE_THROWS_AS(GgufWriter(3), tern::Error);
  REQUIRE_THROWS_AS(GgufWriter(96), tern::Error);
  GgufWriter w;
  const auto data = random_bytes(34 * 2, 7);
  const std::vector<int64_t> ok{32, 2}, wrong_rows{32, 3}, bad_row{33, 2}, zero{32, 0},
      negative{32, -2}, five{32, 2, 1, 1, 1}, none{};
  REQUIRE_THROWS_AS(w.add_tensor("t", TensorType::Q8_0, wrong_rows, data), tern::Error);
  REQUIRE_THROWS_AS(w.add_tensor("t", TensorType::Q8_0, bad_row, data), tern::Error);
  REQUIRE_THROWS_AS(w.add_tensor("t", TensorType::Q8_0, zero, {}), tern::Error);
  REQUIRE_THROWS_AS(w.add_tensor("t", TensorType::Q8_0, negative, data), tern::Error);
  REQUIRE_THROWS_AS(w.add_tensor("t", TensorType::Q8_0, five, data), tern::Error);
  REQUIRE_THROWS_AS(w.add_tensor("t", TensorType::Q8_0, none, data), tern::Error);
  w.add_tensor("t", TensorType::Q8_0, ok, data);
  REQUIRE_THROWS_AS(w.add_tensor("t", TensorType::Q8_0, ok, data), tern::Error);  // duplicate name
  w.set_u32("k", 1);
  REQUIRE_THROWS_AS(w.set_string("k", "again"), tern::Error);  // duplicate key
  // general.alignment must agree with the writer's own alignment.
  REQUIRE_THROWS_AS(w.set_u32("general.alignment", 64), tern::Error);
  REQUIRE_THROWS_AS(w.copy_value("general.alignment", scalar(GgufType::U64, 32)), tern::Error);
  w.set_u32("general.alignment", 32);  // explicit default: allowed once
  REQUIRE_THROWS_AS(w.set_u32("general.alignment", 32), tern::Error);
  const GgufFile f = GgufFile::from_bytes(w.bytes(), "w.gguf");
  REQUIRE(f.get_uint("k") == 1);
  REQUIRE(f.get_uint("general.alignment") == 32);
  REQUIRE(f.tensors().size() == 1);
  // A writer with alignment 64 already records it; copying the same value again is a no-op.
  GgufWriter w64(64);
  w64.copy_value("general.alignment", scalar(GgufType::U32, 64));
  REQUIRE(GgufFile::from_bytes(w64.bytes(), "w64.gguf").metadata().size() == 1);
  REQUIRE_THROWS_AS(w.write("/nonexistent-dir/x.gguf"), tern::Error);
}

TEST_CASE("open() reports unreadable paths as tern::Error naming the path", "[gguf]") {
  REQUIRE_THROWS_WITH(GgufFile::open("/nonexistent/model.gguf"),
                      Catch::Contains("/nonexistent/model.gguf"));
  REQUIRE_THROWS_AS(GgufFile::open(kModels, true), tern::Error);  // a directory
  REQUIRE_THROWS_AS(GgufFile::open(kModels, false), tern::Error);
  const auto empty = temp_path("empty.gguf");
  {
    FILE* e = std::fopen(empty.string().c_str(), "wb");
    REQUIRE(e != nullptr);
    std::fclose(e);
  }
  REQUIRE_THROWS_WITH(GgufFile::open(empty.string(), true), Catch::Contains(empty.string()));
  REQUIRE_THROWS_WITH(GgufFile::open(empty.string(), false), Catch::Contains(empty.string()));
  fs::remove(empty);
}

TEST_CASE("GgufFile stays valid after being moved", "[gguf]") {
  for (bool mmap : {true, false}) {
    GgufFile a = GgufFile::open(kModels + "/stories260K-Q8_0.gguf", mmap);
    const auto& t0 = a.tensors()[0];
    const std::vector<std::byte> first(t0.data, t0.data + t0.nbytes);
    GgufFile b = std::move(a);
    REQUIRE(same_bytes(tensor_bytes(b.tensors()[0]), first));
    REQUIRE(b.opt_string_array("tokenizer.ggml.tokens")->size() == 512);
    GgufFile c = GgufFile::open(kModels + "/stories260K-F32.gguf", !mmap);
    c = std::move(b);
    REQUIRE(same_bytes(tensor_bytes(c.tensors()[0]), first));
    REQUIRE(c.get_uint("general.file_type") == 7);
  }
}
