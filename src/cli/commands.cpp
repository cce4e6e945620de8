#include "cli/commands.hpp"

#include <unistd.h>

#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <iostream>

#include "cli/args.hpp"
#include "cli/disasm_jited.hpp"
#include "cli/io.hpp"
#include "cli/run_object.hpp"
#include "cli/run_raw.hpp"
#include "ember/asm.hpp"
#include "ember/elf.hpp"
#include "ember/helpers.hpp"
#include "ember/vm.hpp"

namespace ember::cli {
namespace {

int error(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "ember: %s\n", msg.c_str());
  return code;
}

const Command& command(const std::string& name) {
  for (const Command& c : commands())
    if (name == c.name) return c;
  std::abort();  // only called with names from the table
}

// Parses flags; on --help prints the usage and returns 0 through `exit`.
std::optional<Args> parse(const std::string& cmd, const std::vector<std::string>& argv,
                          std::vector<FlagSpec> specs, int& exit_code) {
  specs.push_back({"--help", false});
  specs.push_back({"-h", false});
  auto a = parse_args(argv, specs);
  if (!a) {
    exit_code = error(cmd + ": " + a.error().message + "\n" + command(cmd).usage, 2);
    return std::nullopt;
  }
  if (a->has("--help") || a->has("-h")) {
    std::fputs(command(cmd).usage, stdout);
    exit_code = 0;
    return std::nullopt;
  }
  return std::move(*a);
}

Result<Format> format_flag(const Args& a) { return parse_format(a.get("--format").value_or("auto")); }

Result<uint64_t> parse_number(const std::string& s, const std::string& what) {
  uint64_t v = 0;
  int base = s.starts_with("0x") ? 16 : 10;
  const char* b = s.data() + (base == 16 ? 2 : 0);
  auto [p, ec] = std::from_chars(b, s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || b == s.data() + s.size())
    return fail(what, ": '", s, "' is not a number");
  return v;
}

Result<LoadedCode> load_single(const Args& a, const std::string& cmd) {
  if (a.positional.size() != 1) return fail(cmd, ": expected one FILE, got ", a.positional.size());
  auto fmt = format_flag(a);
  if (!fmt) return fmt.error();
  return load_code(a.positional[0], *fmt, a.get("--section").value_or(""));
}

}  // namespace

int cmd_asm(const std::vector<std::string>& argv) {
  int rc = 0;
  auto a = parse("asm", argv, {{"-o", true}, {"--hex", false}}, rc);
  if (!a) return rc;
  if (a->positional.size() != 1)
    return error("asm: expected one FILE\n" + std::string(command("asm").usage), 2);
  auto text = read_file(a->positional[0]);
  if (!text) return error(text.error().message);
  auto insns = assemble(std::string_view(reinterpret_cast<const char*>(text->data()), text->size()));
  if (!insns) return error(a->positional[0] + ": " + insns.error().message);
  auto prog = decode(*insns);  // structural checks: the output must load
  if (!prog) return error(a->positional[0] + ": " + prog.error().message);
  std::vector<uint8_t> bytes = insns_to_bytes(*insns);
  if (a->has("--hex")) {
    std::string hex = to_hex(bytes) + "\n";
    if (auto out = a->get("-o")) {
      auto st = write_file(*out, std::vector<uint8_t>(hex.begin(), hex.end()));
      return st ? 0 : error(st.error().message);
    }
    std::fputs(hex.c_str(), stdout);
    return 0;
  }
  auto out = a->get("-o");
  if (!out) {
    if (isatty(STDOUT_FILENO))
      return error("asm: refusing to write bytecode to a terminal: use -o FILE or --hex", 2);
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    return 0;
  }
  auto st = write_file(*out, bytes);
  if (!st) return error(st.error().message);
  std::fprintf(stderr, "%s: %zu instructions, %zu bytes\n", out->c_str(), insns->size(), bytes.size());
  return 0;
}

