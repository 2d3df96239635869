// Helpers shared by the architectures: binding GGUF tensors as weights with shape checks,
// reading llama-style hyperparameters, and the RoPE cos/sin table.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/huge_pages.h"
#include "engine/model.h"
#include "kernels/kernels.h"

namespace tern::arch {

// A weight matrix of `rows` rows of k elements, left in the file's (mapped) bytes.
struct MatrixWeight {
  const TypeTraits* traits = nullptr;
  const std::byte* data = nullptr;  // the file's rows (row lookups such as token embeddings)
  bool data_in_huge_pages = false;  // `data` was read or converted into huge-page memory
  bool rows_looked_up = false;      // `data`'s rows are also read one by one (tied embeddings)
  size_t row_stride = 0;
  int64_t k = 0;
  int64_t rows = 0;
  // What matrix products read, set by prepare_matmul: the table's kernel for this type and the
  // rows in its layout, either `data` itself or a copy repacked at load that `packed` owns.
  const kernels::MatmulKernel* kernel = nullptr;
  const std::byte* kernel_data = nullptr;
  size_t kernel_stride = 0;
  std::shared_ptr<const std::byte[]> packed;
};

// Norm weights are tiny: dequantized to f32 once at load.
using NormWeight = std::vector<float>;

// Throws "FILE: missing tensor 'name'" or "... has shape [a, b], expected [k, rows]".
MatrixWeight bind_matrix(const GgufFile& file, const std::string& name, int64_t k, int64_t rows);
NormWeight bind_norm(const GgufFile& file, const std::string& name, int64_t n);
std::vector<float> bind_vector(const GgufFile& file, const GgufTensor& t, int64_t n);
// The weight's type must have a dot product and an activation converter.
void require_vec_dot(const GgufFile& file, const MatrixWeight& w);
// Picks the table's matmul kernel for the weight and repacks the rows if that kernel asks for it
// (the file is never changed). Call after require_vec_dot.
// Where prepare_matmul puts rows: repacked rows always in huge pages (decoding streams them every
// token); rows the kernel reads as the file has them are copied there too with copy_file_rows.
struct WeightArena {
  bool copy_file_rows = false;
  HugePageArena pages{};
};
void prepare_matmul(const GgufFile& file, MatrixWeight& w, const kernels::KernelTable& kt,
                    WeightArena& arena);

// Reads and validates `<arch>.*` hyperparameters of a llama-style model (n_vocab is left 0).
ModelHparams read_llama_hparams(const GgufFile& file, const std::string& arch);

// [n_ctx][n_rot/2] pairs of (cos, sin), computed as llama.cpp's rope cache does (theta scaled
// in float, step by step), once per context.
std::vector<float> rope_table(const ModelHparams& hp, const std::vector<float>& freq_factors,
                              int32_t n_ctx);

}  // namespace tern::arch
