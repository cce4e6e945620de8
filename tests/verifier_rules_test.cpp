// The program-type rules (src/verifier/prog_type_rules.cpp) against the
// running kernel: every context offset and size, read and written, every
// helper of Ember's table, and return values, for each program type Ember
// models. The kernel is the oracle; where Ember deliberately differs, the
// difference is listed below with its reason (known_ctx_disagreement,
// known_helper_disagreement), never skipped silently.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "ember/btf.hpp"
#include "ember/helpers.hpp"
#include "ember/prog_types.hpp"
#include "support/kernel_bpf.hpp"
#include "verifier/prog_type_rules.hpp"

namespace ember::verifier {
// Defined in prog_type_rules.cpp, not (yet) declared in its header.
const ProgTypeRules& rules_for(ProgType type, AttachType attach);
CtxAccess check_ctx_access(ProgType type, AttachType attach, int64_t off, int size, bool write);
bool helper_allowed(ProgType type, AttachType attach, int32_t helper_id, bool gpl, std::string* why);
}  // namespace ember::verifier

namespace ember::verifier {
namespace {

// ------------------------------------------------------------ pure checks

TEST(VerifierRules, SkBuffFields) {
  // Typical fields, read and written, per type.
  auto ok = [](ProgType t, int64_t off, int size, bool write) {
    return check_ctx_access(t, off, size, write).ok;
  };
  for (ProgType t : {ProgType::SocketFilter, ProgType::SchedCls, ProgType::CgroupSkb}) {
    EXPECT_TRUE(ok(t, 0, 4, false));     // len
    EXPECT_TRUE(ok(t, 0, 2, false));     // narrow len
    EXPECT_TRUE(ok(t, 1, 1, false));     // a byte of len
    EXPECT_FALSE(ok(t, 0, 8, false));    // len + pkt_type
    EXPECT_FALSE(ok(t, 2, 4, false));    // misaligned
    EXPECT_FALSE(ok(t, 0, 4, true));     // len is read-only
    EXPECT_TRUE(ok(t, 48, 8, true));     // cb[0..1]
    EXPECT_TRUE(ok(t, 67, 1, true));     // last byte of cb[4]
    EXPECT_FALSE(ok(t, 64, 8, false));   // runs past cb[4]
    EXPECT_FALSE(ok(t, 144, 8, false));  // flow_keys
    EXPECT_FALSE(ok(t, 192, 4, false));  // past the end
    EXPECT_FALSE(ok(t, -4, 4, false));
  }
  EXPECT_FALSE(ok(ProgType::SocketFilter, 8, 4, true));  // mark: socket filters write cb only
  EXPECT_TRUE(ok(ProgType::SchedCls, 8, 4, true));       // mark
  EXPECT_FALSE(ok(ProgType::SchedCls, 8, 2, true));      // narrow writes are refused
  EXPECT_TRUE(ok(ProgType::SchedAct, 12, 4, true));      // queue_mapping
  EXPECT_TRUE(ok(ProgType::SchedCls, 152, 8, true));     // tstamp
  EXPECT_FALSE(ok(ProgType::SchedCls, 152, 4, false));   // tstamp is read whole
  EXPECT_TRUE(ok(ProgType::SchedCls, 180, 1, false));    // tstamp_type
  EXPECT_FALSE(ok(ProgType::CgroupSkb, 180, 1, false));
  EXPECT_FALSE(ok(ProgType::SchedCls, 92, 4, false));  // remote_ip4: sk_skb only
  EXPECT_TRUE(ok(ProgType::CgroupSkb, 92, 4, false));
  EXPECT_FALSE(ok(ProgType::CgroupSkb, 92, 2, false));  // must be whole
  EXPECT_TRUE(ok(ProgType::CgroupSkb, 184, 8, false));  // hwtstamp
  EXPECT_FALSE(ok(ProgType::SocketFilter, 184, 8, false));

  CtxAccess d = check_ctx_access(ProgType::SchedCls, 76, 4, false);
  EXPECT_TRUE(d.ok);
  EXPECT_EQ(d.value, CtxValue::PacketData);
  EXPECT_EQ(check_ctx_access(ProgType::SchedCls, 80, 4, false).value, CtxValue::PacketEnd);
  EXPECT_EQ(check_ctx_access(ProgType::SchedCls, 140, 4, false).value, CtxValue::PacketMeta);
  EXPECT_EQ(check_ctx_access(ProgType::CgroupSkb, 76, 4, false).value, CtxValue::PacketData);
  EXPECT_FALSE(check_ctx_access(ProgType::CgroupSkb, 140, 4, false).ok);  // no data_meta
  EXPECT_FALSE(check_ctx_access(ProgType::SchedCls, 76, 2, false).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::SchedCls, 76, 4, true).ok);
  CtxAccess sf = check_ctx_access(ProgType::SocketFilter, 76, 4, false);
  EXPECT_FALSE(sf.ok);
  EXPECT_NE(sf.why.find("socket filter"), std::string::npos) << sf.why;
  EXPECT_EQ(check_ctx_access(ProgType::SchedCls, 8, 4, false).value, CtxValue::Scalar);
}

TEST(VerifierRules, OtherContexts) {
  // xdp_md
  EXPECT_EQ(check_ctx_access(ProgType::Xdp, 0, 4, false).value, CtxValue::PacketData);
  EXPECT_EQ(check_ctx_access(ProgType::Xdp, 4, 4, false).value, CtxValue::PacketEnd);
  EXPECT_EQ(check_ctx_access(ProgType::Xdp, 8, 4, false).value, CtxValue::PacketMeta);
  EXPECT_TRUE(check_ctx_access(ProgType::Xdp, 12, 4, false).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::Xdp, 12, 2, false).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::Xdp, 12, 4, true).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::Xdp, 20, 4, false).ok);  // egress_ifindex: devmap only
  EXPECT_TRUE(check_ctx_access(ProgType::Xdp, AttachType::XdpDevmap, 20, 4, false).ok);
  // pt_regs
  EXPECT_TRUE(check_ctx_access(ProgType::Kprobe, 160, 8, false).ok);
  EXPECT_TRUE(check_ctx_access(ProgType::Kprobe, 3, 1, false).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::Kprobe, 168, 1, false).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::Kprobe, 0, 8, true).ok);
  // tracepoint
  EXPECT_FALSE(check_ctx_access(ProgType::Tracepoint, 0, 8, false).ok);
  EXPECT_TRUE(check_ctx_access(ProgType::Tracepoint, 8, 8, false).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::Tracepoint, 8, 8, true).ok);
  // raw tracepoint, tracing
  EXPECT_TRUE(check_ctx_access(ProgType::RawTracepoint, 88, 8, false).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::RawTracepoint, 96, 8, false).ok);
  EXPECT_TRUE(check_ctx_access(ProgType::Tracing, 0, 8, false).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::Tracing, 0, 8, true).ok);
  // syscall: anything below 65535, read and written
  EXPECT_TRUE(check_ctx_access(ProgType::Syscall, 65528, 4, true).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::Syscall, 65535, 1, false).ok);
  EXPECT_FALSE(check_ctx_access(ProgType::Syscall, 2, 4, false).ok);
  // bad sizes; types Ember does not model
  EXPECT_FALSE(check_ctx_access(ProgType::Syscall, 0, 3, false).ok);
  CtxAccess other = check_ctx_access(ProgType::SockOps, 0, 4, false);
  EXPECT_FALSE(other.ok);
  EXPECT_NE(other.why.find("sock_ops"), std::string::npos) << other.why;
  EXPECT_EQ(rules_for(ProgType::SockOps).ctx_size, 0u);
  EXPECT_FALSE(rules_for(ProgType::SockOps).ret_checked);
  EXPECT_EQ(rules_for(static_cast<ProgType>(1000)).ctx_size, 0u);
}

