#include "attach/trampoline.hpp"

#include <cpuid.h>

#include <cassert>
#include <cstring>

#include "attach/x86_relocate.hpp"

namespace ember::attach {
namespace {

class Code {
 public:
  void b(std::initializer_list<uint8_t> bytes) { out_.insert(out_.end(), bytes); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  std::vector<uint8_t> out_;
};

constexpr uint32_t kRedZone = 128;
constexpr uint32_t kRegsSize = 168;

// lea rsp, [rsp-128]; then the PtRegs slots from ss down to r15.
void push_regs(Code& c, LiveRegs live) {
  c.b({0x48, 0x8D, 0x64, 0x24, 0x80});  // lea rsp, [rsp-128]: stay clear of the red zone
  c.b({0x6A, 0x2B});                    // push 0x2b: ss (__USER_DS)
  c.b({0x50});                          // push rax: rsp slot, filled below
  c.b({0x9C});                          // pushfq
  // Mid-function code may run with DF set; the C++ dispatcher assumes it
  // clear (the ABI guarantees that only at calls). popfq gives it back.
  if (live == LiveRegs::All) c.b({0xFC});  // cld
  c.b({0x6A, 0x33});                       // push 0x33: cs (__USER_CS)
  c.b({0x50});                             // push rax: rip slot
  c.b({0x6A, 0xFF});                       // push -1: orig_rax, as the kernel sets it for uprobes
  c.b({0x57, 0x56, 0x52, 0x51, 0x50});     // rdi rsi rdx rcx rax
  c.b({0x41, 0x50, 0x41, 0x51, 0x41, 0x52, 0x41, 0x53});  // r8 r9 r10 r11
  c.b({0x53, 0x55});                                      // rbx rbp
  c.b({0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57});  // r12 r13 r14 r15
  c.b({0x48, 0x8D, 0x84, 0x24});                          // lea rax, [rsp + 168 + 128]
  c.u32(kRegsSize + kRedZone);
  c.b({0x48, 0x89, 0x84, 0x24});  // mov [rsp+152], rax: regs->rsp
  c.u32(152);
}

bool have_lahf_sahf() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    return __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & bit_LAHF_LM);
  }();
  return ok;
}

// Restores r15..rdi, and eflags when the site needs them; leaves rsp at
// the rsp slot (offset 152). The flags are dead at a call's entry and
// return (the ABI requires only DF clear, which the C++ dispatcher keeps).
// Elsewhere, popfq is a slow microcoded instruction (about a tenth of a
// JIT-run probe's hit in perf): the arithmetic flags are rebuilt with
// `add al, 0x7f` (OF) and sahf (SF ZF AF PF CF) while rax is still free;
// popfq only when DF, TF or AC was set.
void pop_regs(Code& c, LiveRegs live) {
  c.b({0x48, 0x89, 0xDC});                                // mov rsp, rbx
  c.b({0x41, 0x5F, 0x41, 0x5E, 0x41, 0x5D, 0x41, 0x5C});  // r15 r14 r13 r12
  c.b({0x5D, 0x5B});                                      // rbp rbx
  c.b({0x41, 0x5B, 0x41, 0x5A, 0x41, 0x59, 0x41, 0x58});  // r11 r10 r9 r8
  if (live != LiveRegs::All) {
    c.b({0x58, 0x59, 0x5A, 0x5E, 0x5F});
    c.b({0x48, 0x8D, 0x64, 0x24, 0x20});  // lea rsp, [rsp+32]: orig_rax, rip, cs, eflags
    return;
  }
  auto pop_rest = [&] { c.b({0x58, 0x59, 0x5A, 0x5E, 0x5F}); };  // rax rcx rdx rsi rdi
  auto rel8_from = [&](size_t at) {                              // patches the rel8 at `at` to reach here
    c.bytes()[at] = static_cast<uint8_t>(c.bytes().size() - (at + 1));
  };
  size_t to_popfq = 0, to_done = 0;
  if (have_lahf_sahf()) {
    // rsp is at the rax slot (80); eflags at 144: [rsp+64].
    c.b({0xF7, 0x44, 0x24, 0x40});  // test dword [rsp+64], DF | TF | AC
    c.u32(0x400 | 0x100 | 0x40000);
    c.b({0x75, 0x00});  // jnz popfq
    to_popfq = c.bytes().size() - 1;
    c.b({0x0F, 0xB6, 0x44, 0x24, 0x41});  // movzx eax, byte [rsp+65]: flags 8-15
    c.b({0xC0, 0xE8, 0x03});              // shr al, 3
    c.b({0x24, 0x01});                    // and al, 1: OF
    c.b({0x8A, 0x64, 0x24, 0x40});        // mov ah, [rsp+64]: SF ZF AF PF CF
    c.b({0x04, 0x7F});                    // add al, 0x7f: OF = al
    c.b({0x9E});                          // sahf
    pop_rest();
    c.b({0x48, 0x8D, 0x64, 0x24, 0x20});  // lea rsp, [rsp+32]: orig_rax, rip, cs, eflags
    c.b({0xEB, 0x00});                    // jmp done
    to_done = c.bytes().size() - 1;
    rel8_from(to_popfq);
  }
  pop_rest();
  c.b({0x48, 0x8D, 0x64, 0x24, 0x18});  // lea rsp, [rsp+24]: orig_rax, rip, cs
  c.b({0x9D});                          // popfq
  if (to_done) rel8_from(to_done);
}

