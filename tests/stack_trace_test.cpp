// BPF_MAP_TYPE_STACK_TRACE and the stack helpers: programs in the
// interpreter call bpf_get_stackid / bpf_get_stack from test functions
// along different call paths; the ids and frames must follow the paths.
#include <bpf/bpf.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <vector>

#include "ember/helpers.hpp"
#include "ember/maps.hpp"
#include "ember/vm.hpp"
#include "support/kernel_bpf.hpp"
#include "test_util.hpp"

namespace ember {
namespace {

using testing::exit_insn;
using testing::mov64_imm;
using testing::mov64_reg;
using testing::raw;

constexpr uint64_t kSkip1 = 1, kUser = 1u << 8, kFast = 1u << 9, kReuse = 1u << 10, kBuildId = 1u << 11;
constexpr uint32_t kFrames = 127;

MapPtr make_stack_map(uint32_t max_entries, uint32_t frames = kFrames) {
  auto m = Map::create(MapSpec{"stacks", MapType::StackTrace, 4, frames * 8, max_entries, 0});
  EXPECT_TRUE(m.ok()) << m.error().message;
  return m.ok() ? *m : nullptr;
}

// r0 = bpf_get_stackid(ctx, map, flags) or bpf_get_stack(ctx, ctx, size, flags).
std::vector<RawInsn> stackid_prog(const Map& map, uint64_t flags) {
  auto p = reinterpret_cast<uint64_t>(&map);
  return {raw(0x18, 2, 0, 0, static_cast<int32_t>(p)), raw(0, 0, 0, 0, static_cast<int32_t>(p >> 32)),
          mov64_imm(3, static_cast<int32_t>(flags)), raw(0x85, 0, 0, 0, 27), exit_insn()};
}
std::vector<RawInsn> get_stack_prog(uint32_t size, uint64_t flags) {
  return {mov64_reg(2, 1), mov64_imm(3, static_cast<int32_t>(size)),
          mov64_imm(4, static_cast<int32_t>(flags)), raw(0x85, 0, 0, 0, 67), exit_insn()};
}

// Where the call paths below return to: their frames in a trace.
uintptr_t g_return_address = 0;

// Runs the program unverified-fast (the map pointer is trusted) and notes
// the address it returns to in its caller.
[[gnu::noinline]] int64_t run_prog(const std::vector<RawInsn>& insns, std::vector<uint8_t>& mem) {
  g_return_address = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  auto prog = decode(insns);
  EXPECT_TRUE(prog.ok());
  HelperTable helpers = default_helper_table();
  auto interp = Interpreter::create(*prog, helpers);
  EXPECT_TRUE(interp.ok());
  RunOptions opts;
  opts.checked = false;
  auto r = interp->run(RunInput::memory(mem), opts);
  EXPECT_TRUE(r.ok());
  return r.ok() ? static_cast<int64_t>(*r) : -9999;
}

// Three call paths; the asm statements keep the calls from being tail calls.
[[gnu::noinline]] int64_t path_a(const std::vector<RawInsn>& p, std::vector<uint8_t>& mem) {
  int64_t r = run_prog(p, mem);
  asm volatile("" : "+r"(r));
  return r;
}
[[gnu::noinline]] int64_t path_b(const std::vector<RawInsn>& p, std::vector<uint8_t>& mem) {
  int64_t r = run_prog(p, mem);
  asm volatile("" : "+r"(r));
  return r;
}
[[gnu::noinline]] int64_t path_c(const std::vector<RawInsn>& p, std::vector<uint8_t>& mem) {
  int64_t r = run_prog(p, mem);
  asm volatile("" : "+r"(r));
  return r;
}
using Path = int64_t (*)(const std::vector<RawInsn>&, std::vector<uint8_t>&);
const Path kPaths[] = {path_a, path_b, path_c};

int64_t stackid(Path path, const Map& map, uint64_t flags) {
  std::vector<uint8_t> mem(16);
  return path(stackid_prog(map, flags), mem);
}

// A stack includes every caller up to main, so calls to compare must come
// from one call site: each step runs from the same line, after its
// host-side preparation.
struct Step {
  Path path;
  uint64_t flags;
  std::function<void()> before = nullptr;
};
struct Outcome {
  int64_t id;
  uintptr_t return_address;  // into the step's path function
};
std::vector<Outcome> run_steps(const Map& map, const std::vector<Step>& steps) {
  std::vector<Outcome> out;
  for (const Step& s : steps) {
    if (s.before) s.before();
    int64_t id = stackid(s.path, map, s.flags);
    out.push_back({id, g_return_address});
  }
  return out;
}

std::vector<uint64_t> frames_of(const Map& map, int64_t id) {
  std::vector<uint64_t> ips(map.spec().value_size / 8);
  uint32_t key = static_cast<uint32_t>(id);
  EXPECT_EQ(map.lookup(&key, ips.data()), 0);
  while (!ips.empty() && ips.back() == 0) ips.pop_back();
  return ips;
}

// The path function whose code holds `ip`: the one starting closest below
// it, if that is near (they are a few dozen bytes long).
Path function_at(uintptr_t ip) {
  Path best = nullptr;
  for (Path p : kPaths) {
    auto start = reinterpret_cast<uintptr_t>(p);
    if (start <= ip && ip - start < 256 && (!best || start > reinterpret_cast<uintptr_t>(best))) best = p;
  }
  return best;
}

TEST(StackTraceTest, CreateChecksFollowStackMapAlloc) {
  auto err = [](uint32_t key, uint32_t value, uint32_t max, uint32_t flags = 0) {
    auto m = Map::create(MapSpec{"s", MapType::StackTrace, key, value, max, flags});
    return m.ok() ? std::string() : m.error().message;
  };
  EXPECT_EQ(err(4, 127 * 8, 10), "");
  EXPECT_NE(err(4, 128 * 8, 10), "");  // more than perf_event_max_stack
  EXPECT_NE(err(4, 12, 10), "");
  EXPECT_NE(err(8, 16, 10), "");
  EXPECT_NE(err(4, 16, 0), "");
  EXPECT_NE(err(4, 16, 10, map_flag::kNoPrealloc), "");
  // Build-id maps hold 32-byte struct bpf_stack_build_id frames.
  EXPECT_EQ(err(4, 127 * 32, 10, map_flag::kStackBuildId), "");
  EXPECT_NE(err(4, 128 * 32, 10, map_flag::kStackBuildId), "");
  EXPECT_NE(err(4, 40, 10, map_flag::kStackBuildId), "");
}

TEST(StackTraceTest, SameCallPathSameIdOtherPathOtherId) {
  auto map = make_stack_map(1024);
  auto r = run_steps(*map, {{path_a, kUser}, {path_a, kUser}, {path_b, kUser}, {path_a, kUser | kFast}});
  ASSERT_GE(r[0].id, 0);
  EXPECT_EQ(r[1].id, r[0].id);
  ASSERT_GE(r[2].id, 0);
  EXPECT_NE(r[2].id, r[0].id);
  EXPECT_EQ(r[3].id, r[0].id);
}

TEST(StackTraceTest, FramesResolveToTheCallingFunctions) {
  auto map = make_stack_map(1024);
  auto r = run_steps(*map, {{path_b, kUser}, {path_b, kUser | kSkip1}});
  ASSERT_GE(r[0].id, 0);
  auto ips = frames_of(*map, r[0].id);
  ASSERT_GE(ips.size(), 3u);
  // The innermost frame is the interpreter's; the return address into
  // path_b is a later one, and it lies in path_b.
  EXPECT_EQ(function_at(ips[0]), nullptr);
  auto at = std::find(ips.begin(), ips.end(), r[0].return_address);
  ASSERT_NE(at, ips.end());
  EXPECT_EQ(function_at(*at), path_b);
  // dladdr places it in this test binary, and finds an object for every frame.
  Dl_info info{}, self{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(*at), &info), 0);
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&path_b), &self), 0);
  EXPECT_STREQ(info.dli_fname, self.dli_fname);
  for (uint64_t ip : ips) EXPECT_NE(dladdr(reinterpret_cast<void*>(ip), &info), 0) << std::hex << ip;
  // Skipping a frame drops the innermost one.
  ASSERT_GE(r[1].id, 0);
  auto rest = frames_of(*map, r[1].id);
  ASSERT_EQ(rest.size() + 1, ips.size());
  EXPECT_TRUE(std::equal(rest.begin(), rest.end(), ips.begin() + 1));
}