TEST(VerifierRules, RulesTable) {
  EXPECT_FALSE(rules_for(ProgType::SocketFilter).packet);
  EXPECT_TRUE(rules_for(ProgType::SchedCls).packet_write);
  EXPECT_TRUE(rules_for(ProgType::Xdp).packet_write);
  EXPECT_TRUE(rules_for(ProgType::CgroupSkb).packet);
  EXPECT_FALSE(rules_for(ProgType::CgroupSkb).packet_write);
  EXPECT_EQ(rules_for(ProgType::Kprobe).ctx_size, 168u);
  EXPECT_EQ(rules_for(ProgType::Xdp).ctx_size, 24u);
  EXPECT_EQ(rules_for(ProgType::Syscall).ctx_size, 65535u);
  const ProgTypeRules& cg = rules_for(ProgType::CgroupSkb);
  EXPECT_TRUE(cg.ret_checked);
  EXPECT_EQ(cg.ret_min, 0);
  EXPECT_EQ(cg.ret_max, 1);
  EXPECT_EQ(rules_for(ProgType::CgroupSkb, AttachType::CgroupInetEgress).ret_max, 3);
  EXPECT_EQ(rules_for(ProgType::Tracing).ret_max, 0);
  EXPECT_FALSE(rules_for(ProgType::Tracing, AttachType::ModifyReturn).ret_checked);
  EXPECT_FALSE(rules_for(ProgType::Xdp).ret_checked);
  for (ProgType t : {ProgType::SocketFilter, ProgType::Xdp, ProgType::Kprobe, ProgType::Syscall})
    EXPECT_FALSE(rules_for(t).may_leak_pointers);
}

