// Program types, attach types and the one table of libbpf SEC() names that
// maps an ELF section to them. Numbering is Linux's (enum bpf_prog_type and
// enum bpf_attach_type), defined here so that Ember does not depend on the
// age of the installed <linux/bpf.h>.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ember/result.hpp"

namespace ember {

// X(enumerator, Linux value, name as bpftool prints it)
#define EMBER_PROG_TYPES(X)                               \
  X(Unspec, 0, "unspec")                                  \
  X(SocketFilter, 1, "socket_filter")                     \
  X(Kprobe, 2, "kprobe")                                  \
  X(SchedCls, 3, "sched_cls")                             \
  X(SchedAct, 4, "sched_act")                             \
  X(Tracepoint, 5, "tracepoint")                          \
  X(Xdp, 6, "xdp")                                        \
  X(PerfEvent, 7, "perf_event")                           \
  X(CgroupSkb, 8, "cgroup_skb")                           \
  X(CgroupSock, 9, "cgroup_sock")                         \
  X(LwtIn, 10, "lwt_in")                                  \
  X(LwtOut, 11, "lwt_out")                                \
  X(LwtXmit, 12, "lwt_xmit")                              \
  X(SockOps, 13, "sock_ops")                              \
  X(SkSkb, 14, "sk_skb")                                  \
  X(CgroupDevice, 15, "cgroup_device")                    \
  X(SkMsg, 16, "sk_msg")                                  \
  X(RawTracepoint, 17, "raw_tracepoint")                  \
  X(CgroupSockAddr, 18, "cgroup_sock_addr")               \
  X(LwtSeg6local, 19, "lwt_seg6local")                    \
  X(LircMode2, 20, "lirc_mode2")                          \
  X(SkReuseport, 21, "sk_reuseport")                      \
  X(FlowDissector, 22, "flow_dissector")                  \
  X(CgroupSysctl, 23, "cgroup_sysctl")                    \
  X(RawTracepointWritable, 24, "raw_tracepoint_writable") \
  X(CgroupSockopt, 25, "cgroup_sockopt")                  \
  X(Tracing, 26, "tracing")                               \
  X(StructOps, 27, "struct_ops")                          \
  X(Ext, 28, "ext")                                       \
  X(Lsm, 29, "lsm")                                       \
  X(SkLookup, 30, "sk_lookup")                            \
  X(Syscall, 31, "syscall")                               \
  X(Netfilter, 32, "netfilter")

enum class ProgType : uint32_t {
#define EMBER_X(e, v, n) e = v,
  EMBER_PROG_TYPES(EMBER_X)
#undef EMBER_X
};

// enum bpf_attach_type, by value; kNone where a section implies none.
enum class AttachType : uint32_t {
  CgroupInetIngress = 0,
  CgroupInetEgress = 1,
  CgroupInetSockCreate = 2,
  CgroupSockOps = 3,
  SkSkbStreamParser = 4,
  SkSkbStreamVerdict = 5,
  CgroupDevice = 6,
  SkMsgVerdict = 7,
  CgroupInet4Bind = 8,
  CgroupInet6Bind = 9,
  CgroupInet4Connect = 10,
  CgroupInet6Connect = 11,
  CgroupInet4PostBind = 12,
  CgroupInet6PostBind = 13,
  CgroupUdp4Sendmsg = 14,
  CgroupUdp6Sendmsg = 15,
  LircMode2 = 16,
  FlowDissector = 17,
  CgroupSysctl = 18,
  CgroupUdp4Recvmsg = 19,
  CgroupUdp6Recvmsg = 20,
  CgroupGetsockopt = 21,
  CgroupSetsockopt = 22,
  TraceRawTp = 23,
  TraceFentry = 24,
  TraceFexit = 25,
  ModifyReturn = 26,
  LsmMac = 27,
  TraceIter = 28,
  CgroupInet4Getpeername = 29,
  CgroupInet6Getpeername = 30,
  CgroupInet4Getsockname = 31,
  CgroupInet6Getsockname = 32,
  XdpDevmap = 33,
  CgroupInetSockRelease = 34,
  XdpCpumap = 35,
  SkLookup = 36,
  Xdp = 37,
  SkSkbVerdict = 38,
  SkReuseportSelect = 39,
  SkReuseportSelectOrMigrate = 40,
  PerfEvent = 41,
  TraceKprobeMulti = 42,
  LsmCgroup = 43,
  StructOps = 44,
  Netfilter = 45,
  TcxIngress = 46,
  TcxEgress = 47,
  TraceUprobeMulti = 48,
  CgroupUnixConnect = 49,
  CgroupUnixSendmsg = 50,
  CgroupUnixRecvmsg = 51,
  CgroupUnixGetpeername = 52,
  CgroupUnixGetsockname = 53,
  NetkitPrimary = 54,
  NetkitPeer = 55,
  TraceKprobeSession = 56,
  TraceUprobeSession = 57,
  None = 0xffffffff,
};

// How a program of a section is attached: what Ember's attach layer does
// with the section's extras ("uprobe/./app:main" -> binary and symbol).
enum class AttachKind : uint8_t {
  None,    // loaded, attached by the host explicitly (socket, tc, xdp ...)
  Kprobe,  // kernel probes: no user-space equivalent
  Kretprobe,
  Uprobe,
  Uretprobe,
  UprobeMulti,
  UretprobeMulti,
  Usdt,
  Ksyscall,
  Kretsyscall,
  Tracepoint,
  RawTracepoint,
  Tracing,  // fentry/fexit/fmod_ret/tp_btf/freplace: BTF-named targets
  Lsm,
  Iter,
  StructOps,
};

// Section flags, as libbpf's SEC_* flags mean them.
enum SectionFlags : uint32_t {
  kSecNone = 0,
  kSecSleepable = 1u << 0,      // ".s": may sleep (BPF_F_SLEEPABLE)
  kSecAttachable = 1u << 1,     // expected_attach_type is passed at load
  kSecAttachableOpt = 1u << 2,  // ... unless the kernel is too old for it
  kSecAttachBtf = 1u << 3,      // the extras name a BTF target
  kSecXdpFrags = 1u << 4,       // BPF_F_XDP_HAS_FRAGS
  kSecUsdt = 1u << 5,
};

struct SectionDef {
  const char* pattern;  // "socket" exact; "uprobe+" = "uprobe" or "uprobe/<extras>"
  ProgType prog_type;
  AttachType attach_type;
  uint32_t flags;
  AttachKind attach;
};

// libbpf's table of SEC() names, in its matching order.
std::span<const SectionDef> section_defs();

struct SectionMatch {
  const SectionDef* def;
  std::string extras;  // after "prefix/": "./app:main", "syscalls/sys_enter_openat"
};

// Matches an ELF section name by libbpf 1.x rules: exact names, and for
// "prefix+" patterns the bare prefix or "prefix/extras"; first match wins.
// An unknown name is an error naming it (libbpf does not guess either).
Result<SectionMatch> match_section(std::string_view section);

std::string_view prog_type_name(ProgType t);
// bpftool's name -> type ("xdp", "socket_filter" ...).
Result<ProgType> prog_type_from_name(std::string_view name);

}  // namespace ember