// Vector registers that may hold live values at the site.
uint8_t live_vectors(LiveRegs live) {
  switch (live) {
    case LiveRegs::All: return 16;
    case LiveRegs::CallEntry: return 8;   // xmm0-7: arguments
    case LiveRegs::CallReturn: return 2;  // xmm0-1: results
  }
  return 16;
}

// [rsp + disp32] with register `i` (low three bits) in ModRM.reg.
void rsp_disp32(Code& c, uint8_t i, uint32_t disp) {
  c.b({static_cast<uint8_t>(0x84 | ((i & 7) << 3)), 0x24});
  c.u32(disp);
}

// Legacy SSE movaps between xmm_i and [rsp + 16 * i * (width / 16)];
// store: 0x29, load: 0x28.
void sse_move(Code& c, uint8_t op, uint8_t i, uint32_t disp) {
  if (i >= 8) c.b({0x44});  // REX.R
  c.b({0x0F, op});
  rsp_disp32(c, i, disp);
}

// vmovdqu between ymm_i and [rsp + disp]; store: 0x7F, load: 0x6F.
void avx_move(Code& c, uint8_t op, uint8_t i, uint32_t disp) {
  c.b({0xC5, static_cast<uint8_t>(i < 8 ? 0xFE : 0x7E), op});
  rsp_disp32(c, i, disp);
}

void vzeroupper(Code& c) { c.b({0xC5, 0xF8, 0x77}); }

// CPUID leaf 0xD, once: the XSAVE area's size for every component the OS
// enabled in XCR0 (standard format, an upper bound of the compacted one),
// and whether XSAVEC exists.
struct XsaveInfo {
  uint32_t size = 0;
  bool xsavec = false;
};
const XsaveInfo& xsave_info() {
  static const XsaveInfo info = [] {
    XsaveInfo i;
    unsigned a, b, c, d;
    if (__get_cpuid_count(0xD, 0, &a, &b, &c, &d)) i.size = b;
    if (__get_cpuid_count(0xD, 1, &a, &b, &c, &d)) i.xsavec = (a & 2) != 0;
    return i;
  }();
  return info;
}

uint64_t xcr0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool os_enabled_xsave() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE);
}

