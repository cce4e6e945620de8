// Generated code of the hook engine: the entry trampoline of an inline site
// and the process-wide return trampolines. Both build a complete PtRegs on
// the stack, save the vector registers that may be live, call a dispatcher
// and restore what the site needs (LiveRegs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember::attach {

// Called with (site, regs, landing) by entry trampolines; returns non-zero
// when it replaced the function's return address (see
// emit_entry_trampoline).
using EntryDispatcher = uint64_t (*)(void* site, void* regs, uint64_t landing);
// Called with (regs) by the return trampoline; returns the address to go back to.
using ReturnDispatcher = uint64_t (*)(void* regs);

// What a trampoline gives back unchanged. PtRegs is always complete (every
// general register and the flags are stored); the modes differ in the
// vector registers saved and in whether the flags are restored.
//  All: any instruction boundary (an offset into a function, a USDT site,
//    code that does not follow the ABI): every general register, the flags,
//    xmm0-15 (ymm0-15 with AVX).
//  CallEntry: the first instruction of a function called by the SysV x86-64
//    ABI. Live there: the argument registers rdi, rsi, rdx, rcx, r8, r9,
//    xmm0-7 (ymm0-7 for __m256 arguments), rax (the vector count of a
//    varargs call), r10 (the static chain) and the callee-saved registers;
//    xmm8-15 and the flags are dead (every general register is still
//    restored: a pop costs as much as skipping it).
//  CallReturn: a return from such a function. Live: rax, rdx, xmm0, xmm1
//    (ymm0 for __m256 results) and the callee-saved registers. x87 st0/st1
//    (long double results) are never saved: the hook path does not use x87
//    and a HookFn must leave the x87 stack as it found it.
enum class LiveRegs { All, CallEntry, CallReturn };

// Which vector state the trampolines save, by default (the engine may be
// told another: HookEngineOptions):
//  Sse: xmm registers (no AVX enabled by the OS).
//  Avx: whole ymm registers: glibc's AVX string functions, which a helper
//    may reach, end with vzeroupper and would clear the upper halves of a
//    probed function's live ymm values.
//  Xsave: when XCR0 enables AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM) or AMX
//    state: XSAVEC (else XSAVE) / XRSTOR of every OS-enabled component into
//    a 64-byte aligned area on the stack sized from CPUID leaf 0xD, whatever
//    LiveRegs says: glibc's EVEX string functions use ymm16-31, which the
//    Avx mode would not give back, nor k0-7 or the upper zmm halves. It
//    also keeps MXCSR and the x87 state.
//
// With AVX the upper halves are cleared (vzeroupper) before the dispatcher
// runs, and given back with VEX loads only when one of the saved ones was
// not zero; otherwise the low halves are restored with legacy SSE loads
// after a vzeroupper, leaving the upper state clean. Why: on this Zen 3
// machine, legacy SSE code (the dispatcher, the hooks, most of the traced
// program) running while the upper halves are dirty paid ~150 ns per
// return hook (a legacy movq load into xmm0 in push_return merging with
// ymm0's dirty upper half: 213 -> 92 ns when that one store was scalar);
// restoring every ymm with VEX loads made the state dirty after every hit.
// Xsave clears them after the save too; XRSTOR gives back the upper state
// exactly as it was.
enum class VectorSave { Sse, Avx, Xsave };
VectorSave vector_save_mode();
// Whether this CPU and OS can run trampolines of `mode`.
bool vector_save_supported(VectorSave mode);

// Bytes of the save/restore sequence that precede the relocated instructions
// of an entry trampoline (the relocation must know where it will sit).
size_t entry_prologue_size(LiveRegs live, VectorSave vectors);

// Bytes of the landing path that follows the relocated instructions and
// their jump back (the trampoline's size is prologue + relocated + this).
size_t entry_landing_size(LiveRegs live);

// The entry trampoline placed at `at`: PtRegs with rip = site_addr and rsp =
// the stack pointer at the site, dispatcher(site, regs, landing), registers
// restored, then `relocated` (which must have been relocated for at +
// entry_prologue_size(live, vectors)) and a jump to `resume`; `vectors`:
// the vector state it saves around the dispatcher.
// When the dispatcher replaced the return address (it returns non-zero),
// the trampoline drops it and *calls* the relocated instructions instead:
// the call pushes `landing`, the address after it, into the same stack slot
// and into the CPU's return stack buffer, so the function's ret to the
// landing is predicted (a ret to a replaced address never is: ~15-20 cycles
// per uretprobe hit); the landing jumps to `return_trampoline`, which must
// leave by ret (ReturnExit::Ret), consuming the caller's own entry of the
// return stack buffer. The dispatcher is given the landing's address: it is
// what the slot holds while the return is replaced.
// has_landing false: no landing path. `return_trampoline` must then leave
// by jmp (ReturnExit::Jmp): the dispatcher is given its address, which it
// writes over a replaced return address, and the trampoline always goes on
// to `relocated` and `resume`. Int3 sites use
// this form: their SIGTRAP handler only sets the thread's rip to such a
// trampoline, with `relocated` empty and `resume` the site's out-of-line
// stub, so that their hooks run on the thread's own stack like inline ones.
// Either form first moves rsp 128 bytes down, past the red zone of the code
// at the site (a USDT site inside a function may have live data there).
std::vector<uint8_t> emit_entry_trampoline(uintptr_t at, uintptr_t site_addr, void* site,
                                           EntryDispatcher dispatcher, const std::vector<uint8_t>& relocated,
                                           uintptr_t resume, LiveRegs live, uintptr_t return_trampoline,
                                           VectorSave vectors, bool has_landing = true);

// How a return trampoline goes back to the caller. Jmp: for returns whose
// address the dispatcher wrote into the stack (int3 sites): the function's
// ret was mispredicted and consumed the caller's return-stack-buffer entry,
// so an indirect jmp keeps the outer returns predicted. Ret: for returns
// through an entry trampoline's landing (the call there pushed its own
// entry, the caller's is still on top of the buffer).
enum class ReturnExit { Jmp, Ret };

// The return trampoline: reached from a function whose return address was
// replaced; PtRegs with rip = 0 (the dispatcher fills it) and rsp = the
// stack pointer after the return; goes to what the dispatcher returns with
// the registers `live` names as the function left them.
std::vector<uint8_t> emit_return_trampoline(ReturnDispatcher dispatcher, LiveRegs live, ReturnExit exit,
                                            VectorSave vectors = vector_save_mode());

}  // namespace ember::attach