TEST(StackTraceTest, KernelStacksAndBadFlagsFail) {
  auto map = make_stack_map(16);
  EXPECT_EQ(stackid(path_a, *map, 0), -EFAULT);  // no kernel stack in user space
  EXPECT_EQ(stackid(path_a, *map, kUser | kBuildId), -EINVAL);
  EXPECT_EQ(stackid(path_a, *map, kUser | 0xff), -EFAULT);  // skipping past the end
  uint32_t next;
  EXPECT_EQ(map->next_key(nullptr, &next), -ENOENT);
}

// One bucket: a second stack finds the id taken (-EEXIST); replacing needs
// a free element, which a one-element map lacks, as in the kernel (it takes
// the new element before it frees the old).
TEST(StackTraceTest, CollisionsFollowTheFlags) {
  auto map = make_stack_map(1);
  uint32_t zero = 0;
  auto r = run_steps(
      *map, {{path_a, kUser}, {path_b, kUser}, {path_b, kUser | kReuse}, {path_b, kUser, [&] {
                                                                            EXPECT_EQ(map->erase(&zero), 0);
                                                                          }}});
  EXPECT_EQ(r[0].id, 0);
  EXPECT_EQ(r[1].id, -EEXIST);
  EXPECT_EQ(r[2].id, -ENOMEM);
  EXPECT_EQ(r[3].id, 0);
  auto ips = frames_of(*map, 0);
  EXPECT_NE(std::find(ips.begin(), ips.end(), r[3].return_address), ips.end());
  EXPECT_EQ(map->erase(&zero), 0);
  EXPECT_EQ(map->erase(&zero), -ENOENT);
}

