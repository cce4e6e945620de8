// The one table of SEC() names. Names, order and flags follow libbpf 1.x's
// section definitions so that objects written for libbpf load unmodified;
// the order matters because the first matching entry wins ("xdp.frags/devmap"
// before "xdp.frags" before "xdp").
#include <string>

#include "ember/prog_types.hpp"

namespace ember {
namespace {

using A = AttachType;
using K = AttachKind;
using P = ProgType;
constexpr A kNoAttach = A::None;

constexpr SectionDef kSections[] = {
    {"socket", P::SocketFilter, kNoAttach, kSecNone, K::None},
    {"sk_reuseport/migrate", P::SkReuseport, A::SkReuseportSelectOrMigrate, kSecAttachable, K::None},
    {"sk_reuseport", P::SkReuseport, A::SkReuseportSelect, kSecAttachable, K::None},
    {"kprobe+", P::Kprobe, kNoAttach, kSecNone, K::Kprobe},
    {"uprobe+", P::Kprobe, kNoAttach, kSecNone, K::Uprobe},
    {"uprobe.s+", P::Kprobe, kNoAttach, kSecSleepable, K::Uprobe},
    {"kretprobe+", P::Kprobe, kNoAttach, kSecNone, K::Kretprobe},
    {"uretprobe+", P::Kprobe, kNoAttach, kSecNone, K::Uretprobe},
    {"uretprobe.s+", P::Kprobe, kNoAttach, kSecSleepable, K::Uretprobe},
    {"kprobe.multi+", P::Kprobe, A::TraceKprobeMulti, kSecNone, K::Kprobe},
    {"kretprobe.multi+", P::Kprobe, A::TraceKprobeMulti, kSecNone, K::Kretprobe},
    {"kprobe.session+", P::Kprobe, A::TraceKprobeSession, kSecNone, K::Kprobe},
    {"uprobe.multi+", P::Kprobe, A::TraceUprobeMulti, kSecNone, K::UprobeMulti},
    {"uretprobe.multi+", P::Kprobe, A::TraceUprobeMulti, kSecNone, K::UretprobeMulti},
    {"uprobe.session+", P::Kprobe, A::TraceUprobeSession, kSecNone, K::UprobeMulti},
    {"uprobe.multi.s+", P::Kprobe, A::TraceUprobeMulti, kSecSleepable, K::UprobeMulti},
    {"uretprobe.multi.s+", P::Kprobe, A::TraceUprobeMulti, kSecSleepable, K::UretprobeMulti},
    {"ksyscall+", P::Kprobe, kNoAttach, kSecNone, K::Ksyscall},
    {"kretsyscall+", P::Kprobe, kNoAttach, kSecNone, K::Kretsyscall},
    {"usdt+", P::Kprobe, kNoAttach, kSecUsdt, K::Usdt},
    {"usdt.s+", P::Kprobe, kNoAttach, kSecUsdt | kSecSleepable, K::Usdt},
    {"tc/ingress", P::SchedCls, A::TcxIngress, kSecNone, K::None},
    {"tc/egress", P::SchedCls, A::TcxEgress, kSecNone, K::None},
    {"tcx/ingress", P::SchedCls, A::TcxIngress, kSecNone, K::None},
    {"tcx/egress", P::SchedCls, A::TcxEgress, kSecNone, K::None},
    {"netkit/primary", P::SchedCls, A::NetkitPrimary, kSecNone, K::None},
    {"netkit/peer", P::SchedCls, A::NetkitPeer, kSecNone, K::None},
    {"tc", P::SchedCls, kNoAttach, kSecNone, K::None},
    {"classifier", P::SchedCls, kNoAttach, kSecNone, K::None},
    {"action", P::SchedAct, kNoAttach, kSecNone, K::None},
    {"tracepoint+", P::Tracepoint, kNoAttach, kSecNone, K::Tracepoint},
    {"tp+", P::Tracepoint, kNoAttach, kSecNone, K::Tracepoint},
    {"raw_tracepoint+", P::RawTracepoint, kNoAttach, kSecNone, K::RawTracepoint},
    {"raw_tp+", P::RawTracepoint, kNoAttach, kSecNone, K::RawTracepoint},
    {"raw_tracepoint.w+", P::RawTracepointWritable, kNoAttach, kSecNone, K::RawTracepoint},
    {"raw_tp.w+", P::RawTracepointWritable, kNoAttach, kSecNone, K::RawTracepoint},
    {"tp_btf+", P::Tracing, A::TraceRawTp, kSecAttachBtf, K::Tracing},
    {"fentry+", P::Tracing, A::TraceFentry, kSecAttachBtf, K::Tracing},
    {"fmod_ret+", P::Tracing, A::ModifyReturn, kSecAttachBtf, K::Tracing},
    {"fexit+", P::Tracing, A::TraceFexit, kSecAttachBtf, K::Tracing},
    {"fentry.s+", P::Tracing, A::TraceFentry, kSecAttachBtf | kSecSleepable, K::Tracing},
    {"fmod_ret.s+", P::Tracing, A::ModifyReturn, kSecAttachBtf | kSecSleepable, K::Tracing},
    {"fexit.s+", P::Tracing, A::TraceFexit, kSecAttachBtf | kSecSleepable, K::Tracing},
    {"freplace+", P::Ext, kNoAttach, kSecAttachBtf, K::Tracing},
    {"lsm+", P::Lsm, A::LsmMac, kSecAttachBtf, K::Lsm},
    {"lsm.s+", P::Lsm, A::LsmMac, kSecAttachBtf | kSecSleepable, K::Lsm},
    {"lsm_cgroup+", P::Lsm, A::LsmCgroup, kSecAttachBtf, K::Lsm},
    {"iter+", P::Tracing, A::TraceIter, kSecAttachBtf, K::Iter},
    {"iter.s+", P::Tracing, A::TraceIter, kSecAttachBtf | kSecSleepable, K::Iter},
    {"syscall", P::Syscall, kNoAttach, kSecSleepable, K::None},
    {"xdp.frags/devmap", P::Xdp, A::XdpDevmap, kSecXdpFrags, K::None},
    {"xdp/devmap", P::Xdp, A::XdpDevmap, kSecAttachable, K::None},
    {"xdp.frags/cpumap", P::Xdp, A::XdpCpumap, kSecXdpFrags, K::None},
    {"xdp/cpumap", P::Xdp, A::XdpCpumap, kSecAttachable, K::None},
    {"xdp.frags", P::Xdp, A::Xdp, kSecXdpFrags, K::None},
    {"xdp", P::Xdp, A::Xdp, kSecAttachableOpt, K::None},
    {"perf_event", P::PerfEvent, kNoAttach, kSecNone, K::None},
    {"lwt_in", P::LwtIn, kNoAttach, kSecNone, K::None},
    {"lwt_out", P::LwtOut, kNoAttach, kSecNone, K::None},
    {"lwt_xmit", P::LwtXmit, kNoAttach, kSecNone, K::None},
    {"lwt_seg6local", P::LwtSeg6local, kNoAttach, kSecNone, K::None},
    {"sockops", P::SockOps, A::CgroupSockOps, kSecAttachableOpt, K::None},
    {"sk_skb/stream_parser", P::SkSkb, A::SkSkbStreamParser, kSecAttachableOpt, K::None},
    {"sk_skb/stream_verdict", P::SkSkb, A::SkSkbStreamVerdict, kSecAttachableOpt, K::None},
    {"sk_skb/verdict", P::SkSkb, A::SkSkbVerdict, kSecAttachableOpt, K::None},
    {"sk_skb", P::SkSkb, kNoAttach, kSecNone, K::None},
    {"sk_msg", P::SkMsg, A::SkMsgVerdict, kSecAttachableOpt, K::None},
    {"lirc_mode2", P::LircMode2, A::LircMode2, kSecAttachableOpt, K::None},
    {"flow_dissector", P::FlowDissector, A::FlowDissector, kSecAttachableOpt, K::None},
    {"cgroup_skb/ingress", P::CgroupSkb, A::CgroupInetIngress, kSecAttachableOpt, K::None},
    {"cgroup_skb/egress", P::CgroupSkb, A::CgroupInetEgress, kSecAttachableOpt, K::None},
    {"cgroup/skb", P::CgroupSkb, kNoAttach, kSecNone, K::None},
    {"cgroup/sock_create", P::CgroupSock, A::CgroupInetSockCreate, kSecAttachable, K::None},
    {"cgroup/sock_release", P::CgroupSock, A::CgroupInetSockRelease, kSecAttachable, K::None},
    {"cgroup/sock", P::CgroupSock, A::CgroupInetSockCreate, kSecAttachableOpt, K::None},
    {"cgroup/post_bind4", P::CgroupSock, A::CgroupInet4PostBind, kSecAttachable, K::None},
    {"cgroup/post_bind6", P::CgroupSock, A::CgroupInet6PostBind, kSecAttachable, K::None},
    {"cgroup/bind4", P::CgroupSockAddr, A::CgroupInet4Bind, kSecAttachable, K::None},
    {"cgroup/bind6", P::CgroupSockAddr, A::CgroupInet6Bind, kSecAttachable, K::None},
    {"cgroup/connect4", P::CgroupSockAddr, A::CgroupInet4Connect, kSecAttachable, K::None},
    {"cgroup/connect6", P::CgroupSockAddr, A::CgroupInet6Connect, kSecAttachable, K::None},
    {"cgroup/connect_unix", P::CgroupSockAddr, A::CgroupUnixConnect, kSecAttachable, K::None},
    {"cgroup/sendmsg4", P::CgroupSockAddr, A::CgroupUdp4Sendmsg, kSecAttachable, K::None},
    {"cgroup/sendmsg6", P::CgroupSockAddr, A::CgroupUdp6Sendmsg, kSecAttachable, K::None},
    {"cgroup/sendmsg_unix", P::CgroupSockAddr, A::CgroupUnixSendmsg, kSecAttachable, K::None},
    {"cgroup/recvmsg4", P::CgroupSockAddr, A::CgroupUdp4Recvmsg, kSecAttachable, K::None},
    {"cgroup/recvmsg6", P::CgroupSockAddr, A::CgroupUdp6Recvmsg, kSecAttachable, K::None},
    {"cgroup/recvmsg_unix", P::CgroupSockAddr, A::CgroupUnixRecvmsg, kSecAttachable, K::None},
    {"cgroup/getpeername4", P::CgroupSockAddr, A::CgroupInet4Getpeername, kSecAttachable, K::None},
    {"cgroup/getpeername6", P::CgroupSockAddr, A::CgroupInet6Getpeername, kSecAttachable, K::None},
    {"cgroup/getpeername_unix", P::CgroupSockAddr, A::CgroupUnixGetpeername, kSecAttachable, K::None},
    {"cgroup/getsockname4", P::CgroupSockAddr, A::CgroupInet4Getsockname, kSecAttachable, K::None},
    {"cgroup/getsockname6", P::CgroupSockAddr, A::CgroupInet6Getsockname, kSecAttachable, K::None},
    {"cgroup/getsockname_unix", P::CgroupSockAddr, A::CgroupUnixGetsockname, kSecAttachable, K::None},
    {"cgroup/sysctl", P::CgroupSysctl, A::CgroupSysctl, kSecAttachable, K::None},
    {"cgroup/getsockopt", P::CgroupSockopt, A::CgroupGetsockopt, kSecAttachable, K::None},
    {"cgroup/setsockopt", P::CgroupSockopt, A::CgroupSetsockopt, kSecAttachable, K::None},
    {"cgroup/dev", P::CgroupDevice, A::CgroupDevice, kSecAttachableOpt, K::None},
    {"struct_ops+", P::StructOps, kNoAttach, kSecNone, K::StructOps},
    {"struct_ops.s+", P::StructOps, kNoAttach, kSecSleepable, K::StructOps},
    {"sk_lookup", P::SkLookup, A::SkLookup, kSecAttachable, K::None},
    {"netfilter", P::Netfilter, A::Netfilter, kSecNone, K::None},
};

// libbpf's sec_def_matches: exact, or for "prefix+" the prefix alone or
// followed by '/'.
bool matches(const SectionDef& def, std::string_view name, std::string& extras) {
  std::string_view pat = def.pattern;
  if (!pat.ends_with('+')) return name == pat;
  pat.remove_suffix(1);
  if (!name.starts_with(pat)) return false;
  std::string_view rest = name.substr(pat.size());
  if (rest.empty()) return true;
  if (rest[0] != '/') return false;
  extras = std::string(rest.substr(1));
  return true;
}

struct TypeName {
  ProgType type;
  std::string_view name;
};
constexpr TypeName kTypeNames[] = {
#define EMBER_X(e, v, n) {ProgType::e, n},
    EMBER_PROG_TYPES(EMBER_X)
#undef EMBER_X
};

}  // namespace

std::span<const SectionDef> section_defs() { return kSections; }

Result<SectionMatch> match_section(std::string_view section) {
  for (const SectionDef& def : kSections) {
    std::string extras;
    if (matches(def, section, extras)) return SectionMatch{&def, std::move(extras)};
  }
  return fail(
      "section '", section,
      "' is not a program section libbpf knows (e.g. \"socket\", \"xdp\", \"uprobe/<binary>:<symbol>\", "
      "\"tracepoint/<category>/<name>\")");
}

std::string_view prog_type_name(ProgType t) {
  for (const TypeName& n : kTypeNames)
    if (n.type == t) return n.name;
  return "unknown";
}

Result<ProgType> prog_type_from_name(std::string_view name) {
  for (const TypeName& n : kTypeNames)
    if (n.name == name) return n.type;
  return fail("unknown program type '", name, "'");
}

}  // namespace ember
