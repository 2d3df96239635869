// Memory for weights that every generated token streams through: anonymous maps aligned to and
// advised for 2 MiB transparent huge pages, and a bump arena that packs many small tensors into
// such maps so that they share huge pages too.
#pragma once

#include <cstddef>
#include <memory>

namespace tern {

constexpr size_t kHugePageBytes = size_t{2} << 20;

// True when the kernel hands out transparent huge pages to memory that asks for them
// (/sys/kernel/mm/transparent_hugepage/enabled is [always] or [madvise]).
bool transparent_huge_pages_available();

// `bytes` of uninitialised, 2 MiB-aligned anonymous memory advised for huge pages (the kernel
// may still back it with 4 KiB pages). Released when the last owner goes. Throws tern::Error
// when the memory cannot be had.
std::shared_ptr<std::byte[]> allocate_huge_page_memory(size_t bytes);

// `bytes` of uninitialised anonymous memory kept in 4 KiB pages even where the kernel makes huge
// pages unasked (THP "always"): for buffers touched sparsely, where a 2 MiB page per touch would
// be cleared and held for nothing.
std::shared_ptr<std::byte[]> allocate_small_page_memory(size_t bytes);

// Hands out 64-byte-aligned pieces of large huge-page maps. Each piece keeps its map alive, so
// the arena itself may go once the pieces are handed out.
class HugePageArena {
 public:
  explicit HugePageArena(size_t chunk_bytes = size_t{64} << 20) : chunk_bytes_(chunk_bytes) {}
  std::shared_ptr<std::byte[]> allocate(size_t bytes);

 private:
  size_t chunk_bytes_;
  std::shared_ptr<std::byte[]> chunk_;
  size_t used_ = 0;  // bytes of chunk_ handed out
};

}  // namespace tern
