// The JIT inside the runtime: which engine Prog::run picks (the JIT for
// verified programs on the input the verifier assumed, the interpreter for
// everything else), that the JIT and both interpreter modes agree on the
// clang-built corpus run through the runtime (return values, contexts and
// maps), and that the code goes when the object does.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "ember/runtime.hpp"

namespace ember {
namespace {

using Bytes = std::vector<uint8_t>;

std::string obj_path(const std::string& name) {
  return std::string(EMBER_BPF_OBJ_DIR) + "/" + name + ".bpf.o";
}

RunOptions unchecked() {
  RunOptions o;
  o.checked = false;
  o.random_seed = 7;
  o.trace_out = nullptr;
  return o;
}

struct Loaded {
  Runtime rt;
  std::unique_ptr<Object> obj;
};

// Loads without verifying, then verifies every program (as `ember run`
// does): one rejected program does not keep the others from the JIT.
std::unique_ptr<Loaded> load(const std::string& name, LoadOptions lo = {}) {
  auto l = std::make_unique<Loaded>();
  auto obj = Object::open_file(l->rt, obj_path(name));
  if (!obj) return nullptr;
  l->obj = std::move(*obj);
  bool verify = lo.verify;
  lo.verify = false;
  if (!l->obj->load(lo)) return nullptr;
  if (verify)
    for (Prog* p : l->obj->progs()) (void)p->verify();
  return l;
}

TEST(JitIntegration, VerifiedProgramsRunInTheJit) {
  auto l = load("subprograms");
  ASSERT_TRUE(l);
  Prog* p = l->obj->prog("calls");
  ASSERT_TRUE(p && p->verified());
  ASSERT_NE(p->jit(), nullptr) << p->jit_error();
  Bytes ctx(32);
  RunInput in{ctx.data(), ctx.size()};
  RunPlan jit = p->plan(in, unchecked());
  EXPECT_EQ(jit.engine, Engine::Jit);
  EXPECT_FALSE(jit.checked);
  RunPlan interp = p->plan(in, unchecked(), Engine::Interpreter);
  EXPECT_EQ(interp.engine, Engine::Interpreter);
  EXPECT_FALSE(interp.checked) << "the interpreter's fast mode";
  RunPlan checked = p->plan(in, RunOptions{});
  EXPECT_EQ(checked.engine, Engine::Interpreter);
  EXPECT_TRUE(checked.checked) << "RunOptions{} asks for checked mode";
  // A context smaller than the bytes the program reads: not what the
  // verifier assumed, so checked.
  RunInput small{ctx.data(), 8};
  RunPlan short_ctx = p->plan(small, unchecked());
  EXPECT_EQ(short_ctx.engine, Engine::Interpreter);
  EXPECT_TRUE(short_ctx.checked);
  EXPECT_NE(short_ctx.why.find("the context has 8 bytes"), std::string::npos) << short_ctx.why;
  EXPECT_FALSE(p->run(small, unchecked()).ok()) << "checked mode catches the write past the context";
}

TEST(JitIntegration, UnverifiedProgramsNeverReachTheJit) {
  LoadOptions lo;
  lo.verify = false;
  Runtime rt;
  auto obj = Object::open_file(rt, obj_path("subprograms"));
  ASSERT_TRUE(obj.ok());
  ASSERT_TRUE((*obj)->load(lo).ok());
  Prog* p = (*obj)->prog("calls");
  EXPECT_EQ(p->jit(), nullptr);
  Bytes ctx(32);
  RunInput in{ctx.data(), ctx.size()};
  RunPlan plan = p->plan(in, unchecked());
  EXPECT_EQ(plan.engine, Engine::Interpreter);
  EXPECT_TRUE(plan.checked);
  EXPECT_EQ(plan.why, "not verified");
  // Verified afterwards, it runs as if verified at load.
  ASSERT_TRUE(p->verify().ok);
  ASSERT_NE(p->jit(), nullptr);
  EXPECT_EQ(p->plan(in, unchecked()).engine, Engine::Jit);
}

TEST(JitIntegration, JitOffFallsBackToTheInterpreterAndSaysWhy) {
  LoadOptions lo;
  lo.jit = false;
  auto l = load("subprograms", lo);
  ASSERT_TRUE(l);
  Prog* p = l->obj->prog("calls");
  ASSERT_TRUE(p->verified());
  EXPECT_EQ(p->jit(), nullptr);
  Bytes ctx(32);
  RunPlan plan = p->plan(RunInput{ctx.data(), ctx.size()}, unchecked());
  EXPECT_EQ(plan.engine, Engine::Interpreter);
  EXPECT_FALSE(plan.checked) << "still verified: the fast mode";
  EXPECT_EQ(plan.why, p->jit_error());
  EXPECT_NE(plan.why.find("off"), std::string::npos) << plan.why;
  EXPECT_TRUE(p->run(RunInput{ctx.data(), ctx.size()}, unchecked()).ok());
}

// The kernel's prog arrays hold only verified programs: a verified program
// runs unchecked, and so would the programs it tail-calls.
TEST(JitIntegration, VerifiedProgramsDoNotTailCallUnverifiedOnes) {
  for (bool verify_targets : {true, false}) {
    Runtime rt;
    auto obj = Object::open_file(rt, obj_path("tail_calls"));
    ASSERT_TRUE(obj.ok());
    LoadOptions lo;
    lo.verify = false;
    ASSERT_TRUE((*obj)->load(lo).ok());
    for (Prog* p : (*obj)->progs())
      if (verify_targets || p->name() == "entry") {
        ASSERT_TRUE(p->verify().ok) << p->name();
      }
    Bytes ctx(8);
    auto r = (*obj)->prog("entry")->run(RunInput{ctx.data(), ctx.size()}, unchecked());
    ASSERT_TRUE(r.ok()) << r.error().message;
    uint64_t trail = 0;
    std::memcpy(&trail, (*obj)->global_data(".bss")->data(), 8);
    if (verify_targets) {
      EXPECT_EQ(*r, 7u);
      EXPECT_EQ(trail, 123u);
    } else {
      EXPECT_EQ(static_cast<int32_t>(*r), -1) << "the tail call fails as on an empty slot";
      EXPECT_EQ(trail, 1u);
    }
  }
}

// Whether `addr` lies in a mapping of this process.
bool mapped(const void* addr) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  auto a = reinterpret_cast<uintptr_t>(addr);
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash;
    std::istringstream(line) >> std::hex >> lo >> dash >> hi;
    if (a >= lo && a < hi) return true;
  }
  return false;
}

