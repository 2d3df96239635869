// End-to-end: greedy generation on every model in ../shared/models must reproduce llama.cpp's
// token ids (reference/generate.json), and the F32 models' first-position logits must agree.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/generate.h"
#include "engine/model.h"
#include "kernels/kernels.h"

namespace {

const std::string kModels = std::string(TERN_SHARED_DIR) + "/models/";

nlohmann::json load_reference() {
  std::ifstream f(kModels + "reference/generate.json");
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

std::vector<tern::TokenId> greedy(tern::Session& session, const std::vector<tern::TokenId>& prompt,
                                  int n) {
  tern::SamplerParams sp;
  sp.temp = 0.0f;
  sp.banned = {session.model().tokenizer().vocab().eos};
  tern::Sampler sampler(sp);
  std::vector<tern::TokenId> out;
  tern::generate(session, sampler, prompt, {.n_predict = n, .ignore_eos = true},
                 [&](tern::TokenId t) {
                   out.push_back(t);
                   return true;
                 });
  return out;
}

}  // namespace

TEST_CASE("greedy generation matches llama.cpp token ids on every reference model", "[generate]") {
  const auto ref = load_reference();
  REQUIRE(ref.size() >= 9);
  for (const auto& r : ref) {
    const std::string name = r["model"];
    DYNAMIC_SECTION(name) {
      auto model = tern::Model::load(kModels + name);
      const auto prompt = model->tokenizer().encode(r["prompt"].get<std::string>(), true);
      CHECK(prompt == r["prompt_ids"].get<std::vector<tern::TokenId>>());

      tern::Session session(*model, {.n_ctx = 256, .n_batch = 512, .n_threads = 1});
      const auto expected = r["generated_ids"].get<std::vector<tern::TokenId>>();
      const auto got = greedy(session, prompt, static_cast<int>(expected.size()));
      CHECK(got == expected);
    }
  }
}

// The fast kernels are bit-identical to the scalar reference, so every ISA this machine runs must
// give llama.cpp's tokens, with one thread and with two (rows split between threads).
TEST_CASE("greedy generation matches llama.cpp token ids with every supported ISA",
          "[generate][isa]") {
  const auto ref = load_reference();
  for (const tern::kernels::Isa isa : tern::kernels::supported_isas()) {
    const std::string isa_name(tern::kernels::isa_name(isa));
    for (const auto& r : ref) {
      const std::string name = r["model"];
      DYNAMIC_SECTION(isa_name << " " << name) {
        const auto prompt = r["prompt_ids"].get<std::vector<tern::TokenId>>();
        const auto expected = r["generated_ids"].get<std::vector<tern::TokenId>>();
        // Each way of holding the weights: the mapped file, copies in huge pages, and the file
        // read into memory (where kernels that interleave rows do so in place).
        for (const auto memory :
             {tern::FileMemory::mapped, tern::FileMemory::automatic, tern::FileMemory::read}) {
          auto model = tern::Model::load(kModels + name, {.memory = memory, .isa = isa_name});
          REQUIRE(model->kernels().name == isa_name);
          for (const int threads : {1, 2}) {
            INFO("memory mode " << static_cast<int>(memory) << ", " << threads << " threads");
            tern::Session session(*model, {.n_ctx = 256, .n_batch = 512, .n_threads = threads});
            CHECK(greedy(session, prompt, static_cast<int>(expected.size())) == expected);
          }
        }
      }
    }
  }
}

TEST_CASE("an unsupported ISA option fails the load with a clear error", "[generate][isa]") {
  CHECK_THROWS_WITH(tern::Model::load(kModels + "stories260K-F32.gguf",
                                      {.memory = tern::FileMemory::mapped, .isa = "avx9"}),
                    Catch::Contains("isa=avx9") && Catch::Contains("unknown ISA"));
}

TEST_CASE("first-position logits agree with llama.cpp", "[generate]") {
  const auto ref = load_reference();
  for (const auto& r : ref) {
    const std::string name = r["model"];
    DYNAMIC_SECTION(name) {
      auto model = tern::Model::load(kModels + name);
      tern::Session session(*model, {.n_ctx = 64, .n_batch = 512, .n_threads = 1});
      const auto prompt = r["prompt_ids"].get<std::vector<tern::TokenId>>();
      const auto logits = session.decode(prompt);
      // F32 weights leave only float summation order between the engines: 1e-3 relative.
      // Quantized files also round activations the same way, so the same top-5 ids hold.
      const bool f32 = name.find("F32") != std::string::npos;
      for (const auto& top : r["first_pos_top5"]) {
        const int id = top["id"];
        const float want = top["logit"];
        INFO(name << " token " << id << " want " << want << " got "
                  << logits[static_cast<size_t>(id)]);
        const float tol = f32 ? 1e-3f : 2e-2f;
        CHECK(std::fabs(logits[static_cast<size_t>(id)] - want) <= tol * std::fabs(want));
      }
      // The ids must be the model's top 5, in order.
      std::vector<int> order(logits.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
      std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](int a, int b) {
        return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)];
      });
      for (size_t i = 0; i < 5; ++i) CHECK(order[i] == r["first_pos_top5"][i]["id"].get<int>());
    }
  }
}

