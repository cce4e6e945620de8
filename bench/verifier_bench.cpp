// Verification time and memory, Ember against the kernel, program by
// program: every program of the clang-built objects (tests/bpf/*.bpf.c,
// compiled by bench/CMakeLists.txt) and every accept fixture of the
// verifier corpus (tests/verifier/accept).
//
// Ember: ember::verify() on the program as `ember verify OBJ` sees it (the
// object loaded by Ember's loader; the same VerifyInput as src/cli/verify.cpp)
// or as the fixture says; wall time around the call, median of --runs runs;
// VerifyStats (processed insns, states, peak state memory); and the peak RSS
// growth of one verify() in a forked child (its ru_maxrss minus its RSS at
// the fork; glibc may reuse heap the parent freed, so this is a lower bound).
//
// Kernel: the wall time of the bpf(BPF_PROG_LOAD) system call itself, median
// of --kernel-runs loads. Objects are loaded by libbpf (bpf_object__open_file
// + bpf_object__load, the whole object, or one program at a time when the
// whole does not load), so the kernel gets exactly what libbpf gives it
// (relocated code, subprograms appended, BTF func_info and line_info); the
// system call is timed by interposing syscall(2), through which libbpf makes
// every bpf() call (see the end of this file), and the loads are told apart
// by their prog_name. Fixtures are loaded as tests/support/verifier_fixtures
// does (maps created first, map[idx:N] patched to map fds, BTF func_info for
// programs with subprograms); only BPF_PROG_LOAD is timed, map creation is
// not. One more load per program with log_level 4 (BPF_LOG_STATS) gives the
// kernel's own "verification time" (bpf_check(), without the JIT and the
// rest of the system call), its states, and verified_insns from
// bpf_prog_info.
//
// Usage: ember_verifier_bench [--runs N] [--kernel-runs N] [--filter SUBSTR]
//                             [--objects-only | --fixtures-only] [--no-kernel] [--verbose]
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dlfcn.h>
#include <linux/bpf.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ember/isa.hpp"
#include "ember/runtime.hpp"
#include "ember/verifier.hpp"
#include "support/btf_builder.hpp"
#include "support/kernel_bpf.hpp"
#include "support/verifier_fixtures.hpp"

