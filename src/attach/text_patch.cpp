#include "attach/text_patch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace ember::attach {
namespace {

int membarrier(int cmd) { return static_cast<int>(syscall(SYS_membarrier, cmd, 0, 0)); }

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

struct MapLine {
  uintptr_t start, end;
  char perms[5];
};

std::vector<MapLine> read_maps() {
  std::vector<MapLine> out;
  FILE* f = fopen("/proc/self/maps", "re");
  if (!f) return out;
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    MapLine m{};
    unsigned long s, e;
    if (sscanf(line, "%lx-%lx %4s", &s, &e, m.perms) == 3) {
      m.start = s;
      m.end = e;
      out.push_back(m);
    }
  }
  fclose(f);
  return out;
}

}  // namespace

Result<TextPatcher*> TextPatcher::instance() {
  // One per process: the fd and the membarrier registration are process
  // state; creating them once under a function-local static is the model.
  static Result<TextPatcher*> patcher = []() -> Result<TextPatcher*> {
    int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail("cannot open /proc/self/mem for writing: ", strerror(errno));
    int query = membarrier(MEMBARRIER_CMD_QUERY);
    int sync = 0, barrier = 0;
    if (query > 0 && (query & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
      barrier = MEMBARRIER_CMD_PRIVATE_EXPEDITED;
    if (query > 0 && (query & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) &&
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE) == 0)
      sync = MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE;
    else if (barrier)
      // On x86-64 the IPI a private expedited membarrier sends returns with
      // iret, which is serializing: the same guarantee as SYNC_CORE there.
      sync = barrier;
    return new TextPatcher(fd, sync, barrier);  // lives as long as the process
  }();
  return patcher;
}

void TextPatcher::release() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Status TextPatcher::write(uintptr_t addr, const void* bytes, size_t n) {
  if (pid_t self = getpid(); self != pid_) {
    // A forked child (the agent restores its copy of the text there): the
    // inherited fd is the parent's memory.
    int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail("cannot open /proc/self/mem for writing: ", strerror(errno));
    close(fd_);
    fd_ = fd;
    pid_ = self;
  }
  const auto* p = static_cast<const uint8_t*>(bytes);
  while (n > 0) {
    ssize_t w = pwrite(fd_, p, n, static_cast<off_t>(addr));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      return fail("cannot write ", n, " bytes at ", hex(addr), " through /proc/self/mem: ", strerror(errno));
    p += w;
    addr += static_cast<size_t>(w);
    n -= static_cast<size_t>(w);
  }
  return ok_status();
}

void TextPatcher::serialize_all_cores() {
  if (sync_cmd_) membarrier(sync_cmd_);
}

void TextPatcher::barrier_all_threads() {
  if (barrier_cmd_) membarrier(barrier_cmd_);
}

Status TextPatcher::poke(uintptr_t addr, const void* bytes, size_t n) {
  const auto* p = static_cast<const uint8_t*>(bytes);
  if (n == 1) return write(addr, p, 1);
  if (!can_serialize())
    return fail("cannot patch ", n, " bytes at ", hex(addr), " safely: membarrier unavailable");
  const uint8_t int3 = 0xCC;
  if (auto st = write(addr, &int3, 1); !st) return st;
  serialize_all_cores();
  if (auto st = write(addr + 1, p + 1, n - 1); !st) return st;
  serialize_all_cores();
  if (auto st = write(addr, p, 1); !st) return st;
  serialize_all_cores();
  return ok_status();
}

namespace {

// Stop-the-world state: one parking at a time (under the engine mutex), read
// by the signal handler, hence process-wide.
std::atomic<uintptr_t> g_park_lo{0}, g_park_hi{0};
std::atomic<int> g_parked{0};
std::atomic<bool> g_release{false}, g_inside{false};
constexpr int kParkSignal = 3;  // SIGRTMIN + 3

void on_park(int, siginfo_t*, void* ctx) {
  auto* uc = static_cast<ucontext_t*>(ctx);
  uintptr_t rip = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  if (rip > g_park_lo.load() && rip < g_park_hi.load()) g_inside.store(true);
  g_parked.fetch_add(1);
  while (!g_release.load()) __builtin_ia32_pause();
  g_parked.fetch_sub(1);
}

Status install_park_handler() {
  static Status installed = []() -> Status {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = &on_park;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);  // nothing interrupts a parked thread
    if (sigaction(SIGRTMIN + kParkSignal, &sa, nullptr) != 0)
      return fail("cannot install the thread-parking signal handler: ", strerror(errno));
    return ok_status();
  }();
  return installed;
}

}  // namespace