namespace {

// Lists one code section; slots that do not decode alone are shown raw.
void print_section_listing(const ElfFile& elf, const ElfSection& sec, bool bytes) {
  std::printf("\nDisassembly of section %s:\n", sec.name.c_str());
  auto insns = bytes_to_insns(sec.data);
  if (!insns) {
    std::printf("  <%s>\n", insns.error().message.c_str());
    return;
  }
  auto funcs = elf.functions_in(sec.index);
  for (size_t i = 0; i < insns->size(); ++i) {
    for (const ElfSymbol* f : funcs)
      if (f->value == i * 8) std::printf("\n%016" PRIx64 " <%s>:\n", f->value, f->name.c_str());
    auto inst = decode_insn(*insns, i);
    std::string text = inst ? disassemble_insn(*inst, i) : "<" + inst.error().message + ">";
    const uint8_t* b = reinterpret_cast<const uint8_t*>(&(*insns)[i]);
    std::printf("%6zu:\t", i);
    if (bytes)
      std::printf("%02x %02x %02x %02x %02x %02x %02x %02x\t", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
                  b[7]);
    std::printf("%s\n", text.c_str());
    if (inst && inst->op == Op::LDDW && i + 1 < insns->size()) {
      const uint8_t* h = reinterpret_cast<const uint8_t*>(&(*insns)[++i]);
      std::printf("%6zu:\t", i);
      if (bytes)
        std::printf("%02x %02x %02x %02x %02x %02x %02x %02x\n", h[0], h[1], h[2], h[3], h[4], h[5], h[6],
                    h[7]);
      else
        std::printf("\n");
    }
  }
}

int disasm_elf(const Args& a, const std::vector<uint8_t>& bytes) {
  const std::string& path = a.positional[0];
  auto elf = ElfFile::parse(bytes, path);
  if (!elf) return error(elf.error().message);
  std::string want = a.get("--section").value_or("");
  bool found = false;
  std::printf("%s:\tfile format elf64-bpf\n", path.c_str());
  for (const ElfSection* s : elf->code_sections()) {
    if (!want.empty() && s->name != want) continue;
    found = true;
    print_section_listing(*elf, *s, !a.has("--no-bytes"));
  }
  if (!want.empty() && !found) return error(path + ": no code section '" + want + "'");
  return 0;
}

}  // namespace

int cmd_disasm(const std::vector<std::string>& argv) {
  int rc = 0;
  auto a = parse("disasm", argv,
                 {{"--format", true},
                  {"--section", true},
                  {"--no-bytes", false},
                  {"--jited", false},
                  {"--prog", true},
                  {"-j", false},
                  {"--json", false}},
                 rc);
  if (!a) return rc;
  if (a->positional.size() != 1)
    return error("disasm: expected one FILE\n" + std::string(command("disasm").usage), 2);
  bool json = a->has("-j") || a->has("--json");
  if (a->has("--jited")) {
    if (a->has("--format") || a->has("--section"))
      return error("disasm: --jited takes an ELF object and --prog, not --format or --section", 2);
    return disasm_jited({a->positional[0], a->get("--prog").value_or(""), json, !a->has("--no-bytes")});
  }
  if (json || a->has("--prog")) return error("disasm: -j and --prog go with --jited", 2);
  auto fmt = format_flag(*a);
  if (!fmt) return error(fmt.error().message, 2);
  auto bytes = read_file(a->positional[0]);
  if (!bytes) return error(bytes.error().message);
  Format f = *fmt == Format::Auto ? detect_format(*bytes) : *fmt;
  if (f == Format::Elf) return disasm_elf(*a, *bytes);
  auto code = load_code(a->positional[0], f, "");
  if (!code) return error(code.error().message);
  auto prog = decode(code->insns);
  if (!prog) return error(code->origin + ": " + prog.error().message);
  DisasmOptions opts;
  opts.bytes = !a->has("--no-bytes");
  std::fputs(disassemble(*prog, opts).c_str(), stdout);
  return 0;
}

