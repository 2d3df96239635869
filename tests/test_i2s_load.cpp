// Loading bitnet.cpp's I2_S tensors end to end: `tern synth --type i2_s` files (both code layouts)
// hold the weights of the TQ2_0 file with the same seed and generate its greedy tokens; hand-made
// bitnet.cpp-style tensors decode as bitnet.cpp does; bitnet architectures are named as
// unsupported. Corrupt I2_S files are in test_gguf_corrupt.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/generate.h"
#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/model.h"
#include "quant/fp16.h"
#include "quant/kquants.h"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using tern::GgufFile;
using tern::GgufWriter;
using tern::I2sLayout;

namespace {

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("tern_test_i2s_" + std::to_string(::getpid()) + "_" + name + ".gguf"))
      .string();
}

void synth(const std::string& path, const std::string& args) {
  const std::string cmd =
      std::string(TERN_BINARY) + " synth " + path + " --shape tiny " + args + " 2>/dev/null";
  const int status = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

std::vector<tern::TokenId> greedy(const tern::Model& model, int n) {
  tern::Session session(model, {.n_ctx = 128, .n_batch = 512, .n_threads = 1});
  tern::SamplerParams sp;
  sp.temp = 0.0f;
  tern::Sampler sampler(sp);
  std::vector<tern::TokenId> out;
  const auto prompt = model.tokenizer().encode("Once upon a time", true);
  tern::generate(session, sampler, prompt, {.n_predict = n, .ignore_eos = true},
                 [&](tern::TokenId t) {
                   out.push_back(t);
                   return true;
                 });
  return out;
}

// n ternary weights times `scale`, about a third of them zero.
std::vector<float> ternary(size_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> x(n);
  for (auto& v : x) v = static_cast<float>(static_cast<int>(rng() % 3) - 1) * scale;
  return x;
}

// A file as bitnet.cpp's llama-quantize writes it (file type 40, no tern key): one I2_S matrix
// of `x` quantized in `layout`, under architecture `arch`.
std::vector<std::byte> bitnet_style_file(const std::vector<float>& x, int64_t k, I2sLayout layout,
                                         const std::string& arch = "llama") {
  GgufWriter w;
  w.set_string("general.architecture", arch);
  w.set_u32("general.file_type", tern::kI2sFileType);
  const std::vector<int64_t> ne = {k, static_cast<int64_t>(x.size()) / k};
  w.add_i2s_tensor_lazy("w", ne, [&x, layout](std::span<std::byte> out) {
    if (layout == I2sLayout::kX86) {
      tern::quant::quantize_i2_s_x86(x.data(), out.data(), x.size());
    } else {
      tern::quant::quantize_i2_s_arm(x.data(), out.data(), x.size());
    }
  });
  return w.bytes();
}

std::vector<float> dequantized(const tern::GgufTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  t.traits->dequantize_row(t.data, out.data(), t.n_elements());
  return out;
}

}  // namespace

TEST_CASE("tern synth i2_s files hold the TQ2_0 file's weights and generate its tokens",
          "[i2_s][model]") {
  const std::string tq2 = temp_path("tq2_0"), x86 = temp_path("x86"), arm = temp_path("arm");
  synth(tq2, "--type tq2_0");
  synth(x86, "--type i2_s");
  synth(arm, "--type i2_s --i2s-layout arm");
  const GgufFile ref = GgufFile::open(tq2);
  int converted = 0;
  for (const auto& [path, layout] : {std::pair{x86, I2sLayout::kX86}, {arm, I2sLayout::kArm}}) {
    const GgufFile f = GgufFile::open(path);
    REQUIRE(f.tensors().size() == ref.tensors().size());
    for (const auto& t : f.tensors()) {
      INFO(path << " " << t.name);
      const tern::GgufTensor* r = ref.find_tensor(t.name);
      REQUIRE(r != nullptr);
      REQUIRE(t.traits == r->traits);
      REQUIRE(t.ne == r->ne);
      REQUIRE(t.i2s_layout.has_value() == (r->traits->type == tern::TensorType::TQ2_0));
      if (t.i2s_layout) {
        CHECK(*t.i2s_layout == layout);
        CHECK(t.file_nbytes == static_cast<size_t>(t.n_elements() / 4 + 32));
        ++converted;
      }
      // The synthetic scale is a half and no 256-block is all zero, so TQ2_0's quantizer and the
      // conversion write the same bytes.
      REQUIRE(t.nbytes == r->nbytes);
      CHECK(std::memcmp(t.data, r->data, t.nbytes) == 0);
    }
  }
  CHECK(converted == 2 * 2 * 7);  // two files, two layers, seven matrices each

  const auto expected = greedy(*tern::Model::load(tq2), 24);
  REQUIRE(expected.size() == 24);
  CHECK(greedy(*tern::Model::load(x86), 24) == expected);
  CHECK(greedy(*tern::Model::load(arm), 24) == expected);
  // A layout that contradicts the file's own key is refused.
  {
    tern::LoadOptions wrong;
    wrong.i2s_layout = I2sLayout::kArm;
    REQUIRE_THROWS_WITH(tern::Model::load(x86, wrong), Contains("says x86"));
  }
  for (const auto& p : {tq2, x86, arm}) fs::remove(p);
}

