// USDT notes, arguments and libbpf argument specs (src/attach/usdt.hpp),
// checked against readelf, against the loaded library's own memory, and
// against clang's BTF of libbpf's usdt.bpf.h.
#include "attach/usdt.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "attach/elf_image.hpp"
#include "attach/symbols.hpp"
#include "ember/btf.hpp"
#include "ember/elf.hpp"

using namespace ember::attach;

namespace {

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// What `readelf -n --wide` prints for one stapsdt note.
struct ReadelfNote {
  std::string provider, name, args;
  uint64_t location = 0, base = 0, semaphore = 0;
};

std::vector<ReadelfNote> readelf_notes(const std::string& file) {
  std::vector<ReadelfNote> out;
  std::istringstream in(run("readelf -n --wide " + file + " 2>/dev/null"));
  std::string line;
  while (std::getline(in, line)) {
    if (size_t p = line.find("Provider: "); p != std::string::npos) {
      out.emplace_back();
      out.back().provider = line.substr(p + 10);
    } else if (out.empty()) {
      continue;
    } else if (size_t p = line.find("Name: "); p != std::string::npos) {
      out.back().name = line.substr(p + 6);
    } else if (line.find("Location: ") != std::string::npos) {
      unsigned long loc, base, sema;
      if (std::sscanf(line.c_str(), " Location: %lx, Base: %lx, Semaphore: %lx", &loc, &base, &sema) == 3) {
        out.back().location = loc;
        out.back().base = base;
        out.back().semaphore = sema;
      }
    } else if (size_t p = line.find("Arguments: "); p != std::string::npos) {
      out.back().args = line.substr(p + 11);
    } else if (line.find("Arguments:") != std::string::npos) {
      out.back().args = "";
    }
  }
  return out;
}

// (vaddr, offset, filesz) of the LOAD lines of `readelf -lW`.
struct ReadelfLoad {
  uint64_t offset, vaddr, filesz;
};
std::vector<ReadelfLoad> readelf_loads(const std::string& file) {
  std::vector<ReadelfLoad> out;
  std::istringstream in(run("readelf -lW " + file + " 2>/dev/null"));
  std::string line;
  while (std::getline(in, line)) {
    unsigned long off, va, pa, fsz, msz;
    if (std::sscanf(line.c_str(), " LOAD 0x%lx 0x%lx 0x%lx 0x%lx 0x%lx", &off, &va, &pa, &fsz, &msz) == 5)
      out.push_back({off, va, fsz});
  }
  return out;
}

uint64_t offset_by_readelf(const std::vector<ReadelfLoad>& loads, uint64_t vaddr) {
  for (const ReadelfLoad& l : loads)
    if (vaddr >= l.vaddr && vaddr < l.vaddr + l.filesz) return l.offset + (vaddr - l.vaddr);
  return ~uint64_t{0};
}

const UsdtNote* find_note(const std::vector<UsdtNote>& notes, const std::string& provider,
                          const std::string& name) {
  for (const UsdtNote& n : notes)
    if (n.provider == provider && n.name == name) return &n;
  return nullptr;
}

#define EXPECT_ERROR(result, text)                                                     \
  do {                                                                                 \
    auto r_ = (result);                                                                \
    ASSERT_FALSE(r_.ok()) << "expected an error containing: " << (text);               \
    EXPECT_NE(r_.error().message.find(text), std::string::npos) << r_.error().message; \
  } while (0)

// Sizes and signedness of every probe's arguments, from the C types in
// tests/attach/usdt_target.c (sys/sdt.h derives them from the types, so they
// do not depend on the compiler's choice of registers).
const std::map<std::string, std::vector<int>> kSignedSizes = {
    {"ember:zero", {}},
    {"ember:one", {-4}},
    {"ember:two", {-1, 2}},
    {"ember:three", {-8, 4, 8}},
    {"ember:four", {-2, 1, -8, 8}},
    {"ember:six", {-1, 2, -4, 8, -8, -1}},
    {"ember:constant", {-4}},
    {"ember_sema:hit", {-4}},
};

}  // namespace

#ifdef EMBER_USDT_SO

class UsdtTargets : public ::testing::TestWithParam<const char*> {};

