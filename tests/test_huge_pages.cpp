// Huge-page memory, the weight arena and dropping mapped pages: alignment, disjoint pieces,
// lifetimes, and bytes that read back the same.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/huge_pages.h"
#include "engine/mapped_file.h"

namespace {

uintptr_t address(const std::byte* p) {
  return reinterpret_cast<uintptr_t>(p);
}

}  // namespace

TEST_CASE("huge-page memory is 2 MiB-aligned and writable to its last byte", "[huge_pages]") {
  for (size_t bytes : {size_t{1}, size_t{4095}, tern::kHugePageBytes, tern::kHugePageBytes + 1,
                       size_t{5} * tern::kHugePageBytes - 7}) {
    const auto mem = tern::allocate_huge_page_memory(bytes);
    REQUIRE(mem != nullptr);
    CHECK(address(mem.get()) % tern::kHugePageBytes == 0);
    std::memset(mem.get(), 0x5a, bytes);
    CHECK(mem[bytes - 1] == std::byte{0x5a});
  }
}

TEST_CASE("arena pieces are aligned, disjoint and outlive the arena", "[huge_pages]") {
  std::vector<std::shared_ptr<std::byte[]>> pieces;
  std::vector<size_t> sizes;
  {
    tern::HugePageArena arena(size_t{1} << 20);
    // Small pieces share a chunk; a piece larger than the chunk gets a map of its own.
    for (size_t bytes : {size_t{1}, size_t{100}, size_t{64}, size_t{300000}, size_t{3} << 20,
                         size_t{700000}, size_t{65}, size_t{900000}}) {
      pieces.push_back(arena.allocate(bytes));
      sizes.push_back(bytes);
    }
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    CHECK(address(pieces[i].get()) % 64 == 0);
    std::memset(pieces[i].get(), static_cast<int>(i + 1), sizes[i]);
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    const auto* p = pieces[i].get();
    for (size_t j = 0; j < pieces.size(); ++j) {
      if (i == j) continue;
      const auto* q = pieces[j].get();
      const bool disjoint = p + sizes[i] <= q || q + sizes[j] <= p;
      CHECK(disjoint);
    }
    // Every byte still holds what was written last: nothing overlapped or was unmapped.
    CHECK(p[0] == static_cast<std::byte>(i + 1));
    CHECK(p[sizes[i] - 1] == static_cast<std::byte>(i + 1));
  }
}

TEST_CASE("dropped pages of a mapped file read back the same bytes", "[huge_pages][mapped_file]") {
  const std::string path = std::string(TERN_SHARED_DIR) + "/models/stories260K-Q8_0.gguf";
  const tern::MappedFile mapped = tern::MappedFile::open(path, /*use_mmap=*/true);
  const tern::MappedFile read = tern::MappedFile::open(path, /*use_mmap=*/false);
  REQUIRE(mapped.is_mapped());
  REQUIRE_FALSE(read.is_mapped());
  REQUIRE(mapped.size() == read.size());
  const auto bytes = mapped.bytes();
  REQUIRE(bytes.size() > 3 * 4096);
  // Unaligned ends, the whole file, a range outside the mapping and an empty one.
  mapped.drop_pages(bytes.subspan(100, bytes.size() / 2));
  mapped.drop_pages(bytes);
  read.drop_pages(read.bytes());  // not mapped: nothing happens
  mapped.drop_pages(read.bytes());
  mapped.drop_pages({});
  CHECK(std::memcmp(bytes.data(), read.bytes().data(), bytes.size()) == 0);
}
