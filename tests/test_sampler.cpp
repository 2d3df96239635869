// Sampler: greedy picks the argmax, each filter keeps what it should, seeds reproduce draws.
#include <catch2/catch.hpp>

#include <map>

#include "engine/sampler.h"

using tern::Sampler;
using tern::SamplerParams;

namespace {
SamplerParams only(float temp) {
  SamplerParams p;
  p.temp = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  return p;
}
}  // namespace

TEST_CASE("greedy returns the first largest logit", "[sampler]") {
  Sampler s(only(0.0f));
  CHECK(s.sample(std::vector<float>{0.1f, 3.0f, -1.0f, 3.0f}) == 1);
}

TEST_CASE("banned tokens are never sampled", "[sampler]") {
  SamplerParams p = only(0.0f);
  p.banned = {1};
  Sampler s(p);
  CHECK(s.sample(std::vector<float>{0.1f, 3.0f, -1.0f, 2.0f}) == 3);
}

TEST_CASE("repetition penalty divides positive and multiplies negative logits", "[sampler]") {
  SamplerParams p = only(0.0f);
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  s.accept(0);
  // 4.0 becomes 2.0, below token 1's 3.0.
  CHECK(s.sample(std::vector<float>{4.0f, 3.0f, -1.0f}) == 1);
  Sampler s2(p);
  s2.accept(1);
  // -0.5 becomes -1.0: still below -0.9.
  CHECK(s2.sample(std::vector<float>{-2.0f, -0.5f, -0.9f}) == 2);
}

TEST_CASE("top-k 1 is greedy whatever the temperature", "[sampler]") {
  SamplerParams p = only(5.0f);
  p.top_k = 1;
  Sampler s(p);
  for (int i = 0; i < 50; ++i) CHECK(s.sample(std::vector<float>{0.0f, 0.5f, 0.4f}) == 1);
}

TEST_CASE("min-p and top-p drop the unlikely tail", "[sampler]") {
  const std::vector<float> logits{5.0f, 4.9f, -5.0f, -6.0f};
  SamplerParams p = only(1.0f);
  p.min_p = 0.1f;
  Sampler s(p);
  SamplerParams q = only(1.0f);
  q.top_p = 0.9f;
  Sampler t(q);
  for (int i = 0; i < 200; ++i) {
    CHECK(s.sample(logits) <= 1);
    CHECK(t.sample(logits) <= 1);
  }
}

TEST_CASE("the same seed gives the same draws, and the distribution follows softmax", "[sampler]") {
  SamplerParams p = only(1.0f);
  p.seed = 42;
  const std::vector<float> logits{0.0f, std::log(3.0f)};  // p = 1/4, 3/4
  Sampler a(p), b(p);
  std::map<int, int> counts;
  for (int i = 0; i < 4000; ++i) {
    const auto x = a.sample(logits);
    CHECK(x == b.sample(logits));
    ++counts[x];
  }
  // 3000 expected; 5 standard deviations is about 137.
  CHECK(std::abs(counts[1] - 3000) < 140);
}