namespace {

Result<std::vector<uint8_t>> memory_flag(const Args& a) {
  if (a.has("--mem") && a.has("--mem-file")) return fail("run: give --mem or --mem-file, not both");
  if (auto hex = a.get("--mem")) return parse_hex(*hex, "--mem");
  if (auto file = a.get("--mem-file")) return read_file(*file);
  return std::vector<uint8_t>{};
}

}  // namespace

namespace {

// An ELF object runs through the runtime, with its maps and global data.
bool is_object(const Args& a) {
  if (a.positional.size() != 1 || a.get("--format").value_or("auto") != "auto") return false;
  auto bytes = read_file(a.positional[0]);
  return bytes && ElfFile::looks_like_elf(*bytes);
}

int run_object_cmd(const Args& a) {
  ObjectRunOptions o;
  o.prog = a.get("--prog").value_or(a.get("--section").value_or(""));
  for (auto [flag, dst] : {std::pair{"--data-in", &o.data_in}, std::pair{"--ctx-in", &o.ctx_in}}) {
    if (auto f = a.get(flag)) {
      auto bytes = read_file(*f);
      if (!bytes) return error(bytes.error().message);
      *dst = std::move(*bytes);
    }
  }
  if (a.has("--mem") || a.has("--mem-file")) {
    auto mem = memory_flag(a);
    if (!mem) return error(mem.error().message);
    o.data_in = std::move(*mem);
  }
  o.data_out = a.get("--data-out").value_or("");
  o.ctx_out = a.get("--ctx-out").value_or("");
  for (auto [flag, dst] : {std::pair{"--budget", &o.budget}, std::pair{"--seed", &o.seed}}) {
    if (auto v = a.get(flag)) {
      auto n = parse_number(*v, flag);
      if (!n) return error(n.error().message, 2);
      *dst = *n;
    }
  }
  if (auto v = a.get("--repeat")) {
    auto n = parse_number(*v, "--repeat");
    if (!n || *n == 0 || *n > UINT32_MAX) return error("--repeat: '" + *v + "' is not a count from 1", 2);
    o.repeat = static_cast<uint32_t>(*n);
  }
  o.dump_maps = a.has("--dump-maps");
  o.json = a.has("-j") || a.has("--json");
  o.unverified = a.has("--unverified");
  o.interp = a.has("--interp");
  return run_object(a.positional[0], o);
}

}  // namespace

int cmd_run(const std::vector<std::string>& argv) {
  int rc = 0;
  auto a = parse("run", argv,
                 {{"--format", true},
                  {"--section", true},
                  {"--mem", true},
                  {"--mem-file", true},
                  {"--trace", false},
                  {"--budget", true},
                  {"--seed", true},
                  {"--prog", true},
                  {"--data-in", true},
                  {"--ctx-in", true},
                  {"--data-out", true},
                  {"--ctx-out", true},
                  {"--repeat", true},
                  {"--interp", false},
                  {"--unverified", false},
                  {"--dump-maps", false},
                  {"-j", false},
                  {"--json", false}},
                 rc);
  if (!a) return rc;
  if (is_object(*a) && !a->has("--trace")) return run_object_cmd(*a);
  auto code = load_single(*a, "run");
  if (!code) return error(code.error().message);
  RawRunOptions o;
  auto mem = memory_flag(*a);
  if (!mem) return error(mem.error().message);
  o.mem = std::move(*mem);
  if (auto b = a->get("--budget")) {
    auto v = parse_number(*b, "--budget");
    if (!v) return error(v.error().message, 2);
    o.budget = *v;
  }
  if (auto s = a->get("--seed")) {
    auto v = parse_number(*s, "--seed");
    if (!v) return error(v.error().message, 2);
    o.seed = *v;
  }
  o.trace = a->has("--trace");
  o.interp = a->has("--interp");
  o.unverified = a->has("--unverified");
  return run_raw(*code, o);
}

