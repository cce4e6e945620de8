// The context a probe program sees: the kernel's x86-64 `struct pt_regs`
// (arch/x86/include/asm/ptrace.h), laid out byte for byte, so that libbpf's
// PT_REGS_PARM1..6, PT_REGS_RC, BPF_UPROBE/BPF_URETPROBE/BPF_KPROBE read the
// same offsets they read under the kernel.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember::attach {

struct PtRegs {
  uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags,
      rsp, ss;
};

static_assert(sizeof(PtRegs) == 168);
static_assert(offsetof(PtRegs, r15) == 0);
static_assert(offsetof(PtRegs, rbp) == 32);
static_assert(offsetof(PtRegs, rbx) == 40);
static_assert(offsetof(PtRegs, r8) == 72);
static_assert(offsetof(PtRegs, rax) == 80);
static_assert(offsetof(PtRegs, rcx) == 88);
static_assert(offsetof(PtRegs, rdx) == 96);
static_assert(offsetof(PtRegs, rsi) == 104);
static_assert(offsetof(PtRegs, rdi) == 112);
static_assert(offsetof(PtRegs, orig_rax) == 120);
static_assert(offsetof(PtRegs, rip) == 128);
static_assert(offsetof(PtRegs, cs) == 136);
static_assert(offsetof(PtRegs, eflags) == 144);
static_assert(offsetof(PtRegs, rsp) == 152);
static_assert(offsetof(PtRegs, ss) == 160);

}  // namespace ember::attach