namespace {

// ------------------------------------------------ BPF_PROG_LOAD timing

// Every BPF_PROG_LOAD made through syscall(2) while recording is on: the
// prog_name it carried, how long the call took, and its result.
struct LoadRecord {
  std::string name;
  uint64_t ns;
  long result;
};
bool g_recording = false;
std::vector<LoadRecord> g_loads;

using SyscallFn = long (*)(long, ...);
SyscallFn real_syscall() {
  static SyscallFn fn = reinterpret_cast<SyscallFn>(dlsym(RTLD_NEXT, "syscall"));
  return fn;
}

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

// libbpf (and tests/support) call bpf() as syscall(__NR_bpf, cmd, attr,
// size); this definition in the executable takes the place of glibc's for
// them, times BPF_PROG_LOAD and passes everything to glibc's syscall().
extern "C" long syscall(long nr, ...) noexcept {
  va_list ap;
  va_start(ap, nr);
  long a[6];
  for (long& x : a) x = va_arg(ap, long);
  va_end(ap);
  SyscallFn real = real_syscall();
  if (nr != __NR_bpf || a[0] != BPF_PROG_LOAD || !g_recording)
    return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  const auto* attr = reinterpret_cast<const bpf_attr*>(a[1]);
  std::string name(attr->prog_name, strnlen(attr->prog_name, sizeof attr->prog_name));
  uint64_t t0 = now_ns();
  long r = real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  uint64_t t1 = now_ns();
  int saved = errno;
  g_loads.push_back({std::move(name), t1 - t0, r});
  errno = saved;
  return r;
}

namespace ember::bench {
namespace {

using testing::Fd;

struct Options {
  int runs = 11;
  int kernel_runs = 11;
  std::string filter;
  bool objects = true, fixtures = true, kernel = true;
  bool verbose = false;  // libbpf's messages on stderr
};

int libbpf_to_stderr(libbpf_print_level, const char* fmt, va_list ap) {
  return std::vfprintf(stderr, fmt, ap);
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// What the kernel said about one program.
struct KernelStats {
  bool loaded = false;
  std::string error;            // why there is no kernel number
  double load_ns = NAN;         // median BPF_PROG_LOAD wall time
  double verify_ns = NAN;       // "verification time" of the BPF_LOG_STATS line
  int64_t verified_insns = -1;  // bpf_prog_info.verified_insns
  int64_t states = -1, peak_states = -1;
};

struct Row {
  std::string group;  // "object" or "fixture"
  std::string name;
  size_t slots = 0;
  bool ember_ok = false;
  std::string ember_note;  // reason of a rejection, or why Ember could not run
  bool ember_ran = false;
  double ember_ns = NAN;  // median wall time of verify()
  VerifyStats stats;
  int64_t rss_delta = -1;  // bytes
  KernelStats k;
};

// The kernel's BPF_LOG_STATS lines: "verification time 12 usec" and
// "processed 5 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0".
void parse_stats_log(const char* log, KernelStats& k) {
  if (const char* p = std::strstr(log, "verification time ")) {
    long long us = 0;
    if (std::sscanf(p, "verification time %lld usec", &us) == 1)
      k.verify_ns = static_cast<double>(us) * 1000.0;
  }
  if (const char* p = std::strstr(log, "total_states ")) {
    long long t = 0, pk = 0;
    if (std::sscanf(p, "total_states %lld peak_states %lld", &t, &pk) == 2) k.states = t, k.peak_states = pk;
  }
}

int64_t verified_insns(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return -1;
  return info.verified_insns;
}

// ------------------------------------------------ Ember

// Runs verify() `runs` times; the median wall time, the stats of the last run.
void time_ember(const Program& prog, const VerifyInput& in, int runs, Row& row) {
  std::vector<double> t;
  VerifyResult r;
  for (int i = 0; i < runs; ++i) {
    uint64_t t0 = now_ns();
    r = verify(prog, in);
    t.push_back(static_cast<double>(now_ns() - t0));
    // A program that takes seconds (the analysis budget running out) gets three runs.
    if (i == 0 && t[0] > 1e9) runs = std::min(runs, 3);
  }
  row.ember_ran = true;
  row.ember_ok = r.ok;
  if (!r.ok) row.ember_note = "Ember rejects: " + std::string(reason_name(r.reason));
  row.ember_ns = median(t);
  row.stats = r.stats;
}

int64_t current_rss() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, resident = 0;
  int n = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

// The peak RSS growth of one verify(), in a child process.
int64_t rss_delta(const Program& prog, const VerifyInput& in) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(pipefd[0]);
    // A trivial program first, so that the verifier's code is paged in and
    // not counted as the program's memory.
    RawInsn trivial[2] = {{0xb7, 0, 0, 0}, {0x95, 0, 0, 0}};
    if (auto t = decode(trivial)) (void)verify(*t, VerifyInput{});
    int64_t before = current_rss();
    VerifyResult r = verify(prog, in);
    (void)r;
    if (write(pipefd[1], &before, sizeof before) != sizeof before) _exit(1);
    _exit(0);
  }
  close(pipefd[1]);
  int64_t before = -1;
  if (read(pipefd[0], &before, sizeof before) != sizeof before) before = -1;
  close(pipefd[0]);
  int status = 0;
  rusage ru{};
  if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || before < 0)
    return -1;
  return std::max<int64_t>(0, static_cast<int64_t>(ru.ru_maxrss) * 1024 - before);
}

// ------------------------------------------------ objects in the kernel

// Loads the object with libbpf `runs` times (only `only` autoloaded, if
// given) and fills in the kernel's numbers of every program loaded, by name.
// An error if the object did not load.
Status kernel_object(const std::string& path, const std::string& only, int runs,
                     std::vector<std::pair<std::string, KernelStats>>& out) {
  std::vector<std::pair<std::string, std::vector<double>>> times;
  for (int run = 0; run <= runs; ++run) {
    bool stats_run = run == runs;  // the last load logs BPF_LOG_STATS
    bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
    if (!obj) return fail("libbpf cannot open it: ", std::strerror(errno));
    std::unique_ptr<bpf_object, void (*)(bpf_object*)> closer(obj, bpf_object__close);
    std::vector<std::unique_ptr<char[]>> logs;
    // No pinning: it changes nothing for the verifier, and needs a BPF FS.
    bpf_map* m;
    bpf_object__for_each_map(m, obj) bpf_map__set_pin_path(m, nullptr);
    bpf_program* p;
    bpf_object__for_each_program(p, obj) {
      if (!only.empty() && only != bpf_program__name(p)) bpf_program__set_autoload(p, false);
      if (stats_run) {
        logs.push_back(std::make_unique<char[]>(1 << 16));
        logs.back()[0] = 0;
        bpf_program__set_log_buf(p, logs.back().get(), 1 << 16);
        bpf_program__set_log_level(p, 4);
      }
    }
    g_loads.clear();
    g_recording = true;
    int err = bpf_object__load(obj);
    g_recording = false;
    if (err) {
      for (const LoadRecord& l : g_loads)
        if (l.result < 0) return fail("the kernel rejects it (", std::strerror(-err), ")");
      return fail("libbpf cannot load it: ", std::strerror(-err));
    }
    size_t li = 0;
    bpf_object__for_each_program(p, obj) {
      const char* log = stats_run ? logs[li++].get() : nullptr;
      if (!bpf_program__autoload(p)) continue;
      std::string name = bpf_program__name(p);
      // The kernel keeps 15 characters of a name; the last load of that name.
      std::string key = name.substr(0, BPF_OBJ_NAME_LEN - 1);
      const LoadRecord* rec = nullptr;
      for (const LoadRecord& l : g_loads)
        if (l.name == key && l.result >= 0) rec = &l;
      auto it = std::find_if(times.begin(), times.end(), [&](auto& t) { return t.first == name; });
      if (it == times.end()) {
        times.push_back({name, {}});
        out.push_back({name, KernelStats{}});
        it = times.end() - 1;
      }
      KernelStats& k = std::find_if(out.begin(), out.end(), [&](auto& o) { return o.first == name; })->second;
      k.loaded = true;
      if (stats_run) {
        parse_stats_log(log, k);
        k.verified_insns = verified_insns(bpf_program__fd(p));
      } else if (rec) {
        it->second.push_back(static_cast<double>(rec->ns));
      }
    }
  }
  for (auto& [name, t] : times) {
    KernelStats& k = std::find_if(out.begin(), out.end(), [&](auto& o) { return o.first == name; })->second;
    k.load_ns = median(t);
    if (t.empty()) k.error = "no BPF_PROG_LOAD seen under its name";
  }
  return ok_status();
}

void run_objects(const Options& o, bool kernel_ok, std::vector<Row>& rows) {
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator(EMBER_BENCH_BPF_DIR))
    if (e.path().string().ends_with(".bpf.o")) paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  for (const std::string& path : paths) {
    std::string stem = std::filesystem::path(path).filename().string();
    stem = stem.substr(0, stem.size() - 6);
    // The kernel first: the whole object, else each program on its own.
    std::vector<std::pair<std::string, KernelStats>> kernel;
    std::string kernel_error = kernel_ok ? "" : "no bpf()";
    if (kernel_ok) {
      if (auto st = kernel_object(path, "", o.kernel_runs, kernel); !st) {
        kernel.clear();
        kernel_error = st.error().message;
        if (bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr)) {
          std::vector<std::string> names;
          bpf_program* p;
          bpf_object__for_each_program(p, obj) names.push_back(bpf_program__name(p));
          bpf_object__close(obj);
          for (const std::string& n : names) {
            std::vector<std::pair<std::string, KernelStats>> one;
            if (auto s1 = kernel_object(path, n, o.kernel_runs, one); s1 && !one.empty())
              kernel.push_back(one.front());
            else
              kernel.push_back({n, KernelStats{false, s1 ? "not loaded" : s1.error().message}});
          }
        }
      }
    }
    auto kernel_for = [&](const std::string& name) {
      for (auto& [n, k] : kernel)
        if (n == name) return k;
      return KernelStats{false, kernel_error.empty() ? "not loaded" : kernel_error};
    };
    Runtime rt;
    auto obj = Object::open_file(rt, path);
    Status loaded = obj ? (*obj)->load() : Status(obj.error());
    if (!loaded) {
      // Ember's loader refuses the object: one row per program the kernel has.
      std::string why = loaded.error().message;
      if (why.starts_with(path + ": ")) why = why.substr(path.size() + 2);
      why = "Ember's loader refuses it: " + why.substr(0, 70);
      for (auto& [n, k] : kernel) {
        Row r{"object", stem + "/" + n};
        r.ember_note = why;
        r.k = k;
        rows.push_back(r);
      }
      if (kernel.empty()) {
        Row r{"object", stem};
        r.ember_note = why;
        r.k.error = kernel_error;
        rows.push_back(r);
      }
      continue;
    }
    for (Prog* p : (*obj)->progs()) {
      Row r{"object", stem + "/" + p->name()};
      if (!o.filter.empty() && r.name.find(o.filter) == std::string::npos) continue;
      r.slots = p->code().raw.size();
      VerifyInput in = p->verify_input();
      time_ember(p->code(), in, o.runs, r);
      r.rss_delta = rss_delta(p->code(), in);
      r.k = kernel_for(p->name());
      rows.push_back(r);
      std::fprintf(stderr, ".");
    }
  }
}

