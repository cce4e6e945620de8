// Helpers that capture the stack of the code the program runs for:
// bpf_get_stackid and bpf_get_stack (kernel/bpf/stackmap.c).
//
// This runtime runs in user space, so "the user stack" is the calling
// thread's own: it starts at the code that called the helper (the
// interpreter) and goes up through whatever ran the program. It is
// unwound with the DWARF call frame information every x86-64 object
// carries (libgcc's _Unwind_Backtrace), not with frame pointers: Ember
// itself is built without them, so a frame-pointer walk would stop at the
// first Ember frame. The unwinder reads only the live stack it is walking
// and stops at a frame it has no unwind information for (JIT code), so it
// cannot fault. Kernel stacks cannot be had from user space: asking for one
// (no BPF_F_USER_STACK) fails with -EFAULT, what the kernel returns when it
// cannot get a stack.
#include <elf.h>
#include <link.h>
#include <unwind.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "ember/helpers.hpp"
#include "ember/maps.hpp"
#include "maps/stack_trace_map.hpp"

namespace ember {
namespace {

namespace sf = maps::stack_flag;
constexpr ArgType N = ArgType::None;
constexpr ArgType A = ArgType::Anything;

uint64_t err(int e) { return static_cast<uint64_t>(static_cast<int64_t>(-e)); }

struct Unwind {
  uint64_t* ips;
  size_t max;
  size_t n;
  size_t drop;  // frames of our own to leave out
};

_Unwind_Reason_Code collect(_Unwind_Context* ctx, void* arg) {
  auto* u = static_cast<Unwind*>(arg);
  uint64_t ip = _Unwind_GetIP(ctx);
  if (!ip) return _URC_END_OF_STACK;
  if (u->drop) {
    --u->drop;
    return _URC_NO_REASON;
  }
  u->ips[u->n++] = ip;
  return u->n == u->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

// Up to `max` return addresses, innermost first, starting with the one in
// the caller of the helper that calls this (which must call it directly).
[[gnu::noinline]] size_t user_stack(uint64_t* ips, size_t max) {
  Unwind u{ips, max, 0, 2};  // this function and the helper
  if (max) _Unwind_Backtrace(collect, &u);
  return u.n;
}

// ---- build ids (BPF_F_USER_BUILD_ID, BPF_F_STACK_BUILD_ID maps) ----
// Each frame's object is found among the loaded ones (dl_iterate_phdr);
// its NT_GNU_BUILD_ID note and the frame's file offset name the frame. An
// object without a build id leaves the bare address (BPF_STACK_BUILD_ID_IP),
// the kernel's fallback too.

using maps::kBuildIdIp;
using maps::kBuildIdValid;
using maps::StackBuildId;

// The NT_GNU_BUILD_ID note among a loaded object's PT_NOTE segments.
bool find_build_id(const dl_phdr_info* info, uint8_t out[20]) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    auto* p = reinterpret_cast<const uint8_t*>(info->dlpi_addr + ph.p_vaddr);
    const uint8_t* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(p);
      const uint8_t* name = p + sizeof *nh;
      const uint8_t* desc = name + ((nh->n_namesz + 3) & ~3u);
      if (desc + nh->n_descsz > end) break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        std::memset(out, 0, 20);
        std::memcpy(out, desc, std::min<size_t>(nh->n_descsz, 20));
        return true;
      }
      p = desc + ((nh->n_descsz + 3) & ~3u);
    }
  }
  return false;
}

// stack_map_get_build_id_offset: the object's build id and the file offset
// of `ip` in it; the bare ip where there is no build id to name.
int on_object(dl_phdr_info* info, size_t, void* arg) {
  auto* e = static_cast<StackBuildId*>(arg);
  uint64_t ip = e->offset_or_ip;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    uint64_t start = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type != PT_LOAD || ip < start || ip - start >= ph.p_memsz) continue;
    if (!find_build_id(info, e->build_id)) return 1;
    e->status = kBuildIdValid;
    e->offset_or_ip = ph.p_offset + (ip - start);
    return 1;
  }
  return 0;
}

