// The ember command as a user meets it: exit codes and messages for good
// and bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace {

struct Output {
  int status;
  std::string text;  // stdout and stderr
};

Output ember(const std::string& args, const std::string& stdin_text = "") {
  std::string cmd = std::string(EMBER_BIN) + " " + args + " 2>&1";
  if (!stdin_text.empty()) cmd = "echo '" + stdin_text + "' | " + cmd;
  FILE* p = popen(cmd.c_str(), "r");
  Output out{-1, ""};
  if (!p) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out.text += buf;
  int st = pclose(p);
  out.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return out;
}

std::string temp_file(const std::string& name, const std::string& content) {
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

bool has(const Output& o, const std::string& part) { return o.text.find(part) != std::string::npos; }

TEST(Cli, HelpDescribesEveryCommand) {
  auto o = ember("--help");
  EXPECT_EQ(o.status, 0);
  for (const char* c : {"asm", "disasm", "run", "check", "conformance-plugin"}) {
    EXPECT_TRUE(has(o, c)) << c;
    auto sub = ember(std::string(c) + " --help");
    EXPECT_EQ(sub.status, 0) << c;
    EXPECT_TRUE(has(sub, "usage: ember")) << sub.text;
  }
}

TEST(Cli, UnknownCommandAndOptionAreUsageErrors) {
  EXPECT_EQ(ember("frobnicate").status, 2);
  auto o = ember("run --no-such-flag x");
  EXPECT_EQ(o.status, 2);
  EXPECT_TRUE(has(o, "unknown option '--no-such-flag'")) << o.text;
}

TEST(Cli, AssembleRunAndDisassemble) {
  auto src = temp_file("prog.asm", "mov %r0, %r2\nadd %r0, 1\nexit\n");
  auto bin = ::testing::TempDir() + "prog.bin";
  auto a = ember("asm " + src + " -o " + bin);
  ASSERT_EQ(a.status, 0) << a.text;
  auto r = ember("run " + bin + " --mem '01 02 03'");
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_EQ(r.text, "0x4\n");
  auto d = ember("disasm " + bin);
  EXPECT_EQ(d.status, 0) << d.text;
  EXPECT_TRUE(has(d, "r0 = r2")) << d.text;
  EXPECT_TRUE(has(d, "exit")) << d.text;
  auto t = ember("run " + bin + " --trace");
  EXPECT_TRUE(has(t, "r0 += 0x1")) << t.text;
  EXPECT_TRUE(has(t, "r0=0x1")) << t.text;
}

TEST(Cli, MissingFile) {
  auto o = ember("run /nonexistent/prog.bin");
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(has(o, "/nonexistent/prog.bin: cannot open")) << o.text;
}

TEST(Cli, LengthNotAMultipleOfEight) {
  auto f = temp_file("short.bin", std::string("\xb7\x00\x00\x00\x01\x00\x00\x00\x95\x00", 10));
  auto o = ember("run " + f + " --format raw");
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(has(o, "not a multiple of 8")) << o.text;
}

TEST(Cli, TruncatedProgramNamesTheInstruction) {
  auto f = temp_file("trunc.bin",
                     std::string("\xb7\x00\x00\x00\x01\x00\x00\x00\x18\x01\x00\x00\x01\x00\x00\x00", 16));
  auto o = ember("check " + f + " --format raw");
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(has(o, "instruction 1: ld_imm64 is missing its second slot")) << o.text;
}

TEST(Cli, BadHex) {
  auto o = ember("conformance-plugin 0g", "9500000000000000");
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(has(o, "'g' at position 1 is not a hex digit")) << o.text;
  auto m = ember("run /dev/null --mem 'zz'");
  EXPECT_NE(m.status, 0);
}

TEST(Cli, AssemblerErrorsNameTheLine) {
  auto unknown = temp_file("unknown.asm", "mov %r0, 1\nfrob %r0\nexit\n");
  auto o = ember("asm --hex " + unknown);
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(has(o, "line 2")) << o.text;
  auto label = temp_file("label.asm", "ja nowhere\nexit\n");
  o = ember("asm --hex " + label);
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(has(o, "nowhere")) << o.text;
  auto imm = temp_file("imm.asm", "mov %r0, 0x1ffffffff\nexit\n");
  o = ember("asm --hex " + imm);
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(has(o, "line 1")) << o.text;
  auto off = temp_file("off.asm", "ldxw %r0, [%r1+40000]\nexit\n");
  o = ember("asm --hex " + off);
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(has(o, "line 1")) << o.text;
}

// Raw code runs only after the verifier accepts it for the memory given;
// --unverified is the explicit way around, in checked mode.
TEST(Cli, RawRunIsVerifiedForTheMemoryGiven) {
  auto f = temp_file("read8.asm", "ldxdw %r0, [%r1+0]\nexit\n");
  auto ok = ember("run " + f + " --mem '01 02 03 04 05 06 07 08'");
  EXPECT_EQ(ok.status, 0) << ok.text;
  EXPECT_EQ(ok.text, "0x807060504030201\n");
  auto interp = ember("run " + f + " --mem '01 02 03 04 05 06 07 08' --interp");
  EXPECT_EQ(interp.text, ok.text);
  // Four bytes are not enough for an 8-byte read: rejected before it runs.
  auto short_mem = ember("run " + f + " --mem '01 02 03 04'");
  EXPECT_EQ(short_mem.status, 1) << short_mem.text;
  EXPECT_TRUE(has(short_mem, "the verifier rejects it [mem-oob]: instruction 0")) << short_mem.text;
  EXPECT_TRUE(has(short_mem, "--unverified runs it anyway")) << short_mem.text;
  EXPECT_FALSE(has(short_mem, "0x")) << short_mem.text;
  auto loop = temp_file("forever.asm", "mov %r0, 0\nja -1\n");
  auto l = ember("run " + loop);
  EXPECT_EQ(l.status, 1);
  EXPECT_TRUE(has(l, "[unbounded-loop]: instruction 1")) << l.text;
}

TEST(Cli, CheckedModeFaultIsAnErrorNotACrash) {
  auto f = temp_file("fault.asm", "ldxdw %r0, [%r1+0]\nexit\n");
  auto o = ember("run " + f + " --unverified");
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(has(o, "instruction 0 (r0 = *(u64 *)(r1 + 0x0)): read of 8 bytes at 0x0")) << o.text;
  auto loop = temp_file("loop.asm", "mov %r0, 0\nja -1\n");
  o = ember("run " + loop + " --unverified --budget 10000");
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(has(o, "instruction budget of 10000 exhausted")) << o.text;
}

TEST(Cli, ConformancePluginProtocol) {
  auto o = ember("conformance-plugin 0102030405", "bf200000000000009500000000000000");  // r0 = r2
  EXPECT_EQ(o.status, 0) << o.text;
  EXPECT_EQ(o.text, "5\n");
}

}  // namespace

