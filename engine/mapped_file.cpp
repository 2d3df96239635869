// MappedFile: mmap(2) a whole file read-only, or read it into huge-page memory when mapping is off.
#include "engine/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "engine/error.h"
#include "engine/huge_pages.h"

namespace tern {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void fail_errno(const std::string& path, const char* what) {
  throw Error(path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

MappedFile MappedFile::open(const std::string& path, bool use_mmap) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail_errno(path, "cannot open");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail_errno(path, "cannot stat");
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  const auto size = static_cast<size_t>(st.st_size);

  MappedFile f;
  if (size == 0) return f;
  if (use_mmap) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) fail_errno(path, "cannot mmap");
    f.data_ = static_cast<const std::byte*>(p);
    f.size_ = size;
    f.mapped_ = true;
    return f;
  }
  f.owned_ = allocate_huge_page_memory(size);
  std::byte* dst = f.owned_.get();
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd.get(), dst + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno(path, "cannot read");
    }
    if (n == 0) throw Error(path + ": file shrank while reading");
    done += static_cast<size_t>(n);
  }
  f.data_ = dst;
  f.size_ = size;
  return f;
}

void MappedFile::drop_pages(std::span<const std::byte> range) const {
  if (!mapped_ || range.empty() || range.data() < data_ ||
      range.data() + range.size() > data_ + size_)
    return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto first = (reinterpret_cast<uintptr_t>(range.data()) + page - 1) / page * page;
  const auto last = (reinterpret_cast<uintptr_t>(range.data()) + range.size()) / page * page;
  if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

MappedFile MappedFile::from_bytes(std::vector<std::byte> bytes) {
  MappedFile f;
  auto held = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  f.data_ = held->data();
  f.size_ = held->size();
  f.owned_ = std::shared_ptr<std::byte[]>(held, held->data());
  return f;
}

MappedFile::MappedFile(MappedFile&& other) noexcept {
  *this = std::move(other);
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    mapped_ = std::exchange(other.mapped_, false);
    size_ = std::exchange(other.size_, 0);
    owned_ = std::move(other.owned_);
    data_ = std::exchange(other.data_, nullptr);
  }
  return *this;
}

MappedFile::~MappedFile() {
  release();
}

void MappedFile::release() noexcept {
  if (mapped_ && data_ != nullptr) {
    ::munmap(const_cast<std::byte*>(data_), size_);
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  owned_.reset();
}

}  // namespace tern