int cmd_check(const std::vector<std::string>& argv) {
  int rc = 0;
  auto a = parse("check", argv, {{"--format", true}, {"--section", true}}, rc);
  if (!a) return rc;
  auto code = load_single(*a, "check");
  if (!code) return error(code.error().message);
  auto prog = decode(code->insns);
  if (!prog) return error(code->origin + ": " + prog.error().message);
  size_t funcs = 1, helper_calls = 0;
  for (const Inst& in : prog->insts) {
    if (in.second_half) continue;
    if (in.op == Op::CALL) ++helper_calls;
  }
  std::vector<bool> entry(prog->insts.size());
  for (const Inst& in : prog->insts)
    if (in.op == Op::CALL_LOCAL || (in.op == Op::LDDW && !in.second_half && in.pseudo() == Pseudo::Func))
      if (!entry[in.target]) entry[in.target] = true, ++funcs;
  std::printf("%s: structurally valid: %zu instruction slots, %zu function%s, %zu helper call%s\n",
              code->origin.c_str(), prog->insts.size(), funcs, funcs == 1 ? "" : "s", helper_calls,
              helper_calls == 1 ? "" : "s");
  return 0;
}

// bpf_conformance's plugin protocol: program bytes as one line of hex on
// stdin, memory as hex in the first argument; prints r0 in hex.
int cmd_conformance_plugin(const std::vector<std::string>& argv) {
  int rc = 0;
  auto a = parse("conformance-plugin", argv, {}, rc);
  if (!a) return rc;
  std::string line;
  std::getline(std::cin, line);
  auto bytes = parse_hex(line, "program on stdin");
  if (!bytes) return error(bytes.error().message);
  std::vector<uint8_t> mem;
  if (!a->positional.empty()) {
    auto m = parse_hex(a->positional[0], "memory argument");
    if (!m) return error(m.error().message);
    mem = std::move(*m);
  }
  auto prog = decode_bytes(*bytes);
  if (!prog) return error(prog.error().message);
  HelperTable helpers = conformance_helper_table();
  auto interp = Interpreter::create(*prog, helpers);
  if (!interp) return error(interp.error().message);
  auto r0 = interp->run(RunInput::memory(mem), RunOptions{});
  if (!r0) return error(r0.error().message);
  std::printf("%" PRIx64 "\n", *r0);
  return 0;
}

