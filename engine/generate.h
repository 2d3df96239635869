// The generation loop shared by the CLI and the tests: prompt in, tokens streamed out.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "engine/sampler.h"
#include "engine/session.h"

namespace tern {

struct GenerateOptions {
  int32_t n_predict = 128;  // < 0: until end of sequence or the context is full
  bool ignore_eos = false;
};

struct GenerateTimings {
  int32_t n_prompt = 0;
  int32_t n_generated = 0;
  double prompt_ms = 0.0;
  double generate_ms = 0.0;
  double prompt_tps() const { return prompt_ms > 0 ? n_prompt * 1000.0 / prompt_ms : 0.0; }
  double generate_tps() const { return generate_ms > 0 ? n_generated * 1000.0 / generate_ms : 0.0; }
};

// Feeds the prompt, then samples up to n_predict tokens, calling on_token for each (return false
// to stop). Stops at end of generation unless ignore_eos, or when the context is full.
GenerateTimings generate(Session& session, Sampler& sampler, const std::vector<TokenId>& prompt,
                         const GenerateOptions& options,
                         const std::function<bool(TokenId)>& on_token);

}  // namespace tern
