// The llama architecture: hyperparameters, tensor list with shape checks, and the forward pass
// (RMSNorm, RoPE on adjacent pairs, grouped-query attention over the KV cache, SwiGLU FFN).
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

#include <spdlog/spdlog.h>

#include "engine/arch/registry.h"
#include "engine/arch/weights.h"
#include "engine/error.h"
#include "engine/parallel.h"
#include "kernels/kernels.h"

namespace tern::arch {
namespace {

// The two weights read activations converted to the same type (one conversion serves both).
bool same_vec_dot(const MatrixWeight& a, const MatrixWeight& b) {
  return a.traits->vec_dot_type == b.traits->vec_dot_type;
}

struct LlamaLayer {
  NormWeight attn_norm, ffn_norm;
  MatrixWeight wq, wk, wv, wo, w_gate, w_up, w_down;
};

// Scratch for up to n_batch tokens. Shapes in comments are [rows][cols].
struct LlamaContext final : ForwardContext {
  int32_t n_ctx = 0, n_batch = 0;
  std::vector<float> rope_cos_sin;  // [n_ctx][n_rot/2][2]
  std::vector<float> x;             // [n_batch][n_embd] residual stream
  std::vector<float> xn;            // [n_batch][n_embd] normalised input of a sub-block
  std::vector<float> q;             // [n_batch][n_embd]
  std::vector<float> k, v;          // [n_batch][n_embd_kv]
  std::vector<float> attn;          // [n_batch][n_embd]
  std::vector<float> gate, up;      // [n_batch][n_ff]
  int n_threads = 0;
  size_t scores_stride = 0;    // n_ctx rounded up to a cache line
  std::vector<float> scores;   // [n_threads][scores_stride] attention scratch per thread
  std::vector<std::byte> act;  // activation rows converted to a vec_dot type
};

class LlamaModel final : public Model {
 public:
  LlamaModel(GgufFile file, ModelHparams hp, std::unique_ptr<Tokenizer> tok,
             const kernels::KernelTable& kt, bool copy_weights_to_huge_pages)
      : Model(std::move(file), std::move(hp), std::move(tok), kt) {
    bind_tensors(copy_weights_to_huge_pages);
  }

  std::unique_ptr<ForwardContext> make_context(int32_t n_ctx, int32_t n_batch,
                                               int n_threads) const override;
  void forward(std::span<const TokenId> tokens, int32_t pos0, KvCache& cache, ForwardContext& ctx,
               ThreadPool& pool, std::span<float> logits) const override;

 private:
  void bind_tensors(bool copy_weights_to_huge_pages);
  // Converts n rows of k floats to the activation type `w` pairs with; returns the row stride.
  size_t convert_rows(const MatrixWeight& w, const float* x, int64_t n, LlamaContext& c) const;
  // One weight's product with the converted activations: y[m * w.rows + r].
  struct Product {
    const MatrixWeight& w;
    float* y;
  };
  // Products that read the same converted activations, as one parallel region: their rows are
  // cut into chunks as if they were one matrix (a chunk may end in one and start in the next).
  // Every output is the same dot whatever the chunking, so the bits do not change; the region
  // saves the barriers, and a thread that finishes its share of q early works on k and v.
  void matmul(std::initializer_list<Product> products, const LlamaContext& c, size_t x_stride,
              int64_t n, ThreadPool& pool) const;
  void attention(int32_t il, const KvCache& cache, int32_t pos0, int64_t n, LlamaContext& c,
                 ThreadPool& pool) const;

