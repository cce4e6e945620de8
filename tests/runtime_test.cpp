// The C++ API on clang-built objects: open, set global data, load, run,
// read global data and maps back.
#include "ember/runtime.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "ember/ringbuf.hpp"
#include "helpers/cgroup_view.hpp"

namespace ember {
namespace {

std::string obj_path(const char* name) { return std::string(EMBER_BPF_OBJ_DIR) + "/" + name + ".bpf.o"; }

template <class T>
T read_at(std::span<uint8_t> bytes, size_t off = 0) {
  T v;
  std::memcpy(&v, bytes.data() + off, sizeof v);
  return v;
}

TEST(RuntimeTest, GlobalDataBeforeAndAfterLoad) {
  Runtime rt;
  auto obj = Object::open_file(rt, obj_path("global_data"));
  ASSERT_TRUE(obj.ok()) << obj.error().message;
  Object& o = **obj;
  // Skeleton style: set the `const volatile` parameter, then load.
  auto ro = o.global_data(".rodata");
  ASSERT_TRUE(ro.ok()) << ro.error().message;
  ASSERT_EQ(ro->size(), 4u);
  uint32_t three = 3;
  std::memcpy(ro->data(), &three, 4);
  ASSERT_TRUE(o.load().ok());
  Prog* p = o.prog("use_globals");
  ASSERT_NE(p, nullptr);
  for (bool checked : {true, false}) {
    RunOptions opts;
    opts.checked = checked;
    auto r = p->run(RunInput{}, opts);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, 1u) << "LINUX_KERNEL_VERSION is answered, the weak unknown extern reads 0";
  }
  EXPECT_EQ(read_at<uint64_t>(*o.global_data(".bss")), 2 * 45 * 3u);
  EXPECT_EQ(read_at<uint64_t>(*o.global_data(".data")), 7u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(o.global_data(".data.tags")->data())), "Ember");
  // The host writes, the program sees it.
  uint64_t hundred = 100;
  std::memcpy(o.global_data(".data")->data(), &hundred, 8);
  ASSERT_TRUE(p->run(RunInput{}).ok());
  EXPECT_EQ(read_at<uint64_t>(*o.global_data(".data")), 101u);
  // .rodata is read-only to programs: its map says so.
  EXPECT_TRUE(o.map(".rodata")->spec().map_flags & map_flag::kRdonlyProg);
}

TEST(RuntimeTest, UnloadLeavesNothingInTheRuntime) {
  Runtime rt;
  {
    auto obj = Object::open_file(rt, obj_path("global_data"));
    ASSERT_TRUE(obj.ok());
    ASSERT_TRUE((*obj)->load().ok());
    EXPECT_GT(rt.maps().size(), 1u);
    EXPECT_EQ(rt.progs().size(), 1u);
  }
  ASSERT_EQ(rt.maps().size(), 1u) << "only the runtime's own trace pipe";
  EXPECT_EQ(rt.maps()[0], rt.trace_pipe());
  EXPECT_TRUE(rt.progs().empty());
}