TEST(JitIntegration, CodeIsFreedWhenTheObjectGoes) {
  const uint8_t* code = nullptr;
  {
    auto l = load("subprograms");
    ASSERT_TRUE(l);
    const JitProgram* j = l->obj->prog("calls")->jit();
    ASSERT_NE(j, nullptr);
    code = j->code().data();
    EXPECT_TRUE(mapped(code));
  }
  EXPECT_FALSE(mapped(code)) << "the JIT code is unmapped with its program";
}

TEST(JitIntegration, BlindedCodeDiffersAndAgrees) {
  LoadOptions blind;
  blind.blind_constants = true;
  auto plain = load("subprograms"), blinded = load("subprograms", blind);
  ASSERT_TRUE(plain && blinded);
  const JitProgram* a = plain->obj->prog("calls")->jit();
  const JitProgram* b = blinded->obj->prog("calls")->jit();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(std::equal(a->code().begin(), a->code().end(), b->code().begin(), b->code().end()));
  Bytes ca(32), cb(32);
  ca[0] = cb[0] = 3;
  auto ra = plain->obj->prog("calls")->run(RunInput{ca.data(), ca.size()}, unchecked());
  auto rb = blinded->obj->prog("calls")->run(RunInput{cb.data(), cb.size()}, unchecked());
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(*ra, *rb);
  EXPECT_EQ(ca, cb);
}