TEST_CASE("thread count does not change the logits", "[generate]") {
  for (const char* name :
       {"stories260K-Q4_0.gguf", "stories260K-F16.gguf", "tiny-ternary-random-TQ2_0.gguf"}) {
    for (const int32_t n_batch : {512, 1}) {
      DYNAMIC_SECTION(name << " n_batch " << n_batch) {
        auto model = tern::Model::load(kModels + name);
        const auto prompt =
            model->tokenizer().encode("Once upon a time, there was a cat who", true);
        tern::Session one(*model, {.n_ctx = 64, .n_batch = n_batch, .n_threads = 1});
        const auto l1 = one.decode(prompt);
        const std::vector<float> want(l1.begin(), l1.end());
        // Threads split a product's rows; each row's arithmetic is the same.
        tern::Session two(*model, {.n_ctx = 64, .n_batch = n_batch, .n_threads = 2});
        const auto l2 = two.decode(prompt);
        CHECK(std::vector<float>(l2.begin(), l2.end()) == want);
        CHECK(two.n_past() == static_cast<int32_t>(prompt.size()));
      }
    }
  }
}

// llama.cpp multiplies a batch of tokens with other kernels than a single token (llamafile's sgemm,
// batched attention), which round differently, and tern follows it (n_batch plays the part of
// llama.cpp's n_ubatch). So the prompt's logits may depend on the batch size in the last bits, as
// they do in llama.cpp, but no more than that.
TEST_CASE("batch size changes the logits only by rounding", "[generate]") {
  for (const char* name :
       {"stories260K-Q4_0.gguf", "stories260K-F16.gguf", "tiny-ternary-random-TQ2_0.gguf"}) {
    DYNAMIC_SECTION(name) {
      auto model = tern::Model::load(kModels + name);
      const auto prompt = model->tokenizer().encode("Once upon a time, there was a cat who", true);
      tern::Session batched(*model, {.n_ctx = 64, .n_batch = 512, .n_threads = 1});
      const auto lb = batched.decode(prompt);
      const std::vector<float> want(lb.begin(), lb.end());
      tern::Session stepped(*model, {.n_ctx = 64, .n_batch = 1, .n_threads = 1});
      const auto ls = stepped.decode(prompt);
      float scale = 0.0f;
      for (float v : want) scale = std::max(scale, std::fabs(v));
      for (size_t i = 0; i < want.size(); ++i) CHECK(std::fabs(ls[i] - want[i]) <= 1e-3f * scale);
      CHECK(std::max_element(ls.begin(), ls.end()) - ls.begin() ==
            std::max_element(want.begin(), want.end()) - want.begin());
    }
  }
}

TEST_CASE("a full context is an error, not a crash", "[generate]") {
  auto model = tern::Model::load(kModels + "stories260K-F32.gguf");
  tern::Session session(*model, {.n_ctx = 8, .n_batch = 4, .n_threads = 1});
  const std::vector<tern::TokenId> six(6, 400);
  session.decode(six);
  CHECK_THROWS_WITH(session.decode(six), Catch::Contains("context is full"));
  const std::vector<tern::TokenId> bad{100000};
  tern::Session s2(*model, {.n_ctx = 8, .n_batch = 4, .n_threads = 1});
  CHECK_THROWS_WITH(s2.decode(bad), Catch::Contains("outside the vocabulary"));
}
