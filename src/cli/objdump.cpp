// `ember objdump OBJ`: every program of an object as Ember links it, with
// the C source lines from BTF line info interleaved (like `llvm-objdump -S`
// and `bpftool prog dump xlated linum`), and map references named.
#include <cinttypes>
#include <cstdio>
#include <map>

#include "cli/commands.hpp"
#include "cli/io.hpp"
#include "ember/asm.hpp"
#include "ember/helpers.hpp"
#include "ember/object.hpp"

namespace ember::cli {
namespace {

int error(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "ember: %s\n", msg.c_str());
  return code;
}

void dump_program(const ObjectFile& obj, const ObjectProgram& p, bool source, bool bytes) {
  std::printf("%s (SEC(\"%s\"), %s), %zu instructions:\n", p.name.c_str(), p.section.c_str(),
              std::string(prog_type_name(p.type.def->prog_type)).c_str(), p.insns.size());
  InsnNotes notes(p);
  std::string last;
  for (size_t i = 0; i < p.insns.size(); ++i) {
    if (const BtfLineInfo* l = source ? obj.source_line(p, i) : nullptr; l && !l->source.empty()) {
      std::string c = source_comment(*l);
      if (c != last) std::printf("%s\n", c.c_str());  // once per line, not per column record
      last = c;
    }
    auto insn = decode_insn(p.insns, i);
    std::string text = insn ? disassemble_insn(*insn, i) + notes(i, *insn) : "<" + insn.error().message + ">";
    std::printf("%6zu:", i);
    if (bytes) {
      const RawInsn& x = p.insns[i];
      std::printf("\t%02x %02x %02x %02x %02x %02x %02x %02x", x.opcode, x.regs, x.off & 0xff,
                  (x.off >> 8) & 0xff, x.imm & 0xff, (x.imm >> 8) & 0xff, (x.imm >> 16) & 0xff,
                  (x.imm >> 24) & 0xff);
    }
    std::printf("\t%s\n", text.c_str());
    if (insn && insn->op == Op::LDDW) ++i;
  }
}

}  // namespace

int cmd_objdump(const std::vector<std::string>& argv) {
  std::vector<std::string> pos;
  std::string prog;
  bool source = true, bytes = true;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--help" || argv[i] == "-h") return std::fputs(command_usage("objdump"), stdout), 0;
    if (argv[i] == "--prog" && i + 1 < argv.size())
      prog = argv[++i];
    else if (argv[i] == "--no-source")
      source = false;
    else if (argv[i] == "--no-bytes")
      bytes = false;
    else if (argv[i].starts_with("-"))
      return error("objdump: unknown option '" + argv[i] + "'", 2);
    else
      pos.push_back(argv[i]);
  }
  if (pos.size() != 1) return error(std::string("objdump: expected one OBJ\n") + command_usage("objdump"), 2);
  auto data = read_file(pos[0]);
  if (!data) return error(data.error().message);
  auto obj = load_object(*data, pos[0]);
  if (!obj) return error(obj.error().message);
  if (source && !obj->btf_ext)
    std::fprintf(stderr, "ember: %s has no BTF line info (build with clang -g); no source lines\n",
                 pos[0].c_str());
  bool found = false;
  for (const ObjectProgram& p : obj->programs) {
    if (!prog.empty() && p.name != prog && p.section != prog) continue;
    if (found) std::printf("\n");
    dump_program(*obj, p, source, bytes);
    found = true;
  }
  if (!found) return error(pos[0] + ": no program '" + prog + "'", 2);
  return 0;
}

}  // namespace ember::cli
