// The verifier's test corpus: one small assembler file per case under
// tests/verifier/accept/ and tests/verifier/reject/ (see
// tests/verifier/README.md for the format), its parser, and what it takes to
// load a fixture into the kernel, which is the oracle for every verdict.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ember/isa.hpp"
#include "ember/maps.hpp"
#include "ember/prog_types.hpp"
#include "ember/result.hpp"
#include "ember/verifier.hpp"

namespace ember::testing {

struct VerifierFixture {
  std::string path;  // as given to parse_fixture
  std::string name;  // the file name without ".txt"; unique in the corpus
  ProgType type = ProgType::Syscall;
  // `; attach: N` (enum bpf_attach_type), else what the type needs at load
  // (default_attach_type).
  AttachType attach = AttachType::None;
  bool sleepable = false;  // syscall programs: the kernel loads them only sleepable
  bool accept = false;
  VerifyReason reason = VerifyReason::InvalidInsn;  // when !accept
  bool kernel_accept = false;                       // the kernel's verdict: `; kernel:`, else `accept`
  std::string kernel_note;                          // why the kernel's verdict differs (when it does)
  std::string why;                                  // what the fixture shows, one line
  std::string license = "GPL";
  bool gpl = true;            // the license is GPL-compatible
  std::vector<MapSpec> maps;  // by index: map[idx:N], map_value[idx:N]
  // Per map: the offset of a struct bpf_spin_lock in the value (`lock=OFF`),
  // or -1. Only the kernel needs it (as map BTF); MapSpec has no BTF.
  std::vector<int32_t> lock_offsets;
  std::vector<RawInsn> insns;
};

// The name of a reason as fixtures write it ("null-deref"): reason_name.
std::string_view fixture_reason_name(VerifyReason r);

// Parses one fixture. Errors read "PATH:LINE: what is wrong".
Result<VerifierFixture> parse_fixture(const std::string& path);
// The same from text in memory (`path` only names it in errors and sets name).
Result<VerifierFixture> parse_fixture_text(std::string_view text, const std::string& path);

// The corpus directory (tests/verifier).
std::string verifier_fixtures_dir();
// Every *.txt under it, recursively, sorted.
std::vector<std::string> fixture_paths();

// What a program type is loaded with when nothing else is said: the kernel
// requires an expected_attach_type for cgroup_sock_addr, cgroup_sockopt,
// sk_lookup and netfilter programs; AttachType::None (0 at load) otherwise.
AttachType default_attach_type(ProgType type);

// ---- the kernel as the oracle ----

struct KernelVerdict {
  bool accepted = false;
  int error = 0;    // errno of a rejection
  std::string log;  // the verifier log of a rejection (level 1)
};
// Creates the fixture's maps with bpf(BPF_MAP_CREATE) (with BTF describing
// the spin lock where `lock=` says so), patches map[idx:N] into
// BPF_PSEUDO_MAP_FD and map_value[idx:N] into BPF_PSEUDO_MAP_VALUE, and loads
// the program with its type, attach type and license (and, for programs
// with subprograms, BTF func_info naming each function static, which the
// kernel needs for callbacks). An error means the
// kernel could not even be asked (a map it cannot create, EPERM...).
Result<KernelVerdict> kernel_verify_fixture(const VerifierFixture& f);

// The last `lines` non-empty lines of a verifier log, indented.
std::string log_tail(const std::string& log, size_t lines);

}  // namespace ember::testing