// Two buckets, two elements: two of three paths share a bucket; with
// BPF_F_REUSE_STACKID the second takes the id over.
TEST(StackTraceTest, ReuseStackidReplacesTheOldStack) {
  auto map = make_stack_map(2);
  auto clear = [&] {
    for (uint32_t id = 0; id < 2; ++id) map->erase(&id);
  };
  for (Path first : kPaths) {
    for (Path second : kPaths) {
      if (first == second) continue;
      auto r =
          run_steps(*map, {{first, kUser, clear}, {second, kUser}, {second, kUser | kReuse}, {first, kUser}});
      ASSERT_GE(r[0].id, 0);
      if (r[1].id != -EEXIST) continue;
      ASSERT_EQ(r[2].id, r[0].id);
      EXPECT_EQ(r[3].id, -EEXIST);
      auto ips = frames_of(*map, r[0].id);
      EXPECT_NE(std::find(ips.begin(), ips.end(), r[2].return_address), ips.end());
      EXPECT_EQ(std::find(ips.begin(), ips.end(), r[0].return_address), ips.end());
      return;
    }
  }
  FAIL() << "three paths in two buckets and no collision";
}

// struct bpf_stack_build_id as the map stores it.
struct BuildIdFrame {
  int32_t status;
  uint8_t build_id[20];
  uint64_t offset;
};

