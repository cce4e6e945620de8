// The SEC() table: libbpf's matching rules, and libbpf itself (Debian's
// libbpf 1.1, through libbpf_prog_type_by_name) as the reference for every
// name it knows.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include "ember/prog_types.hpp"

namespace ember::testing {
namespace {

struct Case {
  const char* section;
  ProgType type;
  AttachType attach;
  AttachKind kind;
  const char* extras;
};

const Case kCases[] = {
    {"socket", ProgType::SocketFilter, AttachType::None, AttachKind::None, ""},
    {"xdp", ProgType::Xdp, AttachType::Xdp, AttachKind::None, ""},
    {"xdp.frags", ProgType::Xdp, AttachType::Xdp, AttachKind::None, ""},
    {"xdp/devmap", ProgType::Xdp, AttachType::XdpDevmap, AttachKind::None, ""},
    {"tc", ProgType::SchedCls, AttachType::None, AttachKind::None, ""},
    {"classifier", ProgType::SchedCls, AttachType::None, AttachKind::None, ""},
    {"uprobe", ProgType::Kprobe, AttachType::None, AttachKind::Uprobe, ""},
    {"uprobe//usr/bin/bash:readline", ProgType::Kprobe, AttachType::None, AttachKind::Uprobe,
     "/usr/bin/bash:readline"},
    {"uretprobe/./app:main+0x10", ProgType::Kprobe, AttachType::None, AttachKind::Uretprobe,
     "./app:main+0x10"},
    {"uprobe.s/libc.so.6:malloc", ProgType::Kprobe, AttachType::None, AttachKind::Uprobe, "libc.so.6:malloc"},
    {"usdt/./app:provider:probe", ProgType::Kprobe, AttachType::None, AttachKind::Usdt,
     "./app:provider:probe"},
    {"kprobe/do_sys_open", ProgType::Kprobe, AttachType::None, AttachKind::Kprobe, "do_sys_open"},
    {"kretprobe/do_sys_open", ProgType::Kprobe, AttachType::None, AttachKind::Kretprobe, "do_sys_open"},
    {"ksyscall/openat", ProgType::Kprobe, AttachType::None, AttachKind::Ksyscall, "openat"},
    {"tracepoint/syscalls/sys_enter_openat", ProgType::Tracepoint, AttachType::None, AttachKind::Tracepoint,
     "syscalls/sys_enter_openat"},
    {"tp/sched/sched_switch", ProgType::Tracepoint, AttachType::None, AttachKind::Tracepoint,
     "sched/sched_switch"},
    {"raw_tp/sched_switch", ProgType::RawTracepoint, AttachType::None, AttachKind::RawTracepoint,
     "sched_switch"},
    {"tp_btf/sched_switch", ProgType::Tracing, AttachType::TraceRawTp, AttachKind::Tracing, "sched_switch"},
    {"fentry/do_unlinkat", ProgType::Tracing, AttachType::TraceFentry, AttachKind::Tracing, "do_unlinkat"},
    {"fexit.s/do_unlinkat", ProgType::Tracing, AttachType::TraceFexit, AttachKind::Tracing, "do_unlinkat"},
    {"lsm/file_open", ProgType::Lsm, AttachType::LsmMac, AttachKind::Lsm, "file_open"},
    {"iter/task", ProgType::Tracing, AttachType::TraceIter, AttachKind::Iter, "task"},
    {"perf_event", ProgType::PerfEvent, AttachType::None, AttachKind::None, ""},
    {"cgroup_skb/ingress", ProgType::CgroupSkb, AttachType::CgroupInetIngress, AttachKind::None, ""},
    {"cgroup/connect4", ProgType::CgroupSockAddr, AttachType::CgroupInet4Connect, AttachKind::None, ""},
    {"cgroup/sock", ProgType::CgroupSock, AttachType::CgroupInetSockCreate, AttachKind::None, ""},
    {"sk_skb/stream_verdict", ProgType::SkSkb, AttachType::SkSkbStreamVerdict, AttachKind::None, ""},
    {"sk_msg", ProgType::SkMsg, AttachType::SkMsgVerdict, AttachKind::None, ""},
    {"sockops", ProgType::SockOps, AttachType::CgroupSockOps, AttachKind::None, ""},
    {"syscall", ProgType::Syscall, AttachType::None, AttachKind::None, ""},
    {"struct_ops/dummy", ProgType::StructOps, AttachType::None, AttachKind::StructOps, "dummy"},
    {"sk_lookup", ProgType::SkLookup, AttachType::SkLookup, AttachKind::None, ""},
    {"tcx/ingress", ProgType::SchedCls, AttachType::TcxIngress, AttachKind::None, ""},
    {"uprobe.multi/./app:func_*", ProgType::Kprobe, AttachType::TraceUprobeMulti, AttachKind::UprobeMulti,
     "./app:func_*"},
    {"netfilter", ProgType::Netfilter, AttachType::Netfilter, AttachKind::None, ""},
};

TEST(SectionTable, MatchesLibbpfNames) {
  for (const Case& c : kCases) {
    auto m = match_section(c.section);
    ASSERT_TRUE(m.ok()) << c.section << ": " << m.error().message;
    EXPECT_EQ(m->def->prog_type, c.type) << c.section;
    EXPECT_EQ(m->def->attach_type, c.attach) << c.section;
    EXPECT_EQ(m->def->attach, c.kind) << c.section;
    EXPECT_EQ(m->extras, c.extras) << c.section;
  }
}

TEST(SectionTable, SleepableAndFlags) {
  EXPECT_TRUE(match_section("uprobe.s/x:y")->def->flags & kSecSleepable);
  EXPECT_FALSE(match_section("uprobe/x:y")->def->flags & kSecSleepable);
  EXPECT_TRUE(match_section("xdp.frags")->def->flags & kSecXdpFrags);
  EXPECT_TRUE(match_section("usdt/a:b:c")->def->flags & kSecUsdt);
}

TEST(SectionTable, UnknownNamesAreReportedNotGuessed) {
  for (const char* bad : {"socketx", "socket/extra", "xdp/foo", "uprobex/a:b", "kprobe.", ".text", "maps", "",
                          "tracepoints/a/b", "uprobe.foo/a:b"}) {
    auto m = match_section(bad);
    ASSERT_FALSE(m.ok()) << "accepted '" << bad << "' as " << prog_type_name(m->def->prog_type);
    EXPECT_NE(m.error().message.find(std::string("section '") + bad + "'"), std::string::npos)
        << m.error().message;
  }
}

TEST(SectionTable, ProgTypeNamesRoundTrip) {
  for (uint32_t v = 0; v <= static_cast<uint32_t>(ProgType::Netfilter); ++v) {
    auto t = static_cast<ProgType>(v);
    auto back = prog_type_from_name(prog_type_name(t));
    ASSERT_TRUE(back.ok()) << v;
    EXPECT_EQ(*back, t);
  }
  EXPECT_FALSE(prog_type_from_name("frobnicator").ok());
}

// Every name of the table (with extras where it takes them) resolves in
// libbpf to the same program and attach type, wherever this libbpf is new
// enough to know the name.
TEST(SectionTable, AgreesWithLibbpf) {
  size_t compared = 0, unknown_to_libbpf = 0;
  for (const SectionDef& def : section_defs()) {
    std::string name = def.pattern;
    if (name.ends_with('+')) name.back() = '/', name += "x";
    bpf_prog_type type{};
    bpf_attach_type attach{};
    if (libbpf_prog_type_by_name(name.c_str(), &type, &attach) != 0) {
      ++unknown_to_libbpf;  // added after libbpf 1.1 (tcx, netkit, uprobe.multi ...)
      continue;
    }
    auto m = match_section(name);
    ASSERT_TRUE(m.ok()) << name;
    EXPECT_EQ(static_cast<uint32_t>(m->def->prog_type), static_cast<uint32_t>(type)) << name;
    // libbpf reports attach type 0 where none is implied.
    uint32_t ours = m->def->attach_type == AttachType::None ? 0 : static_cast<uint32_t>(m->def->attach_type);
    EXPECT_EQ(ours, static_cast<uint32_t>(attach)) << name;
    ++compared;
  }
  std::printf("libbpf agrees on %zu section names; %zu are newer than this libbpf\n", compared,
              unknown_to_libbpf);
  EXPECT_GE(compared, 70u);
}

}  // namespace
}  // namespace ember::testing
