// The eBPF instruction set (RFC 9669, v1 to v4): the raw encoding, the one
// opcode table, and the typed instruction IR that the decoder produces and
// the interpreter, assembler, disassembler (and later the verifier and JIT)
// consume.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ember/result.hpp"

namespace ember {

// One 8-byte instruction slot exactly as it is stored in an ELF object or a
// raw bytecode file (little-endian; dst in the low nibble of byte 1).
struct RawInsn {
  uint8_t opcode = 0;
  uint8_t regs = 0;
  int16_t off = 0;
  int32_t imm = 0;

  uint8_t dst() const { return regs & 0x0f; }
  uint8_t src() const { return regs >> 4; }
  void set_regs(uint8_t dst, uint8_t src) { regs = static_cast<uint8_t>((src << 4) | (dst & 0x0f)); }
};
static_assert(sizeof(RawInsn) == 8);

constexpr int kNumRegs = 11;         // r0..r10
constexpr int kFramePointer = 10;    // r10, read-only
constexpr int kStackSize = 512;      // bytes per call frame, as in the kernel
constexpr int kMaxCallFrames = 8;    // MAX_CALL_FRAMES in the kernel

// Which field, besides the opcode byte, tells encodings apart.
enum class Match : uint8_t { None, Off, Imm, Src };

// Operand layout: drives decoding checks, assembly and disassembly.
enum class Form : uint8_t {
  AluImm,     // dst, imm
  AluReg,     // dst, src
  AluUnary,   // dst (neg)
  Endian,     // dst; width in the table
  LdImm64,    // dst, 64-bit immediate over two slots; src selects a pseudo
  LdAbs,      // imm: legacy packet load at a constant offset
  LdInd,      // src, imm: legacy packet load at src + imm
  Ldx,        // dst, [src + off]
  St,         // [dst + off], imm
  Stx,        // [dst + off], src
  Atomic,     // [dst + off], src
  Ja,         // off
  Ja32,       // imm (gotol)
  JmpImm,     // dst, imm, off
  JmpReg,     // dst, src, off
  Call,       // imm: helper id (or kfunc BTF id)
  CallLocal,  // imm: relative target of a bpf-to-bpf call
  CallX,      // dst: register holding the callee
  Exit,
};

// The opcode table: every encoding of the ISA, once.
// X(name, opcode byte, discriminating field, its value, conformance-asm
//   mnemonic, operand form, width, llvm-objdump operator)
// width: memory access size in bytes, swap width in bits, movsx source bits,
// or 32/64 for conditional jumps.
#define EMBER_OPCODES(X) \
  X(ADD64_IMM, 0x07, Match::None, 0, "add", Form::AluImm, 0, "+=") \
  X(ADD64_REG, 0x0f, Match::None, 0, "add", Form::AluReg, 0, "+=") \
  X(SUB64_IMM, 0x17, Match::None, 0, "sub", Form::AluImm, 0, "-=") \
  X(SUB64_REG, 0x1f, Match::None, 0, "sub", Form::AluReg, 0, "-=") \
  X(MUL64_IMM, 0x27, Match::None, 0, "mul", Form::AluImm, 0, "*=") \
  X(MUL64_REG, 0x2f, Match::None, 0, "mul", Form::AluReg, 0, "*=") \
  X(DIV64_IMM, 0x37, Match::Off, 0, "div", Form::AluImm, 0, "/=") \
  X(DIV64_REG, 0x3f, Match::Off, 0, "div", Form::AluReg, 0, "/=") \
  X(SDIV64_IMM, 0x37, Match::Off, 1, "sdiv", Form::AluImm, 0, "s/=") \
  X(SDIV64_REG, 0x3f, Match::Off, 1, "sdiv", Form::AluReg, 0, "s/=") \
  X(OR64_IMM, 0x47, Match::None, 0, "or", Form::AluImm, 0, "|=") \
  X(OR64_REG, 0x4f, Match::None, 0, "or", Form::AluReg, 0, "|=") \
  X(AND64_IMM, 0x57, Match::None, 0, "and", Form::AluImm, 0, "&=") \
  X(AND64_REG, 0x5f, Match::None, 0, "and", Form::AluReg, 0, "&=") \
  X(LSH64_IMM, 0x67, Match::None, 0, "lsh", Form::AluImm, 0, "<<=") \
  X(LSH64_REG, 0x6f, Match::None, 0, "lsh", Form::AluReg, 0, "<<=") \
  X(RSH64_IMM, 0x77, Match::None, 0, "rsh", Form::AluImm, 0, ">>=") \
  X(RSH64_REG, 0x7f, Match::None, 0, "rsh", Form::AluReg, 0, ">>=") \
  X(MOD64_IMM, 0x97, Match::Off, 0, "mod", Form::AluImm, 0, "%=") \
  X(MOD64_REG, 0x9f, Match::Off, 0, "mod", Form::AluReg, 0, "%=") \
  X(SMOD64_IMM, 0x97, Match::Off, 1, "smod", Form::AluImm, 0, "s%=") \
  X(SMOD64_REG, 0x9f, Match::Off, 1, "smod", Form::AluReg, 0, "s%=") \
  X(XOR64_IMM, 0xa7, Match::None, 0, "xor", Form::AluImm, 0, "^=") \
  X(XOR64_REG, 0xaf, Match::None, 0, "xor", Form::AluReg, 0, "^=") \
  X(MOV64_IMM, 0xb7, Match::Off, 0, "mov", Form::AluImm, 0, "=") \
  X(MOV64_REG, 0xbf, Match::Off, 0, "mov", Form::AluReg, 0, "=") \
  X(ARSH64_IMM, 0xc7, Match::None, 0, "arsh", Form::AluImm, 0, "s>>=") \
  X(ARSH64_REG, 0xcf, Match::None, 0, "arsh", Form::AluReg, 0, "s>>=") \
  X(NEG64, 0x87, Match::None, 0, "neg", Form::AluUnary, 0, "-") \
  X(MOVSX64_8, 0xbf, Match::Off, 8, "movsx864", Form::AluReg, 8, "=") \
  X(MOVSX64_16, 0xbf, Match::Off, 16, "movsx1664", Form::AluReg, 16, "=") \
  X(MOVSX64_32, 0xbf, Match::Off, 32, "movsx3264", Form::AluReg, 32, "=") \
  X(ADD32_IMM, 0x04, Match::None, 0, "add32", Form::AluImm, 0, "+=") \
  X(ADD32_REG, 0x0c, Match::None, 0, "add32", Form::AluReg, 0, "+=") \
  X(SUB32_IMM, 0x14, Match::None, 0, "sub32", Form::AluImm, 0, "-=") \
  X(SUB32_REG, 0x1c, Match::None, 0, "sub32", Form::AluReg, 0, "-=") \
  X(MUL32_IMM, 0x24, Match::None, 0, "mul32", Form::AluImm, 0, "*=") \
  X(MUL32_REG, 0x2c, Match::None, 0, "mul32", Form::AluReg, 0, "*=") \
  X(DIV32_IMM, 0x34, Match::Off, 0, "div32", Form::AluImm, 0, "/=") \
  X(DIV32_REG, 0x3c, Match::Off, 0, "div32", Form::AluReg, 0, "/=") \
  X(SDIV32_IMM, 0x34, Match::Off, 1, "sdiv32", Form::AluImm, 0, "s/=") \
  X(SDIV32_REG, 0x3c, Match::Off, 1, "sdiv32", Form::AluReg, 0, "s/=") \
  X(OR32_IMM, 0x44, Match::None, 0, "or32", Form::AluImm, 0, "|=") \
  X(OR32_REG, 0x4c, Match::None, 0, "or32", Form::AluReg, 0, "|=") \
  X(AND32_IMM, 0x54, Match::None, 0, "and32", Form::AluImm, 0, "&=") \
  X(AND32_REG, 0x5c, Match::None, 0, "and32", Form::AluReg, 0, "&=") \
  X(LSH32_IMM, 0x64, Match::None, 0, "lsh32", Form::AluImm, 0, "<<=") \
  X(LSH32_REG, 0x6c, Match::None, 0, "lsh32", Form::AluReg, 0, "<<=") \
  X(RSH32_IMM, 0x74, Match::None, 0, "rsh32", Form::AluImm, 0, ">>=") \
  X(RSH32_REG, 0x7c, Match::None, 0, "rsh32", Form::AluReg, 0, ">>=") \
  X(MOD32_IMM, 0x94, Match::Off, 0, "mod32", Form::AluImm, 0, "%=") \
  X(MOD32_REG, 0x9c, Match::Off, 0, "mod32", Form::AluReg, 0, "%=") \
  X(SMOD32_IMM, 0x94, Match::Off, 1, "smod32", Form::AluImm, 0, "s%=") \
  X(SMOD32_REG, 0x9c, Match::Off, 1, "smod32", Form::AluReg, 0, "s%=") \
  X(XOR32_IMM, 0xa4, Match::None, 0, "xor32", Form::AluImm, 0, "^=") \
  X(XOR32_REG, 0xac, Match::None, 0, "xor32", Form::AluReg, 0, "^=") \
  X(MOV32_IMM, 0xb4, Match::Off, 0, "mov32", Form::AluImm, 0, "=") \
  X(MOV32_REG, 0xbc, Match::Off, 0, "mov32", Form::AluReg, 0, "=") \
  X(ARSH32_IMM, 0xc4, Match::None, 0, "arsh32", Form::AluImm, 0, "s>>=") \
  X(ARSH32_REG, 0xcc, Match::None, 0, "arsh32", Form::AluReg, 0, "s>>=") \
  X(NEG32, 0x84, Match::None, 0, "neg32", Form::AluUnary, 0, "-") \
  X(MOVSX32_8, 0xbc, Match::Off, 8, "movsx832", Form::AluReg, 8, "=") \
  X(MOVSX32_16, 0xbc, Match::Off, 16, "movsx1632", Form::AluReg, 16, "=") \
  X(LE16, 0xd4, Match::Imm, 16, "le16", Form::Endian, 16, "le") \
  X(LE32, 0xd4, Match::Imm, 32, "le32", Form::Endian, 32, "le") \
  X(LE64, 0xd4, Match::Imm, 64, "le64", Form::Endian, 64, "le") \
  X(BE16, 0xdc, Match::Imm, 16, "be16", Form::Endian, 16, "be") \
  X(BE32, 0xdc, Match::Imm, 32, "be32", Form::Endian, 32, "be") \
  X(BE64, 0xdc, Match::Imm, 64, "be64", Form::Endian, 64, "be") \
  X(BSWAP16, 0xd7, Match::Imm, 16, "bswap16", Form::Endian, 16, "bswap") \
  X(BSWAP32, 0xd7, Match::Imm, 32, "bswap32", Form::Endian, 32, "bswap") \
  X(BSWAP64, 0xd7, Match::Imm, 64, "bswap64", Form::Endian, 64, "bswap") \
  X(JA, 0x05, Match::None, 0, "ja", Form::Ja, 0, "goto") \
  X(JA32, 0x06, Match::None, 0, "ja32", Form::Ja32, 0, "gotol") \
  X(JEQ_IMM, 0x15, Match::None, 0, "jeq", Form::JmpImm, 64, "==") \
  X(JEQ_REG, 0x1d, Match::None, 0, "jeq", Form::JmpReg, 64, "==") \
  X(JGT_IMM, 0x25, Match::None, 0, "jgt", Form::JmpImm, 64, ">") \
  X(JGT_REG, 0x2d, Match::None, 0, "jgt", Form::JmpReg, 64, ">") \
  X(JGE_IMM, 0x35, Match::None, 0, "jge", Form::JmpImm, 64, ">=") \
  X(JGE_REG, 0x3d, Match::None, 0, "jge", Form::JmpReg, 64, ">=") \
  X(JSET_IMM, 0x45, Match::None, 0, "jset", Form::JmpImm, 64, "&") \
  X(JSET_REG, 0x4d, Match::None, 0, "jset", Form::JmpReg, 64, "&") \
  X(JNE_IMM, 0x55, Match::None, 0, "jne", Form::JmpImm, 64, "!=") \
  X(JNE_REG, 0x5d, Match::None, 0, "jne", Form::JmpReg, 64, "!=") \
  X(JSGT_IMM, 0x65, Match::None, 0, "jsgt", Form::JmpImm, 64, "s>") \
  X(JSGT_REG, 0x6d, Match::None, 0, "jsgt", Form::JmpReg, 64, "s>") \
  X(JSGE_IMM, 0x75, Match::None, 0, "jsge", Form::JmpImm, 64, "s>=") \
  X(JSGE_REG, 0x7d, Match::None, 0, "jsge", Form::JmpReg, 64, "s>=") \
  X(JLT_IMM, 0xa5, Match::None, 0, "jlt", Form::JmpImm, 64, "<") \
  X(JLT_REG, 0xad, Match::None, 0, "jlt", Form::JmpReg, 64, "<") \
  X(JLE_IMM, 0xb5, Match::None, 0, "jle", Form::JmpImm, 64, "<=") \
  X(JLE_REG, 0xbd, Match::None, 0, "jle", Form::JmpReg, 64, "<=") \
  X(JSLT_IMM, 0xc5, Match::None, 0, "jslt", Form::JmpImm, 64, "s<") \
  X(JSLT_REG, 0xcd, Match::None, 0, "jslt", Form::JmpReg, 64, "s<") \
  X(JSLE_IMM, 0xd5, Match::None, 0, "jsle", Form::JmpImm, 64, "s<=") \
  X(JSLE_REG, 0xdd, Match::None, 0, "jsle", Form::JmpReg, 64, "s<=") \
  X(JEQ32_IMM, 0x16, Match::None, 0, "jeq32", Form::JmpImm, 32, "==") \
  X(JEQ32_REG, 0x1e, Match::None, 0, "jeq32", Form::JmpReg, 32, "==") \
  X(JGT32_IMM, 0x26, Match::None, 0, "jgt32", Form::JmpImm, 32, ">") \
  X(JGT32_REG, 0x2e, Match::None, 0, "jgt32", Form::JmpReg, 32, ">") \
  X(JGE32_IMM, 0x36, Match::None, 0, "jge32", Form::JmpImm, 32, ">=") \
  X(JGE32_REG, 0x3e, Match::None, 0, "jge32", Form::JmpReg, 32, ">=") \
  X(JSET32_IMM, 0x46, Match::None, 0, "jset32", Form::JmpImm, 32, "&") \
  X(JSET32_REG, 0x4e, Match::None, 0, "jset32", Form::JmpReg, 32, "&") \
  X(JNE32_IMM, 0x56, Match::None, 0, "jne32", Form::JmpImm, 32, "!=") \
  X(JNE32_REG, 0x5e, Match::None, 0, "jne32", Form::JmpReg, 32, "!=") \
  X(JSGT32_IMM, 0x66, Match::None, 0, "jsgt32", Form::JmpImm, 32, "s>") \
  X(JSGT32_REG, 0x6e, Match::None, 0, "jsgt32", Form::JmpReg, 32, "s>") \
  X(JSGE32_IMM, 0x76, Match::None, 0, "jsge32", Form::JmpImm, 32, "s>=") \
  X(JSGE32_REG, 0x7e, Match::None, 0, "jsge32", Form::JmpReg, 32, "s>=") \
  X(JLT32_IMM, 0xa6, Match::None, 0, "jlt32", Form::JmpImm, 32, "<") \
  X(JLT32_REG, 0xae, Match::None, 0, "jlt32", Form::JmpReg, 32, "<") \
  X(JLE32_IMM, 0xb6, Match::None, 0, "jle32", Form::JmpImm, 32, "<=") \
  X(JLE32_REG, 0xbe, Match::None, 0, "jle32", Form::JmpReg, 32, "<=") \
  X(JSLT32_IMM, 0xc6, Match::None, 0, "jslt32", Form::JmpImm, 32, "s<") \
  X(JSLT32_REG, 0xce, Match::None, 0, "jslt32", Form::JmpReg, 32, "s<") \
  X(JSLE32_IMM, 0xd6, Match::None, 0, "jsle32", Form::JmpImm, 32, "s<=") \
  X(JSLE32_REG, 0xde, Match::None, 0, "jsle32", Form::JmpReg, 32, "s<=") \
  X(CALL, 0x85, Match::Src, 0, "call", Form::Call, 0, "call") \
  X(CALL_LOCAL, 0x85, Match::Src, 1, "call local", Form::CallLocal, 0, "call") \
  X(CALL_KFUNC, 0x85, Match::Src, 2, "call runtime", Form::Call, 0, "call") \
  X(CALLX, 0x8d, Match::None, 0, "call", Form::CallX, 0, "callx") \
  X(EXIT, 0x95, Match::None, 0, "exit", Form::Exit, 0, "exit") \
  X(LDDW, 0x18, Match::None, 0, "lddw", Form::LdImm64, 8, "ll") \
  X(LDABS_W, 0x20, Match::None, 0, "ldabsw", Form::LdAbs, 4, "") \
  X(LDABS_H, 0x28, Match::None, 0, "ldabsh", Form::LdAbs, 2, "") \
  X(LDABS_B, 0x30, Match::None, 0, "ldabsb", Form::LdAbs, 1, "") \
  X(LDIND_W, 0x40, Match::None, 0, "ldindw", Form::LdInd, 4, "") \
  X(LDIND_H, 0x48, Match::None, 0, "ldindh", Form::LdInd, 2, "") \
  X(LDIND_B, 0x50, Match::None, 0, "ldindb", Form::LdInd, 1, "") \
  X(LDX_W, 0x61, Match::None, 0, "ldxw", Form::Ldx, 4, "") \
  X(LDX_H, 0x69, Match::None, 0, "ldxh", Form::Ldx, 2, "") \
  X(LDX_B, 0x71, Match::None, 0, "ldxb", Form::Ldx, 1, "") \
  X(LDX_DW, 0x79, Match::None, 0, "ldxdw", Form::Ldx, 8, "") \
  X(LDXS_W, 0x81, Match::None, 0, "ldxsw", Form::Ldx, 4, "s") \
  X(LDXS_H, 0x89, Match::None, 0, "ldxsh", Form::Ldx, 2, "s") \
  X(LDXS_B, 0x91, Match::None, 0, "ldxsb", Form::Ldx, 1, "s") \
  X(ST_W, 0x62, Match::None, 0, "stw", Form::St, 4, "") \
  X(ST_H, 0x6a, Match::None, 0, "sth", Form::St, 2, "") \
  X(ST_B, 0x72, Match::None, 0, "stb", Form::St, 1, "") \
  X(ST_DW, 0x7a, Match::None, 0, "stdw", Form::St, 8, "") \
  X(STX_W, 0x63, Match::None, 0, "stxw", Form::Stx, 4, "") \
  X(STX_H, 0x6b, Match::None, 0, "stxh", Form::Stx, 2, "") \
  X(STX_B, 0x73, Match::None, 0, "stxb", Form::Stx, 1, "") \
  X(STX_DW, 0x7b, Match::None, 0, "stxdw", Form::Stx, 8, "") \
  X(ATOMIC64_ADD, 0xdb, Match::Imm, 0, "lock add", Form::Atomic, 8, "add") \
  X(ATOMIC64_FETCH_ADD, 0xdb, Match::Imm, 1, "lock fetch add", Form::Atomic, 8, "fetch_add") \
  X(ATOMIC64_OR, 0xdb, Match::Imm, 64, "lock or", Form::Atomic, 8, "or") \
  X(ATOMIC64_FETCH_OR, 0xdb, Match::Imm, 65, "lock fetch or", Form::Atomic, 8, "fetch_or") \
  X(ATOMIC64_AND, 0xdb, Match::Imm, 80, "lock and", Form::Atomic, 8, "and") \
  X(ATOMIC64_FETCH_AND, 0xdb, Match::Imm, 81, "lock fetch and", Form::Atomic, 8, "fetch_and") \
  X(ATOMIC64_XOR, 0xdb, Match::Imm, 160, "lock xor", Form::Atomic, 8, "xor") \
  X(ATOMIC64_FETCH_XOR, 0xdb, Match::Imm, 161, "lock fetch xor", Form::Atomic, 8, "fetch_xor") \
  X(ATOMIC64_XCHG, 0xdb, Match::Imm, 225, "lock xchg", Form::Atomic, 8, "xchg") \
  X(ATOMIC64_CMPXCHG, 0xdb, Match::Imm, 241, "lock cmpxchg", Form::Atomic, 8, "cmpxchg") \
  X(ATOMIC32_ADD, 0xc3, Match::Imm, 0, "lock add32", Form::Atomic, 4, "add") \
  X(ATOMIC32_FETCH_ADD, 0xc3, Match::Imm, 1, "lock fetch add32", Form::Atomic, 4, "fetch_add") \
  X(ATOMIC32_OR, 0xc3, Match::Imm, 64, "lock or32", Form::Atomic, 4, "or") \
  X(ATOMIC32_FETCH_OR, 0xc3, Match::Imm, 65, "lock fetch or32", Form::Atomic, 4, "fetch_or") \
  X(ATOMIC32_AND, 0xc3, Match::Imm, 80, "lock and32", Form::Atomic, 4, "and") \
  X(ATOMIC32_FETCH_AND, 0xc3, Match::Imm, 81, "lock fetch and32", Form::Atomic, 4, "fetch_and") \
  X(ATOMIC32_XOR, 0xc3, Match::Imm, 160, "lock xor32", Form::Atomic, 4, "xor") \
  X(ATOMIC32_FETCH_XOR, 0xc3, Match::Imm, 161, "lock fetch xor32", Form::Atomic, 4, "fetch_xor") \
  X(ATOMIC32_XCHG, 0xc3, Match::Imm, 225, "lock xchg32", Form::Atomic, 4, "xchg") \
  X(ATOMIC32_CMPXCHG, 0xc3, Match::Imm, 241, "lock cmpxchg32", Form::Atomic, 4, "cmpxchg")

enum class Op : uint8_t {
#define EMBER_X(name, ...) name,
  EMBER_OPCODES(EMBER_X)
#undef EMBER_X
};

struct OpInfo {
  Op op;
  uint8_t opcode;
  Match match;
  int32_t disc;
  const char* mnemonic;
  Form form;
  uint8_t width;
  const char* llvm;
  const char* name;
};

std::span<const OpInfo> op_table();
const OpInfo& op_info(Op op);
constexpr size_t kNumOps = 0
#define EMBER_X(...) +1
    EMBER_OPCODES(EMBER_X)
#undef EMBER_X
    ;

// ld_imm64 pseudo sources (src field of the first slot), as in linux/bpf.h.
enum class Pseudo : uint8_t {
  None = 0,
  MapFd = 1,        // imm: map fd
  MapValue = 2,     // imm: map fd, next imm: offset in value
  BtfId = 3,        // imm: BTF id of a kernel variable
  Func = 4,         // imm: relative instruction offset of a function
  MapIdx = 5,       // imm: index into the program's map array
  MapIdxValue = 6,  // imm: map index, next imm: offset in value
};

// Kinds of the CALL instruction (src field).
enum class CallKind : uint8_t { Helper = 0, Local = 1, Kfunc = 2 };

// One decoded instruction. Instruction indices are slot indices, so an
// ld_imm64 occupies two indices; the second holds Op::LDDW with `second_half`.
struct Inst {
  Op op = Op::EXIT;
  uint8_t dst = 0;
  uint8_t src = 0;
  bool second_half = false;  // the unused second slot of an ld_imm64
  int16_t off = 0;
  int32_t imm = 0;
  uint32_t target = 0;  // jumps and local calls: absolute target index
  uint64_t imm64 = 0;   // imm sign-extended; ld_imm64: both halves joined

