// Generated code of the hook engine: the entry trampoline of an inline site
// and the process-wide return trampoline. Both build a PtRegs on the stack,
// save the vector registers a C++ callee may clobber, call a dispatcher and
// restore everything exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember::attach {

// Called with (site, regs) by entry trampolines; returns nothing.
using EntryDispatcher = void (*)(void* site, void* regs);
// Called with (regs) by the return trampoline; returns the address to go back to.
using ReturnDispatcher = uint64_t (*)(void* regs);

// Bytes of the save/restore sequence that precede the relocated instructions
// of an entry trampoline (the relocation must know where it will sit).
size_t entry_prologue_size();

// The entry trampoline placed at `at`: PtRegs with rip = site_addr and rsp =
// the stack pointer at the site, dispatcher(site, regs), registers restored,
// then `relocated` (which must have been relocated for at +
// entry_prologue_size()) and a jump to `resume`.
std::vector<uint8_t> emit_entry_trampoline(uintptr_t at, uintptr_t site_addr, void* site,
                                           EntryDispatcher dispatcher, const std::vector<uint8_t>& relocated,
                                           uintptr_t resume);

// The return trampoline: reached by `ret` from a function whose return
// address was replaced; PtRegs with rip = 0 (the dispatcher fills it) and
// rsp = the stack pointer after the return; jumps to what the dispatcher
// returns with every register as the function left it.
std::vector<uint8_t> emit_return_trampoline(ReturnDispatcher dispatcher);

// Which vector state the trampolines save: ymm0-15 when the OS enabled AVX
// (glibc's AVX string functions, which a helper may reach, end with
// vzeroupper and would clear the upper halves of a probed function's live
// ymm values), else xmm0-15. AVX-512 state (zmm16-31, k0-7, upper zmm
// halves) is not saved: see hook_engine.cpp.
enum class VectorSave { Sse, Avx };
VectorSave vector_save_mode();

}  // namespace ember::attach