TEST_P(UsdtTargets, NotesAgreeWithReadelf) {
  std::string file = GetParam();
  auto notes = read_usdt_notes(file);
  ASSERT_TRUE(notes.ok()) << notes.error().message;
  std::vector<ReadelfNote> theirs = readelf_notes(file);
  std::vector<ReadelfLoad> loads = readelf_loads(file);
  if (theirs.empty() || loads.empty())
    GTEST_SKIP() << "readelf (binutils) gave no notes or segments for " << file;
  ASSERT_EQ(notes->size(), theirs.size());
  ASSERT_EQ(notes->size(), kSignedSizes.size());
  for (size_t i = 0; i < theirs.size(); ++i) {
    const UsdtNote& n = (*notes)[i];
    const ReadelfNote& r = theirs[i];
    SCOPED_TRACE(r.provider + ":" + r.name);
    EXPECT_EQ(n.provider, r.provider);
    EXPECT_EQ(n.name, r.name);
    EXPECT_EQ(n.args_text, r.args);
    EXPECT_EQ(n.pc_vaddr, r.location);  // .stapsdt.base is where the notes say: no prelink adjustment
    EXPECT_EQ(n.base_vaddr, r.base);
    EXPECT_EQ(n.semaphore_vaddr, r.semaphore);
    EXPECT_EQ(n.pc_file_offset, offset_by_readelf(loads, r.location));
    EXPECT_EQ(n.semaphore_file_offset, r.semaphore ? offset_by_readelf(loads, r.semaphore) : 0);
    auto sizes = kSignedSizes.find(n.provider + ":" + n.name);
    ASSERT_NE(sizes, kSignedSizes.end());
    ASSERT_EQ(n.args.size(), sizes->second.size());
    for (size_t a = 0; a < n.args.size(); ++a) {
      int want = sizes->second[a];
      EXPECT_EQ(n.args[a].size, want < 0 ? -want : want) << "argument " << a;
      EXPECT_EQ(n.args[a].is_signed, want < 0) << "argument " << a;
    }
  }
  const UsdtNote* constant = find_note(*notes, "ember", "constant");
  ASSERT_NE(constant, nullptr);
  EXPECT_EQ(constant->args[0].kind, UsdtArgKind::Const);
  EXPECT_EQ(constant->args[0].val_off, 42u);
  const UsdtNote* hit = find_note(*notes, "ember_sema", "hit");
  ASSERT_NE(hit, nullptr);
  EXPECT_NE(hit->semaphore_file_offset, 0u);
  for (const UsdtNote& n : *notes)
    if (&n != hit) {
      EXPECT_EQ(n.semaphore_file_offset, 0u) << n.name;
    }
}

INSTANTIATE_TEST_SUITE_P(Builds, UsdtTargets,
                         ::testing::Values(EMBER_USDT_PIE, EMBER_USDT_NOPIE, EMBER_USDT_SO));