  Pseudo pseudo() const { return static_cast<Pseudo>(src); }
  const OpInfo& info() const { return op_info(op); }
};

struct Program {
  std::vector<Inst> insts;
  std::vector<RawInsn> raw;  // the bytecode it was decoded from
};

// Decodes and structurally validates bytecode: unknown opcodes, bad
// registers, reserved fields, writes to r10, jumps out of range or into the
// second half of an ld_imm64, and falling off the end are errors naming the
// instruction index.
Result<Program> decode(std::span<const RawInsn> raw);
Result<Program> decode_bytes(std::span<const uint8_t> bytes);

// Decodes the slot at `index` alone, with every check that does not need the
// rest of the program (no jump targets, no end-of-program check): for
// listings of code that relocations have yet to complete.
Result<Inst> decode_insn(std::span<const RawInsn> raw, size_t index);

// Encodes one typed instruction back to its slot(s) (two for ld_imm64).
void encode(const Inst& inst, std::vector<RawInsn>& out);

// Which fields, besides the opcode, an operand form uses. Unused fields are
// reserved: they must be zero (the kernel's "reserved fields" checks).
struct FormFields {
  bool dst, src, off, imm;
};
FormFields form_fields(Form f);

// Finds the table entry for a raw slot, or nullptr if the encoding is unknown.
const OpInfo* lookup_opcode(const RawInsn& raw);

// Reinterprets little-endian bytes as instruction slots.
Result<std::vector<RawInsn>> bytes_to_insns(std::span<const uint8_t> bytes);
std::vector<uint8_t> insns_to_bytes(std::span<const RawInsn> insns);

}  // namespace ember