  MatrixWeight token_embd_, output_;
  NormWeight output_norm_;
  std::vector<float> rope_freqs_;  // optional per-pair frequency divisors
  std::vector<LlamaLayer> layers_;
};

void LlamaModel::bind_tensors(bool copy_weights_to_huge_pages) {
  const auto& hp = hparams_;
  const int64_t n_embd = hp.n_embd, n_embd_kv = hp.n_embd_kv(), n_ff = hp.n_ff;
  token_embd_ = bind_matrix(file_, "token_embd.weight", n_embd, hp.n_vocab);
  output_norm_ = bind_norm(file_, "output_norm.weight", n_embd);
  output_ = file_.find_tensor("output.weight")
                ? bind_matrix(file_, "output.weight", n_embd, hp.n_vocab)
                : token_embd_;
  output_.rows_looked_up = !file_.find_tensor("output.weight");
  require_vec_dot(file_, output_);
  WeightArena arena{.copy_file_rows = copy_weights_to_huge_pages};
  prepare_matmul(file_, output_, kernels(), arena);
  if (const GgufTensor* rf = file_.find_tensor("rope_freqs.weight")) {
    rope_freqs_ = bind_vector(file_, *rf, hp.n_rot / 2);
  }
  layers_.resize(static_cast<size_t>(hp.n_layer));
  for (int32_t i = 0; i < hp.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    auto& l = layers_[static_cast<size_t>(i)];
    l.attn_norm = bind_norm(file_, p + "attn_norm.weight", n_embd);
    l.wq = bind_matrix(file_, p + "attn_q.weight", n_embd, n_embd);
    l.wk = bind_matrix(file_, p + "attn_k.weight", n_embd, n_embd_kv);
    l.wv = bind_matrix(file_, p + "attn_v.weight", n_embd, n_embd_kv);
    l.wo = bind_matrix(file_, p + "attn_output.weight", n_embd, n_embd);
    l.ffn_norm = bind_norm(file_, p + "ffn_norm.weight", n_embd);
    l.w_gate = bind_matrix(file_, p + "ffn_gate.weight", n_embd, n_ff);
    l.w_up = bind_matrix(file_, p + "ffn_up.weight", n_embd, n_ff);
    l.w_down = bind_matrix(file_, p + "ffn_down.weight", n_ff, n_embd);
    for (MatrixWeight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      require_vec_dot(file_, *w);
      prepare_matmul(file_, *w, kernels(), arena);
    }
  }
}

std::unique_ptr<ForwardContext> LlamaModel::make_context(int32_t n_ctx, int32_t n_batch,
                                                         int n_threads) const {
  const auto& hp = hparams_;
  auto c = std::make_unique<LlamaContext>();
  c->n_ctx = n_ctx;
  c->n_batch = n_batch;
  c->n_threads = std::max(n_threads, 1);
  const auto nb = static_cast<size_t>(n_batch);
  c->x.resize(nb * hp.n_embd);
  c->xn.resize(nb * hp.n_embd);
  c->q.resize(nb * hp.n_embd);
  c->k.resize(nb * hp.n_embd_kv());
  c->v.resize(nb * hp.n_embd_kv());
  c->attn.resize(nb * hp.n_embd);
  c->gate.resize(nb * hp.n_ff);
  c->up.resize(nb * hp.n_ff);
  // Each thread's attention scratch on its own cache lines.
  c->scores_stride = (static_cast<size_t>(n_ctx) + 15) / 16 * 16;
  c->scores.resize(static_cast<size_t>(c->n_threads) * c->scores_stride);
  // f32 is the widest activation encoding: 4 bytes per element of the longest input row.
  c->act.resize(nb * static_cast<size_t>(std::max(hp.n_embd, hp.n_ff)) * sizeof(float));
  c->rope_cos_sin = rope_table(hp, rope_freqs_, n_ctx);
  return c;
}

size_t LlamaModel::convert_rows(const MatrixWeight& w, const float* x, int64_t n,
                                LlamaContext& c) const {
  const TypeTraits& at = type_traits(w.traits->vec_dot_type);
  const size_t stride = row_bytes(at, w.k);
  // The table's converter: the reference's bytes, with SIMD where the ISA has one.
  const auto from_float = kernels().from_float_for(at);
  for (int64_t i = 0; i < n; ++i) {
    from_float(x + i * w.k, c.act.data() + static_cast<size_t>(i) * stride, w.k);
  }
  return stride;
}

void LlamaModel::matmul(std::initializer_list<Product> products, const LlamaContext& c,
                        size_t x_stride, int64_t n, ThreadPool& pool) const {
  int64_t rows = 0, work = 0, align = 1;
  for (const Product& p : products) {
    rows += p.w.rows;
    work += p.w.rows * p.w.k * n;
    align = std::max<int64_t>(align, n == 1 ? p.w.kernel->gemv_row_tile : p.w.kernel->row_tile);
  }
  parallel_rows(
      pool, rows, work,
      [&](int64_t r0, int64_t r1) {
        int64_t first = 0;  // the first row of p in the combined row range
        for (const Product& p : products) {
          const MatrixWeight& w = p.w;
          const int64_t a = std::max(r0, first) - first, b = std::min(r1, first + w.rows) - first;
          // The kernel prepare_matmul chose for this weight, reading its (possibly repacked) rows.
          if (a < b) {
            w.kernel->fn(*w.traits, w.kernel_data, w.kernel_stride, w.rows, c.act.data(), x_stride,
                         n, w.k, p.y, w.rows, a, b);
          }
          first += w.rows;
        }
      },
      align);
}

// The fixed cost of one (head, token) attention item in multiply-adds' worth (see attention()).
constexpr int64_t kAttentionItemWork = int64_t{1} << 12;

void LlamaModel::attention(int32_t il, const KvCache& cache, int32_t pos0, int64_t n,
                           LlamaContext& c, ThreadPool& pool) const {
  const auto& hp = hparams_;
  const int64_t n_embd = hp.n_embd, head_dim = hp.head_dim, n_head = hp.n_head;
  const int64_t group = hp.n_head / hp.n_head_kv;
  const float kq_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  // llama.cpp's attention graph spans the first n_kv cache cells: every cell in use, padded to a
  // multiple of 32 (llama_kv_cache_get_padding without flash attention). The kernel needs it to
  // sum in llama.cpp's order.
  const int64_t n_kv = (pos0 + n + 31) / 32 * 32;
  const KvCache::LayerView kv = cache.layer(il);
  const kernels::AttentionFn fn = kernels().attention;
  // Item f is head f / n of token f % n: a contiguous range of items covers whole heads, whose
  // tokens see from pos0 + 1 to pos0 + n cells, so equal ranges are equal work, and a thread
  // keeps one head's cache lines while it works through its tokens.
  const auto run_items = [&](int64_t f0, int64_t f1, int thread) {
    float* scratch = c.scores.data() + static_cast<size_t>(thread) * c.scores_stride;
    for (int64_t f = f0; f < f1; ++f) {
      const int64_t h = f / n, i = f % n;
      const int64_t n_pos = pos0 + i + 1;  // causal: the token sees itself and everything before
      const int64_t hkv = h / group;
      const size_t head_at = static_cast<size_t>(hkv) * kv.head_stride;
      fn(c.q.data() + i * n_embd + h * head_dim, kv.k + head_at, kv.pos_stride, kv.v + head_at,
         kv.pos_stride, n_pos, n_kv, n, head_dim, kq_scale,
         c.attn.data() + i * n_embd + h * head_dim, scratch);
    }
  };
  const int64_t n_items = n * n_head;
  // Multiply-adds: q.k and p.v over the cells each token sees, plus a fixed cost per item. At the
  // start of a context an item is mostly fixed cost (the q and probability roundings, softmax over
  // the 32-cell span, the lane trees): on the 700M shape (head_dim 96) one head took about 2 us at
  // 16 cells, ten times its multiply-adds' worth, so without the fixed cost the first ~20 tokens'
  // attention ran on one thread while the other waited (4-5% of a 2-thread token).
  const int64_t work = n_head * n * (2 * pos0 + n + 1) * head_dim + n_items * kAttentionItemWork;
  const int n_threads = pool.n_threads();
  if (n_threads <= 1 || n_items <= 1 || work < kMinParallelWork) {
    run_items(0, n_items, 0);
    return;
  }
  // A few chunks per thread, so that the others take over a preempted thread's rest.
  const auto n_tasks = static_cast<int>(std::min<int64_t>(
      n_items, int64_t{n_threads} *
                   std::clamp<int64_t>(work / (kChunkWork * n_threads), 1, kMaxChunksPerThread)));
  pool.run(n_tasks, [&](int task, int thread) {
    run_items(n_items * task / n_tasks, n_items * (task + 1) / n_tasks, thread);
  });
}

void LlamaModel::forward(std::span<const TokenId> tokens, int32_t pos0, KvCache& cache,
                         ForwardContext& fctx, ThreadPool& pool, std::span<float> logits) const {
  auto& c = static_cast<LlamaContext&>(fctx);
  const auto& hp = hparams_;
  const auto& kt = kernels();
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) throw Error("forward: empty batch");
  if (n > c.n_batch) throw Error("forward: batch of " + std::to_string(n) + " exceeds n_batch");
  if (pos0 < 0 || pos0 + n > c.n_ctx || pos0 + n > cache.n_ctx()) {
    throw Error("context is full: " + std::to_string(pos0 + n) + " positions exceed n_ctx " +
                std::to_string(std::min(c.n_ctx, cache.n_ctx())));
  }
  if (logits.size() < static_cast<size_t>(hp.n_vocab))
    throw Error("forward: logits buffer too small");
  if (pool.n_threads() > c.n_threads)
    throw Error("forward: a pool of " + std::to_string(pool.n_threads()) +
                " threads for a context made for " + std::to_string(c.n_threads));