// The library loaded here: every probe site is the one-byte nop sys/sdt.h
// places; the semaphore is the variable the code tests; arguments that the
// compiler left in static variables ("-8@big(%rip)") decode, through
// libbpf's arithmetic (usdt.bpf.h's bpf_usdt_arg), to the values the C
// source put there.
TEST(Usdt, LoadedLibrarySitesSemaphoreAndStaticArguments) {
  void* h = dlopen(EMBER_USDT_SO, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  auto notes = read_usdt_notes(EMBER_USDT_SO);
  ASSERT_TRUE(notes.ok()) << notes.error().message;
  ASSERT_FALSE(notes->empty());
  // Values of the static variables, and which argument of which probe holds
  // each (usdt_target.c).
  const int64_t big = -1234567890123;
  const uint32_t word = 4000000000u;
  const int16_t half = -300;
  const uint8_t byte = 200;
  const std::map<std::pair<std::string, size_t>, uint64_t> expected = {
      {{"three", 0}, static_cast<uint64_t>(big)},
      {{"three", 1}, word},
      {{"four", 0}, static_cast<uint64_t>(int64_t{half})},
      {{"four", 1}, byte},
      {{"four", 3}, static_cast<uint64_t>(big)},
      {{"six", 0}, static_cast<uint64_t>(int64_t{static_cast<int8_t>(byte)})},
      {{"six", 1}, static_cast<uint16_t>(half)},
      {{"six", 2}, static_cast<uint64_t>(int64_t{static_cast<int32_t>(word)})},
      {{"six", 4}, static_cast<uint64_t>(big)},
  };
  int rip_relative = 0;
  for (const UsdtNote& n : *notes) {
    SCOPED_TRACE(n.provider + ":" + n.name);
    auto pc = file_offset_to_address(EMBER_USDT_SO, n.pc_file_offset);
    ASSERT_TRUE(pc.ok()) << pc.error().message;
    EXPECT_EQ(*reinterpret_cast<const uint8_t*>(*pc), 0x90);
    std::vector<uint8_t> spec = encode_usdt_spec(n, 0);
    BpfUsdtSpec s;
    std::memcpy(&s, spec.data(), sizeof s);
    for (size_t a = 0; a < n.args.size(); ++a) {
      if (n.args[a].kind != UsdtArgKind::RegDeref || n.args[a].reg != "rip") continue;
      ++rip_relative;
      // bpf_usdt_arg: val = *(u64*)(regs->rip + val_off); val <<= shift; then >> (arithmetic if signed).
      uint64_t val = 0;
      std::memcpy(&val, reinterpret_cast<const void*>(*pc + s.args[a].val_off), n.args[a].size);
      val <<= s.args[a].arg_bitshift;
      val = s.args[a].arg_signed ? static_cast<uint64_t>(static_cast<int64_t>(val) >> s.args[a].arg_bitshift)
                                 : val >> s.args[a].arg_bitshift;
      auto want = expected.find({n.name, a});
      ASSERT_NE(want, expected.end())
          << "argument " << a << " '" << n.args_text << "' is not a static variable";
      EXPECT_EQ(val, want->second) << "argument " << a;
    }
  }
  if (rip_relative == 0) GTEST_SKIP() << "the compiler passed no argument from a static variable";

  auto sema_addr = reinterpret_cast<const volatile unsigned short* (*)()>(dlsym(h, "ember_sema_address"));
  ASSERT_NE(sema_addr, nullptr);
  const UsdtNote* hit = find_note(*notes, "ember_sema", "hit");
  ASSERT_NE(hit, nullptr);
  auto sema = file_offset_to_address(EMBER_USDT_SO, hit->semaphore_file_offset, 0, MappingUse::Data);
  ASSERT_TRUE(sema.ok()) << sema.error().message;
  EXPECT_EQ(reinterpret_cast<const volatile void*>(*sema), sema_addr());
  dlclose(h);
}

// Corrupted files: errors name the file and what is wrong.
TEST(Usdt, MalformedNotes) {
  std::vector<uint8_t> bytes = read_bytes(EMBER_USDT_SO);
  auto img = ElfImage::parse(bytes, "t.so");
  ASSERT_TRUE(img.ok());
  const ElfSectionHeader* sec = img->section(".note.stapsdt");
  ASSERT_NE(sec, nullptr);
  uint64_t note = sec->offset;
  auto put32 = [](std::vector<uint8_t>& b, uint64_t off, uint32_t v) { std::memcpy(b.data() + off, &v, 4); };
  auto put64 = [](std::vector<uint8_t>& b, uint64_t off, uint64_t v) { std::memcpy(b.data() + off, &v, 8); };

  std::vector<uint8_t> b = bytes;
  put32(b, note, 0x7fffffff);  // namesz
  EXPECT_ERROR(parse_usdt_notes(b, "t.so"), "t.so: .note.stapsdt: note at 0x0: name outside the section");
  b = bytes;
  put32(b, note + 4, 0x7fffffff);  // descsz
  EXPECT_ERROR(parse_usdt_notes(b, "t.so"), "descriptor outside the section");
  b = bytes;
  put64(b, note + 12 + 8, 0x10);   // pc: the ELF header, not code
  put64(b, note + 12 + 8 + 8, 0);  // base: 0 (no prelink adjustment wanted)
  EXPECT_ERROR(parse_usdt_notes(b, "t.so"), "t.so: USDT ember:zero: probe address");
  // The last note's strings without their NULs.
  uint64_t last = note;
  for (uint64_t off = note; off + 12 <= note + sec->size;) {
    last = off;
    uint32_t namesz, descsz;
    std::memcpy(&namesz, &bytes[off], 4);
    std::memcpy(&descsz, &bytes[off + 4], 4);
    off += 12 + ((namesz + 3) & ~3u) + ((descsz + 3) & ~3u);
  }
  uint32_t last_desc;
  std::memcpy(&last_desc, &bytes[last + 4], 4);
  b = bytes;
  std::memset(&b[last + 20 + 24], 'x', last_desc - 24);
  EXPECT_ERROR(parse_usdt_notes(b, "t.so"), "provider, name and arguments are not NUL-terminated");
  EXPECT_ERROR(parse_usdt_notes(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 40), "t.so"),
               "not an ELF file");
  // Every prefix of the file: an error or notes, never a crash.
  for (size_t n = 0; n < bytes.size(); n += 97) (void)parse_usdt_notes({bytes.data(), n}, "t.so");
}

