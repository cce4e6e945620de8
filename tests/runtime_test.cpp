// The C++ API on clang-built objects: open, set global data, load, run,
// read global data and maps back.
#include "ember/runtime.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "ember/ringbuf.hpp"

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
