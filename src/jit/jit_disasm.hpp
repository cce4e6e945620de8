// The JIT's native code decoded by Zydis and grouped under the eBPF
// instruction each piece comes from: what `ember disasm --jited` prints
// (bpftool prog dump jited, with the eBPF instruction added above its code).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ember/isa.hpp"
#include "ember/jit.hpp"

namespace ember {

enum class AsmSyntax { Att, Intel };  // AT&T is what bpftool and objdump print

struct NativeInsn {
  uint32_t offset = 0;  // into the code
  std::vector<uint8_t> bytes;
  bool valid = true;                  // false: bytes Zydis cannot decode, listed one at a time
  std::string operation;              // "mov", "lock xadd"; "(invalid)" when !valid
  std::vector<std::string> operands;  // in the syntax's order
  std::string text() const;           // "mov %rsp, %rbp"
};

// The native code of one eBPF instruction, or of the code before the first
// one (the prologue).
struct JitBlock {
  std::optional<uint32_t> insn;  // the eBPF instruction index; none: prologue
  std::vector<NativeInsn> native;
};

// Decodes `code` (x86-64, offsets from 0) in one pass and assigns each
// native instruction to the eBPF instruction whose code it starts in, by
// `lines`. Blocks come in code order. Every instruction of `prog` has a
// block (the second half of an ld_imm64 is not an instruction); one that
// emitted no code, that shares its code with the next (a fused pair), or
// that `lines` omits, has an empty block just before that next one. Code
// after the last instruction's (the JIT's out-of-line paths) is listed
// under the last instruction: `lines` does not say where it starts.
std::vector<JitBlock> jit_listing(std::span<const uint8_t> code, std::span<const JitLine> lines,
                                  const Program& prog, AsmSyntax syntax = AsmSyntax::Att);

struct JitTextOptions {
  bool bytes = true;  // the native instruction bytes, like objdump -d
  // The C source line of an eBPF instruction ("" when unknown); printed
  // above the instruction where it changes, like `ember objdump`.
  std::function<std::string(size_t insn)> source;
  // Appended to the eBPF instruction's line ("  ; map counts").
  std::function<std::string(size_t insn)> annotation;
};

// The listing as text lines:
//   ; return x + 1; @ prog.c:12           (source, when it changes)
//   3: r0 += 0x1                          (the eBPF instruction)
//      0x1c:  48 83 c0 01   add $0x1, %rax  (its native code)
std::vector<std::string> jit_listing_text(const std::vector<JitBlock>& blocks, const Program& prog,
                                          const JitTextOptions& opts = {});

}  // namespace ember
