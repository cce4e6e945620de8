// The restricted-C corpus (tests/bpf/*.bpf.c, compiled by clang during the
// build), run in Ember and, where bpf() works, in the kernel through libbpf
// with the same context: return values, the context after the run and the
// contents of every map must agree. Each case also checks its own expected
// results, so the corpus means something where the kernel is unavailable.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "ember/runtime.hpp"
#include "support/kernel_bpf.hpp"

namespace ember {
namespace {

using Bytes = std::vector<uint8_t>;

std::string obj_path(const std::string& name) {
  return std::string(EMBER_BPF_OBJ_DIR) + "/" + name + ".bpf.o";
}

template <class T>
Bytes bytes_of(const T& v) {
  Bytes b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

template <class T>
T as(const Bytes& b) {
  T v{};
  std::memcpy(&v, b.data(), std::min(sizeof v, b.size()));
  return v;
}

struct Outcome {
  uint64_t r0 = 0;
  Bytes ctx;
  // map name -> key bytes -> value bytes (per-CPU maps: the sum over CPUs)
  std::map<std::string, std::map<Bytes, Bytes>> maps;
};

struct Case {
  std::string object, prog;
  Bytes ctx;
  int runs = 1;
  bool kernel = true;  // the kernel can run it as well
  std::function<void(const Outcome&)> expect;
};

bool comparable(MapType t) {
  // Their values are ids or fds, which differ between the two by design.
  return t != MapType::ProgArray && t != MapType::ArrayOfMaps && t != MapType::HashOfMaps &&
         t != MapType::PerfEventArray && t != MapType::Ringbuf && t != MapType::CgroupArray;
}

// Per-CPU values: the sum over CPUs of each 8-byte-padded value read as a
// little-endian integer, since the two ran on whatever CPU they ran on.
Bytes fold_percpu(const Bytes& v, uint32_t value_size, uint32_t ncpus) {
  uint64_t sum = 0;
  size_t stride = (value_size + 7) / 8 * 8;
  for (uint32_t c = 0; c < ncpus; ++c) {
    uint64_t x = 0;
    std::memcpy(&x, v.data() + c * stride, std::min<size_t>(value_size, 8));
    sum += x;
  }
  return bytes_of(sum);
}

Result<Outcome> run_ember(const Case& c) {
  Runtime rt;
  auto obj = Object::open_file(rt, obj_path(c.object));
  if (!obj) return obj.error();
  // task_info passes its syscall context to a helper, which the kernel's
  // rules (and so Ember's verifier) refuse: it runs unverified, checked.
  LoadOptions lo;
  lo.verify = c.object != "task_info";
  if (auto st = (*obj)->load(lo); !st) return st.error();
  Prog* p = (*obj)->prog(c.prog);
  if (!p) return fail("no program ", c.prog);
  Outcome out;
  for (int i = 0; i < c.runs; ++i) {
    out.ctx = c.ctx;
    RunInput in;
    in.ctx = out.ctx.empty() ? nullptr : out.ctx.data();
    in.ctx_size = out.ctx.size();
    auto r = p->run(in);
    if (!r) return r.error();
    out.r0 = *r;
  }
  for (const MapPtr& m : (*obj)->maps()) {
    if (!comparable(m->type()) || m->spec().key_size == 0) continue;
    auto& dst = out.maps[m->spec().name];
    Bytes k(m->spec().key_size), n(k.size()), v(m->host_value_size());
    for (int rc = m->next_key(nullptr, n.data()); rc == 0; rc = m->next_key(k.data(), n.data())) {
      k = n;
      if (m->lookup(k.data(), v.data()) != 0) continue;
      dst[k] = m->percpu() ? fold_percpu(v, m->spec().value_size, m->ncpus()) : v;
    }
  }
  return out;
}

std::string libbpf_log;
int capture_libbpf(enum libbpf_print_level, const char* fmt, va_list ap) {
  static char buf[1 << 16];
  vsnprintf(buf, sizeof buf, fmt, ap);
  libbpf_log += buf;
  return 0;
}

bool kernel_percpu(bpf_map_type t) {
  return t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

Result<Outcome> run_kernel(const Case& c) {
  libbpf_log.clear();
  libbpf_set_print(capture_libbpf);
  bpf_object* obj = bpf_object__open_file(obj_path(c.object).c_str(), nullptr);
  if (!obj) return fail("libbpf open: ", libbpf_log);
  struct Closer {
    bpf_object* o;
    ~Closer() { bpf_object__close(o); }
  } closer{obj};
  if (bpf_object__load(obj) != 0) {
    // The verifier's reason is at the end of libbpf's log.
    size_t from = libbpf_log.size() > 1500 ? libbpf_log.size() - 1500 : 0;
    return fail("libbpf load: ...", libbpf_log.substr(from));
  }
  bpf_program* prog = bpf_object__find_program_by_name(obj, c.prog.c_str());
  if (!prog) return fail("no program ", c.prog);
  Outcome out;
  for (int i = 0; i < c.runs; ++i) {
    out.ctx = c.ctx;
    void* ctx = out.ctx.empty() ? nullptr : out.ctx.data();
    auto size = static_cast<__u32>(out.ctx.size());
    // A syscall program's context is written back into ctx_in (the kernel
    // refuses ctx_out for them).
    LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = ctx, .ctx_size_in = size);
    if (bpf_prog_test_run_opts(bpf_program__fd(prog), &o) != 0)
      return fail("test run: ", std::strerror(errno));
    out.r0 = o.retval;
  }
  int ncpus = libbpf_num_possible_cpus();
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    auto type = static_cast<MapType>(bpf_map__type(m));
    if (!comparable(type) || bpf_map__key_size(m) == 0) continue;
    bool percpu = kernel_percpu(bpf_map__type(m));
    uint32_t vs = bpf_map__value_size(m);
    Bytes k(bpf_map__key_size(m)), n(k.size()), v(percpu ? (vs + 7) / 8 * 8 * ncpus : vs);
    // libbpf names global data maps "<object>.bss"; Ember by the section.
    std::string name = bpf_map__name(m);
    if (auto dot = name.find('.'); dot != std::string::npos) name = name.substr(dot);
    auto& dst = out.maps[name];
    int fd = bpf_map__fd(m);
    for (int rc = bpf_map_get_next_key(fd, nullptr, n.data()); rc == 0;
         rc = bpf_map_get_next_key(fd, k.data(), n.data())) {
      k = n;
      if (bpf_map_lookup_elem(fd, k.data(), v.data()) != 0) continue;
      dst[k] = percpu ? fold_percpu(v, vs, ncpus) : v;
    }
  }
  return out;
}

// "" when equal; else where they first differ and the bytes around it.
std::string first_difference(const Bytes& a, const Bytes& b) {
  if (a == b) return "";
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  auto window = [&](const Bytes& x) {
    std::string s;
    char buf[4];
    for (size_t k = i; k < x.size() && k < i + 16; ++k)
      std::snprintf(buf, sizeof buf, "%02x ", x[k]), s += buf;
    return s;
  };
  return "byte " + std::to_string(i) + ": ember " + window(a) + "| kernel " + window(b);
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.object << ":" << c.prog; }

class Corpus : public ::testing::TestWithParam<Case> {};

TEST_P(Corpus, AgreesWithTheKernel) {
  const Case& c = GetParam();
  auto ember = run_ember(c);
  ASSERT_TRUE(ember.ok()) << ember.error().message;
  if (c.expect) c.expect(*ember);
  std::string why;
  if (!c.kernel) GTEST_SKIP() << "Ember-only case: checked above, not comparable with the kernel";
  if (!testing::kernel_bpf_available(&why)) GTEST_SKIP() << "kernel bpf() unavailable: " << why;
  auto kernel = run_kernel(c);
  ASSERT_TRUE(kernel.ok()) << kernel.error().message;
  EXPECT_EQ(static_cast<uint32_t>(ember->r0), kernel->r0) << "BPF_PROG_TEST_RUN reports 32 bits of r0";
  EXPECT_EQ(first_difference(ember->ctx, kernel->ctx), "") << "the context after the run";
  for (const auto& [name, entries] : kernel->maps) {
    auto it = ember->maps.find(name);
    ASSERT_NE(it, ember->maps.end()) << "Ember has no map " << name;
    EXPECT_EQ(it->second, entries) << "map " << name;
  }
}

// ---- the cases ----

struct HashArgs {
  uint32_t keys[8];
  int32_t results[8];
};
struct ForeachArgs {
  uint64_t stop_at, sum;
  int64_t visited;
};
struct QueueArgs {
  int32_t push_rc[6];
  uint32_t popped[6];
  int32_t pop_rc[6];
};
struct LoopArgs {
  char text[32];
  uint64_t loop_sum;
  int64_t loop_ret;
  uint64_t triangle, length;
};
struct CallArgs {
  uint64_t in, out[3];
};
struct StringArgs {
  char number[16], word[8], out[48];
  int64_t parsed;
  uint64_t uparsed;
  int64_t rc[5];
};

// probe_read.bpf.c reads this process's memory through pointers in its
// context; the kernel, running the program for this process, does too.
const uint8_t kProbeData[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
const char kProbeString[] = "ember";
struct ProbeArgs {
  uint64_t data_ptr, string_ptr, bad_ptr;
  uint8_t data[16];
  char str[12];
  uint8_t bad[8];
  int64_t rc[4];
};
Bytes probe_args() {
  ProbeArgs a{};
  a.data_ptr = reinterpret_cast<uint64_t>(kProbeData);
  a.string_ptr = reinterpret_cast<uint64_t>(kProbeString);
  a.bad_ptr = 16;  // never mapped
  return bytes_of(a);
}
struct TaskArgs {
  uint64_t pid_tgid, uid_gid;
  char comm[16];
  uint32_t cpu, node;
  uint64_t t[4];
  uint64_t jiffies;
  uint32_t rand[2];
};

std::vector<Case> cases() {
  std::vector<Case> v;
  v.push_back({"hash_counter", "count_keys", bytes_of(HashArgs{{1, 2, 3, 4, 5, 6, 7, 8}, {}}), 2, true,
               [](const Outcome& o) {
                 auto a = as<HashArgs>(o.ctx);
                 // Second run: 3 (deleted by the first) comes back, 7 and 8 find the map full.
                 EXPECT_EQ(a.results[2], 0);
                 EXPECT_EQ(a.results[6], -E2BIG);
                 EXPECT_EQ(a.results[7], -E2BIG);
                 EXPECT_EQ(o.r0, 0u);
                 EXPECT_EQ(o.maps.at("counts").size(), 5u);
               }});
  v.push_back({"array_foreach", "sum_squares", bytes_of(ForeachArgs{4, 0, 0}), 1, true, [](const Outcome& o) {
                 auto a = as<ForeachArgs>(o.ctx);
                 EXPECT_EQ(a.sum, 0u + 1 + 4 + 9);
                 EXPECT_EQ(a.visited, 4);
                 EXPECT_EQ(static_cast<int64_t>(o.r0), static_cast<int32_t>(-E2BIG));
               }});
  v.push_back({"queue_stack", "queue_and_stack", bytes_of(QueueArgs{}), 1, true, [](const Outcome& o) {
                 auto a = as<QueueArgs>(o.ctx);
                 EXPECT_EQ(a.push_rc[4], -E2BIG);
                 EXPECT_EQ(a.popped[0], 10u);
                 EXPECT_EQ(a.popped[1], 10u);
                 EXPECT_EQ(a.popped[2], 99u);
                 EXPECT_EQ(a.popped[3], 13u);
                 EXPECT_EQ(a.pop_rc[3], -ENOENT);
               }});
  v.push_back({"bloom", "bloom", Bytes(8), 1, true, [](const Outcome& o) {
                 auto found = as<std::array<int32_t, 4>>(o.maps.at(".bss").begin()->second);
                 for (int i = 0; i < 4; ++i) EXPECT_EQ(found[i], 0);
               }});
  v.push_back({"tail_calls", "entry", Bytes(8), 1, true, [](const Outcome& o) {
                 EXPECT_EQ(as<uint64_t>(o.maps.at(".bss").begin()->second), 123u);
                 EXPECT_EQ(o.r0, 7u);
               }});
  v.push_back({"tail_calls", "again", Bytes(8), 1, true,
               [](const Outcome& o) { EXPECT_EQ(o.r0, 34u) << "the first run plus 33 tail calls"; }});
  v.push_back({"map_in_map", "through_outer", Bytes(24), 1, true, [](const Outcome& o) {
                 EXPECT_EQ(o.r0, 0u);
                 auto got = as<std::array<uint64_t, 3>>(o.ctx);
                 EXPECT_EQ(got[0], 42u);
                 EXPECT_EQ(got[1], 0u);
                 EXPECT_EQ(got[2], 1u);
               }});
  LoopArgs loop{};
  std::strcpy(loop.text, "seventeen letters");
  v.push_back({"loops", "loops", bytes_of(loop), 1, true, [](const Outcome& o) {
                 auto a = as<LoopArgs>(o.ctx);
                 EXPECT_EQ(a.loop_sum, 91u);  // 0 + ... + 13
                 EXPECT_EQ(a.loop_ret, 15);
                 EXPECT_EQ(a.triangle, 210u);
                 EXPECT_EQ(a.length, 17u);
                 EXPECT_EQ(static_cast<int64_t>(o.r0), static_cast<int32_t>(-E2BIG));
               }});
  v.push_back({"subprograms", "calls", bytes_of(CallArgs{3, {}}), 1, true, [](const Outcome& o) {
                 auto a = as<CallArgs>(o.ctx);
                 EXPECT_EQ(a.out[0], 25u);
                 EXPECT_EQ(a.out[1], 9u);
                 EXPECT_EQ(a.out[2], 30u);
               }});
  StringArgs str{};
  std::strcpy(str.number, "-0x1f");
  std::strcpy(str.word, "ember");
  v.push_back({"strings", "strings", bytes_of(str), 1, true, [](const Outcome& o) {
                 auto a = as<StringArgs>(o.ctx);
                 EXPECT_EQ(a.rc[0], 5);
                 EXPECT_EQ(a.rc[2], 0);
                 EXPECT_EQ(a.rc[4], -EINVAL);
                 EXPECT_STREQ(a.out, "n=-31 cmp=0 hex=beef");
               }});
  v.push_back({"spin_lock", "locked_add", bytes_of(uint64_t{5}), 3, true, nullptr});
  v.push_back({"percpu", "add_here", bytes_of(uint64_t{4}), 3, true, [](const Outcome& o) {
                 auto& arr = o.maps.at("per_cpu_array");
                 EXPECT_EQ(as<uint64_t>(arr.at(bytes_of(uint32_t{1}))), 12u);
               }});
  v.push_back({"lru", "remember", bytes_of(uint32_t{1000}), 2, true, [](const Outcome& o) {
                 EXPECT_EQ(o.r0, 0u);
                 EXPECT_EQ(o.maps.at("recent").size(), 64u);
               }});
  v.push_back({"lpm", "lookup_routes", Bytes(8), 1, true, [](const Outcome& o) {
                 auto hops = as<std::array<uint32_t, 4>>(o.maps.at(".bss").begin()->second);
                 EXPECT_EQ(hops, (std::array<uint32_t, 4>{3, 2, 1, 9}));
                 EXPECT_EQ(o.maps.at("routes").size(), 4u);
               }});
  v.push_back({"probe_read", "reads", probe_args(), 1, true, [](const Outcome& o) {
                 auto a = as<ProbeArgs>(o.ctx);
                 EXPECT_EQ(a.rc[0], 0);
                 EXPECT_EQ(std::memcmp(a.data, kProbeData, 16), 0);
                 EXPECT_EQ(a.rc[1], 6) << "\"ember\" and its NUL";
                 EXPECT_STREQ(a.str, "ember");
                 EXPECT_EQ(a.rc[2], -EFAULT);
                 EXPECT_LT(a.rc[3], 0) << "no kernel memory in user space";
               }});
  v.push_back({"task_info", "task_info", Bytes(sizeof(TaskArgs)), 1, false, [](const Outcome& o) {
                 auto a = as<TaskArgs>(o.ctx);
                 EXPECT_EQ(a.pid_tgid >> 32, static_cast<uint64_t>(getpid()));
                 EXPECT_EQ(static_cast<uint32_t>(a.pid_tgid), static_cast<uint32_t>(gettid()));
                 EXPECT_EQ(a.uid_gid, (static_cast<uint64_t>(getgid()) << 32) | getuid());
                 char comm[16] = {};
                 prctl(PR_GET_NAME, comm);
                 EXPECT_STREQ(a.comm, comm);
                 EXPECT_LE(a.t[0], a.t[3]) << "monotonic";
                 EXPECT_GT(a.t[1], 0u);
                 EXPECT_GT(a.jiffies, 0u);
                 EXPECT_NE(a.rand[0], a.rand[1]);
               }});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Programs, Corpus, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return i.param.object + "_" + i.param.prog;
                         });

}  // namespace
}  // namespace ember
