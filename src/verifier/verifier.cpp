// ember::verify: the static pass, then the walk over all paths.
#include "ember/verifier.hpp"

#include <cstdlib>
#include <optional>
#include <string>

#include "verifier/analyzer.hpp"
#include "verifier/cfg.hpp"
#include "verifier/prog_type_rules.hpp"

namespace ember {

namespace {

struct ReasonName {
  VerifyReason reason;
  std::string_view name;
};
constexpr ReasonName kReasons[] = {
#define EMBER_X(e, n) {VerifyReason::e, n},
    EMBER_VERIFY_REASONS(EMBER_X)
#undef EMBER_X
};

}  // namespace

std::string_view reason_name(VerifyReason r) {
  for (const ReasonName& n : kReasons)
    if (n.reason == r) return n.name;
  return "?";
}

bool reason_from_name(std::string_view name, VerifyReason* out) {
  for (const ReasonName& n : kReasons)
    if (n.name == name) {
      *out = n.reason;
      return true;
    }
  return false;
}

namespace {

// Every map reference must name a map, reachable or not: the kernel
// resolves them all before it verifies (resolve_pseudo_ldimm64), so a bad
// one in dead code fails the load too.
std::optional<VerifyResult> check_map_refs(const Program& prog, const VerifyInput& in) {
  for (size_t i = 0; i < prog.insts.size(); ++i) {
    const Inst& ins = prog.insts[i];
    if (ins.second_half || ins.op != Op::LDDW) continue;
    if (ins.pseudo() != Pseudo::MapIdx && ins.pseudo() != Pseudo::MapIdxValue) continue;
    uint32_t idx = static_cast<uint32_t>(ins.imm);
    uint32_t off = static_cast<uint32_t>(ins.imm64 >> 32);
    std::string what;
    if (idx >= in.maps.size())
      what = "map index " + std::to_string(idx) + " names no map (the program has " +
             std::to_string(in.maps.size()) + ")";
    else if (ins.pseudo() == Pseudo::MapIdxValue && off >= in.maps[idx].value_size)
      what = "offset " + std::to_string(off) + " is outside the " + std::to_string(in.maps[idx].value_size) +
             "-byte value of map " + std::to_string(idx);
    if (what.empty()) continue;
    VerifyResult r;
    r.reason = idx >= in.maps.size() ? VerifyReason::HelperArg : VerifyReason::MapValueOutOfBounds;
    r.insn = i;
    std::string line = in.source_line ? in.source_line(i) : "";
    r.message = "instruction " + std::to_string(i) + (line.empty() ? "" : " (" + line + ")") + ": " + what +
                " (checked before verifying, reachable or not, as the kernel does)";
    return r;
  }
  return std::nullopt;
}

}  // namespace

VerifyResult verify(const Program& prog, const VerifyInput& in) {
  if (auto bad = check_map_refs(prog, in)) return *bad;
  HelperTable fallback;
  const HelperTable* helpers = in.helpers;
  if (!helpers) {
    fallback = default_helper_table();
    helpers = &fallback;
  }
  verifier::Cfg cfg;
  bool return_matters = in.mem_size < 0 && verifier::rules_for(in.type).ret_checked;
  if (auto err = verifier::build_cfg(prog, *helpers, return_matters, cfg)) {
    VerifyResult r;
    r.reason = err->reason;
    r.insn = err->insn;
    std::string line = in.source_line ? in.source_line(err->insn) : "";
    r.message = "instruction " + std::to_string(err->insn) + (line.empty() ? "" : " (" + line + ")") + ": " +
                err->message;
    return r;
  }
  verifier::Analyzer a(prog, in, *helpers, cfg);
  VerifyResult r = a.run();
  if (!r.ok && a.joined()) {
    // Joins at loop heads merge paths to stop path explosion; they cost
    // precision, so a rejection is only final from a walk without them.
    uint64_t first_ns = r.stats.time_ns;
    verifier::Analyzer again(prog, in, *helpers, cfg);
    again.disable_joins();
    r = again.run();
    r.stats.time_ns += first_ns;
  }
  if (!r.ok && in.log_level >= 1) {
    std::string path;
    for (size_t i : r.path) path += (path.empty() ? "" : " -> ") + std::to_string(i);
    r.log += "path (branches decided at): " + (path.empty() ? std::string("none") : path) + "\n";
    r.log += "state at instruction " + std::to_string(r.insn) + ": " + r.state + "\n";
  }
  return r;
}

VerifyResult verify(std::span<const RawInsn> insns, const VerifyInput& in) {
  auto prog = decode(insns);
  if (prog) return verify(*prog, in);
  VerifyResult r;
  r.message = prog.error().message;
  r.reason = r.message.find("frame pointer") != std::string::npos ? VerifyReason::ReadOnlyWrite
                                                                  : VerifyReason::InvalidInsn;
  // "instruction N: ..." from the decoder names the index.
  if (r.message.rfind("instruction ", 0) == 0) r.insn = std::strtoull(r.message.c_str() + 12, nullptr, 10);
  return r;
}

}  // namespace ember