#else

TEST(Usdt, TargetsBuilt) {
  GTEST_SKIP() << "sys/sdt.h is missing (Debian: systemtap-sdt-dev): no USDT targets built";
}

#endif  // EMBER_USDT_SO

TEST(Usdt, NoNotesIsEmpty) {
  auto notes = read_usdt_notes("/proc/self/exe");
  ASSERT_TRUE(notes.ok()) << notes.error().message;
  EXPECT_TRUE(notes->empty());
  EXPECT_ERROR(read_usdt_notes("/nonexistent/app"), "/nonexistent/app");
}

TEST(Usdt, ArgumentForms) {
  auto args = parse_usdt_args(
      "-4@%edi 8@-8(%rbp) 4@$5 -8@%rax 2@(%rsp) -1@%sil 8@%r8 -2@%r9w 1@%r15b -4@%r12d 8@$-9 "
      "4@0x10(%r13)",
      "note p:n");
  ASSERT_TRUE(args.ok()) << args.error().message;
  ASSERT_EQ(args->size(), 12u);
  auto check = [&](size_t i, int size, bool sign, UsdtArgKind kind, int reg_off, uint64_t val) {
    SCOPED_TRACE(i);
    const UsdtArg& a = (*args)[i];
    EXPECT_EQ(a.size, size);
    EXPECT_EQ(a.is_signed, sign);
    EXPECT_EQ(a.kind, kind);
    if (kind != UsdtArgKind::Const) {
      EXPECT_EQ(a.reg_off, reg_off);
    }
    EXPECT_EQ(a.val_off, val);
  };
  check(0, 4, true, UsdtArgKind::Reg, 112, 0);                               // rdi
  check(1, 8, false, UsdtArgKind::RegDeref, 32, static_cast<uint64_t>(-8));  // rbp
  check(2, 4, false, UsdtArgKind::Const, 0, 5);
  check(3, 8, true, UsdtArgKind::Reg, 80, 0);         // rax
  check(4, 2, false, UsdtArgKind::RegDeref, 152, 0);  // rsp
  check(5, 1, true, UsdtArgKind::Reg, 104, 0);        // rsi
  check(6, 8, false, UsdtArgKind::Reg, 72, 0);        // r8
  check(7, 2, true, UsdtArgKind::Reg, 64, 0);         // r9
  check(8, 1, false, UsdtArgKind::Reg, 0, 0);         // r15
  check(9, 4, true, UsdtArgKind::Reg, 24, 0);         // r12
  check(10, 8, false, UsdtArgKind::Const, 0, static_cast<uint64_t>(-9));
  check(11, 4, false, UsdtArgKind::RegDeref, 16, 16);  // r13

  // Spaces where sscanf would allow them, as in libbpf.
  auto spaced = parse_usdt_args("  -4 @ %eax   8 @ -16 ( %rbp )  ", "w");
  ASSERT_TRUE(spaced.ok()) << spaced.error().message;
  ASSERT_EQ(spaced->size(), 2u);
  EXPECT_EQ((*spaced)[1].val_off, static_cast<uint64_t>(-16));
  auto empty = parse_usdt_args("", "w");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  for (const char* r : {"rax", "eax", "ax", "al", "rip", "r10d", "bpl", "spl", "dil"})
    EXPECT_GE(usdt_register_offset(r), 0) << r;
  for (const char* r : {"ah", "xmm0", "", "rxx"}) EXPECT_EQ(usdt_register_offset(r), -1) << r;
}

