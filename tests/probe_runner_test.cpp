// The probe runner on hand-made registers: libbpf's BPF_UPROBE /
// BPF_URETPROBE arguments, PT_REGS_SP/IP, the attach cookie and func_ip;
// the JIT and the interpreter's fast mode agree; the engine choice for a
// kprobe context (Prog::plan); refusals; many threads at once.
#include "attach/probe_runner.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "ember/runtime.hpp"

namespace ember::attach {
namespace {

std::string obj_path(const std::string& name) {
  return std::string(EMBER_BPF_OBJ_DIR) + "/" + name + ".bpf.o";
}

struct Loaded {
  Runtime rt{RuntimeOptions{.maps = {}, .publish = false, .trace_pipe_bytes = 0}};
  std::unique_ptr<Object> obj;
};

std::unique_ptr<Loaded> load(const std::string& name, LoadOptions lo = {}) {
  auto l = std::make_unique<Loaded>();
  auto obj = Object::open_file(l->rt, obj_path(name));
  EXPECT_TRUE(obj) << (obj ? "" : obj.error().message);
  if (!obj) return nullptr;
  l->obj = std::move(*obj);
  auto st = l->obj->load(lo);
  EXPECT_TRUE(st) << (st ? "" : st.error().message);
  return st ? std::move(l) : nullptr;
}

// uprobe_regs.bpf.c's global data, in declaration order.
struct Globals {
  uint64_t args[6], ret, cookie, func_ip, sp, ip, entries, returns;
};

Globals globals(const Loaded& l) {
  Globals g;
  auto bss = const_cast<Object&>(*l.obj).global_data(".bss");
  EXPECT_TRUE(bss);
  EXPECT_GE(bss->size(), sizeof g);
  std::memcpy(&g, bss->data(), sizeof g);
  return g;
}

PtRegs sample_regs() {
  PtRegs r{};
  r.rdi = 11;
  r.rsi = static_cast<uint64_t>(-22);
  r.rdx = 0x3333333333333333;
  r.rcx = 44;
  r.r8 = 55;
  r.r9 = 66;
  r.rax = 0xfeedface;
  r.rsp = 0x7ffd0000;
  r.rip = 0x401234;
  return r;
}

class ProbeRunnerEngines : public ::testing::TestWithParam<Engine> {};

TEST_P(ProbeRunnerEngines, EntryProgramSeesArgumentsCookieAndFuncIp) {
  auto l = load("uprobe_regs");
  ASSERT_TRUE(l);
  const Prog* p = l->obj->prog("on_entry");
  ASSERT_NE(p, nullptr);
  auto r = ProbeRunner::create(*p, {.cookie = 0xC00C1E, .func_ip = 0x401234}, GetParam());
  ASSERT_TRUE(r) << r.error().message;
  PtRegs regs = sample_regs();
  (*r)->run(&regs);
  Globals g = globals(*l);
  EXPECT_EQ(g.args[0], 11u);
  EXPECT_EQ(static_cast<int64_t>(g.args[1]), -22);
  EXPECT_EQ(g.args[2], 0x3333333333333333u);
  EXPECT_EQ(g.args[3], 44u);
  EXPECT_EQ(g.args[4], 55u);
  EXPECT_EQ(g.args[5], 66u);
  EXPECT_EQ(g.cookie, 0xC00C1Eu);
  EXPECT_EQ(g.func_ip, 0x401234u);
  EXPECT_EQ(g.sp, 0x7ffd0000u);
  EXPECT_EQ(g.ip, 0x401234u);
  EXPECT_EQ(g.entries, 1u);
  EXPECT_EQ((*r)->hits(), 1u);
  EXPECT_EQ((*r)->errors(), 0u);
  EXPECT_EQ((*r)->missed(), 0u);
  EXPECT_EQ((*r)->engine(), GetParam());
}

TEST_P(ProbeRunnerEngines, ReturnProgramSeesTheReturnValue) {
  auto l = load("uprobe_regs");
  ASSERT_TRUE(l);
  auto r = ProbeRunner::create(*l->obj->prog("on_return"), {}, GetParam());
  ASSERT_TRUE(r) << r.error().message;
  PtRegs regs = sample_regs();
  (*r)->run(&regs);
  regs.rax = static_cast<uint64_t>(-5);
  ProbeRunner::hook(r->get(), &regs);  // the HookFn form
  Globals g = globals(*l);
  EXPECT_EQ(static_cast<int64_t>(g.ret), -5);
  EXPECT_EQ(g.returns, 2u);
  EXPECT_EQ(g.entries, 0u);
}

INSTANTIATE_TEST_SUITE_P(Engines, ProbeRunnerEngines, ::testing::Values(Engine::Jit, Engine::Interpreter),
                         [](const auto& info) { return std::string(engine_name(info.param)); });

TEST(ProbeRunner, JitAndInterpreterAgreeOnManyRegisterSets) {
  auto jl = load("uprobe_regs"), il = load("uprobe_regs");
  ASSERT_TRUE(jl && il);
  auto j = ProbeRunner::create(*jl->obj->prog("on_entry"), {.cookie = 1, .func_ip = 2}, Engine::Jit);
  auto i = ProbeRunner::create(*il->obj->prog("on_entry"), {.cookie = 1, .func_ip = 2}, Engine::Interpreter);
  ASSERT_TRUE(j && i);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int n = 0; n < 200; ++n) {
    PtRegs regs;
    auto* words = reinterpret_cast<uint64_t*>(&regs);
    for (size_t w = 0; w < sizeof regs / 8; ++w)
      words[w] = x = x * 6364136223846793005ull + 1442695040888963407ull;
    (*j)->run(&regs);
    (*i)->run(&regs);
    Globals a = globals(*jl), b = globals(*il);
    ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0) << "register set " << n;
  }
}