TEST(StackTraceTest, BuildIdMapsStoreBuildIdsAndFileOffsets) {
  // Many buckets: two different stacks rarely share one (the addresses, and
  // so the hashes, change with every run under ASLR).
  auto m = Map::create(MapSpec{"ids", MapType::StackTrace, 4, 16 * 32, 4096, map_flag::kStackBuildId});
  ASSERT_TRUE(m.ok()) << m.error().message;
  const Map& map = **m;
  auto r = run_steps(map, {{path_c, kUser}, {path_c, kUser}, {path_c, kUser | kSkip1}});
  ASSERT_GE(r[0].id, 0);
  EXPECT_EQ(r[1].id, r[0].id);
  // Two stacks in one bucket: -EEXIST, as the kernel answers without
  // BPF_F_REUSE_STACKID (ReuseStackidReplacesTheOldStack covers that case).
  if (r[2].id == -EEXIST) GTEST_SKIP() << "the two stacks hashed to the same bucket this run";
  ASSERT_GE(r[2].id, 0);
  EXPECT_NE(r[2].id, r[0].id);
  std::vector<BuildIdFrame> frames(16);
  uint32_t key = static_cast<uint32_t>(r[0].id);
  ASSERT_EQ(map.lookup(&key, frames.data()), 0);
  // The frame in path_c: this binary's build id and the file offset of the
  // return address (the test binary maps its segments at their file offsets).
  Dl_info info{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(r[0].return_address), &info), 0);
  uint64_t offset = r[0].return_address - reinterpret_cast<uintptr_t>(info.dli_fbase);
  auto at =
      std::find_if(frames.begin(), frames.end(), [&](const BuildIdFrame& f) { return f.offset == offset; });
  ASSERT_NE(at, frames.end());
  EXPECT_EQ(at->status, 1);  // BPF_STACK_BUILD_ID_VALID
  EXPECT_TRUE(std::any_of(at->build_id, at->build_id + 20, [](uint8_t b) { return b != 0; }));
  // The innermost frame (the interpreter, linked into the same binary) has the same build id.
  EXPECT_EQ(std::memcmp(frames[0].build_id, at->build_id, 20), 0);
}

TEST(StackTraceTest, HostSideLookupDeleteIterate) {
  // Deep enough to reach the path functions past the interpreter's frames.
  auto map = make_stack_map(64, 32);
  auto r = run_steps(*map, {{path_a, kUser}, {path_c, kUser}});
  int64_t a = r[0].id, c = r[1].id;
  ASSERT_GE(a, 0);
  ASSERT_GE(c, 0);
  ASSERT_NE(a, c);
  std::vector<uint32_t> ids;
  uint32_t k = 0, n;
  for (int r = map->next_key(nullptr, &n); r == 0; r = map->next_key(&k, &n)) ids.push_back(k = n);
  EXPECT_EQ(ids, (std::vector<uint32_t>{static_cast<uint32_t>(std::min(a, c)),
                                        static_cast<uint32_t>(std::max(a, c))}));
  uint64_t v[32];
  uint64_t big = 64;
  EXPECT_EQ(map->lookup(&big, v), -ENOENT);
  EXPECT_EQ(map->erase(&big), -E2BIG);
  EXPECT_EQ(map->update(&ids[0], v, 0), -EINVAL);
  EXPECT_EQ(map->lookup_and_delete(&ids[0], v), 0);
  EXPECT_NE(v[0], 0u);
  EXPECT_EQ(map->lookup(&ids[0], v), -ENOENT);
  // Another process's mapping sees the same stacks.
  auto other = Map::open(map->fd());
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_EQ((*other)->lookup(&ids[1], v), 0);
}