namespace {

TEST(Cli, RunsProgramsOfClangBuiltObjects) {
  std::string dir = EMBER_BPF_OBJ_DIR;
  auto o = ember("run " + dir + "/subprog.bpf.o --mem 0304000000000000");
  EXPECT_EQ(o.status, 0) << o.text;
  EXPECT_TRUE(has(o, "Return value: 26, duration: ")) << o.text;
  EXPECT_TRUE(has(o, "Data out (8 bytes):\n03 04 00 00 00 00 00 00\n")) << o.text;
  auto many = ember("run " + dir + "/multi_prog.bpf.o --mem 05070000");
  EXPECT_EQ(many.status, 2);
  EXPECT_TRUE(
      has(many, "several programs; pick one with --prog:\n  first (SEC(\"xdp\"))\n  second (SEC(\"tc\"))"))
      << many.text;
  auto chosen = ember("run " + dir + "/multi_prog.bpf.o --section tc --mem 05070000 --repeat 5");
  EXPECT_EQ(chosen.status, 0) << chosen.text;
  EXPECT_TRUE(has(chosen, "Return value: 15, duration (average): ")) << chosen.text;
  auto missing = ember("run " + dir + "/multi_prog.bpf.o --prog nosuch");
  EXPECT_EQ(missing.status, 2);
  EXPECT_TRUE(has(missing, "no program named 'nosuch'")) << missing.text;
}

TEST(Cli, RunDumpsMapsLikeBpftool) {
  std::string obj = std::string(EMBER_BPF_OBJ_DIR) + "/global_data.bpf.o";
  auto o = ember("run " + obj + " --dump-maps --repeat 2");
  EXPECT_EQ(o.status, 0) << o.text;
  EXPECT_TRUE(has(o, "Return value: 1, duration (average): ")) << o.text;
  // .bss total = 2 runs x 45; .data calls = 5 + 2.
  EXPECT_TRUE(
      has(o, "map .bss (array):\nkey: 00 00 00 00  value: 5a 00 00 00 00 00 00 00\nFound 1 element\n"))
      << o.text;
  EXPECT_TRUE(has(o, "map .data (array):\nkey: 00 00 00 00  value: 07 00 00 00 00 00 00 00\n")) << o.text;
  auto j = ember("run " + obj + " -j --dump-maps");
  EXPECT_EQ(j.status, 0) << j.text;
  EXPECT_TRUE(has(j, "{\"retval\":1,\"duration\":")) << j.text;
  EXPECT_TRUE(has(j,
                  "{\"name\":\".data\",\"entries\":[{\"key\":[\"0x00\",\"0x00\",\"0x00\",\"0x00\"],"
                  "\"value\":[\"0x06\","))
      << j.text;
}

}  // namespace