TEST(ProbeRunner, KprobeProgramsRunInTheJitOnlyOnAReadOnlyPtRegs) {
  auto l = load("uprobe_regs");
  ASSERT_TRUE(l);
  const Prog* p = l->obj->prog("on_entry");
  PtRegs regs{};
  RunOptions fast;
  fast.checked = false;
  RunInput in{&regs, sizeof regs, false, {}};
  RunPlan ok = p->plan(in, fast);
  EXPECT_EQ(ok.engine, Engine::Jit);
  EXPECT_FALSE(ok.checked);
  EXPECT_EQ(ok.why, "");

  RunInput writable{&regs, sizeof regs, true, {}};
  RunPlan w = p->plan(writable, fast);
  EXPECT_TRUE(w.checked);
  EXPECT_NE(w.why.find("read-only struct pt_regs"), std::string::npos) << w.why;

  RunInput short_ctx{&regs, 160, false, {}};
  RunPlan s = p->plan(short_ctx, fast);
  EXPECT_TRUE(s.checked);
  EXPECT_NE(s.why.find("160"), std::string::npos) << s.why;
  // Either way the program still runs (checked), with the same results.
  EXPECT_TRUE(p->run(short_ctx, fast).ok());
}

TEST(ProbeRunner, RefusesWhatCannotRunAsAProbe) {
  auto unverified = load("uprobe_regs", LoadOptions{.verify = false});
  ASSERT_TRUE(unverified);
  auto r = ProbeRunner::create(*unverified->obj->prog("on_entry"), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not verified"), std::string::npos) << r.error().message;

  auto nojit = load("uprobe_regs", LoadOptions{.jit = false});
  ASSERT_TRUE(nojit);
  auto r2 = ProbeRunner::create(*nojit->obj->prog("on_entry"), {}, Engine::Jit);
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message.find("on_entry"), std::string::npos) << r2.error().message;
  EXPECT_TRUE(ProbeRunner::create(*nojit->obj->prog("on_entry"), {}, Engine::Interpreter));

  auto xdp = load("hash_counter");
  ASSERT_TRUE(xdp);
  auto r3 = ProbeRunner::create(*xdp->obj->progs()[0], {});
  ASSERT_FALSE(r3);
  EXPECT_NE(r3.error().message.find("kprobe-type"), std::string::npos) << r3.error().message;
}

TEST(ProbeRunner, DisabledRunnerDoesNothing) {
  auto l = load("uprobe_regs");
  ASSERT_TRUE(l);
  auto r = ProbeRunner::create(*l->obj->prog("on_entry"), {});
  ASSERT_TRUE(r);
  PtRegs regs = sample_regs();
  (*r)->set_enabled(false);
  (*r)->run(&regs);
  EXPECT_EQ(globals(*l).entries, 0u);
  (*r)->set_enabled(true);
  (*r)->run(&regs);
  EXPECT_EQ(globals(*l).entries, 1u);
}

TEST(ProbeRunner, ThreadsRunOneRunnerAtOnce) {
  auto l = load("uprobe_regs");
  ASSERT_TRUE(l);
  auto r = ProbeRunner::create(*l->obj->prog("on_entry"), {});
  ASSERT_TRUE(r);
  constexpr int kThreads = 4, kHits = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      PtRegs regs = sample_regs();
      regs.rdi = t;
      for (int i = 0; i < kHits; ++i) (*r)->run(&regs);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(globals(*l).entries, uint64_t{kThreads} * kHits) << "the program's atomic count is exact";
  EXPECT_EQ((*r)->errors(), 0u);
  EXPECT_EQ((*r)->missed(), 0u);
  EXPECT_GT((*r)->hits(), 0u);
  EXPECT_LE((*r)->hits(), uint64_t{kThreads} * kHits);
}

}  // namespace
}  // namespace ember::attach