// Makes mprotect(..., PROT_EXEC) fail with EPERM in this process (a seccomp
// filter, as a sandbox with a W^X policy would have): the JIT cannot make
// its code executable.
bool forbid_executable_memory() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[2])),  // prot, low half
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// In a child process without executable memory: the JIT fails, the program
// runs in the interpreter's fast mode with the right results, and plan()
// says why. Exit 0 when all holds, 1 otherwise, 2 without seccomp; what
// plan() said goes to `out`.
[[noreturn]] void run_without_executable_memory(int out) {
  if (!forbid_executable_memory()) _exit(2);
  auto l = load("subprograms");
  Prog* p = l ? l->obj->prog("calls") : nullptr;
  if (!p || !p->verified() || p->jit()) _exit(1);
  Bytes ctx(32);
  ctx[0] = 3;
  RunPlan plan = p->plan(RunInput{ctx.data(), ctx.size()}, unchecked());
  auto r = p->run(RunInput{ctx.data(), ctx.size()}, unchecked());
  uint64_t got[3];
  std::memcpy(got, ctx.data() + 8, sizeof got);
  (void)!write(out, plan.why.data(), plan.why.size());
  bool ok = plan.engine == Engine::Interpreter && !plan.checked && r.ok() && got[0] == 25 && got[1] == 9 &&
            got[2] == 30;  // 3*3 + 4*4; 3 scaled by 3; 0 + 1 + 4 + 9 + 16 from bpf_loop
  _exit(ok ? 0 : 1);
}

TEST(JitIntegration, FailedCompileFallsBackToTheInterpreter) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    run_without_executable_memory(fds[1]);
  }
  close(fds[1]);
  std::string why;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) why.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died: signal " << WTERMSIG(status);
  if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "seccomp filters unavailable here";
  EXPECT_EQ(WEXITSTATUS(status), 0) << why;
  EXPECT_EQ(why,
            "the JIT failed, the interpreter runs it: JIT: mprotect to read+execute failed: "
            "Operation not permitted");
}

// ---- the corpus, engine against engine ----

struct Outcome {
  std::vector<std::string> results;  // r0 in hex, or "error" per run
  std::vector<Bytes> ctx;            // the context after each run
  std::map<std::string, std::map<Bytes, Bytes>> maps;
};

bool comparable(MapType t) {
  return t != MapType::ProgArray && t != MapType::ArrayOfMaps && t != MapType::HashOfMaps &&
         t != MapType::PerfEventArray && t != MapType::Ringbuf && t != MapType::CgroupArray;
}

// A per-CPU value as the sum over CPUs of each 8-byte lane: the runs may
// land on different CPUs.
Bytes fold_percpu(const Bytes& v, uint32_t value_size, uint32_t ncpus) {
  size_t stride = (value_size + 7) / 8 * 8;
  std::vector<uint64_t> sum(stride / 8);
  for (uint32_t c = 0; c < ncpus; ++c)
    for (size_t w = 0; w < sum.size(); ++w) {
      uint64_t x;
      std::memcpy(&x, v.data() + c * stride + 8 * w, 8);
      sum[w] += x;
    }
  Bytes out(stride);
  std::memcpy(out.data(), sum.data(), stride);
  return out;
}

Bytes context(size_t size, bool pattern) {
  Bytes ctx(size);
  // Small numbers in each 8-byte word (1, 2, 3...): keys, counts and
  // lengths stay small, so loops over them stay short.
  if (pattern)
    for (size_t w = 0; w + 8 <= size; w += 8) ctx[w] = static_cast<uint8_t>(w / 8 + 1);
  return ctx;
}