#include <stdlib.h>
#include <unistd.h>

#include <cstring>

#include "ember/runtime.hpp"
#include "runtime/registry.hpp"

namespace {

// A private run directory, so that tests do not see each other's maps.
struct RunDir {
  std::string path;
  RunDir() {
    char tmpl[] = "/tmp/ember-run-XXXXXX";
    path = mkdtemp(tmpl);
    setenv("EMBER_RUN_DIR", path.c_str(), 1);
  }
  ~RunDir() {
    unsetenv("EMBER_RUN_DIR");
    std::system(("rm -rf " + path).c_str());
  }
};

TEST(Cli, MapCommandsReachAnotherProcessesMaps) {
  RunDir dir;
  ember::RuntimeOptions ro;
  ro.publish = true;
  ro.trace_pipe_bytes = 0;  // so that "counts" is map 1
  ember::Runtime rt(ro);
  ember::MapSpec spec{"counts", ember::MapType::Hash, 4, 8, 16, 0};
  auto m = rt.create_map(spec);
  ASSERT_TRUE(m.ok()) << m.error().message;
  uint32_t k = 1;
  uint64_t v = 0x1122;
  ASSERT_EQ((*m)->update(&k, &v, ember::kBpfAny), 0);

  auto show = ember("map show");
  EXPECT_EQ(show.status, 0) << show.text;
  EXPECT_TRUE(has(show, "1: hash  name counts  flags 0x0\n\tkey 4B  value 8B  max_entries 16  memlock "))
      << show.text;
  EXPECT_TRUE(has(show, "\tpid " + std::to_string(getpid()))) << show.text;

  auto dump = ember("map dump name counts");
  EXPECT_EQ(dump.text, "key: 01 00 00 00  value: 22 11 00 00 00 00 00 00\nFound 1 element\n");
  // The ember process changes the map; this process sees it.
  auto upd = ember("map update id 1 key 2 0 0 0 value hex 05 00 00 00 00 00 00 00 noexist");
  EXPECT_EQ(upd.status, 0) << upd.text;
  uint32_t k2 = 2;
  uint64_t got = 0;
  EXPECT_EQ((*m)->lookup(&k2, &got), 0);
  EXPECT_EQ(got, 5u);
  auto again = ember("map update id 1 key 2 0 0 0 value hex 05 00 00 00 00 00 00 00 noexist");
  EXPECT_EQ(again.status, 1);
  EXPECT_TRUE(has(again, "File exists")) << again.text;
  auto look = ember("map lookup id 1 key 0x02 0 0 0");
  EXPECT_EQ(look.text, "key: 02 00 00 00  value: 05 00 00 00 00 00 00 00\n");
  EXPECT_EQ(ember("map delete id 1 key 2 0 0 0").status, 0);
  EXPECT_EQ((*m)->lookup(&k2, &got), -ENOENT);
  auto json = ember("map dump id 1 -j");
  EXPECT_EQ(json.text,
            "[{\"key\":[\"0x01\",\"0x00\",\"0x00\",\"0x00\"],\"value\":[\"0x22\",\"0x11\",\"0x00\","
            "\"0x00\",\"0x00\",\"0x00\",\"0x00\",\"0x00\"]}]\n");
  auto missing = ember("map dump id 99");
  EXPECT_EQ(missing.status, 1);
  EXPECT_TRUE(has(missing, "no map with id 99")) << missing.text;
  auto short_key = ember("map lookup id 1 key 1 0");
  EXPECT_EQ(short_key.status, 2);
  EXPECT_TRUE(has(short_key, "expected 4 bytes, got 2")) << short_key.text;
}

TEST(Cli, ProgShowListsLoadedPrograms) {
  RunDir dir;
  ember::RuntimeOptions ro;
  ro.publish = true;
  ember::Runtime rt(ro);
  auto obj = ember::Object::open_file(rt, std::string(EMBER_BPF_OBJ_DIR) + "/global_data.bpf.o");
  ASSERT_TRUE(obj.ok());
  ASSERT_TRUE((*obj)->load().ok());
  auto o = ember("prog show");
  EXPECT_TRUE(has(o, "1: socket_filter  name use_globals  section socket\n")) << o.text;
  auto maps = ember("map show -j");
  EXPECT_TRUE(has(maps, "\"name\":\".rodata\"")) << maps.text;
}

TEST(Cli, PinnedMapsOutliveTheirProcess) {
  RunDir dir;
  ember::MapSpec spec{"pinned_counts", ember::MapType::Array, 4, 4, 2, 0};
  ASSERT_TRUE(ember::ensure_pin_dir().ok());
  std::string path = std::string(getenv("EMBER_RUN_DIR")) + "/pins/pinned_counts";
  {
    ember::Runtime rt;
    auto m = rt.create_map(spec, path);
    ASSERT_TRUE(m.ok()) << m.error().message;
    uint32_t k = 1, v = 77;
    ASSERT_EQ((*m)->update(&k, &v, ember::kBpfAny), 0);
  }
  auto dump = ember("map dump pinned pinned_counts");
  EXPECT_TRUE(has(dump, "key: 01 00 00 00  value: 4d 00 00 00\n")) << dump.text;
  ember::Runtime rt2;
  auto again = rt2.create_map(spec, path);  // reused, not replaced
  ASSERT_TRUE(again.ok());
  uint32_t k = 1, v = 0;
  EXPECT_EQ((*again)->lookup(&k, &v), 0);
  EXPECT_EQ(v, 77u);
  spec.max_entries = 3;
  auto mismatch = rt2.create_map(spec, path);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message.find("does not match"), std::string::npos);
}

}  // namespace

