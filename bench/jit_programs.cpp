#include "jit_programs.hpp"

#include <algorithm>
#include <cstring>
#include <map>

namespace ember::bench {
namespace {

constexpr uint32_t kHashKeys = 1024;    // keys 0..1023 are in the hash map
constexpr uint32_t kHashLookups = 256;  // per run, keys drawn from 0..2047: about half hit
constexpr uint32_t kRoutes = 256;       // LPM prefixes
constexpr uint32_t kLpmLookups = 64;    // per run
constexpr uint32_t kHaystack = 512;     // string search
constexpr uint32_t kNeedle = 8;
constexpr uint32_t kNeedleAt = 480;       // where the needle first occurs
constexpr uint32_t kPacketRoom = 512;     // the parser's packet buffer; packets are shorter
constexpr uint32_t kPacketTailroom = 16;  // readable bytes past it (as XDP's tailroom)
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;
constexpr uint64_t kFmix1 = 0xff51afd7ed558ccdull, kFmix2 = 0xc4ceb9fe1a85ec53ull;

std::string line(const std::string& s) { return "  " + s + "\n"; }
std::string map_ref(int i) { return std::to_string(kMapPlaceholder + static_cast<uint64_t>(i)); }

// A fixed pseudo-random sequence (Knuth's MMIX LCG), so that every run of
// the benchmark sees the same data.
struct Lcg {
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
};

template <class T>
std::vector<uint8_t> bytes_of(const T& v) {
  std::vector<uint8_t> b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

void put32(std::vector<uint8_t>& m, size_t at, uint32_t v) { std::memcpy(m.data() + at, &v, 4); }

uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// for (i = 0; i < n; i++) if ((v = lookup(map, KEY(i)))) sum += *v; r0 = sum.
// `key` stores the key of the u32 at [r2] on the stack and sets r2 to it.
std::string lookup_loop(uint32_t n, const std::string& key) {
  return line("mov %r6, 0") + line("mov %r7, 0") + line("mov %r8, %r1") + "loop:\n" + line("mov %r2, %r8") +
         line("add %r2, %r6") + line("ldxw %r3, [%r2+0]") + key + line("lddw %r1, " + map_ref(0)) +
         line("call 1") + line("jeq %r0, 0, miss") + line("ldxdw %r3, [%r0+0]") + line("add %r7, %r3") +
         "miss:\n" + line("add %r6, 4") + line("jlt %r6, " + std::to_string(4 * n) + ", loop") +
         line("mov %r0, %r7") + line("exit");
}

uint64_t hash_value(uint32_t key) { return (key + 1) * kGolden; }

// 256 u32 keys from 0..2047 in memory; the map holds 0..1023.
JitBenchProgram hash_lookup() {
  BenchMap m{{"bench_hash", MapType::Hash, 4, 8, kHashKeys, 0}, {}};
  for (uint32_t k = 0; k < kHashKeys; ++k) m.entries.emplace_back(bytes_of(k), bytes_of(hash_value(k)));
  std::vector<uint8_t> mem(4 * kHashLookups);
  Lcg rng{1};
  uint64_t sum = 0;
  for (uint32_t i = 0; i < kHashLookups; ++i) {
    uint32_t k = rng.next() % (2 * kHashKeys);
    put32(mem, 4 * i, k);
    if (k < kHashKeys) sum += hash_value(k);
  }
  std::string key = line("stxw [%r10-4], %r3") + line("mov %r2, %r10") + line("add %r2, -4");
  return {{"hash_lookup", lookup_loop(kHashLookups, key), mem, sum, true}, {m}};
}

struct Route {
  uint32_t plen, addr;  // addr in host order, masked to plen
  uint64_t value;
};

uint32_t prefix_mask(uint32_t plen) { return plen == 0 ? 0 : ~0u << (32 - plen); }

// The longest prefix that holds `addr` (host order), by brute force.
uint64_t longest_match(const std::vector<Route>& routes, uint32_t addr) {
  const Route* best = nullptr;
  for (const Route& r : routes)
    if ((addr & prefix_mask(r.plen)) == r.addr && (!best || r.plen > best->plen)) best = &r;
  return best ? best->value : 0;
}

// 256 prefixes of 10.0.0.0/8 from /8 to /32 (nested: many addresses match
// several), and 64 addresses, half inside a prefix's range, half anywhere in
// 10.0.0.0/8. Keys are {u32 prefixlen, 4 address bytes in network order}.
JitBenchProgram lpm_lookup() {
  Lcg rng{2};
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> unique;  // a re-inserted prefix keeps its last value
  std::vector<Route> routes;
  for (uint32_t i = 0; i < kRoutes; ++i) {
    uint32_t plen = 8 + rng.next() % 25;
    uint32_t addr = (0x0a000000u | (rng.next() & 0xffffff)) & prefix_mask(plen);
    uint64_t value = (static_cast<uint64_t>(plen) << 32) | (i + 1);
    routes.push_back({plen, addr, value});
    unique[{plen, addr}] = value;
  }
  BenchMap m{{"bench_lpm", MapType::LpmTrie, 8, 8, 1024, map_flag::kNoPrealloc}, {}};
  std::vector<Route> effective;
  for (const Route& r : routes) {
    std::vector<uint8_t> key = bytes_of(r.plen);
    auto net = bytes_of(__builtin_bswap32(r.addr));
    key.insert(key.end(), net.begin(), net.end());
    m.entries.emplace_back(key, bytes_of(r.value));
    if (unique[{r.plen, r.addr}] == r.value) effective.push_back(r);
  }
  std::vector<uint8_t> mem(4 * kLpmLookups);
  uint64_t sum = 0;
  for (uint32_t i = 0; i < kLpmLookups; ++i) {
    const Route& near = routes[rng.next() % kRoutes];
    uint32_t addr = i % 2 ? (near.addr | (rng.next() & ~prefix_mask(near.plen)))
                          : (0x0a000000u | (rng.next() & 0xffffff));
    put32(mem, 4 * i, __builtin_bswap32(addr));
    sum += longest_match(effective, addr);
  }
  std::string key =
      line("stw [%r10-8], 32") + line("stxw [%r10-4], %r3") + line("mov %r2, %r10") + line("add %r2, -8");
  return {{"lpm_lookup", lookup_loop(kLpmLookups, key), mem, sum, true}, {m}};
}

// Naive search for an 8-byte needle (memory [512, 520)) in a 512-byte
// haystack of the letters a-h: a first-byte test, then the rest byte by
// byte; r0 = the first position, or -1.
JitBenchProgram strsearch() {
  std::vector<uint8_t> mem(kHaystack + kNeedle);
  Lcg rng{3};
  for (uint32_t i = 0; i < kHaystack; ++i) mem[i] = static_cast<uint8_t>('a' + rng.next() % 8);
  const char needle[] = "hgfedcba";
  std::memcpy(mem.data() + kHaystack, needle, kNeedle);
  std::memcpy(mem.data() + kNeedleAt, needle, kNeedle);
  auto hay_end = mem.begin() + kHaystack;
  auto at = std::search(mem.begin(), hay_end, hay_end, mem.end());
  uint64_t expected = at == hay_end ? ~0ull : static_cast<uint64_t>(at - mem.begin());
  std::string n = std::to_string(kHaystack);
  std::string t = line("mov %r6, 0") + "outer:\n" + line("mov %r2, %r1") + line("add %r2, %r6") +
                  line("ldxb %r3, [%r2+0]") + line("ldxb %r4, [%r1+" + n + "]") + line("jne %r3, %r4, next") +
                  line("mov %r7, 1") + "inner:\n" + line("mov %r3, %r2") + line("add %r3, %r7") +
                  line("ldxb %r3, [%r3+0]") + line("mov %r4, %r1") + line("add %r4, %r7") +
                  line("ldxb %r4, [%r4+" + n + "]") + line("jne %r3, %r4, next") + line("add %r7, 1") +
                  line("jlt %r7, " + std::to_string(kNeedle) + ", inner") + line("mov %r0, %r6") +
                  line("exit") + "next:\n" + line("add %r6, 1") +
                  line("jle %r6, " + std::to_string(kHaystack - kNeedle) + ", outer") + line("mov %r0, -1") +
                  line("exit");
  return {{"strsearch", t, mem, expected, true}, {}};
}

// ---- the XDP-style parser ----

// What the parser extracts from a packet, and the flow hash it returns:
// key1 = IPv4 saddr:daddr (or IPv6 src halves xor'ed), key2 = 0 (or IPv6
// dst halves xor'ed), the port pair as loaded and the protocol, mixed by
// MurmurHash3's 64-bit finalizer.
struct Flow {
  uint64_t key1, key2;
  uint32_t ports;
  uint8_t proto;
};

uint64_t flow_hash(const Flow& f) {
  uint64_t h = f.key1 * kGolden ^ f.key2 ^ ((static_cast<uint64_t>(f.ports) << 8) | f.proto);
  h ^= h >> 33;
  h *= kFmix1;
  h ^= h >> 33;
  h *= kFmix2;
  return h ^ (h >> 33);
}

// Bounds checks are on offsets from the packet start (r6) against the
// length (r9, at most 511): the kernel verifier sees the memory as a map
// value and needs every offset bounded, so each variable offset is itself
// compared with r9 before use. DPDK's validator narrows a register by
// masks but not by comparisons, so the one offset it cannot bound otherwise
// (after the IPv6 extension header) is also masked with 511, a no-op.
std::string parse_ethernet() {
  return line("ldxw %r9, [%r1+0]") + line("jgt %r9, " + std::to_string(kPacketRoom - 1) + ", drop") +
         line("jlt %r9, 14, drop") + line("mov %r6, %r1") + line("add %r6, 8") + line("ldxh %r2, [%r6+12]") +
         line("mov %r3, 14") + line("jeq %r2, 0xa888, vlan") +  // 802.1ad (QinQ), bytes 88 a8
         line("jne %r2, 0x0081, l3") +                          // 802.1Q, bytes 81 00
         "vlan:\n" + line("jlt %r9, 18, drop") + line("ldxh %r2, [%r6+16]") + line("mov %r3, 18") +
         line("jne %r2, 0x0081, l3") + line("jlt %r9, 22, drop") + line("ldxh %r2, [%r6+20]") +
         line("mov %r3, 22") + "l3:\n" + line("mov %r7, %r6") + line("add %r7, %r3") +
         line("jeq %r2, 0x0008, ipv4") + line("jeq %r2, 0xdd86, ipv6") + line("mov %r0, 2") +  // not IP: pass
         line("exit");
}

// r5 = key1, r0 = key2, r8 = protocol, r3 = L4 offset.
std::string parse_ipv4() {
  return "ipv4:\n" + line("mov %r4, %r3") + line("add %r4, 20") + line("jgt %r4, %r9, drop") +
         line("ldxb %r2, [%r7+0]") + line("mov %r4, %r2") + line("rsh %r4, 4") + line("jne %r4, 4, drop") +
         line("and %r2, 0xf") + line("jlt %r2, 5, drop") + line("lsh %r2, 2") + line("add %r3, %r2") +
         line("jgt %r3, %r9, drop") + line("ldxb %r8, [%r7+9]") + line("ldxw %r5, [%r7+12]") +
         line("lsh %r5, 32") + line("ldxw %r0, [%r7+16]") + line("or %r5, %r0") + line("mov %r0, 0") +
         line("ldxh %r4, [%r7+6]") + line("and %r4, 0xff3f") +  // MF and the fragment offset
         line("jne %r4, 0, noports") + line("ja l4");
}

// IPv6, with at most one hop-by-hop options header.
std::string parse_ipv6() {
  return "ipv6:\n" + line("add %r3, 40") + line("jgt %r3, %r9, drop") + line("ldxb %r2, [%r7+0]") +
         line("rsh %r2, 4") + line("jne %r2, 6, drop") + line("ldxb %r8, [%r7+6]") +
         line("ldxdw %r5, [%r7+8]") + line("ldxdw %r2, [%r7+16]") + line("xor %r5, %r2") +
         line("ldxdw %r0, [%r7+24]") + line("ldxdw %r2, [%r7+32]") + line("xor %r0, %r2") +
         line("jne %r8, 0, l4") + line("mov %r4, %r3") + line("add %r4, 8") + line("jgt %r4, %r9, drop") +
         line("mov %r7, %r6") + line("add %r7, %r3") + line("ldxb %r8, [%r7+0]") + line("ldxb %r2, [%r7+1]") +
         line("add %r2, 1") + line("lsh %r2, 3") + line("add %r3, %r2") + line("jgt %r3, %r9, drop") +
         line("and %r3, " + std::to_string(kPacketRoom - 1));  // a no-op (r3 <= r9 < 512), for DPDK
}

std::string parse_l4_and_hash() {
  std::string t = "l4:\n" + line("jeq %r8, 6, tcp") + line("jne %r8, 17, noports") + line("mov %r4, %r3") +
                  line("add %r4, 8") + line("jgt %r4, %r9, drop") + line("ja ports") + "tcp:\n" +
                  line("mov %r4, %r3") + line("add %r4, 20") + line("jgt %r4, %r9, drop") + "ports:\n" +
                  line("mov %r7, %r6") + line("add %r7, %r3") + line("ldxw %r2, [%r7+0]") + line("ja hash") +
                  "noports:\n" + line("mov %r2, 0") + "hash:\n" + line("lsh %r2, 8") + line("or %r2, %r8") +
                  line("lddw %r4, " + std::to_string(kGolden)) + line("mul %r5, %r4") + line("xor %r5, %r0") +
                  line("xor %r5, %r2");
  for (uint64_t k : {kFmix1, kFmix2, uint64_t{0}}) {
    t += line("mov %r4, %r5") + line("rsh %r4, 33") + line("xor %r5, %r4");
    if (k) t += line("lddw %r4, " + std::to_string(k)) + line("mul %r5, %r4");
  }
  return t + line("mov %r0, %r5") + line("exit") + "drop:\n" + line("mov %r0, 1") + line("exit");
}

// Packet builders: the memory is [u32 length][4 bytes][packet, 512 bytes
// of room][16 bytes of tailroom].
struct PacketWriter {
  std::vector<uint8_t> mem = std::vector<uint8_t>(8 + kPacketRoom + kPacketTailroom, 0);
  size_t at = 8;
  void put(std::initializer_list<uint8_t> b) {
    for (uint8_t x : b) mem[at++] = x;
  }
  void put(const uint8_t* p, size_t n) {
    std::memcpy(mem.data() + at, p, n);
    at += n;
  }
  void payload(size_t n) {
    for (size_t i = 0; i < n; ++i) mem[at++] = static_cast<uint8_t>(i * 31 + 7);
  }
  std::vector<uint8_t> done() {
    put32(mem, 0, static_cast<uint32_t>(at - 8));
    return mem;
  }
};

const uint8_t kMacs[12] = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};

// QinQ (802.1ad + 802.1Q), IPv4 with 4 bytes of options, TCP 443 -> 51000.
JitBenchProgram xdp_ipv4() {
  const uint8_t src[4] = {192, 168, 1, 10}, dst[4] = {10, 1, 2, 3}, ports[4] = {0x01, 0xbb, 0xc7, 0x38};
  PacketWriter w;
  w.put(kMacs, 12);
  w.put({0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00});
  w.put({0x46, 0x00, 0x00, 0x5c, 0x12, 0x34, 0x40, 0x00, 0x40, 6, 0, 0});  // IHL 6, DF, TTL 64, TCP
  w.put(src, 4);
  w.put(dst, 4);
  w.put({0x01, 0x01, 0x01, 0x00});  // NOP NOP NOP EOL
  w.put(ports, 4);
  w.put({0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0});  // seq, ack, doff 5, PSH|ACK
  w.payload(48);
  Flow f{(load_le(src, 4) << 32) | load_le(dst, 4), 0, static_cast<uint32_t>(load_le(ports, 4)), 6};
  return {{"xdp_ipv4", "", w.done(), flow_hash(f), false}, {}};
}

// IPv6 with a hop-by-hop options header (router alert), UDP 53 -> 33000.
JitBenchProgram xdp_ipv6() {
  uint8_t src[16], dst[16];
  for (int i = 0; i < 16; ++i)
    src[i] = static_cast<uint8_t>(0x20 + i), dst[i] = static_cast<uint8_t>(0xfe - i);
  const uint8_t ports[4] = {0x00, 0x35, 0x80, 0xe8};
  PacketWriter w;
  w.put(kMacs, 12);
  w.put({0x86, 0xdd});
  w.put({0x60, 0, 0, 0, 0x00, 0x30, 0, 64});  // payload 48, next header hop-by-hop, hop limit 64
  w.put(src, 16);
  w.put(dst, 16);
  w.put({17, 0, 5, 2, 0, 0, 1, 0});  // next UDP, 8 bytes: router alert, PadN
  w.put(ports, 4);
  w.put({0x00, 0x28, 0, 0});  // length 40, checksum
  w.payload(32);
  Flow f{load_le(src, 8) ^ load_le(src + 8, 8), load_le(dst, 8) ^ load_le(dst + 8, 8),
         static_cast<uint32_t>(load_le(ports, 4)), 17};
  return {{"xdp_ipv6", "", w.done(), flow_hash(f), false}, {}};
}

std::vector<JitBenchProgram> xdp_parsers() {
  std::string text = parse_ethernet() + parse_ipv4() + parse_ipv6() + parse_l4_and_hash();
  std::vector<JitBenchProgram> v = {xdp_ipv4(), xdp_ipv6()};
  for (auto& p : v) p.base.text = text;
  return v;
}

}  // namespace

std::vector<JitBenchProgram> jit_bench_programs() {
  std::vector<JitBenchProgram> v;
  for (auto& p : bench_programs()) v.push_back({std::move(p), {}});
  v.push_back(hash_lookup());
  v.push_back(lpm_lookup());
  v.push_back(strsearch());
  for (auto& p : xdp_parsers()) v.push_back(std::move(p));
  return v;
}

bool patch_maps(std::vector<RawInsn>& insns, const std::vector<uint64_t>& refs, uint8_t pseudo) {
  for (size_t i = 0; i + 1 < insns.size(); ++i) {
    if (insns[i].opcode != 0x18) continue;
    uint64_t v = static_cast<uint32_t>(insns[i].imm) | (static_cast<uint64_t>(insns[i + 1].imm) << 32);
    ++i;
    if ((v & ~0xffffull) != kMapPlaceholder) continue;
    if (v - kMapPlaceholder >= refs.size()) return false;
    uint64_t ref = refs[v - kMapPlaceholder];
    insns[i - 1].set_regs(insns[i - 1].dst(), pseudo);
    insns[i - 1].imm = static_cast<int32_t>(static_cast<uint32_t>(ref));
    insns[i].imm = static_cast<int32_t>(static_cast<uint32_t>(ref >> 32));
  }
  return true;
}

// Blocks of ten slots over r0 and r2-r9 (r1 stays the memory pointer):
// 64- and 32-bit ALU, a stack store and load, a forward branch over one
// instruction, and every fourth block a 64-bit constant.
std::string generated_program(size_t slots) {
  static const char* const kRegs[] = {"%r0", "%r2", "%r3", "%r4", "%r5", "%r6", "%r7", "%r8", "%r9"};
  std::string t;
  for (const char* r : kRegs) t += line(std::string("mov ") + r + ", " + std::to_string(r[2] * 7 + 1));
  size_t n = 9;
  for (size_t b = 0; n + 12 < slots; ++b) {
    std::string a = kRegs[b % 9], c = kRegs[(b * 5 + 3) % 9],
                off = std::to_string(-8 * static_cast<int>(b % 16 + 1));
    std::string k = std::to_string(b * 2654435761u % 1000 + 1), skip = "s" + std::to_string(b);
    t += line("add " + a + ", " + k) + line("mul " + a + ", " + c) + line("xor32 " + c + ", " + k) +
         line("stxdw [%r10" + off + "], " + a) + line("rsh " + a + ", 7") +
         line("jgt " + a + ", " + k + ", " + skip) + line("sub " + a + ", " + c) + skip + ":\n" +
         line("ldxdw " + c + ", [%r10" + off + "]") + line("or " + c + ", " + a) +
         line("and32 " + a + ", 0xfff0f");
    n += 10;
    if (b % 4 == 0) t += line("lddw " + c + ", " + std::to_string(0x123456789abcdefull * (b + 1))), n += 2;
  }
  return t + line("mov %r0, %r2") + line("add %r0, %r9") + line("exit");
}

}  // namespace ember::bench
