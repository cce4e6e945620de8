// What each program type may do, after the kernel (6.x): context access
// (the *_is_valid_access functions of net/core/filter.c, kernel/trace/
// bpf_trace.c and kernel/bpf/syscall.c, called from check_ctx_access in
// kernel/bpf/verifier.c), return values (check_return_code) and helpers
// (the *_func_proto functions and bpf_base_func_proto).
//
// Ember assumes a privileged loader, as `ember` runs programs the way root
// loads them: CAP_BPF and CAP_PERFMON (bpf_token_capable in the kernel), so
// the helpers bpf_base_func_proto grants only to those, and cgroup skb
// direct packet access, are allowed. tests/verifier_rules_test.cpp compares
// every answer here with the running kernel.
#include "verifier/prog_type_rules.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

namespace ember::verifier {

// The attach-type-aware forms (the loader knows the attach type from the
// section). The declared API answers for AttachType::None, which means what
// the kernel does for a program loaded with expected_attach_type 0 (or, for
// tracing, the strictest of fentry/fexit).
const ProgTypeRules& rules_for(ProgType type, AttachType attach);
CtxAccess check_ctx_access(ProgType type, AttachType attach, int64_t off, int size, bool write);
bool helper_allowed(ProgType type, AttachType attach, int32_t helper_id, bool gpl, std::string* why);

namespace {

CtxAccess allow(CtxValue v = CtxValue::Scalar) { return {true, v, {}}; }
CtxAccess deny(std::string why) { return {false, CtxValue::Scalar, std::move(why)}; }

std::string access_words(int size, bool write) {
  return "a " + std::to_string(size) + "-byte " + (write ? "write" : "read");
}

// ---------------------------------------------------------------- __sk_buff

// struct __sk_buff (include/uapi/linux/bpf.h), by offset.
namespace skb {
constexpr int64_t kLen = 0, kPktType = 4, kMark = 8, kQueueMapping = 12, kProtocol = 16, kVlanPresent = 20,
                  kVlanTci = 24, kVlanProto = 28, kPriority = 32, kIngressIfindex = 36, kIfindex = 40,
                  kTcIndex = 44, kCb = 48, kCbEnd = 68, kHash = 68, kTcClassid = 72, kData = 76,
                  kDataEnd = 80, kNapiId = 84, kFamily = 88, kRemoteIp4 = 92, kLocalIp4 = 96,
                  kRemoteIp6 = 100, kLocalIp6 = 116, kRemotePort = 132, kLocalPort = 136, kDataMeta = 140,
                  kFlowKeys = 144, kTstamp = 152, kWireLen = 160, kGsoSegs = 164, kSk = 168, kGsoSize = 176,
                  kTstampType = 180, kPadding = 181, kHwtstamp = 184, kSize = 192;

// The field that byte `off` belongs to, for messages.
std::string field(int64_t off) {
  struct F {
    int64_t off, size;
    const char* name;
  };
  static constexpr F kFields[] = {
      {kLen, 4, "len"},
      {kPktType, 4, "pkt_type"},
      {kMark, 4, "mark"},
      {kQueueMapping, 4, "queue_mapping"},
      {kProtocol, 4, "protocol"},
      {kVlanPresent, 4, "vlan_present"},
      {kVlanTci, 4, "vlan_tci"},
      {kVlanProto, 4, "vlan_proto"},
      {kPriority, 4, "priority"},
      {kIngressIfindex, 4, "ingress_ifindex"},
      {kIfindex, 4, "ifindex"},
      {kTcIndex, 4, "tc_index"},
      {kCb, 20, "cb"},
      {kHash, 4, "hash"},
      {kTcClassid, 4, "tc_classid"},
      {kData, 4, "data"},
      {kDataEnd, 4, "data_end"},
      {kNapiId, 4, "napi_id"},
      {kFamily, 4, "family"},
      {kRemoteIp4, 4, "remote_ip4"},
      {kLocalIp4, 4, "local_ip4"},
      {kRemoteIp6, 16, "remote_ip6"},
      {kLocalIp6, 16, "local_ip6"},
      {kRemotePort, 4, "remote_port"},
      {kLocalPort, 4, "local_port"},
      {kDataMeta, 4, "data_meta"},
      {kFlowKeys, 8, "flow_keys"},
      {kTstamp, 8, "tstamp"},
      {kWireLen, 4, "wire_len"},
      {kGsoSegs, 4, "gso_segs"},
      {kSk, 8, "sk"},
      {kGsoSize, 4, "gso_size"},
      {kTstampType, 1, "tstamp_type"},
      {kPadding, 3, "padding"},
      {kHwtstamp, 8, "hwtstamp"},
  };
  for (const F& f : kFields)
    if (off >= f.off && off < f.off + f.size) {
      std::string s = std::string("__sk_buff->") + f.name;
      if (f.size == 16 || f.off == kCb) s += "[" + std::to_string((off - f.off) / 4) + "]";
      return s;
    }
  return "__sk_buff offset " + std::to_string(off);
}

bool in(int64_t off, int64_t start, int64_t size) { return off >= start && off < start + size; }

// bpf_skb_is_valid_access: what every __sk_buff user shares.
CtxAccess base_access(int64_t off, int size, bool write) {
  if (off < 0 || off >= kSize) return deny("__sk_buff has no field at offset " + std::to_string(off));
  // The kernel insists on natural alignment for every field.
  if (off % size != 0)
    return deny(access_words(size, write) + " at offset " + std::to_string(off) + " is misaligned");
  if (in(off, kCb, kCbEnd - kCb)) {
    // cb[] is a byte array to the program: any size, but within cb[0..4].
    if (off + size > kCbEnd)
      return deny(access_words(size, write) + " at " + field(off) + " runs past cb[4]");
    return allow();
  }
  if (in(off, kRemoteIp4, kRemotePort - kRemoteIp4) || in(off, kData, 8) || in(off, kDataMeta, 4)) {
    // remote_ip4 .. local_ip6[3], data, data_end, data_meta: whole 4-byte
    // loads only (the conversion reads the kernel field at its full width).
    if (size != 4) return deny(field(off) + " must be accessed with a 4-byte load");
    return allow();
  }
  if (in(off, kFlowKeys, 8)) return deny(field(off) + " is only for flow dissector programs");
  if (in(off, kHwtstamp, 8)) {
    if (write) return deny(field(off) + " is read-only");
    if (size != 8) return deny(field(off) + " must be read with an 8-byte load");
    return allow();
  }
  if (in(off, kTstamp, 8)) {
    if (size != 8) return deny(field(off) + " must be accessed with an 8-byte load or store");
    return allow();
  }
  if (off == kSk) {
    if (write) return deny(field(off) + " is read-only");
    if (size != 8) return deny(field(off) + " must be read with an 8-byte load");
    // The kernel gives PTR_TO_SOCK_COMMON_OR_NULL; Ember has no socket
    // pointers (CtxValue has no such kind), so it refuses the load rather
    // than hand out a pointer as a number.
    return deny(field(off) + " is a socket pointer, which Ember does not model");
  }
  if (in(off, kSk, 8)) {
    // The kernel's is_valid_access lets narrow loads inside sk through to
    // its default case (only offsetof(sk) is matched); what they convert to
    // is not a field, so Ember refuses them.
    return deny(field(off) + ": only a whole 8-byte load at its start is a field");
  }
  if (off == kTstampType) return deny(field(off) + " is only for tc programs");
  if (in(off, kPadding, 3)) return deny(field(off) + " is not a field");
  // Any other field is a 4-byte word: writes are whole words, loads may be
  // narrow (bpf_ctx_narrow_access_ok: 1, 2 or 4 bytes, aligned).
  if (write) {
    if (size != 4) return deny(field(off) + " must be written with a 4-byte store");
  } else if (size > 4) {
    return deny(field(off) + " is 4 bytes: an 8-byte load reads past it");
  }
  return allow();
}

// sk_filter_is_valid_access.
CtxAccess socket_filter_access(int64_t off, int size, bool write) {
  if (in(off, kTcClassid, 4) || in(off, kData, 8) || in(off, kDataMeta, 4) ||
      in(off, kFamily, kDataMeta - kFamily) || in(off, kTstamp, 8) || in(off, kWireLen, 4) ||
      in(off, kHwtstamp, 8))
    return deny(field(off) + " is not accessible to socket filters (they have no direct packet access)");
  if (write && !in(off, kCb, kCbEnd - kCb))
    return deny(field(off) + " is read-only: socket filters may write cb[] only");
  return base_access(off, size, write);
}

CtxValue packet_value(int64_t off) {
  if (in(off, kData, 4)) return CtxValue::PacketData;
  if (in(off, kDataEnd, 4)) return CtxValue::PacketEnd;
  if (in(off, kDataMeta, 4)) return CtxValue::PacketMeta;
  return CtxValue::Scalar;
}

// tc_cls_act_is_valid_access (sched_cls, sched_act).
CtxAccess tc_access(int64_t off, int size, bool write) {
  if (write &&
      !(in(off, kMark, 4) || in(off, kTcIndex, 4) || in(off, kPriority, 4) || in(off, kTcClassid, 4) ||
        in(off, kCb, kCbEnd - kCb) || in(off, kTstamp, 8) || in(off, kQueueMapping, 4)))
    return deny(
        field(off) +
        " is read-only: tc programs may write mark, queue_mapping, priority, tc_index, cb[], tc_classid "
        "and tstamp");
  if (in(off, kFamily, kDataMeta - kFamily)) return deny(field(off) + " is only for sk_skb programs");
  if (off == kTstampType) {
    if (size != 1) return deny(field(off) + " must be read with a 1-byte load");
    return allow();
  }
  CtxAccess a = base_access(off, size, write);
  if (a.ok && !write) a.value = packet_value(off);
  return a;
}

// cg_skb_is_valid_access.
CtxAccess cgroup_skb_access(int64_t off, int size, bool write) {
  if (in(off, kTcClassid, 4) || in(off, kDataMeta, 4) || in(off, kWireLen, 4))
    return deny(field(off) + " is not accessible to cgroup skb programs");
  // data and data_end need CAP_BPF (bpf_token_capable); Ember's loader is
  // privileged. tstamp writes likewise.
  if (write &&
      !(in(off, kMark, 4) || in(off, kPriority, 4) || in(off, kCb, kCbEnd - kCb) || in(off, kTstamp, 8)))
    return deny(field(off) + " is read-only: cgroup skb programs may write mark, priority, cb[] and tstamp");
  CtxAccess a = base_access(off, size, write);
  if (a.ok && !write) a.value = packet_value(off);
  return a;
}

}  // namespace skb

// ------------------------------------------------------------------ xdp_md

// xdp_is_valid_access and __is_valid_xdp_access.
CtxAccess xdp_access(AttachType attach, int64_t off, int size, bool write) {
  constexpr int64_t kData = 0, kDataEnd = 4, kDataMeta = 8, kEgressIfindex = 20, kSize = 24;
  static constexpr const char* kNames[] = {"data",           "data_end",      "data_meta", "ingress_ifindex",
                                           "rx_queue_index", "egress_ifindex"};
  if (off < 0 || off >= kSize) return deny("xdp_md has no field at offset " + std::to_string(off));
  std::string name = std::string("xdp_md->") + kNames[off / 4];
  // egress_ifindex exists only for programs run from a devmap.
  if (off == kEgressIfindex && attach != AttachType::XdpDevmap)
    return deny(name + " is only for devmap programs (expected_attach_type BPF_XDP_DEVMAP)");
  // Writes are allowed only to offloaded programs (rx_queue_index), which
  // Ember has none of.
  if (write) return deny(name + " is read-only");
  if (off % size != 0)
    return deny(access_words(size, write) + " at offset " + std::to_string(off) + " is misaligned");
  if (size != 4) return deny(name + " must be read with a 4-byte load");
  switch (off) {
    case kData: return allow(CtxValue::PacketData);
    case kDataEnd: return allow(CtxValue::PacketEnd);
    case kDataMeta: return allow(CtxValue::PacketMeta);
    default: return allow();
  }
}

// ---------------------------------------------------------------- tracing

constexpr uint32_t kPtRegsSize = 168;  // struct pt_regs on x86-64
// include/linux/trace_events.h: the bound tp_prog_is_valid_access checks
// at load. The real record size is known only when the program is attached
// (perf_event_set_bpf_prog compares it with the highest offset read);
// Ember, which has no tracepoints of its own, keeps the load-time bound.
constexpr uint32_t kPerfMaxTraceSize = 8192;
constexpr uint32_t kMaxBpfFuncArgs = 12;                   // MAX_BPF_FUNC_ARGS: u64 args of raw tp and fentry
constexpr uint32_t kPerfEventDataSize = kPtRegsSize + 16;  // struct bpf_perf_event_data
constexpr uint32_t kSyscallCtxSize = 65535;                // U16_MAX: offsets below it

std::string misaligned(const char* ctx, int64_t off, int size, bool write) {
  return access_words(size, write) + " at " + ctx + " offset " + std::to_string(off) + " is misaligned";
}

// kprobe_prog_is_valid_access: the registers, any aligned read.
CtxAccess kprobe_access(int64_t off, int size, bool write) {
  if (off < 0 || off >= kPtRegsSize)
    return deny("struct pt_regs has no byte at offset " + std::to_string(off));
  if (write) return deny("struct pt_regs is read-only");
  if (off % size != 0) return deny(misaligned("pt_regs", off, size, write));
  if (off + size > kPtRegsSize)
    return deny(access_words(size, write) + " at offset " + std::to_string(off) +
                " runs past struct pt_regs");
  return allow();
}

// tp_prog_is_valid_access: the record after its 8 bytes of common fields
// (type, flags, preempt count, pid), which the program may not read.
CtxAccess tracepoint_access(int64_t off, int size, bool write) {
  if (off >= 0 && off < 8)
    return deny("the tracepoint record's first 8 bytes (common fields) are not readable");
  if (off < 0 || off >= kPerfMaxTraceSize)
    return deny("offset " + std::to_string(off) + " is outside a tracepoint record (at most " +
                std::to_string(kPerfMaxTraceSize) + " bytes)");
  if (write) return deny("a tracepoint record is read-only");
  if (off % size != 0) return deny(misaligned("tracepoint record", off, size, write));
  return allow();
}

// bpf_tracing_ctx_access (raw_tp_prog_is_valid_access): u64 arguments.
CtxAccess raw_tp_access(int64_t off, int size, bool write) {
  if (off < 0 || off >= 8 * kMaxBpfFuncArgs)
    return deny("the arguments are 12 u64s: no argument at offset " + std::to_string(off));
  if (write) return deny("the arguments are read-only");
  if (off % size != 0) return deny(misaligned("arguments", off, size, write));
  return allow();
}

// raw_tp_writable_prog_is_valid_access: argument 0 is the writable buffer.
CtxAccess raw_tp_writable_access(int64_t off, int size, bool write) {
  if (off == 0) {
    if (write || size != 8)
      return deny("argument 0 (the tracepoint buffer) must be read with an 8-byte load");
    // The kernel gives PTR_TO_TP_BUFFER, which CtxValue cannot express.
    return deny("argument 0 is a writable tracepoint buffer (PTR_TO_TP_BUFFER), which Ember does not model");
  }
  return raw_tp_access(off, size, write);
}

// tracing_prog_is_valid_access (fentry, fexit, fmod_ret, tp_btf, iter):
// bpf_tracing_ctx_access, then btf_ctx_access, which knows the traced
// function's arguments from BTF. Ember does not: it allows whole 8-byte
// reads of any of the 12 slots as numbers (the kernel also allows narrower
// reads of small integer arguments and gives typed pointers for pointer
// arguments, which need BTF).
CtxAccess tracing_access(int64_t off, int size, bool write) {
  if (off < 0 || off >= 8 * kMaxBpfFuncArgs)
    return deny("the arguments are 12 u64s: no argument at offset " + std::to_string(off));
  if (write) return deny("the arguments are read-only");
  if (off % 8 != 0) return deny("argument offset " + std::to_string(off) + " is not a multiple of 8");
  if (size != 8) return deny("without the traced function's BTF, arguments must be read as whole u64s");
  return allow();
}

// pe_prog_is_valid_access: struct bpf_perf_event_data (regs, then the
// u64s sample_period and addr, which may be read narrow).
CtxAccess perf_event_access(int64_t off, int size, bool write) {
  if (off < 0 || off >= kPerfEventDataSize)
    return deny("struct bpf_perf_event_data has no field at offset " + std::to_string(off));
  if (write) return deny("struct bpf_perf_event_data is read-only");
  if (off % size != 0) return deny(misaligned("bpf_perf_event_data", off, size, write));
  if (off >= kPtRegsSize) return allow();  // sample_period, addr: 1, 2, 4 or 8 bytes, aligned
  if (size != 8) return deny("bpf_perf_event_data->regs are read as whole 8-byte registers");
  return allow();
}

// syscall_prog_is_valid_access: the context is the caller's buffer; the
// kernel checks its real size when the program runs (BPF_PROG_RUN).
CtxAccess syscall_access(int64_t off, int size, bool /*write*/) {
  if (off < 0 || off >= kSyscallCtxSize)
    return deny("offset " + std::to_string(off) + " is outside a syscall program's context (below 65535)");
  if (off % size != 0) return deny(misaligned("context", off, size, false));
  return allow();
}

// ------------------------------------------------------------------ rules

constexpr int64_t kAnyMin = INT64_MIN, kAnyMax = INT64_MAX;

ProgTypeRules make(ProgType t, const char* name, uint32_t size, bool packet, bool packet_write,
                   bool checked = false, int64_t lo = kAnyMin, int64_t hi = kAnyMax) {
  return {t, name, size, packet, packet_write, checked, lo, hi, false};
}

bool covered(ProgType t) {
  switch (t) {
    case ProgType::SocketFilter:
    case ProgType::SchedCls:
    case ProgType::SchedAct:
    case ProgType::Xdp:
    case ProgType::Kprobe:
    case ProgType::Tracepoint:
    case ProgType::RawTracepoint:
    case ProgType::RawTracepointWritable:
    case ProgType::PerfEvent:
    case ProgType::Tracing:
    case ProgType::Syscall:
    case ProgType::CgroupSkb: return true;
    default: return false;
  }
}

// Return values (check_return_code). Only some types are checked; most
// return anything.
ProgTypeRules build_rules(ProgType t, AttachType attach) {
  switch (t) {
    case ProgType::SocketFilter:
      // sk_filter has no packet pointers: it reads the packet with
      // bpf_skb_load_bytes or the legacy ld_abs/ld_ind.
      return make(t, "struct __sk_buff", skb::kSize, false, false);
    case ProgType::SchedCls:
    case ProgType::SchedAct: return make(t, "struct __sk_buff", skb::kSize, true, true);
    case ProgType::Xdp: return make(t, "struct xdp_md", 24, true, true);
    case ProgType::CgroupSkb:
      // may_access_direct_pkt_data: cgroup skb may read, not write. The
      // range is [0, 1] (drop, allow) except for egress programs, which may
      // also return 2 and 3 (congestion notification).
      if (attach == AttachType::CgroupInetEgress)
        return make(t, "struct __sk_buff", skb::kSize, true, false, true, 0, 3);
      return make(t, "struct __sk_buff", skb::kSize, true, false, true, 0, 1);
    case ProgType::Kprobe:
      // Session kprobes and uprobes return 0 (run the return probe) or 1.
      if (attach == AttachType::TraceKprobeSession || attach == AttachType::TraceUprobeSession)
        return make(t, "struct pt_regs", kPtRegsSize, false, false, true, 0, 1);
      return make(t, "struct pt_regs", kPtRegsSize, false, false);
    case ProgType::Tracepoint: return make(t, "tracepoint record", kPerfMaxTraceSize, false, false);
    case ProgType::RawTracepoint:
    case ProgType::RawTracepointWritable:
      return make(t, "struct bpf_raw_tracepoint_args", 8 * kMaxBpfFuncArgs, false, false);
    case ProgType::PerfEvent: return make(t, "struct bpf_perf_event_data", kPerfEventDataSize, false, false);
    case ProgType::Tracing:
      // fentry/fexit must return 0; fmod_ret and tp_btf anything; iterators
      // 0 or 1. Without an attach type Ember takes fentry's.
      switch (attach) {
        case AttachType::ModifyReturn:
        case AttachType::TraceRawTp: return make(t, "u64 args[12]", 8 * kMaxBpfFuncArgs, false, false);
        case AttachType::TraceIter:
          return make(t, "u64 args[12]", 8 * kMaxBpfFuncArgs, false, false, true, 0, 1);
        default: return make(t, "u64 args[12]", 8 * kMaxBpfFuncArgs, false, false, true, 0, 0);
      }
    case ProgType::Syscall: return make(t, "", kSyscallCtxSize, false, false);
    default:
      // Not modelled yet: no context at all, any return value.
      return make(t, "", 0, false, false);
  }
}

// The attach types whose rules differ from the default ones.
constexpr AttachType kSpecialAttach[] = {AttachType::CgroupInetEgress,   AttachType::TraceKprobeSession,
                                         AttachType::TraceUprobeSession, AttachType::ModifyReturn,
                                         AttachType::TraceRawTp,         AttachType::TraceIter};

// ------------------------------------------------------------------ helpers

constexpr uint64_t bit(ProgType t) { return 1ull << static_cast<uint32_t>(t); }

// Program types by the func_proto chain they use.
constexpr uint64_t kNet = bit(ProgType::SocketFilter) | bit(ProgType::SchedCls) | bit(ProgType::SchedAct) |
                          bit(ProgType::Xdp) | bit(ProgType::CgroupSkb);
// bpf_tracing_func_proto users (kprobe_prog_func_proto, tp_prog_func_proto,
// pe_prog_func_proto, raw_tp_prog_func_proto, tracing_prog_func_proto, and
// syscall_prog_func_proto which falls back to tracing_prog_func_proto).
constexpr uint64_t kTrace = bit(ProgType::Kprobe) | bit(ProgType::Tracepoint) | bit(ProgType::PerfEvent) |
                            bit(ProgType::RawTracepoint) | bit(ProgType::RawTracepointWritable) |
                            bit(ProgType::Tracing) | bit(ProgType::Syscall);
constexpr uint64_t kCovered = kNet | kTrace;
// Marks a helper of bpf_base_func_proto, which every program type's
// func_proto falls back to: allowed to types Ember does not model too.
constexpr uint64_t kBase = ~0ull;

struct HelperRule {
  int32_t id;
  const char* name;
  bool gpl_only;
  uint64_t types;    // program types whose func_proto returns it (kBase: all)
  const char* note;  // why some types may not, or null
};

constexpr HelperRule kHelpers[] = {
    {1, "bpf_map_lookup_elem", false, kBase, nullptr},
    {2, "bpf_map_update_elem", false, kBase, nullptr},
    {3, "bpf_map_delete_elem", false, kBase, nullptr},
    {4, "bpf_probe_read", true, kTrace,
     "the legacy probe_read is for tracing programs (bpf_tracing_func_proto)"},
    {5, "bpf_ktime_get_ns", false, kBase, nullptr},
    {6, "bpf_trace_printk", true, kBase, nullptr},
    {7, "bpf_get_prandom_u32", false, kBase, nullptr},
    {8, "bpf_get_smp_processor_id", false, kBase, nullptr},
    {12, "bpf_tail_call", false, kBase, nullptr},
    {14, "bpf_get_current_pid_tgid", false, kBase, nullptr},
    {15, "bpf_get_current_uid_gid", false, kBase, nullptr},
    {16, "bpf_get_current_comm", false, kBase, nullptr},
    // Each covered type has its own perf_event_output (bpf_skb_event_output
    // for __sk_buff types, bpf_xdp_event_output, the tracing ones); not in
    // bpf_base_func_proto, and flow dissectors lack it.
    {25, "bpf_perf_event_output", true, kCovered, "not every program type has a perf_event_output"},
    {27, "bpf_get_stackid", true, kTrace, "stack ids are for tracing programs"},
    // bpf_get_probe_write_proto: also needs CAP_SYS_ADMIN and a kernel not
    // locked down (LOCKDOWN_BPF_WRITE_USER).
    {36, "bpf_probe_write_user", true, kTrace, "writing user memory is for tracing programs"},
    {37, "bpf_current_task_under_cgroup", false, kBase, nullptr},
    {42, "bpf_get_numa_node_id", false, kBase, nullptr},
    {45, "bpf_probe_read_str", true, kTrace, "the legacy probe_read_str is for tracing programs"},
    {67, "bpf_get_stack", true, kTrace, "stacks are for tracing programs"},
    {87, "bpf_map_push_elem", false, kBase, nullptr},
    {88, "bpf_map_pop_elem", false, kBase, nullptr},
    {89, "bpf_map_peek_elem", false, kBase, nullptr},
    {93, "bpf_spin_lock", false, kBase, nullptr},
    {94, "bpf_spin_unlock", false, kBase, nullptr},
    {105, "bpf_strtol", false, kBase, nullptr},
    {106, "bpf_strtoul", false, kBase, nullptr},
    {109, "bpf_send_signal", false, kBase, nullptr},
    {112, "bpf_probe_read_user", true, kBase, nullptr},
    {113, "bpf_probe_read_kernel", true, kBase, nullptr},
    {114, "bpf_probe_read_user_str", true, kBase, nullptr},
    {115, "bpf_probe_read_kernel_str", true, kBase, nullptr},
    {117, "bpf_send_signal_thread", false, kBase, nullptr},
    {118, "bpf_jiffies64", false, kBase, nullptr},
    {125, "bpf_ktime_get_boot_ns", false, kBase, nullptr},
    {130, "bpf_ringbuf_output", false, kBase, nullptr},
    {131, "bpf_ringbuf_reserve", false, kBase, nullptr},
    {132, "bpf_ringbuf_submit", false, kBase, nullptr},
    {133, "bpf_ringbuf_discard", false, kBase, nullptr},
    {134, "bpf_ringbuf_query", false, kBase, nullptr},
    // In bpf_base_func_proto, but bpf_tracing_func_proto (and cgroup device
    // programs) refuse it: the coarse clock's seqlock is unsafe in the NMI
    // and tracepoint contexts tracing programs run in.
    {160, "bpf_ktime_get_coarse_ns", false, kNet, "the coarse clock is not for tracing programs"},
    {164, "bpf_for_each_map_elem", false, kBase, nullptr},
    {165, "bpf_snprintf", true, kBase, nullptr},
    // bpf_tracing_func_proto offers it to every tracing type, but
    // check_get_func_ip then refuses all but kprobes and trampoline
    // programs (fentry, fexit, fmod_ret).
    {173, "bpf_get_func_ip", true, bit(ProgType::Kprobe) | bit(ProgType::Tracing),
     "only kprobes and fentry/fexit/fmod_ret programs know the traced function's address"},
    // Attach cookies come from a perf link, a kprobe/tracepoint link or a
    // trampoline; syscall programs have none.
    {174, "bpf_get_attach_cookie", false, kTrace & ~bit(ProgType::Syscall),
     "only attached tracing programs have a cookie"},
    {177, "bpf_trace_vprintk", true, kBase, nullptr},
    {181, "bpf_loop", false, kBase, nullptr},
    {182, "bpf_strncmp", false, kBase, nullptr},
};

const HelperRule* find_helper(int32_t id) {
  for (const HelperRule& h : kHelpers)
    if (h.id == id) return &h;
  return nullptr;
}

}  // namespace

const ProgTypeRules& rules_for(ProgType type, AttachType attach) {
  // One table per (type, special attach type) pair, built once; the types
  // go up to Netfilter (32).
  constexpr size_t kTypes = 64;
  constexpr size_t kAttach = std::size(kSpecialAttach) + 1;
  static const auto table = [] {
    auto t = std::make_unique<std::array<std::array<ProgTypeRules, kAttach>, kTypes>>();
    for (size_t i = 0; i < kTypes; ++i) {
      (*t)[i][0] = build_rules(static_cast<ProgType>(i), AttachType::None);
      for (size_t a = 1; a < kAttach; ++a)
        (*t)[i][a] = build_rules(static_cast<ProgType>(i), kSpecialAttach[a - 1]);
    }
    return t;
  }();
  // Values past every bpf_prog_type: the conservative rules (their `type`
  // reads Unspec, as no such type exists).
  static const ProgTypeRules unknown = build_rules(ProgType::Unspec, AttachType::None);
  size_t i = static_cast<uint32_t>(type);
  if (i >= kTypes) return unknown;
  size_t a = 0;
  for (size_t k = 0; k < std::size(kSpecialAttach); ++k)
    if (kSpecialAttach[k] == attach) a = k + 1;
  return (*table)[i][a];
}

const ProgTypeRules& rules_for(ProgType type) { return rules_for(type, AttachType::None); }

CtxAccess check_ctx_access(ProgType type, AttachType attach, int64_t off, int size, bool write) {
  if (size != 1 && size != 2 && size != 4 && size != 8)
    return deny("a context access is 1, 2, 4 or 8 bytes, not " + std::to_string(size));
  switch (type) {
    case ProgType::SocketFilter: return skb::socket_filter_access(off, size, write);
    case ProgType::SchedCls:
    case ProgType::SchedAct: return skb::tc_access(off, size, write);
    case ProgType::CgroupSkb: return skb::cgroup_skb_access(off, size, write);
    case ProgType::Xdp: return xdp_access(attach, off, size, write);
    case ProgType::Kprobe: return kprobe_access(off, size, write);
    case ProgType::Tracepoint: return tracepoint_access(off, size, write);
    case ProgType::RawTracepoint: return raw_tp_access(off, size, write);
    case ProgType::RawTracepointWritable: return raw_tp_writable_access(off, size, write);
    case ProgType::PerfEvent: return perf_event_access(off, size, write);
    case ProgType::Tracing: return tracing_access(off, size, write);
    case ProgType::Syscall: return syscall_access(off, size, write);
    default:
      return deny("Ember has no context rules for " + std::string(prog_type_name(type)) +
                  " programs yet: their context may not be accessed");
  }
}

CtxAccess check_ctx_access(ProgType type, int64_t off, int size, bool write) {
  return check_ctx_access(type, AttachType::None, off, size, write);
}

bool helper_allowed(ProgType type, AttachType attach, int32_t helper_id, bool gpl, std::string* why) {
  auto fail = [&](std::string w) {
    if (why) *why = std::move(w);
    return false;
  };
  const HelperRule* h = find_helper(helper_id);
  if (!h) return fail("helper #" + std::to_string(helper_id) + " is unknown to Ember's program type rules");
  uint32_t t = static_cast<uint32_t>(type);
  bool type_ok = h->types == kBase || (t < 64 && (h->types & (1ull << t)));
  if (!type_ok) {
    std::string w =
        std::string(prog_type_name(type)) + " programs cannot call " + h->name + "#" + std::to_string(h->id);
    if (!covered(type))
      w += " (Ember allows only the helpers of bpf_base_func_proto to this program type)";
    else if (h->note)
      w += std::string(": ") + h->note;
    return fail(std::move(w));
  }
  // check_get_func_ip: among tracing programs only trampolines know the
  // function (not tp_btf or iterators).
  if (helper_id == 173 && type == ProgType::Tracing &&
      (attach == AttachType::TraceRawTp || attach == AttachType::TraceIter))
    return fail(std::string(h->name) + " is supported only for fentry/fexit/fmod_ret tracing programs");
  // pe_prog_func_proto's bpf_get_stackid_proto_pe is not GPL-only, unlike
  // the tracing one.
  bool gpl_only = h->gpl_only && !(helper_id == 27 && type == ProgType::PerfEvent);
  if (gpl_only && !gpl)
    return fail(std::string(h->name) + " is GPL-only: the program's license must be GPL-compatible");
  if (why) why->clear();
  return true;
}

bool helper_allowed(ProgType type, int32_t helper_id, bool gpl, std::string* why) {
  return helper_allowed(type, AttachType::None, helper_id, gpl, why);
}

}  // namespace ember::verifier