// ------------------------------------------------ fixtures in the kernel

Status load_btf(const std::vector<uint8_t>& bytes, Fd& fd) {
  LIBBPF_OPTS(bpf_btf_load_opts, bo);
  int r = bpf_btf_load(bytes.data(), bytes.size(), &bo);
  if (r < 0) return fail("BPF_BTF_LOAD: ", std::strerror(errno));
  fd = Fd(r);
  return ok_status();
}

// A map as kernel_verify_fixture creates it (with BTF for a spin lock).
Result<Fd> create_map(const MapSpec& m, int32_t lock_off) {
  Fd inner;
  if (m.inner) {
    auto in = create_map(*m.inner, -1);
    if (!in) return in.error();
    inner = std::move(*in);
  }
  LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = m.map_flags, .map_extra = m.map_extra);
  if (inner.get() >= 0) mo.inner_map_fd = static_cast<uint32_t>(inner.get());
  Fd btf;
  if (lock_off >= 0) {
    testing::BtfBuilder b;
    uint32_t u8 = b.int_type("unsigned char", 1, false);
    uint32_t i32 = b.int_type("int", 4);
    uint32_t idx = b.int_type("unsigned int", 4, false);
    uint32_t lock = b.struct_type("bpf_spin_lock", 4, {{"val", i32, 0}});
    uint32_t key = m.key_size == 4 ? i32 : m.key_size > 0 ? b.array(u8, idx, m.key_size) : 0;
    uint32_t value =
        b.struct_type("value", m.value_size, {{"lock", lock, static_cast<uint32_t>(lock_off) * 8}});
    if (auto st = load_btf(b.bytes(), btf); !st) return st.error();
    mo.btf_fd = static_cast<uint32_t>(btf.get());
    mo.btf_key_type_id = key;
    mo.btf_value_type_id = value;
  }
  int fd = bpf_map_create(static_cast<bpf_map_type>(m.type), m.name.substr(0, 15).c_str(), m.key_size,
                          m.value_size, m.max_entries, &mo);
  if (fd < 0) return fail("BPF_MAP_CREATE: ", std::strerror(errno));
  return Fd(fd);
}

