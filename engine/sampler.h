// Token sampling: repetition penalty, top-k, top-p, min-p, temperature, then a seeded draw
// (greedy when the temperature is 0). The same seed and logits give the same tokens.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

#include "engine/tokenizer.h"

namespace tern {

struct SamplerParams {
  float temp = 0.8f;            // <= 0: greedy
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;   // tokens the penalty looks back over
  uint64_t seed = 0;
  // Tokens that are never sampled (llama.cpp's --ignore-eos bans the end-of-generation tokens).
  std::vector<TokenId> banned;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);

  // Picks the next token from raw logits (not modified).
  TokenId sample(std::span<const float> logits);
  // Records a token (prompt or generated) for the repetition penalty.
  void accept(TokenId token);

 private:
  struct Candidate {
    TokenId id;
    float logit;
    float p;
  };
  SamplerParams params_;
  std::mt19937_64 rng_;
  std::deque<TokenId> recent_;
  std::vector<Candidate> candidates_;  // reused between calls
};

}  // namespace tern