TEST(StackTraceTest, GetStackCopiesFrames) {
  // Same call site for every flavour, so the frames agree.
  std::vector<uint8_t> big(kFrames * 8), small(16), odd(12), build(4 * 32);
  int64_t r[4];
  uint32_t sizes[4] = {kFrames * 8, 16, 12, 4 * 32};
  uint64_t flags[4] = {kUser, kUser, kUser, kUser | kBuildId};
  std::vector<uint8_t>* bufs[4] = {&big, &small, &odd, &build};
  uintptr_t in_a = 0;
  for (int i = 0; i < 4; ++i) {
    std::fill(bufs[i]->begin(), bufs[i]->end(), 0xEE);
    r[i] = path_a(get_stack_prog(sizes[i], flags[i]), *bufs[i]);
    in_a = g_return_address;
  }
  ASSERT_GT(r[0], 0);
  ASSERT_EQ(r[0] % 8, 0);
  std::vector<uint64_t> ips(kFrames);
  std::memcpy(ips.data(), big.data(), big.size());
  EXPECT_NE(std::find(ips.begin(), ips.begin() + r[0] / 8, in_a), ips.begin() + r[0] / 8);
  EXPECT_TRUE(std::all_of(big.begin() + r[0], big.end(), [](uint8_t b) { return b == 0; }));
  EXPECT_EQ(r[1], 16);
  EXPECT_EQ(std::memcmp(small.data(), big.data(), 16), 0);
  EXPECT_EQ(r[2], -EINVAL);  // not a multiple of 8
  EXPECT_TRUE(std::all_of(odd.begin(), odd.end(), [](uint8_t b) { return b == 0; }));
  // Build ids: this binary's, with the frame's file offset.
  ASSERT_EQ(r[3], 4 * 32);
  int32_t status;
  std::memcpy(&status, build.data(), 4);
  EXPECT_EQ(status, 1) << "BPF_STACK_BUILD_ID_VALID";
  std::vector<uint8_t> kernel(16, 0xEE);
  EXPECT_EQ(path_a(get_stack_prog(16, 0), kernel), -EFAULT);
  EXPECT_TRUE(std::all_of(kernel.begin(), kernel.end(), [](uint8_t b) { return b == 0; }));
}

// What bpf() answers for stack trace maps no program has filled: map
// creation limits and the errno of every host operation, Ember's and the
// kernel's side by side. (Filling a kernel stack map takes a program run
// on a perf event, which these tests do not attach.)
TEST(StackTraceKernelDiff, EmptyMapsAndLimits) {
  std::string why;
  if (!testing::kernel_bpf_available(&why)) GTEST_SKIP() << "bpf() unavailable: " << why;
  struct Def {
    uint32_t key_size, value_size, max_entries, flags;
  };
  const Def defs[] = {{4, 8, 10, 0},
                      {4, 127 * 8, 10, 0},
                      {4, 128 * 8, 10, 0},
                      {4, 12, 10, 0},
                      {8, 16, 10, 0},
                      {4, 16, 0, 0},
                      {4, 16, 10, 1},
                      {4, 4 * 32, 10, map_flag::kStackBuildId},
                      {4, 40, 10, map_flag::kStackBuildId}};
  for (const Def& d : defs) {
    SCOPED_TRACE("value_size " + std::to_string(d.value_size) + " flags " + std::to_string(d.flags));
    LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = d.flags);
    testing::Fd kfd(
        bpf_map_create(BPF_MAP_TYPE_STACK_TRACE, "st", d.key_size, d.value_size, d.max_entries, &o));
    auto m =
        Map::create(MapSpec{"st", MapType::StackTrace, d.key_size, d.value_size, d.max_entries, d.flags});
    ASSERT_EQ(m.ok(), kfd.get() >= 0);
    if (!m.ok()) continue;
    std::vector<uint8_t> v(d.value_size);
    for (uint32_t id : {0u, 3u, 15u, 16u, 1000u}) {
      auto k = [](int r) { return r < 0 ? -errno : r; };
      EXPECT_EQ((*m)->lookup(&id, v.data()), k(bpf_map_lookup_elem(kfd.get(), &id, v.data())));
      EXPECT_EQ((*m)->erase(&id), k(bpf_map_delete_elem(kfd.get(), &id)));
      EXPECT_EQ((*m)->update(&id, v.data(), 0), k(bpf_map_update_elem(kfd.get(), &id, v.data(), 0)));
      EXPECT_EQ((*m)->lookup_and_delete(&id, v.data()),
                k(bpf_map_lookup_and_delete_elem(kfd.get(), &id, v.data())));
      uint32_t en = 0, kn = 0;
      EXPECT_EQ((*m)->next_key(&id, &en), k(bpf_map_get_next_key(kfd.get(), &id, &kn)));
    }
  }
}

}  // namespace
}  // namespace ember
