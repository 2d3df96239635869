// Sampler: the llama.cpp sampling chain order (penalties, top-k, top-p, min-p, temperature, draw).
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace tern {

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

void Sampler::accept(TokenId token) {
  if (params_.repeat_last_n <= 0) return;
  recent_.push_back(token);
  while (recent_.size() > static_cast<size_t>(params_.repeat_last_n)) recent_.pop_front();
}

TokenId Sampler::sample(std::span<const float> logits) {
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    candidates_.push_back({static_cast<TokenId>(i), logits[i], 0.0f});
  }
  if (candidates_.empty()) return -1;
  for (TokenId t : params_.banned) {
    if (t >= 0 && static_cast<size_t>(t) < candidates_.size()) {
      candidates_[static_cast<size_t>(t)].logit = -INFINITY;
    }
  }

  if (params_.repeat_penalty != 1.0f && !recent_.empty()) {
    // Each distinct recent token is penalised once, whatever its count.
    std::vector<TokenId> seen(recent_.begin(), recent_.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (TokenId t : seen) {
      if (t < 0 || static_cast<size_t>(t) >= candidates_.size()) continue;
      float& l = candidates_[static_cast<size_t>(t)].logit;
      l = l <= 0.0f ? l * params_.repeat_penalty : l / params_.repeat_penalty;
    }
  }

  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  if (params_.temp <= 0.0f) {
    return std::min_element(candidates_.begin(), candidates_.end(), by_logit)->id;
  }

  size_t n = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    n = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(n),
                      candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  candidates_.resize(n);

  auto softmax = [&](float temp) {
    const float max = candidates_.front().logit / temp;
    double sum = 0.0;
    for (auto& c : candidates_) {
      c.p = std::exp(c.logit / temp - max);
      sum += c.p;
    }
    for (auto& c : candidates_) c.p = static_cast<float>(c.p / sum);
  };

  softmax(1.0f);
  if (params_.top_p < 1.0f) {
    double cum = 0.0;
    size_t keep = candidates_.size();
    for (size_t i = 0; i < candidates_.size(); ++i) {
      cum += candidates_[i].p;
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
    candidates_.resize(keep);
  }
  if (params_.min_p > 0.0f) {
    const float threshold = candidates_.front().p * params_.min_p;
    size_t keep = 1;
    while (keep < candidates_.size() && candidates_[keep].p >= threshold) ++keep;
    candidates_.resize(keep);
  }

  softmax(params_.temp);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double r = uniform(rng_);
  double cum = 0.0;
  for (const auto& c : candidates_) {
    cum += c.p;
    if (r < cum) return c.id;
  }
  return candidates_.back().id;
}

}  // namespace tern
