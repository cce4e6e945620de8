// `ember verify OBJ`: the verifier's verdict on each program of an object,
// with its statistics; a rejection explained with the instruction, its C
// source line, the state that made it unsafe and the path that led there.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "cli/commands.hpp"
#include "cli/io.hpp"
#include "ember/runtime.hpp"
#include "ember/verifier.hpp"

namespace ember::cli {
namespace {

int error(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "ember: %s\n", msg.c_str());
  return code;
}

void print_text(const Prog& p, const VerifyResult& r, int log_level) {
  const VerifyStats& st = r.stats;
  std::printf("%s (SEC(\"%s\"), %s): %s\n", p.name().c_str(), p.section().c_str(),
              std::string(prog_type_name(p.type())).c_str(), r.ok ? "verified" : "REJECTED");
  if (!r.ok) {
    std::printf("  reason: %s\n  %s\n", std::string(reason_name(r.reason)).c_str(), r.message.c_str());
    if (!r.state.empty()) std::printf("  state: %s\n", r.state.c_str());
    if (!r.path.empty()) {
      std::string path;
      for (size_t i : r.path) path += (path.empty() ? "" : " -> ") + std::to_string(i);
      std::printf("  path (branches decided at): %s\n", path.c_str());
    }
  }
  std::printf("  processed %" PRIu64 " insns, %" PRIu64 " states (peak %" PRIu64 "), %" PRIu64
              " pruned, %.3f ms, peak state memory %" PRIu64 " KiB, stack %u bytes\n",
              st.insns_processed, st.states, st.peak_states, st.pruned, st.time_ns / 1e6,
              st.peak_memory / 1024, st.stack_depth);
  if (log_level >= 2 && !r.log.empty()) std::printf("%s", r.log.c_str());
}

std::string json_result(const Prog& p, const VerifyResult& r) {
  const VerifyStats& st = r.stats;
  std::string s = "{\"name\":" + json_text(p.name()) + ",\"section\":" + json_text(p.section()) +
                  ",\"type\":" + json_text(std::string(prog_type_name(p.type()))) +
                  ",\"verdict\":" + (r.ok ? "\"accepted\"" : "\"rejected\"");
  if (!r.ok) {
    s += ",\"reason\":" + json_text(std::string(reason_name(r.reason))) +
         ",\"insn\":" + std::to_string(r.insn) + ",\"message\":" + json_text(r.message) +
         ",\"state\":" + json_text(r.state) + ",\"path\":[";
    for (size_t i = 0; i < r.path.size(); ++i) s += (i ? "," : "") + std::to_string(r.path[i]);
    s += "]";
  }
  s += ",\"stats\":{\"insns_processed\":" + std::to_string(st.insns_processed) +
       ",\"states\":" + std::to_string(st.states) + ",\"peak_states\":" + std::to_string(st.peak_states) +
       ",\"pruned\":" + std::to_string(st.pruned) + ",\"time_ns\":" + std::to_string(st.time_ns) +
       ",\"peak_memory\":" + std::to_string(st.peak_memory) +
       ",\"stack_depth\":" + std::to_string(st.stack_depth) + "}}";
  return s;
}

}  // namespace

int cmd_verify(const std::vector<std::string>& argv) {
  std::string path, prog;
  int log_level = 0;
  bool json = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--help" || a == "-h") return std::fputs(command_usage("verify"), stdout), 0;
    if ((a == "--prog" || a == "--section") && i + 1 < argv.size())
      prog = argv[++i];
    else if (a == "--log-level" && i + 1 < argv.size()) {
      const std::string& v = argv[++i];
      if (v != "0" && v != "1" && v != "2")
        return error("verify: --log-level takes 0, 1 or 2, not '" + v + "'", 2);
      log_level = v[0] - '0';
    } else if (a == "-j" || a == "--json")
      json = true;
    else if (a.starts_with("-"))
      return error("verify: unknown option '" + a + "'", 2);
    else if (path.empty())
      path = a;
    else
      return error("verify: more than one object given", 2);
  }
  if (path.empty()) return error(std::string("verify: no object given\n") + command_usage("verify"), 2);
  Runtime rt;
  auto obj = Object::open_file(rt, path);
  if (!obj) return error(obj.error().message);
  LoadOptions lo;
  lo.verify = false;  // verified below, one program at a time, with statistics
  if (auto st = (*obj)->load(lo); !st) return error(st.error().message);
  std::vector<Prog*> progs = (*obj)->progs();
  if (!prog.empty()) {
    Prog* p = (*obj)->prog(prog);
    if (!p) return error(path + ": no program or section named '" + prog + "'");
    progs = {p};
  }
  bool all_ok = true;
  std::string out = "[";
  for (Prog* p : progs) {
    VerifyInput in = p->verify_input();
    in.log_level = log_level;
    VerifyResult r = verify(p->code(), in);
    all_ok = all_ok && r.ok;
    if (json)
      out += (out.size() > 1 ? "," : "") + json_result(*p, r);
    else
      print_text(*p, r, log_level);
  }
  if (json) std::printf("%s]\n", out.c_str());
  return all_ok ? 0 : 1;
}

}  // namespace ember::cli