TEST(VerifierRules, HelperBasics) {
  std::string why;
  EXPECT_TRUE(helper_allowed(ProgType::SocketFilter, 1, false, &why)) << why;
  EXPECT_FALSE(helper_allowed(ProgType::SocketFilter, 4, true, &why));
  EXPECT_NE(why.find("bpf_probe_read"), std::string::npos) << why;
  EXPECT_TRUE(helper_allowed(ProgType::Kprobe, 4, true, &why)) << why;
  EXPECT_FALSE(helper_allowed(ProgType::Kprobe, 4, false, &why));
  EXPECT_NE(why.find("GPL"), std::string::npos) << why;
  EXPECT_TRUE(helper_allowed(ProgType::Kprobe, 5, false, &why)) << why;      // ktime_get_ns: not GPL-only
  EXPECT_TRUE(helper_allowed(ProgType::PerfEvent, 27, false, &why)) << why;  // get_stackid_pe: not GPL-only
  EXPECT_FALSE(helper_allowed(ProgType::Kprobe, 27, false, &why));
  EXPECT_FALSE(helper_allowed(ProgType::Xdp, 99999, true, &why));
  EXPECT_NE(why.find("99999"), std::string::npos) << why;
  EXPECT_FALSE(helper_allowed(ProgType::Xdp, -1, true, &why));
  EXPECT_TRUE(helper_allowed(ProgType::SockOps, 1, true, &why)) << why;  // bpf_base_func_proto
  EXPECT_FALSE(helper_allowed(ProgType::SockOps, 25, true, &why));
  EXPECT_FALSE(helper_allowed(ProgType::Tracing, AttachType::TraceRawTp, 173, true, &why));
  EXPECT_TRUE(helper_allowed(ProgType::Tracing, AttachType::TraceFentry, 173, true, &why)) << why;
  // Every helper of Ember's table has a rule.
  HelperTable table = default_helper_table();
  for (const HelperDef* h : table.all()) {
    bool any = false;
    for (ProgType t : {ProgType::SocketFilter, ProgType::Kprobe, ProgType::Xdp, ProgType::Syscall})
      any = any || helper_allowed(t, h->id, true, nullptr);
    EXPECT_TRUE(any) << h->name << " has no rule";
  }
}

// ------------------------------------------------------- the kernel oracle

struct LoadSpec {
  ProgType type;
  AttachType attach = AttachType::None;  // for Ember; the kernel gets attach_kernel
  uint32_t attach_kernel = 0;
  uint32_t btf_id = 0;
  uint32_t flags = 0;
  uint32_t nargs = 0;  // tracing: the traced function's arguments
};

struct LoadResult {
  bool ok = false;
  int err = 0;  // errno of a rejection
  std::string log;
};

