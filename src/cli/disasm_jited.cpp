// `ember disasm --jited OBJ`: the native code the JIT makes of each program
// of an object, under the eBPF instruction (and C source line) it comes
// from: bpftool prog dump jited (linum), -j for JSON.
#include "cli/disasm_jited.hpp"

#include <cstdio>

#include "cli/io.hpp"
#include "ember/asm.hpp"
#include "ember/runtime.hpp"
#include "jit/jit_disasm.hpp"

namespace ember::cli {
namespace {

int error(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "ember: %s\n", msg.c_str());
  return code;
}

std::string json_native(const NativeInsn& n) {
  char pc[24];
  std::snprintf(pc, sizeof pc, "\"0x%x\"", n.offset);
  std::string s =
      std::string("{\"pc\":") + pc + ",\"operation\":" + json_text(n.operation) + ",\"operands\":[";
  for (size_t i = 0; i < n.operands.size(); ++i) s += (i ? "," : "") + json_text(n.operands[i]);
  s += "],\"opcodes\":[";
  for (size_t i = 0; i < n.bytes.size(); ++i) {
    char b[12];
    std::snprintf(b, sizeof b, "%s\"0x%02x\"", i ? "," : "", n.bytes[i]);
    s += b;
  }
  return s + "]}";
}

std::string json_natives(const std::vector<NativeInsn>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + json_native(v[i]);
  return s + "]";
}

std::string json_program(const Prog& p, const std::vector<JitBlock>& blocks) {
  const ObjectFile& file = p.object().file();
  std::string s = "{\"name\":" + json_text(p.name()) + ",\"section\":" + json_text(p.section()) +
                  ",\"type\":" + json_text(std::string(prog_type_name(p.type()))) +
                  ",\"jited_bytes\":" + std::to_string(p.jit()->code().size()) + ",\"prologue\":";
  bool prologue = !blocks.empty() && !blocks[0].insn;
  s += prologue ? json_natives(blocks[0].native) : "[]";
  s += ",\"insns\":[";
  bool first = true;
  for (const JitBlock& b : blocks) {
    if (!b.insn) continue;
    s += std::string(first ? "" : ",") + "{\"insn\":" + std::to_string(*b.insn) +
         ",\"ebpf\":" + json_text(disassemble_insn(p.code().insts[*b.insn], *b.insn));
    if (const BtfLineInfo* l = file.source_line(p.linked(), *b.insn))
      s += ",\"src\":" + json_text(l->source) + ",\"file\":" + json_text(l->file) +
           ",\"line_num\":" + std::to_string(l->line);
    s += ",\"jited\":" + json_natives(b.native) + "}";
    first = false;
  }
  return s + "]}";
}

void print_program(const Prog& p, const std::vector<JitBlock>& blocks, bool bytes) {
  std::printf("%s (SEC(\"%s\"), %s): %zu eBPF instruction slots, %zu bytes of x86-64 code:\n",
              p.name().c_str(), p.section().c_str(), std::string(prog_type_name(p.type())).c_str(),
              p.code().insts.size(), p.jit()->code().size());
  JitTextOptions opts;
  opts.bytes = bytes;
  const ObjectFile& file = p.object().file();
  opts.source = [&](size_t i) {
    const BtfLineInfo* l = file.source_line(p.linked(), i);
    return l && !l->source.empty() ? source_comment(*l) : std::string();
  };
  InsnNotes notes(p.linked());
  opts.annotation = [&](size_t i) { return notes(i, p.code().insts[i]); };
  for (const std::string& line : jit_listing_text(blocks, p.code(), opts)) std::printf("%s\n", line.c_str());
}

// Verifies `p` if it was not, for the JIT compiles only verified code.
Status prepare(Prog& p, const std::string& path) {
  if (!p.verified()) {
    VerifyResult r = p.verify();
    if (!r.ok)
      return fail(path, ": program ", p.name(), ": the verifier rejects it [", reason_name(r.reason),
                  "]: ", r.message, "; the JIT compiles only verified programs (`ember verify` explains)");
  }
  if (!p.jit()) return fail(path, ": program ", p.name(), ": ", p.jit_error());
  return ok_status();
}

}  // namespace

int disasm_jited(const JitedOptions& o) {
  Runtime rt;
  auto obj = Object::open_file(rt, o.path);
  if (!obj) return error(obj.error().message);
  LoadOptions lo;
  lo.verify = false;  // one program at a time below: one rejection does not hide the others
  if (auto st = (*obj)->load(lo); !st) return error(st.error().message);
  std::vector<Prog*> progs = (*obj)->progs();
  if (!o.prog.empty()) {
    Prog* p = (*obj)->prog(o.prog);
    if (!p) {
      std::string names;
      for (Prog* q : progs) names += "\n  " + q->name() + " (SEC(\"" + q->section() + "\"))";
      return error(o.path + ": no program named '" + o.prog + "'; the object has:" + names);
    }
    progs = {p};
  }
  if (!o.json && !(*obj)->file().btf_ext)
    std::fprintf(stderr, "ember: %s has no BTF line info (build with clang -g); no source lines\n",
                 o.path.c_str());
  int rc = 0;
  std::string json = "[";
  bool printed = false;
  for (Prog* p : progs) {
    if (auto st = prepare(*p, o.path); !st) {
      rc = error(st.error().message);
      continue;
    }
    auto blocks = jit_listing(p->jit()->code(), p->jit()->lines(), p->code());
    if (o.json) {
      json += (printed ? "," : "") + json_program(*p, blocks);
    } else {
      if (printed) std::printf("\n");
      print_program(*p, blocks, o.bytes);
    }
    printed = true;
  }
  if (o.json) std::printf("%s]\n", json.c_str());
  return rc;
}

}  // namespace ember::cli