TEST_CASE("I2_S bytes are those bitnet.cpp's llama-quantize writes", "[i2_s][golden]") {
  // Recorded by hand: bitnet.cpp (microsoft/BitNet c82b5e6 with its llama.cpp fork 406a5036, x86
  // build, clang 14) ran `llama-quantize F32 OUT I2_S 1` on `tern synth --shape tiny --type f32`
  // (seed 42). Its 14 I2_S tensors, codes and f32 scale (n/4 + 4 bytes each; bitnet.cpp leaves the
  // rest of the 32-byte tail unwritten) in file order, hash to this FNV-1a. The file itself loads
  // in tern (general.file_type 40, architecture llama, no tern key) and generated the same text
  // as bitnet.cpp's llama-cli for 32 greedy tokens.
  constexpr uint64_t kBitnetHash = 0x64ec8a09a77fc69full;
  const std::string f32 = temp_path("f32");
  synth(f32, "--type f32");
  const GgufFile f = GgufFile::open(f32);
  uint64_t hash = 0xcbf29ce484222325ull;
  int matrices = 0;
  for (const auto& t : f.tensors()) {
    if (t.n_dims != 2 || t.name.rfind("blk.", 0) != 0) continue;
    const auto n = static_cast<size_t>(t.n_elements());
    std::vector<std::byte> out(tern::quant::i2_s_nbytes(t.n_elements()));
    tern::quant::quantize_i2_s_x86(reinterpret_cast<const float*>(t.data), out.data(), n);
    for (size_t i = 0; i < n / 4 + 4; ++i)
      hash = (hash ^ static_cast<uint8_t>(out[i])) * 0x100000001b3ull;
    ++matrices;
  }
  fs::remove(f32);
  CHECK(matrices == 14);
  CHECK(hash == kBitnetHash);
}

TEST_CASE("bitnet.cpp-style I2_S tensors decode as bitnet.cpp decodes them", "[i2_s]") {
  constexpr int64_t k = 512;
  constexpr size_t n = 512 * 6;
  SECTION("a half scale: exact, in the layout the caller names (x86 by default)") {
    const auto x = ternary(n, 0.0625f, 1);
    for (const I2sLayout layout : {I2sLayout::kX86, I2sLayout::kArm}) {
      const auto bytes = bitnet_style_file(x, k, layout);
      const GgufFile f = GgufFile::from_bytes(bytes, "bitnet.gguf", {layout});
      REQUIRE(f.tensors()[0].i2s_layout == layout);
      CHECK(dequantized(f.tensors()[0]) == x);
      // Read in the other layout, the same bytes are other weights (what bitnet.cpp's other
      // build would compute with), which is why the layout is never guessed from the bytes.
      const I2sLayout other = layout == I2sLayout::kX86 ? I2sLayout::kArm : I2sLayout::kX86;
      const GgufFile g = GgufFile::from_bytes(bytes, "bitnet.gguf", {other});
      std::vector<float> expected(n);
      const std::byte* stored = bytes.data() + (bytes.size() - (n / 4 + 32));
      if (other == I2sLayout::kX86) {
        tern::quant::dequantize_i2_s_x86(stored, n, expected.data());
      } else {
        tern::quant::dequantize_i2_s_arm(stored, n, expected.data());
      }
      CHECK(dequantized(g.tensors()[0]) == expected);
      CHECK(expected != x);
    }
    // No option and no key: x86.
    const GgufFile d = GgufFile::from_bytes(bitnet_style_file(x, k, I2sLayout::kX86), "d.gguf");
    CHECK(d.tensors()[0].i2s_layout == I2sLayout::kX86);
    CHECK(dequantized(d.tensors()[0]) == x);
  }
  SECTION("any other scale becomes the nearest half, within 2^-11 relative") {
    for (const float scale : {0.1f, 0.0123456f, 3.14159f, 1e-4f}) {
      INFO(scale);
      const auto x = ternary(n, scale, 2);
      const GgufFile f =
          GgufFile::from_bytes(bitnet_style_file(x, k, I2sLayout::kX86), "bitnet.gguf");
      const float half = tern::fp16_to_fp32(tern::fp32_to_fp16(scale));
      REQUIRE(std::fabs(half - scale) <= scale * 0x1p-11f);
      const auto y = dequantized(f.tensors()[0]);
      for (size_t i = 0; i < n; ++i)
        REQUIRE(y[i] == (x[i] == 0 ? 0.0f : std::copysign(half, x[i])));
    }
  }
}

TEST_CASE("bitnet architectures with I2_S tensors are named as unsupported", "[i2_s][model]") {
  const auto x = ternary(512 * 4, 0.5f, 3);
  for (const char* arch : {"bitnet", "bitnet-b1.58", "bitnet-25"}) {
    INFO(arch);
    const std::string path = temp_path(arch);
    const auto bytes = bitnet_style_file(x, 512, I2sLayout::kX86, arch);
    {
      FILE* out = std::fopen(path.c_str(), "wb");
      REQUIRE(out != nullptr);
      REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), out) == bytes.size());
      std::fclose(out);
    }
    // The file itself reads (tern info works on it); running it is what tern cannot do.
    CHECK(GgufFile::open(path).tensors()[0].i2s_layout == I2sLayout::kX86);
    REQUIRE_THROWS_WITH(tern::Model::load(path),
                        Contains(std::string("unsupported architecture '") + arch + "'") &&
                            Contains("supported: llama"));
    fs::remove(path);
  }
}