Result<std::unique_ptr<ParkedThreads>> ParkedThreads::park(uintptr_t lo, uintptr_t hi) {
  if (auto st = install_park_handler(); !st) return st.error();
  // Everything that allocates happens before the first signal: a parked
  // thread may hold the malloc lock.
  std::unique_ptr<ParkedThreads> guard(new ParkedThreads(false));
  std::vector<pid_t> tids;
  tids.reserve(256);
  const pid_t pid = getpid(), self = static_cast<pid_t>(syscall(SYS_gettid));
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      pid_t tid = static_cast<pid_t>(atoi(e->d_name));
      if (tid > 0 && tid != self) tids.push_back(tid);
    }
    closedir(d);
  }
  g_park_lo = lo, g_park_hi = hi;
  g_inside = false, g_release = false, g_parked = 0;
  int sent = 0;
  for (pid_t tid : tids)
    if (syscall(SYS_tgkill, pid, tid, SIGRTMIN + kParkSignal) == 0) ++sent;
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (g_parked.load() < sent) {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= 2) {
      guard.reset();  // releases the threads that did stop
      return fail("a thread did not stop within a second (signal blocked, or it exited)");
    }
    std::this_thread::yield();
  }
  guard->inside_ = g_inside.load();
  return guard;
}

ParkedThreads::~ParkedThreads() {
  g_release = true;
  while (g_parked.load() > 0) std::this_thread::yield();
}

Result<MappingInfo> mapping_of(uintptr_t addr) {
  for (const MapLine& m : read_maps())
    if (addr >= m.start && addr < m.end)
      return MappingInfo{m.start, m.end, m.perms[0] == 'r', m.perms[2] == 'x'};
  return fail("address ", hex(addr), " is not mapped in this process");
}

CodeArena& CodeArena::instance() {
  // Process-wide: trampolines outlive engines (see the class comment).
  static CodeArena* arena = new CodeArena;
  return *arena;
}

Result<uintptr_t> CodeArena::map_chunk(uintptr_t near) {
  const uintptr_t kReach = 1ull << 30;
  for (int attempt = 0; attempt < 8; ++attempt) {
    uintptr_t best = 0, best_dist = ~uintptr_t{0};
    std::vector<MapLine> maps = read_maps();
    uintptr_t prev_end = 0x10000;  // above mmap_min_addr
    maps.push_back(MapLine{0x7ffffffff000ull, 0x7ffffffff000ull, {}});
    for (const MapLine& m : maps) {
      if (m.start > prev_end && m.start - prev_end >= kChunk) {
        // The point of the gap [prev_end, m.start - kChunk] closest to `near`.
        uintptr_t lo = prev_end, hi = m.start - kChunk, want = near & ~uintptr_t{0xfff};
        uintptr_t cand = want < lo ? lo : want > hi ? hi : want;
        uintptr_t dist = near == 0 ? 0 : cand > near ? cand - near : near - cand;
        if (dist < best_dist) best = cand, best_dist = dist;
      }
      if (m.end > prev_end) prev_end = m.end;
    }
    if (best == 0 || (near != 0 && best_dist > kReach))
      return fail("no free address range within 1 GiB of ", hex(near), " for a trampoline");
    void* p = mmap(reinterpret_cast<void*>(best), kChunk, PROT_READ | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != MAP_FAILED && reinterpret_cast<uintptr_t>(p) == best) return best;
    if (p != MAP_FAILED) munmap(p, kChunk);  // an old kernel ignoring NOREPLACE put it elsewhere
    // else someone mapped the gap meanwhile: read the maps again
  }
  return fail("cannot map trampoline memory near ", hex(near));
}

// Guards the chunk table of the one arena.
static std::mutex& arena_mutex() {
  static std::mutex mu;
  return mu;
}

void CodeArena::release() {
  std::lock_guard lock(arena_mutex());
  for (size_t i = 0; i < nchunks_; ++i) munmap(reinterpret_cast<void*>(chunks_[i].base), kChunk);
  nchunks_ = 0;
}

Result<uintptr_t> CodeArena::alloc(uintptr_t near, size_t size) {
  std::lock_guard lock(arena_mutex());
  size = (size + 15) & ~size_t{15};
  assert(size <= kChunk);
  const uintptr_t kReach = 1ull << 30;
  for (size_t i = 0; i < nchunks_; ++i) {
    Chunk& c = chunks_[i];
    uintptr_t dist = near == 0 ? 0 : c.base > near ? c.base - near : near - c.base;
    if (dist < kReach && c.used + size <= kChunk) {
      uintptr_t at = c.base + c.used;
      c.used += size;
      return at;
    }
  }
  if (nchunks_ == sizeof chunks_ / sizeof chunks_[0]) return fail("too many trampoline chunks");
  auto base = map_chunk(near);
  if (!base) return base.error();
  chunks_[nchunks_++] = Chunk{*base, size};
  return *base;
}

}  // namespace ember::attach