TEST(RuntimeTest, MissingFileIsAnError) {
  Runtime rt;
  auto obj = Object::open_file(rt, "/nonexistent/x.bpf.o");
  ASSERT_FALSE(obj.ok());
  EXPECT_NE(obj.error().message.find("/nonexistent/x.bpf.o"), std::string::npos);
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

TEST(RuntimeTest, FaultsNameTheSourceLine) {
  Runtime rt;
  auto obj = Object::open_file(rt, obj_path("out_of_bounds"));
  ASSERT_TRUE(obj.ok()) << obj.error().message;
  ASSERT_TRUE((*obj)->load().ok());
  uint64_t ctx[2] = {1, 2};
  RunInput in;
  in.ctx = ctx;
  in.ctx_size = sizeof ctx;
  auto r = (*obj)->prog("past_the_end")->run(in);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("read of 8 bytes"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("at (out_of_bounds.bpf.c:9: return first + ctx[64];)"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

TEST(RuntimeTest, PrintkLinesGoToTheTracePipe) {
  Runtime rt;
  auto obj = Object::open_file(rt, obj_path("printk"));
  ASSERT_TRUE(obj.ok()) << obj.error().message;
  ASSERT_TRUE((*obj)->load().ok());
  uint64_t n = 42;
  RunInput in;
  in.ctx = &n;
  in.ctx_size = 8;
  ASSERT_TRUE((*obj)->prog("say")->run(in).ok());
  std::vector<std::string> lines;
  auto consumer = RingBufferConsumer::create(rt.trace_pipe(), [&](const void* d, size_t size) {
    lines.emplace_back(static_cast<const char*>(d), size);
    return 0;
  });
  ASSERT_TRUE(consumer.ok());
  EXPECT_EQ((*consumer)->consume(), 2);
  ASSERT_EQ(lines.size(), 2u);
  // tracefs's trace_pipe layout: "comm-tid [cpu] flags secs.usecs: bpf_trace_printk: text"
  EXPECT_NE(lines[0].find("] ..... "), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(": bpf_trace_printk: hello 42\n"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(": bpf_trace_printk: five: 1 2 ab -4 str\n"), std::string::npos) << lines[1];
}

}  // namespace
}  // namespace ember

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace ember {
namespace {

struct Loaded {
  Runtime rt;
  std::unique_ptr<Object> obj;
  explicit Loaded(const char* name) {
    auto o = Object::open_file(rt, obj_path(name));
    EXPECT_TRUE(o.ok()) << o.error().message;
    if (!o.ok()) return;
    obj = std::move(*o);
    auto st = obj->load();
    EXPECT_TRUE(st.ok()) << st.error().message;
  }
  Result<uint64_t> run(const char* prog, void* ctx = nullptr, size_t size = 0, RunOptions opts = {}) {
    RunInput in;
    in.ctx = ctx;
    in.ctx_size = size;
    return obj->prog(prog)->run(in, opts);
  }
};

TEST(CorpusEvents, RingbufRecordsReachTheHostConsumer) {
  Loaded l("ringbuf");
  uint64_t base = 100;
  auto r = l.run("emit", &base, 8);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, 0u);
  struct Event {
    uint32_t seq, kind;
    uint64_t value;
  };
  std::vector<Event> got;
  auto c = RingBufferConsumer::create(l.rt.map_ptr(l.obj->map("events")->id()), [&](const void* d, size_t n) {
    EXPECT_EQ(n, sizeof(Event));
    got.push_back(*static_cast<const Event*>(d));
    return 0;
  });
  ASSERT_TRUE(c.ok());
  (*c)->consume();
  ASSERT_EQ(got.size(), 3u) << "the discarded record is skipped";
  EXPECT_EQ(got[0].value, 100u);
  EXPECT_EQ(got[1].value, 102u);
  EXPECT_EQ(got[2].seq, 9u);
  EXPECT_EQ(got[2].value, 200u);
  uint64_t avail = 0;
  std::memcpy(&avail, l.obj->global_data(".bss")->data(), 8);
  EXPECT_EQ(avail, 4u * (8 + 16)) << "four records of 8-byte header + 16 bytes were waiting";
}

TEST(CorpusEvents, PerfEventOutputReachesThePerfBuffer) {
  Loaded l("perf_output");
  std::vector<uint64_t> data;
  auto c = PerfBufferConsumer::create(l.rt.map_ptr(l.obj->map("samples")->id()),
                                      [&](uint32_t, const void* d, uint32_t n) {
                                        ASSERT_GE(n, 16u);
                                        const auto* v = static_cast<const uint64_t*>(d);
                                        data.assign(v, v + 2);
                                      });
  ASSERT_TRUE(c.ok()) << c.error().message;
  uint64_t regs[21] = {};
  auto r = l.run("sample", regs, sizeof regs);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, 0u);
  EXPECT_EQ((*c)->consume(), 1);
  EXPECT_EQ(data, (std::vector<uint64_t>{0xfeed, 42}));
}

TEST(CorpusEvents, StackIdsAreStableAndKernelStacksAbsent) {
  Loaded l("stack_ids");
  uint64_t regs[21] = {};
  ASSERT_TRUE(l.run("where", regs, sizeof regs).ok());
  int64_t ids[3];
  std::memcpy(ids, l.obj->global_data(".bss")->data(), sizeof ids);
  EXPECT_GE(ids[0], 0);
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_EQ(ids[2], -EFAULT);
}

TEST(CorpusEvents, AttachCookieAndFuncIp) {
  Loaded l("attach_info");
  RunOptions o;
  o.attach_cookie = 0xC00C1E;
  o.func_ip = 0x401000;
  uint64_t regs[21] = {};
  ASSERT_TRUE(l.run("probe", regs, sizeof regs, o).ok());
  uint64_t v[2];
  std::memcpy(&v[0], l.obj->global_data(".bss")->data(), 16);
  EXPECT_EQ(v[0], 0xC00C1Eu);
  EXPECT_EQ(v[1], 0x401000u);
}

std::atomic<int> g_signals{0};  // counted by the handler, the one way it can report

TEST(CorpusEvents, SendSignalReachesThisProcess) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = [](int) { ++g_signals; };
  sigaction(SIGUSR1, &sa, &old);
  Loaded l("signal");
  struct {
    uint32_t sig, pad;
    int64_t rc[3];
  } a{SIGUSR1, 0, {}};
  ASSERT_TRUE(l.run("signal_self", &a, sizeof a).ok());
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(a.rc[0], 0);
  EXPECT_EQ(a.rc[1], 0);
  EXPECT_EQ(a.rc[2], -EINVAL);
  EXPECT_EQ(g_signals.load(), 2);
}

// The cgroup v2 mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a
// hybrid (cgroup v1) system such as this test machine's.
std::string cgroup2_mount_point() {
  std::ifstream f("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (f >> dev >> dir >> type && std::getline(f, rest))
    if (type == "cgroup2") return dir;
  return "";
}

TEST(CorpusEvents, CurrentTaskUnderCgroup) {
  std::string mount = cgroup2_mount_point();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 hierarchy mounted (/proc/self/mounts)";
  int root = open(mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root, 0) << mount;
  Loaded l("cgroup_array");
  Map* m = l.obj->map("cgroups");
  uint32_t k0 = 0, fd = static_cast<uint32_t>(root);
  int rc = m->update(&k0, &fd, kBpfAny);
  close(root);
  ASSERT_EQ(rc, 0) << mount;
  int64_t under[3];
  ASSERT_TRUE(l.run("under_cgroup", under, sizeof under).ok());
  EXPECT_EQ(under[0], 1) << "every process is under the root cgroup";
  EXPECT_EQ(under[1], -EAGAIN) << "empty slot";
  EXPECT_EQ(under[2], -E2BIG) << "index past max_entries";
  // A cgroup this process is not in (made for the test where we may).
  std::string other = mount + "/ember-test-" + std::to_string(getpid());
  if (mkdir(other.c_str(), 0755) != 0) GTEST_SKIP() << "cannot make a cgroup at " << other << " (not root?)";
  int ofd = open(other.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  uint32_t k1 = 1, fd1 = static_cast<uint32_t>(ofd);
  EXPECT_EQ(m->update(&k1, &fd1, kBpfAny), 0);
  close(ofd);
  ASSERT_TRUE(l.run("under_cgroup", under, sizeof under).ok());
  rmdir(other.c_str());
  EXPECT_EQ(under[0], 1);
  EXPECT_EQ(under[1], 0) << "not under a sibling cgroup";
}

// Writes "0" (the writing process) into DIR/cgroup.procs: moves this
// process into that cgroup v2 cgroup.
bool move_self_to(const std::string& dir) {
  std::ofstream f(dir + "/cgroup.procs");
  f << "0" << std::flush;
  return f.good();
}

bool is_yes(const Result<bool>& r) { return r.ok() && *r; }
bool is_no(const Result<bool>& r) { return r.ok() && !*r; }

// CgroupView keeps the process's cgroup chain for its max_age: a view made
// with 0 sees a move at once, one with an hour still answers from before.
TEST(CgroupViewTest, SeesTheProcessMoveAfterItsMaxAge) {
  std::string mount = cgroup2_mount_point();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 hierarchy mounted (/proc/self/mounts)";
  std::string own;
  {
    std::ifstream f("/proc/self/cgroup");
    for (std::string line; std::getline(f, line);)
      if (line.rfind("0::", 0) == 0) own = mount + (line.size() > 4 ? line.substr(3) : "");
  }
  ASSERT_FALSE(own.empty());
  struct stat root_st {};
  ASSERT_EQ(stat(mount.c_str(), &root_st), 0);
  std::string other = mount + "/ember-view-" + std::to_string(getpid());
  if (mkdir(other.c_str(), 0755) != 0) GTEST_SKIP() << "cannot make a cgroup at " << other << " (not root?)";
  struct stat other_st {};
  ASSERT_EQ(stat(other.c_str(), &other_st), 0);

  CgroupView live(std::chrono::milliseconds(0)), cached(std::chrono::hours(1));
  EXPECT_TRUE(is_yes(live.under(root_st.st_ino)));
  EXPECT_TRUE(is_no(live.under(other_st.st_ino)));
  EXPECT_TRUE(is_no(cached.under(other_st.st_ino)));
  if (!move_self_to(other)) {
    rmdir(other.c_str());
    GTEST_SKIP() << "cannot move this process into " << other;
  }
  EXPECT_TRUE(is_yes(live.under(other_st.st_ino))) << "the move is seen at once";
  EXPECT_TRUE(is_yes(live.under(root_st.st_ino))) << "and the root is still an ancestor";
  EXPECT_TRUE(is_no(cached.under(other_st.st_ino))) << "kept for its max_age";
  EXPECT_TRUE(move_self_to(own)) << own;
  EXPECT_EQ(rmdir(other.c_str()), 0) << other;
  EXPECT_TRUE(is_no(live.under(other_st.st_ino)));
}

}  // namespace
}  // namespace ember

#include <stdlib.h>
#include <sys/stat.h>

namespace ember {
namespace {

TEST(RuntimeTest, PinnedMapsAreReusedAndFailedLoadsUnpin) {
  char tmpl[] = "/tmp/ember-pins-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  setenv("EMBER_RUN_DIR", dir.c_str(), 1);
  for (uint64_t want : {1u, 2u}) {
    Loaded l("pinned");
    auto r = l.run("count_run");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, want) << "the second load reuses the pinned map";
  }
  struct stat st {};
  EXPECT_EQ(stat((dir + "/pins/pinned_runs").c_str(), &st), 0);
  Runtime rt;
  auto obj = Object::open_file(rt, obj_path("pinned_unloadable"));
  ASSERT_TRUE(obj.ok());
  auto load = (*obj)->load();
  ASSERT_FALSE(load.ok());
  EXPECT_NE(load.error().message.find("EMBER_NO_SUCH_KCONFIG"), std::string::npos) << load.error().message;
  EXPECT_NE(stat((dir + "/pins/orphan_candidate").c_str(), &st), 0) << "the failed load left its pin behind";
  unsetenv("EMBER_RUN_DIR");
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace ember