namespace {

TEST(Cli, ObjdumpInterleavesSourceLines) {
  auto o = ember("objdump " + std::string(EMBER_BPF_OBJ_DIR) + "/tail_calls.bpf.o --prog entry --no-bytes");
  EXPECT_EQ(o.status, 0) << o.text;
  EXPECT_TRUE(has(o,
                  "entry (SEC(\"raw_tp\"), raw_tracepoint), 12 instructions:\n"
                  "; trail = trail * 10 + 1; @ tail_calls.bpf.c:26\n"
                  "     0:\tr2 = map_value[idx:0x0]+0x0 ll  ; .bss trail+0\n"))
      << o.text;
  EXPECT_TRUE(has(o, "     6:\tr2 = map[idx:0x0] ll  ; map jump\n")) << o.text;
  EXPECT_TRUE(has(o, "     9:\tcall 0xc  ; bpf_tail_call\n")) << o.text;
  auto missing = ember("objdump " + std::string(EMBER_BPF_OBJ_DIR) + "/tail_calls.bpf.o --prog nosuch");
  EXPECT_EQ(missing.status, 2);
}

}  // namespace

namespace {

TEST(Cli, TracelogStreamsAnotherProcessesPrintk) {
  RunDir dir;
  ember::RuntimeOptions ro;
  ro.publish = true;
  ember::Runtime rt(ro);
  auto obj = ember::Object::open_file(rt, std::string(EMBER_BPF_OBJ_DIR) + "/printk.bpf.o");
  ASSERT_TRUE(obj.ok());
  ASSERT_TRUE((*obj)->load().ok());
  uint64_t n = 7;
  ember::RunInput in;
  in.ctx = &n;
  in.ctx_size = 8;
  ASSERT_TRUE((*obj)->prog("say")->run(in).ok());
  auto o = ember("tracelog --once");
  EXPECT_EQ(o.status, 0) << o.text;
  EXPECT_TRUE(has(o, ": bpf_trace_printk: hello 7\n")) << o.text;
  std::string ctx = temp_file("printk_ctx", std::string("\x05\0\0\0\0\0\0\0", 8));
  auto run = ember("run " + std::string(EMBER_BPF_OBJ_DIR) + "/printk.bpf.o --ctx-in " + ctx);
  EXPECT_TRUE(has(run, ": bpf_trace_printk: hello 5\n")) << run.text;
  EXPECT_TRUE(has(run, ": bpf_trace_printk: five: 1 2 ab -4 str\n")) << run.text;
}

// ember verify: the verdict with statistics; a rejection names the reason,
// the instruction with its C source line, the state and the path; -j JSON.
TEST(Cli, VerifyExplainsVerdicts) {
  std::string dir = EMBER_BPF_OBJ_DIR;
  auto good = ember("verify " + dir + "/hash_counter.bpf.o");
  EXPECT_EQ(good.status, 0) << good.text;
  EXPECT_TRUE(has(good, "count_keys (SEC(\"syscall\"), syscall): verified\n  processed ")) << good.text;
  auto bad = ember("verify " + dir + "/btf_legacy_maps.bpf.o");
  EXPECT_EQ(bad.status, 1) << bad.text;
  EXPECT_TRUE(has(bad, "reason: pointer-leak")) << bad.text;
  EXPECT_TRUE(has(bad, "btf_legacy_maps.bpf.c:23:")) << bad.text;
  EXPECT_TRUE(has(bad, "state: R0=map_ptr(map=1)")) << bad.text;
  EXPECT_TRUE(has(bad, "path (branches decided at): ")) << bad.text;
  auto json = ember("verify " + dir + "/btf_legacy_maps.bpf.o -j");
  EXPECT_EQ(json.status, 1);
  EXPECT_TRUE(has(json, "\"verdict\":\"rejected\",\"reason\":\"pointer-leak\",\"insn\":12")) << json.text;
  auto verbose = ember("verify " + dir + "/hash_counter.bpf.o --log-level 2");
  EXPECT_TRUE(has(verbose, "\n0: R1=ctx() R10=fp0\n")) << verbose.text.substr(0, 400);
  auto usage = ember("verify");
  EXPECT_EQ(usage.status, 2);
  // ember run verifies what it runs; --unverified is the explicit way around.
  auto refused = ember("run " + dir + "/btf_legacy_maps.bpf.o");
  EXPECT_EQ(refused.status, 1) << refused.text;
  EXPECT_TRUE(has(refused, "the verifier rejects it [pointer-leak]: instruction 12")) << refused.text;
  auto forced = ember("run " + dir + "/btf_legacy_maps.bpf.o --unverified");
  EXPECT_EQ(forced.status, 0) << forced.text;
  EXPECT_TRUE(has(forced, "Return value: ")) << forced.text;
}

}  // namespace

