#include "programs.hpp"

#include <cstring>
#include <string>

namespace ember::bench {
namespace {

constexpr int kArithIterations = 1000;
constexpr size_t kPacket = 1500;
constexpr size_t kCompare = 256;
constexpr int kSieveLimit = 1000;

std::string line(const std::string& s) { return "  " + s + "\n"; }

uint64_t arith_reference() {
  uint64_t r0 = 0;
  for (uint64_t r3 = 0; r3 < kArithIterations; ++r3) r0 = ((((r0 + r3) * 3) ^ 0x55) >> 1);
  return r0;
}

std::string arith_step() {
  return line("add %r0, %r3") + line("mul %r0, 3") + line("xor %r0, 0x55") + line("rsh %r0, 1") +
         line("add %r3, 1");
}

BenchProgram arith(bool loop) {
  std::string t = line("mov %r0, 0") + line("mov %r3, 0");
  if (loop) {
    t += "loop:\n" + arith_step() + line("jlt %r3, " + std::to_string(kArithIterations) + ", loop");
  } else {
    for (int i = 0; i < kArithIterations; ++i) t += arith_step();
  }
  t += line("exit");
  return {loop ? "arith_loop" : "arith", t, std::vector<uint8_t>(8, 0), arith_reference(), loop};
}

std::vector<uint8_t> packet() {
  std::vector<uint8_t> p(kPacket);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 7 + 3);
  return p;
}

// The Internet checksum's sum of little-endian 16-bit words, folded twice and
// complemented (the byte order is irrelevant to the benchmark).
uint64_t checksum_reference(const std::vector<uint8_t>& p) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < p.size(); i += 2) sum += static_cast<uint64_t>(p[i] | (p[i + 1] << 8));
  for (int k = 0; k < 2; ++k) sum = (sum & 0xffff) + (sum >> 16);
  return sum ^ 0xffff;
}

std::string fold() {
  std::string t;
  for (int k = 0; k < 2; ++k)
    t += line("mov %r2, %r0") + line("rsh %r2, 16") + line("and %r0, 0xffff") + line("add %r0, %r2");
  return t + line("xor %r0, 0xffff") + line("exit");
}

BenchProgram checksum(bool loop) {
  std::string t = line("mov %r0, 0");
  if (loop) {
    t += line("mov %r3, 0") + "loop:\n" + line("mov %r4, %r1") + line("add %r4, %r3") +
         line("ldxh %r2, [%r4+0]") + line("add %r0, %r2") + line("add %r3, 2") +
         line("jlt %r3, " + std::to_string(kPacket) + ", loop");
  } else {
    for (size_t i = 0; i < kPacket; i += 2)
      t += line("ldxh %r2, [%r1+" + std::to_string(i) + "]") + line("add %r0, %r2");
  }
  t += fold();
  auto p = packet();
  return {loop ? "checksum_loop" : "checksum", t, p, checksum_reference(p), loop};
}

BenchProgram memcmp_bytes() {
  std::vector<uint8_t> mem(2 * kCompare);
  for (size_t i = 0; i < kCompare; ++i) mem[i] = mem[kCompare + i] = static_cast<uint8_t>(i * 13);
  mem[2 * kCompare - 1] ^= 0x5a;  // differ in the last byte: a full scan
  std::string t;
  for (size_t i = 0; i < kCompare; ++i)
    t += line("ldxb %r2, [%r1+" + std::to_string(i) + "]") +
         line("ldxb %r3, [%r1+" + std::to_string(kCompare + i) + "]") + line("jne %r2, %r3, differ");
  t += line("mov %r0, 0") + line("exit") + "differ:\n" + line("mov %r0, %r2") + line("sub %r0, %r3") +
       line("exit");
  uint64_t expected = static_cast<uint64_t>(static_cast<int64_t>(mem[kCompare - 1]) - mem[2 * kCompare - 1]);
  return {"memcmp", t, mem, expected, false};
}

// A 256-case switch on a 16-bit field, lowered to a compare chain as
// compilers do for sparse case values; the input selects case 250. (A chain
// of switches over many bytes would be closer to a parser, but DPDK's
// validator walks every path and never finishes on one.)
BenchProgram switch_heavy() {
  constexpr int kCases = 256, kHit = 250, kStride = 7;
  std::vector<uint8_t> mem(8, 0);
  uint16_t v = kHit * kStride;
  std::memcpy(mem.data(), &v, sizeof v);
  std::string t = line("ldxh %r2, [%r1+0]");
  for (int c = 0; c < kCases; ++c)
    t += line("jeq %r2, " + std::to_string(c * kStride) + ", case" + std::to_string(c));
  t += line("mov %r0, -1") + line("exit");
  for (int c = 0; c < kCases; ++c)
    t += "case" + std::to_string(c) + ":\n" + line("mov %r0, " + std::to_string(c * 3 + 1)) + line("exit");
  return {"switch", t, mem, static_cast<uint64_t>(kHit * 3 + 1), false};
}

// Eratosthenes over a byte array, unrolled: mark the multiples of each prime
// up to sqrt(limit), then count the unmarked numbers from 2.
BenchProgram sieve() {
  std::vector<bool> composite(kSieveLimit, false);
  std::string t;
  for (int p = 2; p * p < kSieveLimit; ++p) {
    if (composite[p]) continue;
    for (int m = p * p; m < kSieveLimit; m += p) {
      composite[m] = true;
      t += line("stb [%r1+" + std::to_string(m) + "], 1");
    }
  }
  t += line("mov %r0, 0");
  for (int i = 2; i < kSieveLimit; ++i)
    t += line("ldxb %r2, [%r1+" + std::to_string(i) + "]") + line("xor %r2, 1") + line("add %r0, %r2");
  t += line("exit");
  uint64_t primes = 0;
  for (int i = 2; i < kSieveLimit; ++i) primes += !composite[i];
  return {"sieve", t, std::vector<uint8_t>(kSieveLimit, 0), primes, false};
}

BenchProgram empty() {
  return {"empty", line("mov %r0, 0") + line("exit"), std::vector<uint8_t>(8, 0), 0, false};
}

}  // namespace

std::vector<BenchProgram> bench_programs() {
  return {empty(),        arith(false), checksum(false), memcmp_bytes(),
          switch_heavy(), sieve(),      arith(true),     checksum(true)};
}

}  // namespace ember::bench