// Xsave: the whole OS-enabled state (x87, MXCSR, xmm/ymm, AVX-512's zmm
// and k registers, AMX...) goes to a 64-byte aligned area on the stack,
// whatever `live` says. XSAVEC skips components in their initial state;
// not XSAVEOPT, whose "modified" optimisation assumes nothing rewrote the
// area since the last XRSTOR from the same address (a stack area is
// rewritten all the time). The header is zeroed first: XSAVE leaves its
// reserved bytes (and XSTATE_BV bits outside XCR0) as they were, and
// XRSTOR faults on non-zero ones.
void xsave_area(Code& c) {
  const XsaveInfo& x = xsave_info();
  assert(x.size >= 576);
  c.b({0x48, 0x83, 0xE4, 0xC0});  // and rsp, -64
  c.b({0x48, 0x81, 0xEC});        // sub rsp, size rounded up to 64
  c.u32((x.size + 63) & ~63u);
  c.b({0x31, 0xC0});  // xor eax, eax
  for (uint32_t off = 512; off < 576; off += 8) {
    c.b({0x48, 0x89, 0x84, 0x24});  // mov [rsp + off], rax: the XSAVE header
    c.u32(off);
  }
  c.b({0xB8, 0xFF, 0xFF, 0xFF, 0xFF});  // mov eax, -1
  c.b({0xBA, 0xFF, 0xFF, 0xFF, 0xFF});  // mov edx, -1: every component XCR0 enables
  if (x.xsavec)
    c.b({0x48, 0x0F, 0xC7, 0x24, 0x24});  // xsavec64 [rsp]
  else
    c.b({0x48, 0x0F, 0xAE, 0x24, 0x24});  // xsave64 [rsp]
}

void xrstor_area(Code& c) {
  c.b({0xB8, 0xFF, 0xFF, 0xFF, 0xFF});  // mov eax, -1
  c.b({0xBA, 0xFF, 0xFF, 0xFF, 0xFF});  // mov edx, -1
  c.b({0x48, 0x0F, 0xAE, 0x2C, 0x24});  // xrstor64 [rsp]
}

// mov rbx, rsp (rbx: the PtRegs, callee-saved); align; save the vectors.
// With AVX, also: r12b = whether a saved upper half is non-zero (r12 is
// callee-saved and restored from PtRegs), then vzeroupper, so that the
// dispatcher's legacy SSE code runs with clean upper state. Xsave: the
// whole state, then vzeroupper for the same reason (XRSTOR gives back the
// upper state as it was, clean or dirty).
void save_vectors(Code& c, VectorSave mode, LiveRegs live) {
  c.b({0x48, 0x89, 0xE3});  // mov rbx, rsp
  if (mode == VectorSave::Xsave) {
    xsave_area(c);
    if (xcr0() & 4) vzeroupper(c);  // AVX state enabled
    return;
  }
  c.b({0x48, 0x83, 0xE4, 0xE0});  // and rsp, -32
  const uint8_t n = live_vectors(live);
  const uint32_t width = mode == VectorSave::Avx ? 32 : 16;
  c.b({0x48, 0x81, 0xEC});  // sub rsp, imm32
  c.u32(n * width);
  for (uint8_t i = 0; i < n; ++i) {
    if (mode == VectorSave::Avx)
      avx_move(c, 0x7F, i, i * width);
    else
      sse_move(c, 0x29, i, i * width);
  }
  if (mode != VectorSave::Avx) return;
  // Every register is saved: ymm0 accumulates the OR of the saved ones.
  for (uint8_t i = 1; i < n; ++i)  // vorps ymm0, ymm_i, ymm0
    c.b({0xC5, static_cast<uint8_t>(0x84 | ((~i & 0xF) << 3)), 0x56, 0xC0});
  c.b({0xC4, 0xE3, 0x7D, 0x19, 0xC0, 0x01});  // vextractf128 xmm0, ymm0, 1
  c.b({0xC4, 0xE2, 0x79, 0x17, 0xC0});        // vptest xmm0, xmm0
  c.b({0x41, 0x0F, 0x95, 0xC4});              // setnz r12b
  vzeroupper(c);
}

void restore_vectors(Code& c, VectorSave mode, LiveRegs live) {
  if (mode == VectorSave::Xsave) return xrstor_area(c);
  const uint8_t n = live_vectors(live);
  if (mode != VectorSave::Avx) {
    for (uint8_t i = 0; i < n; ++i) sse_move(c, 0x28, i, i * 16);
    return;
  }
  // Clean: vzeroupper (a hook may have dirtied them), legacy loads of the
  // low halves. Dirty: VEX loads of whole registers.
  c.b({0x45, 0x84, 0xE4});  // test r12b, r12b
  c.b({0x0F, 0x85});        // jnz dirty
  const size_t jnz_at = c.bytes().size();
  c.u32(0);
  vzeroupper(c);
  for (uint8_t i = 0; i < n; ++i) sse_move(c, 0x28, i, i * 32);
  c.b({0xE9});  // jmp done
  const size_t jmp_at = c.bytes().size();
  c.u32(0);
  const size_t dirty = c.bytes().size();
  for (uint8_t i = 0; i < n; ++i) avx_move(c, 0x6F, i, i * 32);
  const size_t done = c.bytes().size();
  auto patch = [&](size_t at, size_t to) {
    const uint32_t rel = static_cast<uint32_t>(to - (at + 4));
    std::memcpy(c.bytes().data() + at, &rel, 4);
  };
  patch(jnz_at, dirty);
  patch(jmp_at, done);
}