TEST(Usdt, SymbolicDisplacements) {
  UsdtSymbols syms{[](std::string_view s) -> std::optional<uint64_t> {
                     if (s == "big") return 0x4018;
                     if (s == "table") return 0x404000;
                     return std::nullopt;
                   },
                   0x1190, false};
  auto a = parse_usdt_args("-8@big(%rip) 4@big+4(%rip) 4@big-8(%rip)", "w", &syms);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ((*a)[0].val_off, 0x4018u - 0x1190u);
  EXPECT_EQ((*a)[0].reg_off, 128);
  EXPECT_EQ((*a)[1].val_off, 0x4018u + 4 - 0x1190u);
  EXPECT_EQ((*a)[2].val_off, 0x4018u - 8 - 0x1190u);
  EXPECT_ERROR(parse_usdt_args("4@table(%rax)", "w", &syms), "needs an absolute address");
  syms.absolute = true;
  auto b = parse_usdt_args("4@table+8(%rax)", "w", &syms);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ((*b)[0].val_off, 0x404008u);
  EXPECT_ERROR(parse_usdt_args("4@nosuch(%rip)", "w", &syms), "no symbol 'nosuch'");
  EXPECT_ERROR(parse_usdt_args("-8@big(%rip)", "w"), "needs the file's symbols");
}

TEST(Usdt, ArgumentErrors) {
  EXPECT_ERROR(
      parse_usdt_args("8@%rax 2@8(%rsp,%rdx,4)", "f: USDT p:n"),
      "f: USDT p:n: argument #2 '2@8(%rsp,%rdx,4)': an index register (base,index,scale) is not supported");
  EXPECT_ERROR(parse_usdt_args("3@%eax", "w"), "argument #1 '3@%eax': size 3 is not 1, 2, 4 or 8 bytes");
  EXPECT_ERROR(parse_usdt_args("0@%eax", "w"), "size 0");
  EXPECT_ERROR(parse_usdt_args("4@%ah", "w"), "register '%ah' is not supported");
  EXPECT_ERROR(parse_usdt_args("%eax", "w"), "expected SIZE@LOCATION");
  EXPECT_ERROR(parse_usdt_args("4@$", "w"), "expected a constant after '$'");
  EXPECT_ERROR(parse_usdt_args("4@8(%rbp", "w"), "expected ')'");
  EXPECT_ERROR(parse_usdt_args("4@8%rbp", "w"), "expected '('");
  EXPECT_ERROR(parse_usdt_args("4@%eax,", "w"), "unexpected ','");
  EXPECT_ERROR(parse_usdt_args("4@(rbp)", "w"), "expected a register");
  std::string thirteen;
  for (int i = 0; i < 13; ++i) thirteen += "8@%rax ";
  EXPECT_ERROR(parse_usdt_args(thirteen, "w"), "argument #13 '8@%rax': more than 12 arguments");
}

TEST(Usdt, SpecEncoding) {
  UsdtNote note;
  auto args = parse_usdt_args("-4@%edi 8@-8(%rbp) 2@$-3 1@%al", "w");
  ASSERT_TRUE(args.ok());
  note.args = *args;
  std::vector<uint8_t> b = encode_usdt_spec(note, 0x1122334455667788ull);
  ASSERT_EQ(b.size(), 208u);
  auto u64 = [&](size_t o) {
    uint64_t v;
    std::memcpy(&v, &b[o], 8);
    return v;
  };
  auto u32 = [&](size_t o) {
    uint32_t v;
    std::memcpy(&v, &b[o], 4);
    return v;
  };
  auto i16 = [&](size_t o) {
    int16_t v;
    std::memcpy(&v, &b[o], 2);
    return v;
  };
  // args[i] at 16 * i: val_off u64, arg_type u32, reg_off s16, arg_signed bool, arg_bitshift char.
  EXPECT_EQ(u64(0), 0u);
  EXPECT_EQ(u32(8), 1u);  // BPF_USDT_ARG_REG
  EXPECT_EQ(i16(12), 112);
  EXPECT_EQ(b[14], 1);
  EXPECT_EQ(b[15], 32);
  EXPECT_EQ(u64(16), static_cast<uint64_t>(-8));
  EXPECT_EQ(u32(24), 2u);  // BPF_USDT_ARG_REG_DEREF
  EXPECT_EQ(i16(28), 32);
  EXPECT_EQ(b[30], 0);
  EXPECT_EQ(b[31], 0);
  EXPECT_EQ(u64(32), static_cast<uint64_t>(-3));
  EXPECT_EQ(u32(40), 0u);  // BPF_USDT_ARG_CONST
  EXPECT_EQ(i16(44), 0);
  EXPECT_EQ(b[46], 0);
  EXPECT_EQ(b[47], 48);
  EXPECT_EQ(u32(56), 1u);
  EXPECT_EQ(i16(60), 80);
  EXPECT_EQ(b[62], 0);  // 1@: unsigned
  EXPECT_EQ(b[63], 56);
  for (size_t i = 64; i < 192; ++i) EXPECT_EQ(b[i], 0) << i;  // unused args
  EXPECT_EQ(u64(192), 0x1122334455667788ull);
  EXPECT_EQ(i16(200), 4);
  for (size_t i = 202; i < 208; ++i) EXPECT_EQ(b[i], 0) << i;  // tail padding
}