KernelStats kernel_fixture(const testing::VerifierFixture& f, int runs) {
  KernelStats k;
  std::vector<Fd> maps;
  for (size_t i = 0; i < f.maps.size(); ++i) {
    auto fd = create_map(f.maps[i], f.lock_offsets[i]);
    if (!fd) return KernelStats{false, "map " + std::to_string(i) + ": " + fd.error().message};
    maps.push_back(std::move(*fd));
  }
  std::vector<RawInsn> insns = f.insns;
  std::vector<uint32_t> starts = {0};
  for (size_t i = 0; i < insns.size(); ++i) {
    RawInsn& r = insns[i];
    if (r.opcode == 0x18 && i + 1 < insns.size()) {
      uint8_t src = r.src();
      if (src == 5 || src == 6) {  // map[idx:N] / map_value[idx:N] -> map fd / map value
        r.set_regs(r.dst(), src == 5 ? BPF_PSEUDO_MAP_FD : BPF_PSEUDO_MAP_VALUE);
        r.imm = maps[static_cast<size_t>(r.imm)].get();
      }
    }
    bool call = r.opcode == 0x85 && r.src() == BPF_PSEUDO_CALL;
    bool func = r.opcode == 0x18 && r.src() == BPF_PSEUDO_FUNC;
    if (call || func) starts.push_back(static_cast<uint32_t>(static_cast<int64_t>(i) + 1 + r.imm));
    if (r.opcode == 0x18) ++i;
  }
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  LIBBPF_OPTS(bpf_prog_load_opts, po);
  po.expected_attach_type =
      f.attach == AttachType::None ? static_cast<bpf_attach_type>(0) : static_cast<bpf_attach_type>(f.attach);
  if (f.sleepable) po.prog_flags |= BPF_F_SLEEPABLE;
  Fd btf;
  std::vector<bpf_func_info> info;
  if (starts.size() > 1) {  // BTF func_info, one static "int fN(void)" per function
    testing::BtfBuilder b;
    uint32_t i32 = b.int_type("int", 4);
    uint32_t proto = b.func_proto(i32, {});
    std::vector<std::string> names;
    for (size_t i = 0; i < starts.size(); ++i) names.push_back("f" + std::to_string(i));
    for (size_t i = 0; i < starts.size(); ++i)
      info.push_back({starts[i], b.raw(names[i], 12, 0, false, proto)});
    if (auto st = load_btf(b.bytes(), btf); !st) return KernelStats{false, st.error().message};
    po.prog_btf_fd = static_cast<uint32_t>(btf.get());
    po.func_info = info.data();
    po.func_info_rec_size = sizeof(bpf_func_info);
    po.func_info_cnt = static_cast<uint32_t>(info.size());
  }
  auto load = [&](bool stats, char* log) {
    po.log_level = stats ? 4 : 0;
    po.log_buf = stats ? log : nullptr;
    po.log_size = stats ? (1u << 16) : 0;
    g_loads.clear();
    g_recording = true;
    int fd = bpf_prog_load(static_cast<bpf_prog_type>(f.type), nullptr, f.license.c_str(),
                           reinterpret_cast<const bpf_insn*>(insns.data()), insns.size(), &po);
    g_recording = false;
    return fd;
  };
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    int fd = load(false, nullptr);
    if (fd < 0) return KernelStats{false, std::string("the kernel rejects it: ") + std::strerror(errno)};
    close(fd);
    if (!g_loads.empty()) t.push_back(static_cast<double>(g_loads.back().ns));
  }
  auto log = std::make_unique<char[]>(1 << 16);
  log[0] = 0;
  if (int fd = load(true, log.get()); fd >= 0) {
    parse_stats_log(log.get(), k);
    k.verified_insns = verified_insns(fd);
    close(fd);
  }
  k.loaded = true;
  k.load_ns = median(t);
  return k;
}