void call_abs(Code& c, uint64_t fn) {
  c.b({0x48, 0xB8});  // mov rax, imm64
  c.u64(fn);
  c.b({0xFF, 0xD0});  // call rax
}

// The code before the relocated instructions, and where its placeholders
// are: the landing's address (mov rdx, imm64) and the jnz to the landing
// path (rel32), both known only once the relocated code is in place.
struct Prologue {
  std::vector<uint8_t> code;
  size_t landing_imm = 0;
  size_t landing_jnz = 0;
};

// landing: whether the trampoline has a landing path (see
// emit_entry_trampoline); without one the dispatcher is given `mark` (a
// ReturnExit::Jmp return trampoline) and what it returns is ignored.
Prologue entry_prologue(uintptr_t site_addr, void* site, EntryDispatcher dispatcher, LiveRegs live,
                        bool landing, uint64_t mark, VectorSave mode) {
  Code c;
  Prologue p;
  push_regs(c, live);
  c.b({0x48, 0xB8});  // mov rax, site_addr
  c.u64(site_addr);
  c.b({0x48, 0x89, 0x84, 0x24});  // mov [rsp+128], rax: regs->rip
  c.u32(128);
  save_vectors(c, mode, live);
  c.b({0x48, 0xBF});  // mov rdi, site
  c.u64(reinterpret_cast<uint64_t>(site));
  c.b({0x48, 0x89, 0xDE});  // mov rsi, rbx
  if (!landing) {
    c.b({0x48, 0xBA});  // mov rdx, mark: what a replaced return address becomes
    c.u64(mark);
    call_abs(c, reinterpret_cast<uint64_t>(dispatcher));
    restore_vectors(c, mode, live);
  } else {
    c.b({0x48, 0xBA});  // mov rdx, landing
    p.landing_imm = c.bytes().size();
    c.u64(0);
    call_abs(c, reinterpret_cast<uint64_t>(dispatcher));
    c.b({0x49, 0x89, 0xC5});  // mov r13, rax: return replaced? (r13 is callee-saved, restored from PtRegs)
    restore_vectors(c, mode, live);
    c.b({0x4D, 0x85, 0xED});  // test r13, r13 (the flags are restored by pop_regs where they are live)
    c.b({0x0F, 0x85});        // jnz landing path
    p.landing_jnz = c.bytes().size();
    c.u32(0);
  }
  pop_regs(c, live);
  c.b({0x48, 0x8D, 0xA4, 0x24});  // lea rsp, [rsp + 16 + 128]: rsp, ss, red zone
  c.u32(16 + kRedZone);
  p.code = std::move(c.bytes());
  return p;
}

// The landing path: registers restored, the replaced return address dropped,
// `call` the relocated instructions at `relocated_at` (offsets in `c`); the
// landing (returned: its offset) jumps to the return trampoline.
size_t landing_path(Code& c, LiveRegs live, size_t relocated_at, uintptr_t return_trampoline) {
  pop_regs(c, live);
  c.b({0x48, 0x8D, 0xA4, 0x24});  // lea rsp, [rsp + 16 + 128 + 8]: rsp, ss, red zone, return address
  c.u32(16 + kRedZone + 8);
  c.b({0xE8});  // call relocated
  c.u32(static_cast<uint32_t>(relocated_at - (c.bytes().size() + 4)));
  const size_t landing = c.bytes().size();
  emit_abs_jmp(c.bytes(), return_trampoline);
  return landing;
}

void put_u32(std::vector<uint8_t>& out, size_t at, uint32_t v) { std::memcpy(out.data() + at, &v, 4); }

}  // namespace

