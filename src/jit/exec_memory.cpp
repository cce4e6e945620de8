#include "jit/exec_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ember::jit {

Result<ExecMemory> ExecMemory::create(std::span<const uint8_t> code) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t mapped = (code.size() + page - 1) / page * page;
  if (mapped == 0) mapped = page;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return fail("JIT: mmap of ", mapped, " bytes failed: ", std::strerror(errno));
  ExecMemory m;
  m.base_ = static_cast<uint8_t*>(p);
  m.size_ = code.size();
  m.mapped_ = mapped;
  std::memcpy(p, code.data(), code.size());
  // Trailing bytes of the last page: int3, should anything ever jump there.
  std::memset(m.base_ + code.size(), 0xcc, mapped - code.size());
  if (mprotect(p, mapped, PROT_READ | PROT_EXEC) != 0)
    return fail("JIT: mprotect to read+execute failed: ", std::strerror(errno));
  return m;
}

ExecMemory& ExecMemory::operator=(ExecMemory&& o) noexcept {
  if (this != &o) {
    this->~ExecMemory();
    base_ = o.base_, size_ = o.size_, mapped_ = o.mapped_;
    o.base_ = nullptr, o.size_ = o.mapped_ = 0;
  }
  return *this;
}

ExecMemory::~ExecMemory() {
  if (base_) munmap(base_, mapped_);
}

}  // namespace ember::jit