// Runs `prog` of `object` twice in a fresh runtime with one engine.
Outcome run_corpus(const std::string& object, const std::string& prog, size_t ctx_size, bool pattern,
                   Engine engine, bool checked) {
  Outcome out;
  auto l = load(object);
  if (!l) return out;
  Prog* p = l->obj->prog(prog);
  Bytes ctx = context(ctx_size, pattern);
  RunOptions opts = unchecked();
  opts.checked = checked;
  RunInput in{ctx.empty() ? nullptr : ctx.data(), ctx.size()};
  RunPlan plan = p->plan(in, opts, engine);
  EXPECT_EQ(plan.engine, checked ? Engine::Interpreter : engine) << object << ":" << prog << ": " << plan.why;
  EXPECT_EQ(plan.checked, checked) << object << ":" << prog << ": " << plan.why;
  for (int run = 0; run < 2; ++run) {
    auto r = p->run(in, opts, engine);
    std::ostringstream s;
    if (r)
      s << std::hex << *r;
    else
      s << "error";
    out.results.push_back(s.str());
    out.ctx.push_back(ctx);
  }
  for (const MapPtr& m : l->obj->maps()) {
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

// Objects whose programs reach outside the test process's own state (pin
// files shared with other tests, signals) or read the clock.
bool skipped(const std::string& object) {
  return object == "pinned" || object == "pinned_unloadable" || object == "signal" || object == "task_info";
}

TEST(JitIntegration, CorpusAgreesAcrossEngines) {
  std::vector<std::string> objects;
  for (const auto& e : std::filesystem::directory_iterator(EMBER_BPF_OBJ_DIR)) {
    std::string f = e.path().filename().string();
    if (f.ends_with(".bpf.o")) objects.push_back(f.substr(0, f.size() - 6));
  }
  if (objects.empty()) GTEST_SKIP() << "no clang-built objects in " << EMBER_BPF_OBJ_DIR;
  std::sort(objects.begin(), objects.end());
  int compared = 0;
  for (const std::string& object : objects) {
    if (skipped(object)) continue;
    auto l = load(object);
    if (!l) continue;  // objects the loader refuses have their own tests
    for (Prog* p : l->obj->progs()) {
      if (p->type() != ProgType::Syscall || !p->verified()) continue;
      ASSERT_NE(p->jit(), nullptr) << object << ":" << p->name() << ": " << p->jit_error();
      size_t size = std::max<size_t>(8, (p->verify_stats().max_ctx_offset + 7) / 8 * 8);
      for (bool pattern : {false, true}) {
        SCOPED_TRACE(object + ":" + p->name() + (pattern ? " (pattern)" : " (zeros)"));
        Outcome jit = run_corpus(object, p->name(), size, pattern, Engine::Jit, false);
        Outcome fast = run_corpus(object, p->name(), size, pattern, Engine::Interpreter, false);
        Outcome checked = run_corpus(object, p->name(), size, pattern, Engine::Interpreter, true);
        ASSERT_EQ(jit.results.size(), 2u);
        EXPECT_EQ(jit.results, fast.results);
        EXPECT_EQ(jit.results, checked.results);
        EXPECT_EQ(jit.ctx, fast.ctx);
        EXPECT_EQ(jit.ctx, checked.ctx);
        EXPECT_EQ(jit.maps, fast.maps);
        EXPECT_EQ(jit.maps, checked.maps);
        ++compared;
      }
    }
  }
  std::printf("JIT vs interpreter: %d program runs compared\n", compared);
  EXPECT_GE(compared, 24) << "most syscall programs of the corpus should verify and compile";
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// The runtime compiles a verified program with the verifier's facts: a
// division by a value proven non-zero loses its zero check (smaller code),
// the one that may divide by 0 keeps it, and the results stay the ISA's.
TEST(JitIntegration, VerifierFactsReachTheJit) {
  auto l = load("divide");
  ASSERT_TRUE(l);
  Prog* p = l->obj->progs()[0];
  ASSERT_TRUE(p->verified());
  ASSERT_NE(p->jit(), nullptr) << p->jit_error();
  auto plain = JitProgram::compile(p->interpreter());
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_LT(p->jit()->code().size(), plain->code().size()) << "no division check was left out";
  struct {
    uint32_t a, b;
    uint64_t q_safe, q_any;
  } ctx{100, 0, 0, 7};
  RunInput in;
  in.ctx = &ctx;
  in.ctx_size = sizeof ctx;
  in.ctx_writable = true;
  auto r = p->run(in, unchecked());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ctx.q_safe, 100u);  // 100 / (0 | 1)
  EXPECT_EQ(ctx.q_any, 0u);     // 100 / 0 is 0
  ctx = {100, 6, 0, 0};
  ASSERT_TRUE(p->run(in, unchecked()).ok());
  EXPECT_EQ(ctx.q_safe, 14u);  // 100 / 7
  EXPECT_EQ(ctx.q_any, 16u);
}

}  // namespace
}  // namespace ember
