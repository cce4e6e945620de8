#include "helpers/user_memory.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ember {
namespace {

constexpr size_t kPage = 4096;

// One process_vm_readv within a page; bytes read or -1.
ssize_t read_chunk(void* dst, uint64_t src, size_t n) {
  iovec local{dst, n}, remote{reinterpret_cast<void*>(src), n};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
}

}  // namespace

long read_user(void* dst, uint64_t src, size_t n) {
  if (n == 0) return 0;
  if (src + n < src || read_chunk(dst, src, n) != static_cast<ssize_t>(n)) {
    std::memset(dst, 0, n);
    return -EFAULT;
  }
  return 0;
}

long read_user_str(char* dst, uint64_t src, size_t n) {
  if (n == 0) return 0;
  size_t done = 0;
  // Page by page, so that a string ending just before an unmapped page reads.
  while (done < n - 1) {
    size_t chunk = std::min(n - 1 - done, kPage - ((src + done) % kPage));
    ssize_t got = read_chunk(dst + done, src + done, chunk);
    if (got <= 0) {
      if (done == 0) {
        std::memset(dst, 0, n);
        return -EFAULT;
      }
      break;
    }
    if (void* nul = std::memchr(dst + done, 0, static_cast<size_t>(got)))
      return static_cast<char*>(nul) - dst + 1;
    done += static_cast<size_t>(got);
  }
  dst[done] = '\0';
  return static_cast<long>(done + 1);
}

long write_user(uint64_t dst, const void* src, size_t n) {
  if (n == 0) return 0;
  iovec local{const_cast<void*>(src), n}, remote{reinterpret_cast<void*>(dst), n};
  return process_vm_writev(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(n) ? 0 : -EFAULT;
}

}  // namespace ember
