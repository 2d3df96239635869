// Huge-page-advised anonymous memory and the arena over it (see huge_pages.h for why).
#include "engine/huge_pages.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "engine/error.h"

namespace tern {

bool transparent_huge_pages_available() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(in, line)) return false;
  return line.find("[always]") != std::string::npos || line.find("[madvise]") != std::string::npos;
}

namespace {

// `bytes` (> 0) of fresh anonymous memory; throws tern::Error naming `shown` bytes on failure.
std::byte* map_anonymous(size_t bytes, size_t shown) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    throw Error("cannot allocate " + std::to_string(shown) + " bytes: " + std::strerror(errno));
  }
  return static_cast<std::byte*>(p);
}

}  // namespace

std::shared_ptr<std::byte[]> allocate_huge_page_memory(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes > SIZE_MAX - 2 * kHugePageBytes)
    throw Error("cannot allocate " + std::to_string(bytes) + " bytes");
  const size_t size = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  // Map one huge page more than needed, then trim both ends so that the start is 2 MiB-aligned:
  // only aligned 2 MiB ranges can become huge pages.
  std::byte* raw = map_anonymous(size + kHugePageBytes, bytes);
  const auto addr = reinterpret_cast<uintptr_t>(raw);
  const size_t head = (kHugePageBytes - addr % kHugePageBytes) % kHugePageBytes;
  if (head > 0) ::munmap(raw, head);
  ::munmap(raw + head + size, kHugePageBytes - head);
  std::byte* base = raw + head;
  ::madvise(base, size, MADV_HUGEPAGE);  // advice only: failure leaves 4 KiB pages
  return std::shared_ptr<std::byte[]>(base, [size](std::byte* q) { ::munmap(q, size); });
}

std::shared_ptr<std::byte[]> allocate_small_page_memory(size_t bytes) {
  if (bytes == 0) bytes = 1;
  std::byte* p = map_anonymous(bytes, bytes);
  ::madvise(p, bytes, MADV_NOHUGEPAGE);  // advice only
  return std::shared_ptr<std::byte[]>(p, [bytes](std::byte* q) { ::munmap(q, bytes); });
}

std::shared_ptr<std::byte[]> HugePageArena::allocate(size_t bytes) {
  constexpr size_t kAlign = 64;
  const size_t need = (bytes + kAlign - 1) / kAlign * kAlign;
  if (chunk_ == nullptr || chunk_bytes_ - used_ < need) {
    // A piece larger than a chunk gets a map of its own, leaving the current chunk's tail for
    // later small pieces.
    if (need >= chunk_bytes_) return allocate_huge_page_memory(need);
    chunk_ = allocate_huge_page_memory(chunk_bytes_);
    used_ = 0;
  }
  std::shared_ptr<std::byte[]> piece(chunk_, chunk_.get() + used_);
  used_ += need;
  return piece;
}

}  // namespace tern