#include <filesystem>
#include <iterator>
#include <sstream>

namespace {

std::string bpf_obj(const std::string& name) {
  return std::string(EMBER_BPF_OBJ_DIR) + "/" + name + ".bpf.o";
}

// ember run: the JIT for a verified syscall program on a large enough
// context, the interpreter with --interp, checked mode for --unverified;
// the output says which.
TEST(Cli, RunReportsTheEngine) {
  std::string ctx = temp_file("calls_ctx", std::string("\x03\0\0\0\0\0\0\0", 8) + std::string(24, '\0'));
  std::string obj = bpf_obj("subprograms");
  auto jit = ember("run " + obj + " --ctx-in " + ctx + " --ctx-out " + ctx + ".jit");
  EXPECT_EQ(jit.status, 0) << jit.text;
  EXPECT_TRUE(has(jit, "Engine: jit (x86-64)\n")) << jit.text;
  auto interp = ember("run " + obj + " --ctx-in " + ctx + " --ctx-out " + ctx + ".interp --interp");
  EXPECT_EQ(interp.status, 0) << interp.text;
  EXPECT_TRUE(has(interp, "Engine: interpreter, fast mode (--interp)\n")) << interp.text;
  std::ifstream a(ctx + ".jit", std::ios::binary), b(ctx + ".interp", std::ios::binary);
  std::string out_jit((std::istreambuf_iterator<char>(a)), {}),
      out_interp((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(out_jit.size(), 32u);
  EXPECT_EQ(out_jit, out_interp) << "both engines write the same results into the context";
  auto unverified = ember("run " + obj + " --ctx-in " + ctx + " --unverified -j");
  EXPECT_EQ(unverified.status, 0) << unverified.text;
  EXPECT_TRUE(has(unverified, "\"engine\":\"interpreter\",\"checked\":true,\"engine_note\":\"not verified\""))
      << unverified.text;
  auto json = ember("run " + obj + " --ctx-in " + ctx + " -j");
  EXPECT_TRUE(has(json, "\"engine\":\"jit\",\"checked\":false}")) << json.text;
  // Not a syscall program: checked mode, and why.
  auto tc = ember("run " + bpf_obj("multi_prog") + " --section tc --mem 05070000");
  EXPECT_EQ(tc.status, 0) << tc.text;
  EXPECT_TRUE(has(tc, "Engine: interpreter, checked mode (the verifier's context for sched_cls")) << tc.text;
}

// ember disasm --jited: every eBPF instruction `ember objdump` lists, each
// followed by its native code, which decodes without invalid bytes.
TEST(Cli, DisasmJitedListsEveryInstructionAndItsCode) {
  std::string obj = bpf_obj("subprograms");
  auto jited = ember("disasm --jited " + obj + " --prog calls");
  ASSERT_EQ(jited.status, 0) << jited.text;
  auto dump = ember("objdump " + obj + " --prog calls --no-bytes --no-source");
  ASSERT_EQ(dump.status, 0) << dump.text;
  std::istringstream lines(dump.text);
  std::string line;
  int insns = 0;
  while (std::getline(lines, line)) {
    // objdump: "%6zu:\t<insn>[  ; map, helper]"; --jited: "%6u: " and the same.
    size_t tab = line.find(":\t");
    if (tab == std::string::npos || tab != 6) continue;
    std::string text = line.substr(tab + 2);
    if (text.empty()) continue;  // ld_imm64's second slot
    EXPECT_TRUE(has(jited, "\n" + line.substr(0, tab) + ": " + text + "\n")) << line;
    ++insns;
  }
  EXPECT_GT(insns, 40);
  EXPECT_TRUE(has(jited, "; bpf_")) << "helper names, as objdump shows them";
  EXPECT_TRUE(has(jited, "; int calls(struct args *a) { @ subprograms.bpf.c:")) << "BTF source lines";
  EXPECT_TRUE(has(jited, " ret\n"));
  EXPECT_FALSE(has(jited, "(invalid)"));
  auto json = ember("disasm --jited " + obj + " -j");
  EXPECT_EQ(json.status, 0) << json.text;
  EXPECT_TRUE(has(json, "[{\"name\":\"calls\",\"section\":\"syscall\",\"type\":\"syscall\",\"jited_bytes\":"))
      << json.text.substr(0, 200);
  EXPECT_TRUE(has(json, "\"ebpf\":\"r6 = r1\",\"src\":")) << json.text.substr(0, 2000);
  EXPECT_TRUE(has(json, "\"operation\":\"ret\",\"operands\":[],\"opcodes\":[\"0xc3\"]"));
}

// Every program of the corpus that the verifier accepts compiles, and its
// code decodes as x86-64 from start to end.
TEST(Cli, DisasmJitedDecodesTheWholeCorpus) {
  int programs = 0;
  for (const auto& e : std::filesystem::directory_iterator(EMBER_BPF_OBJ_DIR)) {
    if (!e.path().string().ends_with(".bpf.o")) continue;
    auto o = ember("disasm --jited " + e.path().string() + " --no-bytes");
    EXPECT_FALSE(has(o, "(invalid)")) << e.path();
    EXPECT_FALSE(has(o, "JIT failed")) << o.text;
    for (size_t at = o.text.find("bytes of x86-64 code:"); at != std::string::npos;
         at = o.text.find("bytes of x86-64 code:", at + 1))
      ++programs;
  }
  EXPECT_GE(programs, 30);
}

// ember prog show: each program's eBPF and JIT code sizes, as bpftool's
// "xlated 440B  jited 256B" or "not jited".
TEST(Cli, ProgShowSaysWhatIsJited) {
  RunDir dir;
  ember::RuntimeOptions ro;
  ro.publish = true;
  ember::Runtime rt(ro);
  auto jited = ember::Object::open_file(rt, bpf_obj("subprograms"));
  auto plain = ember::Object::open_file(rt, bpf_obj("printk"));
  ASSERT_TRUE(jited.ok() && plain.ok());
  ASSERT_TRUE((*jited)->load().ok());
  ember::LoadOptions no_jit;
  no_jit.jit = false;
  ASSERT_TRUE((*plain)->load(no_jit).ok());
  const ember::JitProgram* code = (*jited)->prog("calls")->jit();
  ASSERT_NE(code, nullptr);
  auto o = ember("prog show");
  EXPECT_TRUE(has(o, "name calls  section syscall\n\tpid " + std::to_string(getpid()) +
                         "\n\txlated 440B  jited " + std::to_string(code->code().size()) + "B\n"))
      << o.text;
  EXPECT_TRUE(has(o, "name say  section syscall\n\tpid " + std::to_string(getpid()) + "\n\txlated "))
      << o.text;
  EXPECT_TRUE(has(o, "B  not jited\n")) << o.text;
  auto j = ember("prog show -j");
  EXPECT_TRUE(has(j, "\"name\":\"calls\",\"section\":\"syscall\",\"pid\":" + std::to_string(getpid()) +
                         ",\"bytes_xlated\":440,\"jited\":true,\"bytes_jited\":" +
                         std::to_string(code->code().size()) + "}"))
      << j.text;
}

TEST(Cli, DisasmJitedBadInput) {
  auto missing = ember("disasm --jited " + bpf_obj("subprograms") + " --prog nosuch");
  EXPECT_EQ(missing.status, 1);
  EXPECT_TRUE(has(missing, "no program named 'nosuch'; the object has:\n  calls (SEC(\"syscall\"))"))
      << missing.text;
  auto rejected = ember("disasm --jited " + bpf_obj("btf_legacy_maps"));
  EXPECT_EQ(rejected.status, 1);
  EXPECT_TRUE(has(rejected, "the verifier rejects it [pointer-leak]")) << rejected.text;
  EXPECT_TRUE(has(rejected, "the JIT compiles only verified programs")) << rejected.text;
  auto no_jited = ember("disasm " + bpf_obj("subprograms") + " --prog calls");
  EXPECT_EQ(no_jited.status, 2);
  EXPECT_TRUE(has(no_jited, "-j and --prog go with --jited")) << no_jited.text;
  auto raw = ember("disasm --jited /nonexistent.o");
  EXPECT_EQ(raw.status, 1);
}

}  // namespace
