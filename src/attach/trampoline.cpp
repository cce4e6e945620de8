#include "attach/trampoline.hpp"

#include <cpuid.h>

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
void push_regs(Code& c) {
  c.b({0x48, 0x8D, 0x64, 0x24, 0x80});  // lea rsp, [rsp-128]: stay clear of the red zone
  c.b({0x6A, 0x2B});                    // push 0x2b: ss (__USER_DS)
  c.b({0x50});                          // push rax: rsp slot, filled below
  c.b({0x9C});                          // pushfq
  c.b({0x6A, 0x33});                    // push 0x33: cs (__USER_CS)
  c.b({0x50});                          // push rax: rip slot
  c.b({0x6A, 0xFF});                    // push -1: orig_rax, as the kernel sets it for uprobes
  c.b({0x57, 0x56, 0x52, 0x51, 0x50});  // rdi rsi rdx rcx rax
  c.b({0x41, 0x50, 0x41, 0x51, 0x41, 0x52, 0x41, 0x53});  // r8 r9 r10 r11
  c.b({0x53, 0x55});                                      // rbx rbp
  c.b({0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57});  // r12 r13 r14 r15
  c.b({0x48, 0x8D, 0x84, 0x24});                          // lea rax, [rsp + 168 + 128]
  c.u32(kRegsSize + kRedZone);
  c.b({0x48, 0x89, 0x84, 0x24});  // mov [rsp+152], rax: regs->rsp
  c.u32(152);
}

// Restores r15..rdi and eflags; leaves rsp at the rsp slot (offset 152).
void pop_regs(Code& c) {
  c.b({0x48, 0x89, 0xDC});                                // mov rsp, rbx
  c.b({0x41, 0x5F, 0x41, 0x5E, 0x41, 0x5D, 0x41, 0x5C});  // r15 r14 r13 r12
  c.b({0x5D, 0x5B});                                      // rbp rbx
  c.b({0x41, 0x5B, 0x41, 0x5A, 0x41, 0x59, 0x41, 0x58});  // r11 r10 r9 r8
  c.b({0x58, 0x59, 0x5A, 0x5E, 0x5F});                    // rax rcx rdx rsi rdi
  c.b({0x48, 0x8D, 0x64, 0x24, 0x18});                    // lea rsp, [rsp+24]: orig_rax, rip, cs
  c.b({0x9D});                                            // popfq
}

// mov rbx, rsp (rbx: the PtRegs, callee-saved); align; save vectors.
void save_vectors(Code& c, VectorSave mode) {
  c.b({0x48, 0x89, 0xE3});        // mov rbx, rsp
  c.b({0x48, 0x83, 0xE4, 0xE0});  // and rsp, -32
  uint32_t width = mode == VectorSave::Avx ? 32 : 16;
  c.b({0x48, 0x81, 0xEC});  // sub rsp, imm32
  c.u32(16 * width);
  for (uint8_t i = 0; i < 16; ++i) {
    uint8_t modrm = static_cast<uint8_t>(0x84 | ((i & 7) << 3));  // [rsp + disp32]
    if (mode == VectorSave::Avx)
      c.b({0xC5, static_cast<uint8_t>(i < 8 ? 0xFE : 0x7E), 0x7F, modrm, 0x24});  // vmovdqu [rsp+d], ymmi
    else if (i < 8)
      c.b({0x0F, 0x29, modrm, 0x24});  // movaps [rsp+d], xmmi
    else
      c.b({0x44, 0x0F, 0x29, modrm, 0x24});
    c.u32(i * width);
  }
}

void restore_vectors(Code& c, VectorSave mode) {
  uint32_t width = mode == VectorSave::Avx ? 32 : 16;
  for (uint8_t i = 0; i < 16; ++i) {
    uint8_t modrm = static_cast<uint8_t>(0x84 | ((i & 7) << 3));
    if (mode == VectorSave::Avx)
      c.b({0xC5, static_cast<uint8_t>(i < 8 ? 0xFE : 0x7E), 0x6F, modrm, 0x24});  // vmovdqu ymmi, [rsp+d]
    else if (i < 8)
      c.b({0x0F, 0x28, modrm, 0x24});  // movaps xmmi, [rsp+d]
    else
      c.b({0x44, 0x0F, 0x28, modrm, 0x24});
    c.u32(i * width);
  }
}

void call_abs(Code& c, uint64_t fn) {
  c.b({0x48, 0xB8});  // mov rax, imm64
  c.u64(fn);
  c.b({0xFF, 0xD0});  // call rax
}

std::vector<uint8_t> entry_prologue(uintptr_t site_addr, void* site, EntryDispatcher dispatcher) {
  VectorSave mode = vector_save_mode();
  Code c;
  push_regs(c);
  c.b({0x48, 0xB8});  // mov rax, site_addr
  c.u64(site_addr);
  c.b({0x48, 0x89, 0x84, 0x24});  // mov [rsp+128], rax: regs->rip
  c.u32(128);
  save_vectors(c, mode);
  c.b({0x48, 0xBF});  // mov rdi, site
  c.u64(reinterpret_cast<uint64_t>(site));
  c.b({0x48, 0x89, 0xDE});  // mov rsi, rbx
  call_abs(c, reinterpret_cast<uint64_t>(dispatcher));
  restore_vectors(c, mode);
  pop_regs(c);
  c.b({0x48, 0x8D, 0xA4, 0x24});  // lea rsp, [rsp + 16 + 128]: rsp, ss, red zone
  c.u32(16 + kRedZone);
  return std::move(c.bytes());
}

}  // namespace

VectorSave vector_save_mode() {
  static const VectorSave mode = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return VectorSave::Sse;
    const bool avx = (c & bit_AVX) && (c & bit_OSXSAVE);
    if (!avx) return VectorSave::Sse;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6) == 6 ? VectorSave::Avx : VectorSave::Sse;  // XMM and YMM state enabled by the OS
  }();
  return mode;
}

size_t entry_prologue_size() { return entry_prologue(0, nullptr, nullptr).size(); }

std::vector<uint8_t> emit_entry_trampoline(uintptr_t at, uintptr_t site_addr, void* site,
                                           EntryDispatcher dispatcher, const std::vector<uint8_t>& relocated,
                                           uintptr_t resume) {
  (void)at;  // the code is position-independent apart from `relocated`
  std::vector<uint8_t> out = entry_prologue(site_addr, site, dispatcher);
  out.insert(out.end(), relocated.begin(), relocated.end());
  emit_abs_jmp(out, resume);
  return out;
}

std::vector<uint8_t> emit_return_trampoline(ReturnDispatcher dispatcher) {
  VectorSave mode = vector_save_mode();
  Code c;
  push_regs(c);
  save_vectors(c, mode);
  c.b({0x48, 0x89, 0xDF});  // mov rdi, rbx
  call_abs(c, reinterpret_cast<uint64_t>(dispatcher));
  c.b({0x48, 0x89, 0x83});  // mov [rbx+152], rax: the return address replaces the rsp slot
  c.u32(152);
  restore_vectors(c, mode);
  pop_regs(c);
  c.b({0xC2, 0x88, 0x00});  // ret 136: to the slot's address, then skip ss and the red zone
  return std::move(c.bytes());
}

}  // namespace ember::attach
