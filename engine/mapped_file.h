// Read-only bytes of a file: memory-mapped, or read into memory advised for huge pages. RAII.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tern {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws tern::Error naming the path when the file cannot be opened or read.
  static MappedFile open(const std::string& path, bool use_mmap);
  static MappedFile from_bytes(std::vector<std::byte> bytes);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }
  bool is_mapped() const { return mapped_; }
  // Lets go of the mapped pages wholly inside `range` (bytes copied elsewhere): they leave this
  // process's resident set, stay in the page cache, and reading them again maps them again.
  // Does nothing for bytes not mapped from the file.
  void drop_pages(std::span<const std::byte> range) const;

 private:
  void release() noexcept;

  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::shared_ptr<std::byte[]> owned_;  // the bytes when not mapped
};

}  // namespace tern