void run_fixtures(const Options& o, bool kernel_ok, std::vector<Row>& rows) {
  for (const std::string& path : testing::fixture_paths()) {
    if (path.find("/accept/") == std::string::npos) continue;
    auto f = testing::parse_fixture(path);
    if (!f) {
      std::fprintf(stderr, "%s\n", f.error().message.c_str());
      continue;
    }
    Row r{"fixture", f->name};
    if (!o.filter.empty() && r.name.find(o.filter) == std::string::npos) continue;
    r.slots = f->insns.size();
    if (!f->kernel_accept) r.k.error = "the kernel rejects it (" + f->kernel_note.substr(0, 40) + ")";
    auto prog = decode(f->insns);
    if (!prog) {
      r.ember_note = "does not decode: " + prog.error().message;
    } else {
      VerifyInput in;
      in.type = f->type;
      in.attach = f->attach;
      in.sleepable = f->sleepable;
      in.gpl = f->gpl;
      in.maps = f->maps;
      time_ember(*prog, in, o.runs, r);
      r.rss_delta = rss_delta(*prog, in);
    }
    if (!kernel_ok)
      r.k.error = "no bpf()";
    else if (f->kernel_accept)
      r.k = kernel_fixture(*f, o.kernel_runs);
    rows.push_back(r);
    std::fprintf(stderr, ".");
  }
}