VectorSave vector_save_mode() {
  static const VectorSave mode = [] {
    if (!os_enabled_xsave()) return VectorSave::Sse;
    const uint64_t enabled = xcr0();
    // opmask, ZMM_Hi256, Hi16_ZMM (AVX-512); XTILECFG, XTILEDATA (AMX).
    if (enabled & ((7u << 5) | (3u << 17))) return VectorSave::Xsave;
    unsigned a, b, c, d;
    const bool avx = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_AVX);
    return avx && (enabled & 6) == 6 ? VectorSave::Avx : VectorSave::Sse;  // XMM and YMM state enabled
  }();
  return mode;
}

bool vector_save_supported(VectorSave mode) {
  switch (mode) {
    case VectorSave::Sse: return true;
    case VectorSave::Avx: return vector_save_mode() != VectorSave::Sse;
    case VectorSave::Xsave: return os_enabled_xsave() && xsave_info().size >= 576;
  }
  return false;
}

size_t entry_prologue_size(LiveRegs live, VectorSave vectors) {
  return entry_prologue(0, nullptr, nullptr, live, true, 0, vectors).code.size();
}

size_t entry_landing_size(LiveRegs live) {
  Code c;
  landing_path(c, live, 0, 0);
  return c.bytes().size();
}

std::vector<uint8_t> emit_entry_trampoline(uintptr_t at, uintptr_t site_addr, void* site,
                                           EntryDispatcher dispatcher, const std::vector<uint8_t>& relocated,
                                           uintptr_t resume, LiveRegs live, uintptr_t return_trampoline,
                                           VectorSave vectors, bool has_landing) {
  assert(return_trampoline);
  Prologue p = entry_prologue(site_addr, site, dispatcher, live, has_landing, return_trampoline, vectors);
  Code c;
  c.bytes() = std::move(p.code);
  const size_t relocated_at = c.bytes().size();
  c.bytes().insert(c.bytes().end(), relocated.begin(), relocated.end());
  emit_abs_jmp(c.bytes(), resume);
  if (!has_landing) return std::move(c.bytes());
  const size_t path = c.bytes().size();
  const size_t landing = landing_path(c, live, relocated_at, return_trampoline);
  put_u32(c.bytes(), p.landing_jnz, static_cast<uint32_t>(path - (p.landing_jnz + 4)));
  const uint64_t landing_addr = at + landing;
  std::memcpy(c.bytes().data() + p.landing_imm, &landing_addr, 8);
  return std::move(c.bytes());
}

std::vector<uint8_t> emit_return_trampoline(ReturnDispatcher dispatcher, LiveRegs live, ReturnExit exit,
                                            VectorSave mode) {
  Code c;
  push_regs(c, live);
  save_vectors(c, mode, live);
  c.b({0x48, 0x89, 0xDF});  // mov rdi, rbx
  call_abs(c, reinterpret_cast<uint64_t>(dispatcher));
  // The address goes where the replaced return address was (the function's
  // rsp + 168 + 128 - 8): inside the red zone of the code returned to, which
  // no signal frame overwrites, and free since the call's return address
  // was there.
  c.b({0x48, 0x89, 0x83});  // mov [rbx + 288], rax
  c.u32(kRegsSize + kRedZone - 8);
  restore_vectors(c, mode, live);
  pop_regs(c, live);
  if (exit == ReturnExit::Ret) {
    // Returns through an entry trampoline's landing: the caller's entry of
    // the return stack buffer is on top, so ret is predicted.
    c.b({0x48, 0x8D, 0xA4, 0x24});  // lea rsp, [rsp + 16 + 128 - 8]: rsp, ss, red zone, to the address
    c.u32(16 + kRedZone - 8);
    c.b({0xC3});  // ret
    return std::move(c.bytes());
  }
  c.b({0x48, 0x8D, 0xA4, 0x24});  // lea rsp, [rsp + 16 + 128]: rsp, ss, red zone
  c.u32(16 + kRedZone);
  // An indirect jmp, not ret: the function's ret already consumed the
  // return-stack-buffer entry of this frame, so a ret here would be
  // mispredicted and leave every outer return mispredicted too.
  c.b({0xFF, 0x64, 0x24, 0xF8});  // jmp [rsp-8]
  return std::move(c.bytes());
}

}  // namespace ember::attach
