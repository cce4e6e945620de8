#include "maps/segment.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ember::shm {

namespace {
Result<Segment> map_new(int fd, size_t size, const std::string& what);
}  // namespace

Result<Segment> create(const char* name, size_t size) {
  // memfd: the segment lives exactly as long as some process holds its fd
  // or a mapping, so nothing can leak when a load fails halfway.
  std::string label = std::string("ember-map:") + name;
  int fd = memfd_create(label.c_str(), MFD_CLOEXEC);
  if (fd < 0) return fail("memfd_create for map '", name, "': ", std::strerror(errno));
  return map_new(fd, size, std::string("map '") + name + "'");
}

namespace {

Result<Segment> map_new(int fd, size_t size, const std::string& what) {
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int e = errno;
    close(fd);
    return fail("sizing the shared memory of ", what, " to ", size, " bytes: ", std::strerror(e));
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    return fail("mapping ", size, " bytes of shared memory for ", what, ": ", std::strerror(e));
  }
  return Segment{fd, static_cast<uint8_t*>(p), size};
}

}  // namespace

Result<Segment> create_file(const std::string& path, size_t size) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail("pinning a map at ", path, ": ", std::strerror(errno));
  auto seg = map_new(fd, size, path);
  if (!seg) unlink(path.c_str());
  return seg;
}

Result<Segment> attach(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return fail("map fd ", fd, ": ", std::strerror(errno));
  size_t size = static_cast<size_t>(st.st_size);
  if (size < kHeaderSize) return fail("map fd ", fd, ": ", size, " bytes, too small to be an Ember map");
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return fail("map fd ", fd, ": ", std::strerror(errno));
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, own, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(own);
    return fail("map fd ", fd, ": mmap: ", std::strerror(e));
  }
  return Segment{own, static_cast<uint8_t*>(p), size};
}

void release(Segment& s) {
  if (s.base) munmap(s.base, s.size);
  if (s.fd >= 0) close(s.fd);
  s = Segment{};
}

void SpinGuard::yield() { sched_yield(); }

}  // namespace ember::shm
