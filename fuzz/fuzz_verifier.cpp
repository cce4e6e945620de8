// Bytes -> ember::verify; whatever it accepts runs in the interpreter's
// checked mode and must not fault (an out-of-bounds access, or running out
// of instructions, means the verifier accepted an unsafe program).
//
// Input: byte 0 picks the program type, byte 1 the size of the memory
// buffer r1 points to (memory mode: r2 holds the size); the rest is bytecode
// (a trailing partial slot is ignored). No maps: map references are
// rejected. tests/verifier_soundness_test.cpp is the generator-driven
// counterpart, with maps.
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "ember/asm.hpp"
#include "ember/helpers.hpp"
#include "ember/isa.hpp"
#include "ember/verifier.hpp"
#include "ember/vm.hpp"

namespace {

constexpr ember::ProgType kTypes[] = {
    ember::ProgType::Syscall,   ember::ProgType::SocketFilter,  ember::ProgType::Kprobe,
    ember::ProgType::Xdp,       ember::ProgType::SchedCls,      ember::ProgType::Tracepoint,
    ember::ProgType::PerfEvent, ember::ProgType::RawTracepoint, ember::ProgType::CgroupSkb,
    ember::ProgType::Tracing,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 + sizeof(ember::RawInsn)) return 0;
  ember::VerifyInput in;
  in.type = kTypes[data[0] % std::size(kTypes)];
  in.mem_size = data[1];
  in.insn_budget = 50'000;  // a verdict in milliseconds, whatever the input
  std::vector<ember::RawInsn> insns((size - 2) / sizeof(ember::RawInsn));
  for (size_t i = 0; i < insns.size(); ++i) {
    const uint8_t* s = data + 2 + i * sizeof(ember::RawInsn);
    ember::RawInsn& r = insns[i];
    r.opcode = s[0];
    r.regs = s[1];
    r.off = static_cast<int16_t>(s[2] | s[3] << 8);
    r.imm = static_cast<int32_t>(static_cast<uint32_t>(s[4]) | static_cast<uint32_t>(s[5]) << 8 |
                                 static_cast<uint32_t>(s[6]) << 16 | static_cast<uint32_t>(s[7]) << 24);
  }
  ember::VerifyResult v = ember::verify(std::span<const ember::RawInsn>(insns), in);
  if (!v.ok) return 0;

  auto prog = ember::decode(insns);
  if (!prog) {
    std::fprintf(stderr, "the verifier accepted a program the decoder refuses: %s\n",
                 prog.error().message.c_str());
    std::abort();
  }
  static const ember::HelperTable helpers = ember::default_helper_table();
  auto interp = ember::Interpreter::create(*prog, helpers);
  if (!interp) return 0;  // a helper the verifier knows and this runtime lacks
  std::vector<uint8_t> mem(data[1]);
  for (size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<uint8_t>(i * 37 + 11);
  ember::RunOptions opts;
  opts.checked = true;
  opts.insn_budget = 1'000'000;
  opts.random_seed = 1;
  static std::FILE* const devnull = std::fopen("/dev/null", "w");  // bpf_trace_printk output
  opts.trace_out = devnull ? devnull : stderr;
  auto r = interp->run(ember::RunInput::memory(mem), opts);
  // The verifier proves that loops end, not that they end soon (a counter
  // may run up to 2^62): running out of budget is not a finding here; a
  // memory fault is. tests/verifier_soundness_test.cpp, whose loops are
  // short, checks termination.
  if (!r && r.error().message.find("budget") != std::string::npos) return 0;
  if (!r) {
    std::fprintf(stderr,
                 "the verifier accepted a program that faults in checked mode (type %u, mem_size %u):\n%s\n"
                 "verifier: %llu instructions processed, %llu states\n%s",
                 static_cast<unsigned>(in.type), static_cast<unsigned>(data[1]), r.error().message.c_str(),
                 static_cast<unsigned long long>(v.stats.insns_processed),
                 static_cast<unsigned long long>(v.stats.states), ember::disassemble(*prog).c_str());
    std::abort();
  }
  return 0;
}
