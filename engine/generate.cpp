// generate(): prompt processing as one batch, then one token per forward pass.
#include "engine/generate.h"

#include "engine/error.h"

namespace tern {

GenerateTimings generate(Session& session, Sampler& sampler, const std::vector<TokenId>& prompt,
                         const GenerateOptions& options,
                         const std::function<bool(TokenId)>& on_token) {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  if (prompt.empty()) throw Error("the prompt has no tokens");
  GenerateTimings t;
  t.n_prompt = static_cast<int32_t>(prompt.size());
  for (TokenId id : prompt) sampler.accept(id);

  auto t0 = Clock::now();
  std::span<const float> logits = session.decode(prompt);
  t.prompt_ms = ms_since(t0);

  const Tokenizer& tok = session.model().tokenizer();
  t0 = Clock::now();
  while (options.n_predict < 0 || t.n_generated < options.n_predict) {
    const TokenId next = sampler.sample(logits);
    sampler.accept(next);
    ++t.n_generated;
    if (!options.ignore_eos && tok.is_eog(next)) break;
    if (!on_token(next)) break;
    if (options.n_predict >= 0 && t.n_generated >= options.n_predict) break;
    if (session.n_past() >= session.n_ctx()) break;
    const TokenId one[1] = {next};
    logits = session.decode(one);
  }
  t.generate_ms = ms_since(t0);
  return t;
}

}  // namespace tern