// Ember's mirror of struct __bpf_usdt_spec against the layout clang gives
// libbpf's usdt.bpf.h (the BTF of tests/attach/usdt_spec.bpf.c).
TEST(Usdt, SpecLayoutMatchesUsdtBpfH) {
  std::vector<uint8_t> obj = read_bytes(EMBER_USDT_SPEC_OBJ);
  ASSERT_FALSE(obj.empty()) << EMBER_USDT_SPEC_OBJ;
  auto elf = ember::ElfFile::parse(obj, "usdt_spec.bpf.o");
  ASSERT_TRUE(elf.ok()) << elf.error().message;
  const ember::ElfSection* sec = elf->section(".BTF");
  ASSERT_NE(sec, nullptr);
  auto btf = ember::Btf::parse(sec->data, "usdt_spec.bpf.o");
  ASSERT_TRUE(btf.ok()) << btf.error().message;
  uint32_t spec = btf->find("__bpf_usdt_spec", ember::BtfKind::Struct);
  uint32_t arg = btf->find("__bpf_usdt_arg_spec", ember::BtfKind::Struct);
  ASSERT_NE(spec, 0u);
  ASSERT_NE(arg, 0u);
  EXPECT_EQ(btf->type(spec)->size, sizeof(BpfUsdtSpec));
  EXPECT_EQ(btf->type(arg)->size, sizeof(BpfUsdtArgSpec));
  std::map<std::string, uint32_t> spec_bits, arg_bits;
  for (const ember::BtfMember& m : btf->members(spec)) spec_bits[std::string(m.name)] = m.bit_offset;
  for (const ember::BtfMember& m : btf->members(arg)) arg_bits[std::string(m.name)] = m.bit_offset;
  EXPECT_EQ(spec_bits.at("args"), 8 * offsetof(BpfUsdtSpec, args));
  EXPECT_EQ(spec_bits.at("usdt_cookie"), 8 * offsetof(BpfUsdtSpec, usdt_cookie));
  EXPECT_EQ(spec_bits.at("arg_cnt"), 8 * offsetof(BpfUsdtSpec, arg_cnt));
  EXPECT_EQ(arg_bits.at("val_off"), 8 * offsetof(BpfUsdtArgSpec, val_off));
  EXPECT_EQ(arg_bits.at("arg_type"), 8 * offsetof(BpfUsdtArgSpec, arg_type));
  EXPECT_EQ(arg_bits.at("reg_off"), 8 * offsetof(BpfUsdtArgSpec, reg_off));
  EXPECT_EQ(arg_bits.at("arg_signed"), 8 * offsetof(BpfUsdtArgSpec, arg_signed));
  EXPECT_EQ(arg_bits.at("arg_bitshift"), 8 * offsetof(BpfUsdtArgSpec, arg_bitshift));
  // The arg_type enum's values are UsdtArgKind's.
  uint32_t kinds = btf->find("__bpf_usdt_arg_type", ember::BtfKind::Enum);
  ASSERT_NE(kinds, 0u);
  std::map<std::string, int64_t> values;
  for (const ember::BtfEnumValue& v : btf->enum_values(kinds)) values[std::string(v.name)] = v.value;
  EXPECT_EQ(values.at("BPF_USDT_ARG_CONST"), static_cast<int64_t>(UsdtArgKind::Const));
  EXPECT_EQ(values.at("BPF_USDT_ARG_REG"), static_cast<int64_t>(UsdtArgKind::Reg));
  EXPECT_EQ(values.at("BPF_USDT_ARG_REG_DEREF"), static_cast<int64_t>(UsdtArgKind::RegDeref));
}