// ------------------------------------------------ the table

std::string fmt_us(double ns) {
  if (std::isnan(ns)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", ns / 1000.0);
  return b;
}
std::string fmt_i(int64_t v) { return v < 0 ? "-" : std::to_string(v); }

struct Geo {
  double log_sum = 0;
  int n = 0;
  int slower = 0;
  void add(double r) {
    log_sum += std::log(r);
    ++n;
    slower += r > 1;
  }
  double mean() const { return n ? std::exp(log_sum / n) : NAN; }
};

void report(const std::vector<Row>& rows, int runs, int kernel_runs) {
  std::printf(
      "\nEmber verify() wall time (median of %d runs) against the kernel's BPF_PROG_LOAD (median of %d "
      "loads)\n"
      "and the kernel's own \"verification time\" (BPF_LOG_STATS, microsecond resolution); times in us;\n"
      "ratio = ember / kernel load (< 1: Ember is faster); mem = Ember's peak state memory (KiB) and\n"
      "the peak RSS growth of one verify() in a forked child (KiB)\n\n",
      runs, kernel_runs);
  std::printf("%-40s %6s %4s %10s %8s %7s %7s %8s %8s | %10s %9s %8s %7s %7s %8s\n", "program", "slots", "ok",
              "ember_us", "insns", "states", "peak", "mem_KiB", "rss_KiB", "kload_us", "kverif_us", "kinsns",
              "kstates", "kpeak", "ratio");
  Geo all[2], both[2], vs_verif[2], big;  // big: the kernel's verification took >= 100 us
  uint64_t max_mem = 0;
  int64_t max_rss = 0;
  std::string max_mem_name, max_rss_name;
  for (const Row& r : rows) {
    int g = r.group == "object" ? 0 : 1;
    double ratio = (r.ember_ran && r.k.loaded) ? r.ember_ns / r.k.load_ns : NAN;
    if (!std::isnan(ratio)) {
      all[g].add(ratio);
      if (r.ember_ok) both[g].add(ratio);
      if (r.k.verify_ns >= 100e3) big.add(ratio);
      if (r.ember_ok && !std::isnan(r.k.verify_ns))
        vs_verif[g].add(r.ember_ns / std::max(r.k.verify_ns, 1000.0));
    }
    if (r.ember_ran && r.stats.peak_memory > max_mem) max_mem = r.stats.peak_memory, max_mem_name = r.name;
    if (r.rss_delta > max_rss) max_rss = r.rss_delta, max_rss_name = r.name;
    char ratio_s[32] = "-";
    if (!std::isnan(ratio)) std::snprintf(ratio_s, sizeof ratio_s, "%.2f", ratio);
    std::printf("%-40s %6zu %4s %10s %8s %7s %7s %8s %8s | %10s %9s %8s %7s %7s %8s",
                r.name.substr(0, 40).c_str(), r.slots, r.ember_ran ? (r.ember_ok ? "yes" : "NO") : "-",
                fmt_us(r.ember_ns).c_str(),
                r.ember_ran ? fmt_i(static_cast<int64_t>(r.stats.insns_processed)).c_str() : "-",
                r.ember_ran ? fmt_i(static_cast<int64_t>(r.stats.states)).c_str() : "-",
                r.ember_ran ? fmt_i(static_cast<int64_t>(r.stats.peak_states)).c_str() : "-",
                r.ember_ran ? fmt_i(static_cast<int64_t>(r.stats.peak_memory / 1024)).c_str() : "-",
                fmt_i(r.rss_delta < 0 ? -1 : r.rss_delta / 1024).c_str(), fmt_us(r.k.load_ns).c_str(),
                fmt_us(r.k.verify_ns).c_str(), fmt_i(r.k.verified_insns).c_str(), fmt_i(r.k.states).c_str(),
                fmt_i(r.k.peak_states).c_str(), ratio_s);
    std::string note = r.ember_note;
    if (!r.k.loaded) note += std::string(note.empty() ? "" : "; ") + "kernel skipped: " + r.k.error;
    std::printf("%s%s\n", note.empty() ? "" : "  ", note.c_str());
  }
  const char* groups[2] = {"objects", "fixtures"};
  std::printf("\n");
  Geo total_all, total_both, total_verif;
  for (int g = 0; g < 2; ++g) {
    std::printf(
        "%-8s geometric mean ember/kernel_load: %.3f over %d programs both verifiers accept (Ember slower on "
        "%d); "
        "%.3f over all %d the kernel loads (Ember slower on %d); ember/kernel_verification_time %.3f over "
        "%d\n",
        groups[g], both[g].mean(), both[g].n, both[g].slower, all[g].mean(), all[g].n, all[g].slower,
        vs_verif[g].mean(), vs_verif[g].n);
    total_all.log_sum += all[g].log_sum, total_all.n += all[g].n, total_all.slower += all[g].slower;
    total_both.log_sum += both[g].log_sum, total_both.n += both[g].n, total_both.slower += both[g].slower;
    total_verif.log_sum += vs_verif[g].log_sum, total_verif.n += vs_verif[g].n;
  }
  std::printf(
      "all      geometric mean ember/kernel_load: %.3f over %d programs both accept (Ember slower on %d); "
      "%.3f over "
      "all %d (Ember slower on %d); ember/kernel_verification_time %.3f over %d\n",
      total_both.mean(), total_both.n, total_both.slower, total_all.mean(), total_all.n, total_all.slower,
      total_verif.mean(), total_verif.n);
  std::printf(
      "programs whose kernel verification time is >= 100 us: geometric mean ember/kernel_load %.3f over %d "
      "(Ember slower on %d)\n",
      big.mean(), big.n, big.slower);
  std::printf("max peak state memory: %.1f KiB (%s); max peak RSS growth: %.1f KiB (%s)\n", max_mem / 1024.0,
              max_mem_name.c_str(), static_cast<double>(max_rss) / 1024.0, max_rss_name.c_str());
}

int run(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc)
      o.runs = std::max(1, std::atoi(argv[++i]));
    else if (a == "--kernel-runs" && i + 1 < argc)
      o.kernel_runs = std::max(1, std::atoi(argv[++i]));
    else if (a == "--filter" && i + 1 < argc)
      o.filter = argv[++i];
    else if (a == "--objects-only")
      o.fixtures = false;
    else if (a == "--fixtures-only")
      o.objects = false;
    else if (a == "--no-kernel")
      o.kernel = false;
    else if (a == "--verbose")
      o.verbose = true;
    else {
      std::fprintf(
          stderr,
          "usage: %s [--runs N] [--kernel-runs N] [--filter SUBSTR] [--objects-only | --fixtures-only] "
          "[--no-kernel] [--verbose]\n",
          argv[0]);
      return 2;
    }
  }
  // Ember pins maps in its run directory: a fresh one, removed at the end.
  char tmpl[] = "/tmp/ember-vbench-XXXXXX";
  const char* run_dir = mkdtemp(tmpl);
  if (run_dir) setenv("EMBER_RUN_DIR", run_dir, 1);
  std::string why;
  bool kernel_ok = o.kernel && testing::kernel_bpf_available(&why);
  if (!o.kernel) why = "--no-kernel";
  if (!kernel_ok) std::printf("kernel column skipped: bpf() is not available here (%s)\n", why.c_str());
  libbpf_set_print(o.verbose ? libbpf_to_stderr : nullptr);
  std::vector<Row> rows;
  if (o.objects) run_objects(o, kernel_ok, rows);
  if (o.fixtures) run_fixtures(o, kernel_ok, rows);
  report(rows, o.runs, o.kernel_runs);
  std::error_code ec;
  if (run_dir) std::filesystem::remove_all(run_dir, ec);
  return 0;
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) { return ember::bench::run(argc, argv); }