bpf_insn I(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}
bpf_insn mov_imm(uint8_t dst, int32_t imm) { return I(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
bpf_insn exit_insn() { return I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }
uint8_t size_code(int size) { return size == 1 ? BPF_B : size == 2 ? BPF_H : size == 4 ? BPF_W : BPF_DW; }

// BPF_PROG_LOAD with what kernel_load does not pass (expected attach type,
// attach BTF id, flags, license).
LoadResult kernel_load_prog(const LoadSpec& s, const std::vector<bpf_insn>& insns, bool want_log,
                            const char* license = "GPL") {
  static char logbuf[1 << 16];
  bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.prog_type = static_cast<uint32_t>(s.type);
  a.insns = reinterpret_cast<uint64_t>(insns.data());
  a.insn_cnt = static_cast<uint32_t>(insns.size());
  a.license = reinterpret_cast<uint64_t>(license);
  a.expected_attach_type = s.attach_kernel;
  a.attach_btf_id = s.btf_id;
  a.prog_flags = s.flags;
  if (want_log) {
    logbuf[0] = 0;
    a.log_buf = reinterpret_cast<uint64_t>(logbuf);
    a.log_size = sizeof logbuf;
    a.log_level = 1;
  }
  int fd = static_cast<int>(syscall(__NR_bpf, BPF_PROG_LOAD, &a, sizeof a));
  LoadResult r;
  r.ok = fd >= 0;
  r.err = fd >= 0 ? 0 : errno;
  if (fd >= 0) close(fd);
  if (want_log) r.log = logbuf;
  return r;
}

std::string last_reason(const LoadResult& r) {
  const std::string& log = r.log;
  if (log.empty()) return "errno " + std::to_string(r.err) + ", empty log";
  size_t end = log.find("processed ");
  std::string s = log.substr(0, end == std::string::npos ? log.size() : end);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

std::optional<std::string> oracle_unavailable() {
  std::string why;
  if (!testing::kernel_bpf_available(&why)) return "kernel bpf() unavailable (needs root): " + why;
  return std::nullopt;
}

// vmlinux BTF ids (0 if absent): functions for fentry, typedefs
// btf_trace_<tracepoint> for tp_btf.
uint32_t vmlinux_btf_id(const char* name, BtfKind kind) {
  static const std::optional<Btf> btf = []() -> std::optional<Btf> {
    auto b = Btf::load_file(Btf::kVmlinuxPath);
    if (!b) return std::nullopt;
    return std::move(*b);
  }();
  return btf ? btf->find(name, kind) : 0u;
}

constexpr uint32_t kTraceRawTp = 23, kFentry = 24;  // BPF_TRACE_RAW_TP, BPF_TRACE_FENTRY

// The covered types as the kernel loads them. Tracing needs a BTF id:
// fentry on net/bpf/test_run.c's bpf_fentry_test6 (u64, void *, short, int,
// void *, u64: 6 arguments) where the kernel lets us load fentry programs,
// and tp_btf on sched_switch (bool, task *, task *, unsigned int: 4).
std::vector<LoadSpec> covered_specs(std::string* skipped) {
  std::vector<LoadSpec> v = {
      {ProgType::SocketFilter},
      {ProgType::SchedCls},
      {ProgType::SchedAct},
      {ProgType::Xdp},
      {ProgType::Xdp, AttachType::XdpDevmap, 33},
      {ProgType::Kprobe},
      {ProgType::Tracepoint},
      {ProgType::RawTracepoint},
      {ProgType::RawTracepointWritable},
      {ProgType::PerfEvent},
      {ProgType::CgroupSkb},
      {ProgType::CgroupSkb, AttachType::CgroupInetEgress, 1},
      // Syscall programs must be sleepable ("Syscall programs can only be
      // sleepable").
      {ProgType::Syscall, AttachType::None, 0, 0, BPF_F_SLEEPABLE},
  };
  std::string why;
  if (uint32_t id = vmlinux_btf_id("btf_trace_sched_switch", BtfKind::Typedef))
    v.push_back({ProgType::Tracing, AttachType::TraceRawTp, kTraceRawTp, id, 0, 4});
  else
    why += "tp_btf: btf_trace_sched_switch is not in " + std::string(Btf::kVmlinuxPath) + "; ";
  if (uint32_t id = vmlinux_btf_id("bpf_fentry_test6", BtfKind::Func)) {
    LoadSpec fentry{ProgType::Tracing, AttachType::TraceFentry, kFentry, id, 0, 6};
    LoadResult r = kernel_load_prog(fentry, {mov_imm(0, 0), exit_insn()}, false);
    if (r.ok)
      v.push_back(fentry);
    else
      why += "fentry: this kernel refuses to load any fentry program (errno " + std::to_string(r.err) +
             (r.err == EPERM ? ", EPERM: trampolines not permitted here" : "") + "); ";
  } else {
    why += "fentry: bpf_fentry_test6 is not in " + std::string(Btf::kVmlinuxPath) + "; ";
  }
  if (skipped) *skipped = why;
  return v;
}

std::string spec_name(const LoadSpec& s) {
  std::string n(prog_type_name(s.type));
  if (s.attach_kernel) n += "/attach" + std::to_string(s.attach_kernel);
  return n;
}

// Offsets to try for a type: all of its context and a little around it;
// for the big ones, the edges.
std::vector<int> offsets_for(ProgType t) {
  std::vector<int> v;
  auto range = [&](int lo, int hi) {
    for (int o = lo; o < hi; ++o) v.push_back(o);
  };
  switch (t) {
    case ProgType::Tracepoint:
      range(-8, 72);
      range(8176, 8208);
      break;
    case ProgType::Syscall:
      range(-8, 72);
      range(32752, 32768);  // an instruction's offset is 16 bits
      break;
    default: range(-8, static_cast<int>(rules_for(t).ctx_size) + 16);
  }
  return v;
}

// Where Ember deliberately differs from the kernel on a context access:
// the reason, or null when it should agree.
const char* known_ctx_disagreement(const LoadSpec& s, int off, int size, bool write, bool kernel_ok) {
  bool skb = s.type == ProgType::SocketFilter || s.type == ProgType::SchedCls ||
             s.type == ProgType::SchedAct || s.type == ProgType::CgroupSkb;
  if (skb && kernel_ok && !write && off >= 168 && off < 176)
    return "__sk_buff->sk gives a socket pointer (PTR_TO_SOCK_COMMON_OR_NULL); Ember has no such value kind "
           "and refuses the field";
  if (s.type == ProgType::Tracepoint && kernel_ok && off < 0)
    return "tracepoint: tp_prog_is_valid_access compares the int offset with sizeof(void *), a size_t, so a "
           "negative offset becomes huge and passes the lower bound (and the signed upper one): the kernel "
           "lets the program read before the record; Ember refuses";
  if (s.type == ProgType::RawTracepointWritable && kernel_ok && off == 0 && size == 8 && !write)
    return "raw_tracepoint_writable's argument 0 is PTR_TO_TP_BUFFER; Ember has no such value kind";
  if (s.type == ProgType::Tracing && !kernel_ok && !write && off >= static_cast<int>(8 * s.nargs) &&
      off < 96 && off % 8 == 0 && size == 8)
    return "tracing: the kernel knows how many arguments the traced function has (BTF); Ember, without BTF, "
           "allows all 12 u64 slots";
  if (s.type == ProgType::Tracing && kernel_ok && !write && size < 8)
    return "tracing: the kernel allows narrow reads of small integer arguments (BTF); Ember reads whole u64s";
  return nullptr;
}

TEST(VerifierRules, CtxAccessMatchesKernel) {
  if (auto why = oracle_unavailable()) GTEST_SKIP() << *why;
  std::string skipped;
  std::vector<LoadSpec> specs = covered_specs(&skipped);
  if (!skipped.empty()) std::cout << "[ NOTE     ] not compared: " << skipped << "\n";
  size_t loads = 0;
  std::vector<std::string> known;
  for (const LoadSpec& s : specs) {
    for (int off : offsets_for(s.type)) {
      for (int size : {1, 2, 4, 8}) {
        for (bool write : {false, true}) {
          std::vector<bpf_insn> p;
          if (write) {
            p = {mov_imm(2, 0), I(BPF_STX | BPF_MEM | size_code(size), 1, 2, static_cast<int16_t>(off), 0),
                 mov_imm(0, 0), exit_insn()};
          } else {
            p = {I(BPF_LDX | BPF_MEM | size_code(size), 0, 1, static_cast<int16_t>(off), 0), mov_imm(0, 0),
                 exit_insn()};
          }
          LoadResult k = kernel_load_prog(s, p, false);
          ++loads;
          CtxAccess e = check_ctx_access(s.type, s.attach, off, size, write);
          if (k.ok == e.ok) continue;
          if (const char* why = known_ctx_disagreement(s, off, size, write, k.ok)) {
            known.push_back(spec_name(s) + " off " + std::to_string(off) + " size " + std::to_string(size) +
                            (write ? " write" : " read") + ": kernel " + (k.ok ? "allows" : "refuses") +
                            "; " + why);
            continue;
          }
          LoadResult kl = kernel_load_prog(s, p, true);
          ADD_FAILURE() << spec_name(s) << " ctx " << (write ? "write" : "read") << " off " << off << " size "
                        << size << ": kernel " << (k.ok ? "allows" : "refuses (" + last_reason(kl) + ")")
                        << ", Ember " << (e.ok ? "allows" : "refuses (" + e.why + ")");
        }
      }
    }
  }
  std::cout << "[ NOTE     ] " << loads << " kernel loads; " << known.size()
            << " known, explained disagreements:\n";
  for (const std::string& k : known) std::cout << "    " << k << "\n";
}

// Loads through a packet pointer after a bounds check: accepted only where
// the loads from the context really give packet pointers.
TEST(VerifierRules, PacketPointersMatchKernel) {
  if (auto why = oracle_unavailable()) GTEST_SKIP() << *why;
  struct Case {
    LoadSpec spec;
    int16_t begin, end;  // context offsets of the start and the end
    CtxValue begin_value;
  };
  const Case cases[] = {
      {{ProgType::SchedCls}, 76, 80, CtxValue::PacketData},
      {{ProgType::SchedAct}, 140, 76, CtxValue::PacketMeta},
      {{ProgType::Xdp}, 0, 4, CtxValue::PacketData},
      {{ProgType::Xdp}, 8, 0, CtxValue::PacketMeta},
      {{ProgType::CgroupSkb}, 76, 80, CtxValue::PacketData},
  };
  for (const Case& c : cases) {
    CtxAccess b = check_ctx_access(c.spec.type, c.begin, 4, false);
    CtxAccess e = check_ctx_access(c.spec.type, c.end, 4, false);
    EXPECT_EQ(b.value, c.begin_value) << spec_name(c.spec) << " " << c.begin;
    EXPECT_TRUE(e.value == CtxValue::PacketEnd ||
                (c.begin_value == CtxValue::PacketMeta && e.value == CtxValue::PacketData))
        << spec_name(c.spec) << " " << c.end;
    std::vector<bpf_insn> p = {
        I(BPF_LDX | BPF_MEM | BPF_W, 2, 1, c.begin, 0),
        I(BPF_LDX | BPF_MEM | BPF_W, 3, 1, c.end, 0),
        mov_imm(0, 0),
        I(BPF_ALU64 | BPF_MOV | BPF_X, 4, 2, 0, 0),
        I(BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, 1),
        I(BPF_JMP | BPF_JGT | BPF_X, 4, 3, 1, 0),
        I(BPF_LDX | BPF_MEM | BPF_B, 0, 2, 0, 0),
        mov_imm(0, 0),
        exit_insn(),
    };
    LoadResult k = kernel_load_prog(c.spec, p, true);
    EXPECT_TRUE(k.ok) << spec_name(c.spec) << ": " << last_reason(k);
    // Writing the packet: only where Ember says packet_write.
    p[6] = I(BPF_STX | BPF_MEM | BPF_B, 2, 0, 0, 0);
    k = kernel_load_prog(c.spec, p, true);
    EXPECT_EQ(k.ok, rules_for(c.spec.type).packet_write) << spec_name(c.spec) << ": " << last_reason(k);
  }
  // Socket filters have no packet pointers: data is not even readable.
  EXPECT_FALSE(rules_for(ProgType::SocketFilter).packet);
  std::vector<bpf_insn> p = {I(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 76, 0), mov_imm(0, 0), exit_insn()};
  EXPECT_FALSE(kernel_load_prog({ProgType::SocketFilter}, p, false).ok);
}

// Where Ember's helper answer deliberately differs from this kernel's.
const char* known_helper_disagreement(const LoadSpec& s, int32_t id, bool kernel_ok) {
  (void)s;
  if (id == 36 && !kernel_ok)
    return "bpf_probe_write_user: the kernel offers it to tracing programs only with CAP_SYS_ADMIN on a "
           "kernel "
           "that is not locked down (this one may be: lockdown=integrity refuses it); Ember, whose "
           "probe_write_user writes the traced process's own memory, allows it";
  return nullptr;
}

TEST(VerifierRules, HelpersMatchKernel) {
  if (auto why = oracle_unavailable()) GTEST_SKIP() << *why;
  std::string skipped;
  std::vector<LoadSpec> specs = covered_specs(&skipped);
  if (!skipped.empty()) std::cout << "[ NOTE     ] not compared: " << skipped << "\n";
  HelperTable table = default_helper_table();
  std::vector<std::string> known;
  for (const LoadSpec& s : specs) {
    if (s.attach_kernel && s.type != ProgType::Tracing) continue;  // same helpers as the plain type
    for (const HelperDef* h : table.all()) {
      // r1 is the context; the others are zero. A call the func_proto does
      // not offer fails with one of these; any other rejection (argument
      // types) means the helper itself is allowed.
      std::vector<bpf_insn> p = {
          mov_imm(2, 0), mov_imm(3, 0), mov_imm(4, 0), mov_imm(5, 0), I(BPF_JMP | BPF_CALL, 0, 0, 0, h->id),
          mov_imm(0, 0), exit_insn()};
      LoadResult k = kernel_load_prog(s, p, true);
      auto refused = [](const std::string& log) {
        return log.find("unknown func") != std::string::npos ||
               log.find("program of this type cannot use helper") != std::string::npos ||
               log.find("not supported for program type") != std::string::npos ||
               log.find("supported only for fentry") != std::string::npos;
      };
      bool kernel_ok = !refused(k.log);
      std::string why;
      bool ember_ok = helper_allowed(s.type, s.attach, h->id, true, &why);
      if (kernel_ok != ember_ok) {
        if (const char* reason = known_helper_disagreement(s, h->id, kernel_ok)) {
          known.push_back(spec_name(s) + " " + h->name + ": " + reason);
        } else {
          ADD_FAILURE() << spec_name(s) << " " << h->name << "#" << h->id << ": kernel "
                        << (kernel_ok ? "allows" : "refuses (" + last_reason(k) + ")") << ", Ember "
                        << (ember_ok ? "allows" : "refuses (" + why + ")");
        }
        continue;
      }
      if (!kernel_ok) {
        EXPECT_FALSE(why.empty());
        continue;
      }
      // The license: a GPL-only helper is refused to a non-GPL program.
      LoadResult m = kernel_load_prog(s, p, true, "Dual BSD/MIT");
      bool kernel_gpl_only = m.log.find("GPL-restricted") != std::string::npos;
      bool ember_gpl_only = !helper_allowed(s.type, s.attach, h->id, false, &why);
      EXPECT_EQ(kernel_gpl_only, ember_gpl_only) << spec_name(s) << " " << h->name << " gpl_only";
    }
  }
  std::cout << "[ NOTE     ] known, explained disagreements:\n";
  for (const std::string& k : known) std::cout << "    " << k << "\n";
}

TEST(VerifierRules, ReturnValuesMatchKernel) {
  if (auto why = oracle_unavailable()) GTEST_SKIP() << *why;
  std::string skipped;
  std::vector<LoadSpec> specs = covered_specs(&skipped);
  if (!skipped.empty()) std::cout << "[ NOTE     ] not compared: " << skipped << "\n";
  for (const LoadSpec& s : specs) {
    const ProgTypeRules& r = rules_for(s.type, s.attach);
    for (int32_t v : {-1, 0, 1, 2, 3, 4, 1000}) {
      std::vector<bpf_insn> p = {mov_imm(0, v), exit_insn()};
      LoadResult k = kernel_load_prog(s, p, true);
      bool ember_ok = !r.ret_checked || (v >= r.ret_min && v <= r.ret_max);
      EXPECT_EQ(k.ok, ember_ok) << spec_name(s) << " returning " << v << ": " << last_reason(k);
    }
  }
}

}  // namespace
}  // namespace ember::verifier