void to_build_ids(const uint64_t* ips, size_t n, StackBuildId* out) {
  for (size_t i = 0; i < n; ++i) {
    StackBuildId e{kBuildIdIp, {}, ips[i]};
    dl_iterate_phdr(on_object, &e);
    if (e.status != kBuildIdValid) e = StackBuildId{kBuildIdIp, {}, ips[i]};
    out[i] = e;
  }
}

// ---- the helpers ----

// bpf_get_stackid(ctx, map, flags): the id of the stack in a stack trace map.
[[gnu::noinline]] uint64_t get_stackid(HelperCall& c, uint64_t, uint64_t map, uint64_t flags, uint64_t,
                                       uint64_t) {
  Map* m = c.map(map, "bpf_get_stackid map");
  if (!m || m->type() != MapType::StackTrace) return err(EINVAL);
  if (flags & ~(sf::kSkipFieldMask | sf::kUserStack | sf::kFastStackCmp | sf::kReuseStackid))
    return err(EINVAL);
  if (!(flags & sf::kUserStack)) return err(EFAULT);
  uint32_t skip = flags & sf::kSkipFieldMask;
  uint32_t depth = maps::stack_map_depth(*m);
  uint64_t ips[maps::kMaxStackDepth];
  size_t n = user_stack(ips, std::min(depth + skip, maps::kMaxStackDepth));
  if (n <= skip) return err(EFAULT);  // skipping more than the stack has
  std::span<const uint64_t> frames(ips + skip, std::min<size_t>(n - skip, depth));
  StackBuildId ids[maps::kMaxStackDepth];
  bool build_id = m->spec().map_flags & map_flag::kStackBuildId;
  if (build_id) to_build_ids(frames.data(), frames.size(), ids);
  long r = maps::stack_map_get_id(*m, frames, build_id ? ids : nullptr, flags);
  return static_cast<uint64_t>(static_cast<int64_t>(r));
}

// bpf_get_stack(ctx, buf, size, flags): the frames (or build id entries)
// themselves; the bytes written, the rest of `buf` zeroed; on an error the
// whole buffer is zeroed.
[[gnu::noinline]] uint64_t get_stack(HelperCall& c, uint64_t, uint64_t buf, uint64_t size, uint64_t flags,
                                     uint64_t) {
  if (!c.check(buf, size, true, "bpf_get_stack buffer")) return err(EFAULT);
  auto* out = reinterpret_cast<uint8_t*>(buf);
  auto failed = [&](int e) {
    std::memset(out, 0, size);
    return err(e);
  };
  bool user = flags & sf::kUserStack, build_id = flags & sf::kUserBuildId;
  if (flags & ~(sf::kSkipFieldMask | sf::kUserStack | sf::kUserBuildId)) return failed(EINVAL);
  if (!user && build_id) return failed(EINVAL);
  size_t elem = build_id ? sizeof(StackBuildId) : sizeof(uint64_t);
  if (size % elem) return failed(EINVAL);
  if (!user) return failed(EFAULT);
  uint32_t skip = flags & sf::kSkipFieldMask;
  size_t want = size / elem;
  uint64_t ips[maps::kMaxStackDepth];
  size_t n = user_stack(ips, std::min<size_t>(want + skip, maps::kMaxStackDepth));
  if (n < skip) return failed(EFAULT);
  size_t nr = std::min(n - skip, want);
  if (build_id) {
    StackBuildId ids[maps::kMaxStackDepth];
    to_build_ids(ips + skip, nr, ids);
    std::memcpy(out, ids, nr * sizeof(StackBuildId));
  } else {
    std::memcpy(out, ips + skip, nr * sizeof(uint64_t));
  }
  std::memset(out + nr * elem, 0, size - nr * elem);
  return nr * elem;
}

constexpr HelperDef kStackHelpers[] = {
    {27,
     "bpf_get_stackid",
     {RetType::Integer, {ArgType::PtrToCtx, ArgType::ConstMapPtr, A, N, N}},
     get_stackid},
    {67,
     "bpf_get_stack",
     {RetType::Integer, {ArgType::PtrToCtx, ArgType::PtrToUninitMem, ArgType::ConstSizeOrZero, A, N}},
     get_stack},
};

}  // namespace

std::span<const HelperDef> stack_helpers() { return kStackHelpers; }

}  // namespace ember
