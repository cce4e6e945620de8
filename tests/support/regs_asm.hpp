// Assembler macros shared by the register tests of the hook engine
// (attach_hook_regs_test.cpp, attach_int3_test.cpp,
// attach_vector_save_test.cpp): each loads every general register, the
// flags and ymm0-15 from a register file before a probed point and stores
// them after it, to check that a hook gives everything back. Paste
// EMBER_TEST_REGS_ASM at the start of a file's top-level asm().
//
// A register file: rax, rbx, rcx, rdx, rsi, rdi, rbp, r8..r15 at 0..112,
// rflags at 120, ymm_i at VEC + 32 * i (VEC: the macros' second argument).
// EMBER_STORE_REGS stores the flags first (its cld changes DF).
#pragma once

#define EMBER_TEST_REGS_ASM                        \
  ".macro EMBER_LOAD_REGS buf, vec\n"              \
  ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n" \
  "vmovdqu \\buf+\\vec+32*\\i(%rip), %ymm\\i\n"    \
  ".endr\n"                                        \
  "mov \\buf+8(%rip), %rbx\n"                      \
  "mov \\buf+16(%rip), %rcx\n"                     \
  "mov \\buf+24(%rip), %rdx\n"                     \
  "mov \\buf+32(%rip), %rsi\n"                     \
  "mov \\buf+40(%rip), %rdi\n"                     \
  "mov \\buf+48(%rip), %rbp\n"                     \
  "mov \\buf+56(%rip), %r8\n"                      \
  "mov \\buf+64(%rip), %r9\n"                      \
  "mov \\buf+72(%rip), %r10\n"                     \
  "mov \\buf+80(%rip), %r11\n"                     \
  "mov \\buf+88(%rip), %r12\n"                     \
  "mov \\buf+96(%rip), %r13\n"                     \
  "mov \\buf+104(%rip), %r14\n"                    \
  "mov \\buf+112(%rip), %r15\n"                    \
  "mov \\buf+0(%rip), %rax\n"                      \
  "pushq \\buf+120(%rip)\n"                        \
  "popfq\n"                                        \
  ".endm\n"                                        \
  ".macro EMBER_STORE_REGS buf, vec\n"             \
  "pushfq\n"                                       \
  "popq \\buf+120(%rip)\n"                         \
  "cld\n"                                          \
  "mov %rax, \\buf+0(%rip)\n"                      \
  "mov %rbx, \\buf+8(%rip)\n"                      \
  "mov %rcx, \\buf+16(%rip)\n"                     \
  "mov %rdx, \\buf+24(%rip)\n"                     \
  "mov %rsi, \\buf+32(%rip)\n"                     \
  "mov %rdi, \\buf+40(%rip)\n"                     \
  "mov %rbp, \\buf+48(%rip)\n"                     \
  "mov %r8, \\buf+56(%rip)\n"                      \
  "mov %r9, \\buf+64(%rip)\n"                      \
  "mov %r10, \\buf+72(%rip)\n"                     \
  "mov %r11, \\buf+80(%rip)\n"                     \
  "mov %r12, \\buf+88(%rip)\n"                     \
  "mov %r13, \\buf+96(%rip)\n"                     \
  "mov %r14, \\buf+104(%rip)\n"                    \
  "mov %r15, \\buf+112(%rip)\n"                    \
  ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n" \
  "vmovdqu %ymm\\i, \\buf+\\vec+32*\\i(%rip)\n"    \
  ".endr\n"                                        \
  ".endm\n"                                        \
  ".macro EMBER_PUSH_CALLEE_SAVED\n"               \
  "push %rbx\n"                                    \
  "push %rbp\n"                                    \
  "push %r12\n"                                    \
  "push %r13\n"                                    \
  "push %r14\n"                                    \
  "push %r15\n"                                    \
  ".endm\n"                                        \
  ".macro EMBER_POP_CALLEE_SAVED\n"                \
  "pop %r15\n"                                     \
  "pop %r14\n"                                     \
  "pop %r13\n"                                     \
  "pop %r12\n"                                     \
  "pop %rbp\n"                                     \
  "pop %rbx\n"                                     \
  ".endm\n"
