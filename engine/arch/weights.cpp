// Tensor binding, hyperparameter reading and RoPE tables shared by the architectures.
#include "engine/arch/weights.h"

#include <cmath>
#include <cstring>

namespace tern::arch {
namespace {

std::string shape_string(const GgufTensor& t) {
  std::string s = "[";
  for (int d = 0; d < std::max(t.n_dims, 1); ++d)
    s += (d ? ", " : "") + std::to_string(t.ne[static_cast<size_t>(d)]);
  return s + "]";
}

const GgufTensor& require_tensor(const GgufFile& file, const std::string& name) {
  const GgufTensor* t = file.find_tensor(name);
  if (!t) file.fail("missing tensor '" + name + "'");
  return *t;
}

int32_t positive_i32(const GgufFile& file, const std::string& key, uint64_t v, uint64_t max) {
  if (v == 0 || v > max) {
    file.fail("key '" + key + "' = " + std::to_string(v) + " is out of range [1, " +
              std::to_string(max) + "]");
  }
  return static_cast<int32_t>(v);
}

}  // namespace

MatrixWeight bind_matrix(const GgufFile& file, const std::string& name, int64_t k, int64_t rows) {
  const GgufTensor& t = require_tensor(file, name);
  if (t.ne[0] != k || t.ne[1] != rows || t.ne[2] != 1 || t.ne[3] != 1) {
    file.fail("tensor '" + name + "' has shape " + shape_string(t) + ", expected [" +
              std::to_string(k) + ", " + std::to_string(rows) + "]");
  }
  MatrixWeight w;
  w.traits = t.traits;
  w.data = t.data;
  w.data_in_huge_pages = !file.is_mapped() || t.i2s_layout.has_value();
  w.row_stride = t.row_stride();
  w.k = k;
  w.rows = rows;
  return w;
}

std::vector<float> bind_vector(const GgufFile& file, const GgufTensor& t, int64_t n) {
  if (t.n_elements() != n || t.ne[0] != n) {
    file.fail("tensor '" + t.name + "' has shape " + shape_string(t) + ", expected [" +
              std::to_string(n) + "]");
  }
  std::vector<float> out(static_cast<size_t>(n));
  t.traits->dequantize_row(t.data, out.data(), n);
  return out;
}

NormWeight bind_norm(const GgufFile& file, const std::string& name, int64_t n) {
  return bind_vector(file, require_tensor(file, name), n);
}

void require_vec_dot(const GgufFile& file, const MatrixWeight& w) {
  if (w.traits->vec_dot == nullptr || type_traits(w.traits->vec_dot_type).from_float == nullptr) {
    file.fail("tensor type " + std::string(w.traits->name) + " cannot be used as a weight matrix");
  }
}

void prepare_matmul(const GgufFile& file, MatrixWeight& w, const kernels::KernelTable& kt,
                    WeightArena& arena) {
  const kernels::MatmulKernel& mk = kt.matmul_for(*w.traits);
  if (mk.fn == nullptr) {
    file.fail("no " + std::string(kt.name) + " matmul kernel for tensor type " +
              std::string(w.traits->name));
  }
  w.kernel = &mk;
  w.kernel_data = w.data;
  w.kernel_stride = w.row_stride;
  w.packed.reset();
  const bool repack = kernels::repacks(mk, w.rows);
  if (!repack && (!arena.copy_file_rows || w.data_in_huge_pages)) return;
  // Rows already in memory this process owns (read with --no-mmap, or converted from I2_S) that
  // nothing else reads are repacked where they are when the kernel allows it (whole interleave
  // groups, or a pack that writes rows over themselves), so that RSS holds the matrix once.
  if (repack && w.data_in_huge_pages && !w.rows_looked_up && kernels::packs_in_place(mk, w.rows)) {
    kernels::pack_matrix_in_place(mk, const_cast<std::byte*>(w.data), w.row_stride, w.rows, w.k);
    return;
  }
  const auto rows = static_cast<size_t>(w.rows);
  std::shared_ptr<std::byte[]> buf =
      arena.pages.allocate(kernels::packed_matrix_bytes(mk, w.rows, w.k, w.row_stride));
  if (repack) {
    kernels::pack_matrix(mk, w.data, w.row_stride, w.rows, w.k, buf.get());
  } else {
    std::memcpy(buf.get(), w.data, w.row_stride * rows);
  }
  // The file's pages of this matrix are not read again by the token loop (row lookups of a tied
  // embedding fault single rows back in): out of the resident set, so RSS counts weights once.
  file.drop_pages({w.data, w.row_stride * rows});
  w.kernel_data = buf.get();
  w.kernel_stride = kernels::packed_stride(mk, w.k, w.row_stride);
  w.packed = std::move(buf);
}

ModelHparams read_llama_hparams(const GgufFile& file, const std::string& arch) {
  constexpr uint64_t kMaxDim = 1u << 20, kMaxLayers = 4096, kMaxHeads = 1u << 14;
  ModelHparams hp;
  hp.arch = arch;
  const std::string a = arch + ".";
  hp.n_embd =
      positive_i32(file, a + "embedding_length", file.get_uint(a + "embedding_length"), kMaxDim);
  hp.n_layer = positive_i32(file, a + "block_count", file.get_uint(a + "block_count"), kMaxLayers);
  hp.n_ff = positive_i32(file, a + "feed_forward_length", file.get_uint(a + "feed_forward_length"),
                         kMaxDim * 4);
  hp.n_head = positive_i32(file, a + "attention.head_count",
                           file.get_uint(a + "attention.head_count"), kMaxHeads);
  hp.n_head_kv = positive_i32(
      file, a + "attention.head_count_kv",
      file.opt_uint(a + "attention.head_count_kv").value_or(static_cast<uint64_t>(hp.n_head)),
      kMaxHeads);
  hp.n_ctx_train =
      positive_i32(file, a + "context_length", file.get_uint(a + "context_length"), 1u << 24);
  if (hp.n_embd % hp.n_head != 0) {
    file.fail("embedding_length " + std::to_string(hp.n_embd) +
              " is not a multiple of head_count " + std::to_string(hp.n_head));
  }
  if (hp.n_head % hp.n_head_kv != 0) {
    file.fail("head_count " + std::to_string(hp.n_head) + " is not a multiple of head_count_kv " +
              std::to_string(hp.n_head_kv));
  }
  hp.head_dim = hp.n_embd / hp.n_head;
  for (const char* key : {"attention.key_length", "attention.value_length"}) {
    if (auto v = file.opt_uint(a + key); v && *v != static_cast<uint64_t>(hp.head_dim)) {
      file.fail("key '" + a + key + "' = " + std::to_string(*v) +
                " differs from embedding_length/head_count = " + std::to_string(hp.head_dim) +
                " (not supported)");
    }
  }
  hp.n_rot = static_cast<int32_t>(
      file.opt_uint(a + "rope.dimension_count").value_or(static_cast<uint64_t>(hp.head_dim)));
  if (hp.n_rot <= 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
    file.fail("key '" + a + "rope.dimension_count' = " + std::to_string(hp.n_rot) +
              " must be even and at most the head size " + std::to_string(hp.head_dim));
  }
  hp.rope_freq_base = static_cast<float>(file.opt_float(a + "rope.freq_base").value_or(10000.0));
  if (!(hp.rope_freq_base > 0.0f) || !std::isfinite(hp.rope_freq_base)) {
    file.fail("key '" + a + "rope.freq_base' must be a positive number");
  }
  const std::string scaling = file.opt_string(a + "rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    const double factor = file.opt_float(a + "rope.scaling.factor").value_or(1.0);
    if (!(factor > 0.0) || !std::isfinite(factor))
      file.fail("key '" + a + "rope.scaling.factor' must be positive");
    hp.rope_freq_scale = static_cast<float>(1.0 / factor);
  } else if (scaling != "none") {
    file.fail("rope scaling type '" + scaling + "' is not supported (none, linear)");
  }
  hp.norm_eps =
      static_cast<float>(file.opt_float(a + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  if (!(hp.norm_eps > 0.0f) || !std::isfinite(hp.norm_eps))
    file.fail("key '" + a + "attention.layer_norm_rms_epsilon' must be positive");
  return hp;
}

std::vector<float> rope_table(const ModelHparams& hp, const std::vector<float>& freq_factors,
                              int32_t n_ctx) {
  const int64_t n_pairs = hp.n_rot / 2;
  std::vector<float> table(static_cast<size_t>(n_ctx) * static_cast<size_t>(n_pairs) * 2);
  const float theta_scale = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(hp.n_rot));
  for (int32_t p = 0; p < n_ctx; ++p) {
    float theta = static_cast<float>(p);
    float* row = table.data() + static_cast<size_t>(p) * static_cast<size_t>(n_pairs) * 2;
    for (int64_t i = 0; i < n_pairs; ++i) {
      const float ff = freq_factors.empty() ? 1.0f : freq_factors[static_cast<size_t>(i)];
      const float angle = hp.rope_freq_scale * (theta / ff);
      row[2 * i] = std::cos(angle);
      row[2 * i + 1] = std::sin(angle);
      theta *= theta_scale;
    }
  }
  return table;
}

}  // namespace tern::arch