const char* command_usage(const char* name) {
  for (const Command& c : commands())
    if (std::string(name) == c.name) return c.usage;
  return "";
}

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands = {
      {"asm", "assemble text into raw bytecode",
       "usage: ember asm FILE [-o OUT] [--hex]\n"
       "  Assembles FILE (bpf_conformance syntax, e.g. 'mov %r0, 1', 'ldxw %r0, [%r1+4]',\n"
       "  'jeq %r1, 0, label', 'lock fetch add [%r1], %r2'; llvm-objdump syntax is accepted too)\n"
       "  into raw 8-byte instruction slots, checked structurally.\n"
       "  -o OUT   write the bytecode to OUT (otherwise to stdout, unless it is a terminal)\n"
       "  --hex    write one line of hex instead of binary\n",
       cmd_asm},
      {"disasm", "disassemble raw bytecode or the code sections of an ELF object",
       "usage: ember disasm FILE [--format auto|raw|hex|asm|elf] [--section NAME] [--no-bytes]\n"
       "       ember disasm --jited OBJ [--prog NAME] [--no-bytes] [-j]\n"
       "  Prints instructions in llvm-objdump syntax ('r0 = *(u32 *)(r1 + 0x4)').\n"
       "  FILE is raw bytecode, hex text, assembler text, or an ELF object built by\n"
       "  clang -target bpf (every code section, or only --section NAME).\n"
       "  --jited  the x86-64 code the JIT makes of each program of OBJ (or --prog\n"
       "           NAME), verified first, in AT&T syntax under the eBPF instruction\n"
       "           and C source line it comes from (bpftool prog dump jited linum);\n"
       "           -j: JSON. Exit status 1 if a program is rejected or not compiled.\n",
       cmd_disasm},
      {"run", "run a program (raw code, or a program of an object with its maps) and print its result",
       "usage: ember run OBJ [--prog NAME] [--ctx-in F] [--data-in F] [--data-out F] [--ctx-out F]\n"
       "                 [--repeat N] [--interp] [--unverified] [--dump-maps] [-j]\n"
       "  Loads the ELF object OBJ (built by clang -target bpf) with its maps and global\n"
       "  data, runs one program like BPF_PROG_TEST_RUN and prints its return value and\n"
       "  mean duration (bpftool prog run's format), the data after the run, and with\n"
       "  --dump-maps every map in bpftool's map dump format (-j: JSON).\n"
       "  --prog NAME     the program (function name or SEC() name); needed when the\n"
       "                  object has several\n"
       "  --ctx-in F      the context (r1) from a file, as for BPF_PROG_TYPE_SYSCALL\n"
       "  --data-in F     the packet or memory: r1 = the data, r2 = its length\n"
       "  --repeat N      run N times; the duration is the mean\n"
       "  --interp        the interpreter instead of the JIT\n"
       "  --unverified    run it although the verifier rejects it (or without asking):\n"
       "                  in the interpreter's checked mode, never in the JIT\n"
       "  The program runs only after the verifier accepts it (`ember verify` shows\n"
       "  why not), then in the x86-64 JIT (or with --interp the interpreter's fast\n"
       "  mode) where the verifier's proof covers the input: syscall programs given a\n"
       "  large enough --ctx-in; other program types run in checked mode for now.\n"
       "  The output (and -j) says which engine ran and why.\n"
       "\n"
       "usage: ember run FILE [--mem HEX | --mem-file F] [--interp] [--unverified] [--trace]\n"
       "                 [--budget N] [--seed N] [--format auto|raw|hex|asm|elf] [--section NAME]\n"
       "  Runs raw code FILE with r1 = the memory and r2 = its length (as\n"
       "  bpf_conformance does) and prints r0 in hex. The verifier must accept it\n"
       "  first, for exactly that much memory; then it runs in the JIT (--interp: the\n"
       "  interpreter's fast mode). A rejection is explained, exit status 1.\n"
       "  --unverified    run it without the verifier, in the interpreter's checked\n"
       "                  mode (every memory access bounded, at most --budget\n"
       "                  instructions, default 100000000)\n"
       "  --mem HEX       the memory as hex bytes ('00 01 02' or '000102')\n"
       "  --mem-file F    the memory from a file\n"
       "  --trace         print each executed instruction and the registers it changed\n"
       "                  (in checked mode, after the verifier)\n"
       "  --seed N        seed of bpf_get_prandom_u32 (default: from the clock)\n"
       "  --section NAME  for an ELF object: the program (SEC() name or function name),\n"
       "                  linked with the .text subprograms it calls\n",
       cmd_run},
      {"check", "check a program structurally (decoding, jumps, registers)",
       "usage: ember check FILE [--format auto|raw|hex|asm|elf] [--section NAME]\n"
       "  Decodes FILE and reports the first invalid instruction (unknown opcode, bad\n"
       "  register, reserved field, write to r10, jump out of range or into ld_imm64,\n"
       "  falling off the end) with its index.\n",
       cmd_check},
      {"verify", "prove the programs of an object safe, or explain why not",
       "usage: ember verify OBJ [--prog NAME] [--log-level 1|2] [-j]\n"
       "  Runs the verifier on each program of OBJ (or the one named) with its\n"
       "  program type's rules and its maps: the verdict and statistics (insns\n"
       "  processed, states, peak states, time, peak state memory). A rejection\n"
       "  names the reason, the instruction and its C source line, the register\n"
       "  and stack state there and the branches taken to reach it; --log-level 2\n"
       "  prints the state at every instruction. Exit status 1 if any is rejected.\n",
       cmd_verify},
      {"objdump", "disassemble the programs of an object with their C source lines",
       "usage: ember objdump OBJ [--prog NAME] [--no-source] [--no-bytes]\n"
       "  Prints each program of OBJ as Ember links it (its .text subprograms\n"
       "  appended), in llvm-objdump syntax, with the C source line of each\n"
       "  instruction from BTF line info ('; source @ file.c:LINE', as bpftool\n"
       "  prog dump xlated linum) and the map or global each ld_imm64 names.\n",
       cmd_objdump},
      {"map", "show, dump, look up, update and delete maps of running Ember processes (bpftool map)",
       "usage: ember map show [-j]\n"
       "       ember map dump MAP [-j]\n"
       "       ember map lookup MAP key BYTES [-j]\n"
       "       ember map update MAP key BYTES value BYTES [any|exist|noexist]\n"
       "       ember map delete MAP key BYTES\n"
       "  MAP   := id ID [pid PID] | name NAME [pid PID] | pinned PATH|NAME\n"
       "  BYTES := 0x01 2 0x03 ... | hex 01 02 03 ...\n"
       "  Works on the maps that running Ember runtimes publish (the run directory,\n"
       "  $EMBER_RUN_DIR or /dev/shm/ember-UID) and on pinned maps, in bpftool's\n"
       "  formats; per-CPU values are round_up(value_size, 8) bytes per CPU.\n",
       cmd_map},
      {"prog", "list the programs of running Ember processes (bpftool prog show)",
       "usage: ember prog show [-j]\n", cmd_prog},
      {"tracelog", "stream bpf_trace_printk output of running Ember processes (bpftool prog tracelog)",
       "usage: ember tracelog [--once]\n"
       "  Prints the lines programs write with bpf_trace_printk/bpf_printk in every\n"
       "  running Ember process that publishes its objects, in tracefs trace_pipe's\n"
       "  format, until Ctrl-C (--once: what is there now, then exit).\n",
       cmd_tracelog},
      {"trace", "run an object's uprobe/uretprobe/USDT programs inside a command or a running process",
       "usage: ember trace OBJ [-e PROBE ...] [--hist MAP ...] [--interval S] [--follow-forks] [-j]\n"
       "                  [--event-type [MAP=]STRUCT ...] (-- COMMAND [ARGS] | -p PID)\n"
       "  Attaches every probe program of OBJ: libbpf sections uprobe/PATH:FUNC[+OFF],\n"
       "  uretprobe/PATH:FUNC and usdt/PATH:PROVIDER:NAME, and plain SEC(\"uprobe\")\n"
       "  programs bound with -e:\n"
       "    -e uprobe:PATH:FUNC[+OFF]=PROG   -e uretprobe:PATH:FUNC=PROG\n"
       "    -e usdt:PATH:PROVIDER:NAME=PROG\n"
       "  PATH is a file or a library name (libc.so.6). The programs run JIT-compiled\n"
       "  inside the target (Ember's agent, preloaded into COMMAND or injected into\n"
       "  PID with ptrace); their maps are published, so `ember map dump` reads them\n"
       "  live. Ring buffer and perf buffer events print one line each, their fields\n"
       "  typed by OBJ's BTF: `MAP: pid=1 comm=\"bash\"` (-j: one JSON object each).\n"
       "  The type is --event-type STRUCT (every event map) or MAP=STRUCT, else the\n"
       "  one `struct event` of the BTF, else the one struct named *_event or\n"
       "  *event_t; without one, or for a record shorter than it, hex bytes.\n"
       "  bpf_printk lines print as trace_pipe does; --interval S dumps every\n"
       "  map each S seconds and at the end; --hist MAP prints MAP as a log2\n"
       "  histogram at the end.\n"
       "  --follow-forks: children the target forks keep their probes (exec'd\n"
       "  programs never do). Ctrl-C or the command's end detaches and restores the\n"
       "  target. Exit status: the command's; 1 when something asked does not exist.\n",
       cmd_trace},
      {"conformance-plugin", "run one program for the bpf_conformance test runner",
       "usage: ember conformance-plugin [MEMORY_HEX] < PROGRAM_HEX\n"
       "  Speaks the bpf_conformance plugin protocol: reads the program as one line of\n"
       "  hex on stdin, takes the memory as hex in the first argument, prints r0 in hex.\n"
       "  Helper 5 returns its first argument, as the suite's call tests expect.\n",
       cmd_conformance_plugin},
  };
  return kCommands;
}

}  // namespace ember::cli