  const int64_t n_embd = hp.n_embd, n_embd_kv = hp.n_embd_kv(), n_ff = hp.n_ff;
  const int64_t head_dim = hp.head_dim, n_pairs = hp.n_rot / 2;

  for (int64_t i = 0; i < n; ++i) {
    const TokenId t = tokens[static_cast<size_t>(i)];
    if (t < 0 || t >= hp.n_vocab)
      throw Error("token id " + std::to_string(t) + " is outside the vocabulary");
    token_embd_.traits->dequantize_row(
        token_embd_.data + static_cast<size_t>(t) * token_embd_.row_stride, c.x.data() + i * n_embd,
        n_embd);
  }

  for (int32_t il = 0; il < hp.n_layer; ++il) {
    const auto& l = layers_[static_cast<size_t>(il)];
    // Attention block.
    for (int64_t i = 0; i < n; ++i) {
      kt.rms_norm(c.x.data() + i * n_embd, l.attn_norm.data(), c.xn.data() + i * n_embd, n_embd,
                  hp.norm_eps);
    }
    size_t stride = convert_rows(l.wq, c.xn.data(), n, c);
    const Product q{l.wq, c.q.data()}, k{l.wk, c.k.data()}, v{l.wv, c.v.data()};
    if (same_vec_dot(l.wq, l.wk) && same_vec_dot(l.wk, l.wv)) {
      matmul({q, k, v}, c, stride, n, pool);
    } else {  // mixed types (llama-quantize's mixtures): each its own conversion
      matmul({q}, c, stride, n, pool);
      matmul({k}, c, convert_rows(l.wk, c.xn.data(), n, c), n, pool);
      matmul({v}, c, convert_rows(l.wv, c.xn.data(), n, c), n, pool);
    }

    for (int64_t i = 0; i < n; ++i) {
      const float* cs = c.rope_cos_sin.data() + static_cast<size_t>(pos0 + i) * n_pairs * 2;
      kt.rope(c.q.data() + i * n_embd, hp.n_head, head_dim, cs, n_pairs);
      kt.rope(c.k.data() + i * n_embd_kv, hp.n_head_kv, head_dim, cs, n_pairs);
      cache.store(il, static_cast<int32_t>(pos0 + i), c.k.data() + i * n_embd_kv,
                  c.v.data() + i * n_embd_kv);
    }
    attention(il, cache, pos0, n, c, pool);
    matmul({{l.wo, c.xn.data()}}, c, convert_rows(l.wo, c.attn.data(), n, c), n, pool);
    for (int64_t j = 0; j < n * n_embd; ++j)
      c.x[static_cast<size_t>(j)] += c.xn[static_cast<size_t>(j)];

    // Feed-forward block. Only the last token's output is needed after the last layer, and
    // llama.cpp drops the other rows there (inp_out_ids) before the FFN: doing the same keeps its
    // matrix products single-row (vec_dot order, not sgemm order) and saves the work.
    const int64_t f0 = il + 1 == hp.n_layer ? n - 1 : 0;
    const int64_t nf = n - f0;
    float* xf = c.x.data() + f0 * n_embd;
    for (int64_t i = 0; i < nf; ++i) {
      kt.rms_norm(xf + i * n_embd, l.ffn_norm.data(), c.xn.data() + i * n_embd, n_embd,
                  hp.norm_eps);
    }
    stride = convert_rows(l.w_gate, c.xn.data(), nf, c);
    const Product gate{l.w_gate, c.gate.data()}, up{l.w_up, c.up.data()};
    if (same_vec_dot(l.w_gate, l.w_up)) {
      matmul({gate, up}, c, stride, nf, pool);
    } else {
      matmul({gate}, c, stride, nf, pool);
      matmul({up}, c, convert_rows(l.w_up, c.xn.data(), nf, c), nf, pool);
    }
    for (int64_t i = 0; i < nf; ++i) {
      kt.silu_mul(c.gate.data() + i * n_ff, c.up.data() + i * n_ff, c.gate.data() + i * n_ff, n_ff);
    }
    matmul({{l.w_down, c.xn.data()}}, c, convert_rows(l.w_down, c.gate.data(), nf, c), nf, pool);
    for (int64_t j = 0; j < nf * n_embd; ++j) xf[j] += c.xn[static_cast<size_t>(j)];
  }

  // Output head for the last token only.
  const float* last = c.x.data() + (n - 1) * n_embd;
  kt.rms_norm(last, output_norm_.data(), c.xn.data(), n_embd, hp.norm_eps);
  matmul({{output_, logits.data()}}, c, convert_rows(output_, c.xn.data(), 1, c), 1, pool);
}

}  // namespace

std::unique_ptr<Model> load_llama(GgufFile file, const kernels::KernelTable& kt,
                                  bool copy_weights_to_huge_pages) {
  ModelHparams hp = read_llama_hparams(file, "llama");
  auto tok = Tokenizer::create(load_vocab(file));
  hp.n_vocab = static_cast<int32_t>(tok->n_vocab());
  return std::make_unique<LlamaModel>(std::move(file), std::move(hp), std::move(tok), kt,
                                      copy_weights_to_huge_pages);
}

}  // namespace tern::arch
