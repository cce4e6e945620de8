// The BTF parser on what clang writes (tests/bpf/btf_types.bpf.c), on the
// running kernel's /sys/kernel/btf/vmlinux, against libbpf's reading of the
// same bytes, and on hand-built and corrupt BTF: every corruption gives an
// error saying what and where, never a crash.
#include "ember/btf.hpp"

#include <bpf/btf.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ember/elf.hpp"
#include "support/btf_builder.hpp"

namespace ember {
namespace {

using testing::BtfBuilder;

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path;
  return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<uint8_t> object_bytes(const std::string& stem) {
  return read_file(std::string(EMBER_BPF_OBJ_DIR) + "/" + stem + ".bpf.o");
}

// The .BTF section of a test object, copied out of the ELF file.
std::vector<uint8_t> btf_section(const std::string& stem) {
  std::vector<uint8_t> bytes = object_bytes(stem);
  auto elf = ElfFile::parse(bytes, stem);
  if (!elf) return {};
  const ElfSection* s = elf->section(".BTF");
  return s ? std::vector<uint8_t>(s->data.begin(), s->data.end()) : std::vector<uint8_t>{};
}

Btf parse_ok(std::span<const uint8_t> bytes, const std::string& what = "test") {
  auto btf = Btf::parse(bytes, what);
  if (!btf) {
    ADD_FAILURE() << btf.error().message;
    return *Btf::parse(BtfBuilder().bytes(), "empty");
  }
  return std::move(*btf);
}

uint32_t member_type(const Btf& btf, uint32_t id, std::string_view name) {
  for (const BtfMember& m : btf.members(id))
    if (m.name == name) return m.type;
  ADD_FAILURE() << "no member " << name;
  return 0;
}

TEST(Btf, ParsesEveryKindClangWrites) {
  Btf btf = parse_ok(btf_section("btf_types"), "btf_types.bpf.o");
  uint32_t sample = btf.find("sample", BtfKind::Struct);
  ASSERT_NE(sample, 0u);
  EXPECT_EQ(*btf.size_of(sample), 104u);
  struct Want {
    const char* name;
    uint32_t bit_offset, bitfield_size;
    const char* spelled;
  };
  const Want want[] = {
      {"comm", 0, 0, "char[16]"},
      {"flags", 128, 3, "unsigned int"},
      {"mode", 131, 5, "unsigned int"},
      {"counter", 192, 0, "const volatile u64_t"},
      {"hidden", 256, 0, "struct opaque *"},
      {"matrix", 320, 0, "int[2][3]"},
      {"color", 512, 0, "enum color"},
      {"u", 544, 0, "union both"},
      {"cb", 576, 0, "callback_t"},
      {"ratio", 640, 0, "double"},
      {"user_ptr", 704, 0, "int *"},
      {"name", 768, 0, "const char *restrict"},
  };
  auto members = btf.members(sample);
  ASSERT_EQ(members.size(), std::size(want));
  for (size_t i = 0; i < members.size(); ++i) {
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(members[i].name, want[i].name);
    EXPECT_EQ(members[i].bit_offset, want[i].bit_offset);
    EXPECT_EQ(members[i].bitfield_size, want[i].bitfield_size);
    EXPECT_EQ(btf.to_string(members[i].type), want[i].spelled);
  }
  EXPECT_EQ(btf.to_string(sample), "struct sample");
  EXPECT_EQ(*btf.size_of(member_type(btf, sample, "matrix")), 24u);
  EXPECT_EQ(*btf.size_of(member_type(btf, sample, "counter")), 8u);
  // Through the typedef to the pointer, then to the prototype.
  uint32_t cb = btf.resolve(member_type(btf, sample, "cb"));
  EXPECT_EQ(btf.kind(cb), BtfKind::Ptr);
  EXPECT_EQ(btf.to_string(cb), "int (*)(int, long)");
  EXPECT_EQ(btf.kind(btf.resolve(member_type(btf, sample, "counter"))), BtfKind::Int);
  EXPECT_EQ(btf.to_string(btf.find("btf_types", BtfKind::Func)), "int btf_types(struct __sk_buff *)");
  EXPECT_EQ(btf.kind(btf.find("opaque", BtfKind::Fwd)), BtfKind::Fwd);
  EXPECT_FALSE(btf.size_of(btf.find("opaque", BtfKind::Fwd)).ok());
  EXPECT_NE(btf.find("sample_tag", BtfKind::DeclTag), 0u);
  EXPECT_NE(btf.find("sample_var", BtfKind::Var), 0u);
  EXPECT_NE(btf.find(".bss", BtfKind::Datasec), 0u);
  EXPECT_EQ(btf.find("sample", BtfKind::Union), 0u);

  uint32_t color = btf.find("color", BtfKind::Enum);
  auto values = btf.enum_values(color);
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0].name, "RED");
  EXPECT_EQ(values[1].value, 2);
  // clang 14 marks no enum signed (kflag 0): BLUE reads as unsigned.
  EXPECT_EQ(static_cast<int32_t>(values[2].value), -3);
}

// libbpf reads the same bytes: the same number of types, kinds and names.
void expect_same_as_libbpf(const Btf& ours, const struct btf* theirs) {
  ASSERT_NE(theirs, nullptr);
  ASSERT_EQ(ours.count(), btf__type_cnt(theirs));
  for (uint32_t id = 1; id < ours.count(); ++id) {
    const struct btf_type* t = btf__type_by_id(theirs, id);
    ASSERT_EQ(static_cast<int>(ours.kind(id)), btf_kind(t)) << id;
    ASSERT_EQ(ours.name(id), btf__name_by_offset(theirs, t->name_off)) << id;
    ASSERT_EQ(ours.type(id)->vlen, btf_vlen(t)) << id;
    __s64 size = btf__resolve_size(theirs, id);
    auto mine = ours.size_of(id);
    if (size >= 0 && ours.kind(id) != BtfKind::Datasec) {
      ASSERT_EQ(mine.ok() ? int64_t(*mine) : -1, size) << id;
    }
  }
}

TEST(Btf, AgreesWithLibbpfOnAnObject) {
  std::vector<uint8_t> bytes = btf_section("btf_types");
  Btf btf = parse_ok(bytes);
  struct btf* theirs = btf__new(bytes.data(), static_cast<uint32_t>(bytes.size()));
  expect_same_as_libbpf(btf, theirs);
  btf__free(theirs);
}

TEST(Btf, ParsesVmlinux) {
  if (!std::ifstream(Btf::kVmlinuxPath))
    GTEST_SKIP() << Btf::kVmlinuxPath << " is absent (kernel without BTF)";
  auto btf = Btf::load_file(Btf::kVmlinuxPath);
  ASSERT_TRUE(btf.ok()) << btf.error().message;
  uint32_t task = btf->find("task_struct", BtfKind::Struct);
  ASSERT_NE(task, 0u);
  EXPECT_EQ(btf->to_string(task), "struct task_struct");
  uint32_t pid = member_type(*btf, task, "pid");
  EXPECT_EQ(btf->to_string(pid), "pid_t");
  EXPECT_EQ(*btf->size_of(pid), 4u);
  EXPECT_GT(*btf->size_of(task), 1000u);
  struct btf* theirs = btf__parse_raw(Btf::kVmlinuxPath);
  expect_same_as_libbpf(*btf, theirs);
  btf__free(theirs);
}

TEST(Btf, HandBuiltKinds) {
  BtfBuilder b;
  uint32_t i32 = b.int_type("int", 4);
  uint32_t big = b.enum_type("big", 8, {{"HUGE", int64_t{1} << 40}, {"NEG", -5}}, /*wide=*/true);
  uint32_t arr = b.array(i32, i32, 4);
  uint32_t parr = b.ptr(arr);
  uint32_t proto = b.func_proto(i32, {{"a", i32}, {"", 0}});
  uint32_t pproto = b.ptr(proto);
  uint32_t cptr = b.const_type(b.ptr(i32));
  uint32_t anon = b.struct_type("", 8, {{"x", i32, 0}, {"y", i32, 32}});
  uint32_t tagged = b.ptr(b.raw("user", 18, 0, false, i32));  // clang 14 drops type tags: build one
  Btf btf = parse_ok(b.bytes());
  EXPECT_EQ(btf.kind(big), BtfKind::Enum64);
  ASSERT_EQ(btf.enum_values(big).size(), 2u);
  EXPECT_EQ(btf.enum_values(big)[0].value, int64_t{1} << 40);
  EXPECT_EQ(btf.enum_values(big)[1].value, -5);
  EXPECT_EQ(btf.to_string(big), "enum big");
  EXPECT_EQ(btf.to_string(parr), "int (*)[4]");
  EXPECT_EQ(btf.to_string(pproto), "int (*)(int, ...)");
  EXPECT_EQ(btf.to_string(cptr), "int *const");
  EXPECT_EQ(btf.to_string(anon), "struct (anon)");
  EXPECT_EQ(btf.to_string(0), "void");
  EXPECT_EQ(*btf.size_of(parr), 8u);
  EXPECT_EQ(*btf.size_of(arr), 16u);
  EXPECT_EQ(btf.describe(anon), "[" + std::to_string(anon) + "] STRUCT ''");
  EXPECT_EQ(btf.to_string(tagged), "int *");
  EXPECT_EQ(btf.resolve(btf.type(tagged)->type), i32);
}

TEST(Btf, EssentialNames) {
  EXPECT_EQ(btf_essential_name("foo___v2"), "foo");
  EXPECT_EQ(btf_essential_name("foo___v2___x"), "foo___v2");
  EXPECT_EQ(btf_essential_name("foo"), "foo");
  EXPECT_EQ(btf_essential_name("foo___"), "foo___");
  EXPECT_EQ(btf_essential_name("____x"), "____x");
  EXPECT_EQ(btf_essential_name("a____b"), "a____b");
}

// A cycle through a function type's parameters: legal to parse (the kernel
// accepts it too), and the spelling stops instead of recursing forever.
TEST(Btf, SpellingIsBounded) {
  BtfBuilder b;
  uint32_t i32 = b.int_type("int", 4);
  // [2] ptr -> [3] proto(int, [2])
  b.ptr(3);
  b.func_proto(i32, {{"self", 2}});
  Btf btf = parse_ok(b.bytes());
  std::string s = btf.to_string(2);
  EXPECT_NE(s.find("..."), std::string::npos);
  EXPECT_LT(s.size(), 10000u);
}

struct Corruption {
  const char* what;
  std::vector<uint8_t> bytes;
  const char* message;
};

std::vector<Corruption> corruptions() {
  std::vector<Corruption> out;
  auto with = [&](const char* what, auto&& build, const char* message) {
    BtfBuilder b;
    build(b);
    out.push_back({what, b.bytes(), message});
  };
  with(
      "typedef cycle", [](BtfBuilder& b) { b.typedef_type("a", 2), b.typedef_type("b", 1); }, "cyclic");
  with(
      "type out of range", [](BtfBuilder& b) { b.ptr(7); }, "refers to type 7");
  with(
      "unknown kind", [](BtfBuilder& b) { b.raw("x", 25, 0, false, 0); }, "unknown kind 25");
  with(
      "member outside",
      [](BtfBuilder& b) {
        uint32_t i = b.int_type("int", 4);
        b.struct_type("s", 4, {{"a", i, 0}, {"b", i, 32}});
      },
      "member 'b' at bit 32 does not fit in 4 bytes");
  with(
      "array overflow",
      [](BtfBuilder& b) {
        uint32_t i = b.int_type("int", 4);
        b.array(i, i, 0x40000000);
      },
      "overflows 32 bits");
  with(
      "bad int", [](BtfBuilder& b) { b.int_type("int", 3); }, "size 3");
  with(
      "void param",
      [](BtfBuilder& b) {
        b.func_proto(0, {{"", 0}, {"x", 0}});
      },
      "parameter 0 is void");
  with(
      "func of int", [](BtfBuilder& b) { b.func("f", b.int_type("int", 4)); }, "is not a func_proto");
  with(
      "truncated record", [](BtfBuilder& b) { b.raw("s", 4, 2, false, 8); }, "record truncated");
  out.push_back({"empty", {}, "header truncated"});
  std::vector<uint8_t> ok = BtfBuilder().bytes();
  auto bad_magic = ok;
  bad_magic[0] = 0xeb, bad_magic[1] = 0x9f;  // big-endian BTF
  out.push_back({"bad magic", bad_magic, "bad magic 0x9feb"});
  auto no_nul = ok;
  no_nul.back() = 'x';
  out.push_back({"strings", no_nul, "NUL"});
  auto far_strings = ok;
  far_strings[16] = 0x40;  // str_off
  out.push_back({"strings outside", far_strings, "string section"});
  BtfBuilder named;
  named.raw("", 1, 0, false, 4);
  named.word(32);
  auto bad_name = named.bytes();
  bad_name[24] = 0x77;  // name_off of type 1
  out.push_back({"name offset", bad_name, "name offset 119 outside the string section"});
  return out;
}

TEST(Btf, CorruptInputIsAnError) {
  for (const Corruption& c : corruptions()) {
    auto btf = Btf::parse(c.bytes, "corrupt.o");
    ASSERT_FALSE(btf.ok()) << c.what;
    EXPECT_NE(btf.error().message.find(c.message), std::string::npos)
        << c.what << ": " << btf.error().message;
    EXPECT_EQ(btf.error().message.rfind("corrupt.o: .BTF: ", 0), 0u) << btf.error().message;
  }
}

// Every truncation and every single-byte change of a real section parses or
// fails cleanly (ASan builds check that nothing is read out of bounds).
TEST(Btf, MutationsNeverCrash) {
  std::vector<uint8_t> bytes = btf_section("btf_types");
  for (size_t n = 0; n < bytes.size(); n += 7) (void)Btf::parse(std::span(bytes).first(n), "cut");
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::vector<uint8_t> m = bytes;
    m[i] ^= 0xa5;
    auto btf = Btf::parse(m, "mutated");
    if (!btf) continue;
    for (uint32_t id = 0; id < btf->count(); ++id) (void)btf->to_string(id), (void)btf->size_of(id);
  }
}

// An object's .BTF and .BTF.ext, parsed.
struct Parsed {
  Btf btf;
  BtfExt ext;
};

Parsed parse_object(const std::string& stem) {
  std::vector<uint8_t> bytes = object_bytes(stem);
  auto elf = ElfFile::parse(bytes, stem);
  EXPECT_TRUE(elf.ok());
  const ElfSection* b = elf->section(".BTF");
  const ElfSection* e = elf->section(".BTF.ext");
  EXPECT_TRUE(b && e);
  Btf btf = parse_ok(b->data, stem);
  auto ext = BtfExt::parse(e->data, btf, stem);
  EXPECT_TRUE(ext.ok()) << ext.error().message;
  return {std::move(btf), ext ? std::move(*ext) : BtfExt{}};
}

TEST(BtfExt, FuncAndLineInfo) {
  Parsed p = parse_object("btf_types");
  ASSERT_EQ(p.ext.func_info().size(), 1u);
  EXPECT_EQ(p.ext.func_info()[0].name, "socket");
  EXPECT_EQ(p.btf.name(p.ext.func_at("socket", 3)), "btf_types");
  EXPECT_EQ(p.ext.func_at(".text", 0), 0u);
  const BtfLineInfo* first = p.ext.line_at("socket", 0);
  ASSERT_NE(first, nullptr);
  EXPECT_NE(first->file.find("btf_types.bpf.c"), std::string::npos) << first->file;
  EXPECT_NE(first->source.find("sample_var.flags = skb->len & 7"), std::string::npos) << first->source;
  EXPECT_EQ(first->line, 39u);
  EXPECT_GT(first->column, 0u);
  // The last instruction is the return: its line comes from the last record.
  const BtfLineInfo* last = p.ext.line_at("socket", 1000);
  ASSERT_NE(last, nullptr);
  EXPECT_GE(last->line, first->line);
  EXPECT_EQ(p.ext.line_at("nosuch", 0), nullptr);
}

TEST(BtfExt, CoreRelocationRecords) {
  Parsed p = parse_object("core_reads");
  ASSERT_EQ(p.ext.core_relos().size(), 1u);
  const auto& relos = p.ext.core_relos()[0];
  EXPECT_EQ(relos.name, "socket");
  std::vector<std::string> seen;
  for (const BtfCoreRelo& r : relos.records)
    seen.push_back(std::to_string(r.insn_off / 8) + " " + core_relo_kind_name(r.kind) + " " +
                   p.btf.to_string(r.type_id) + " " + r.access);
  std::vector<std::string> want = {
      "1 byte_off struct foo 0:0",      "2 byte_off struct foo 0:1",
      "9 byte_off struct foo 0:4:2:1",  "20 byte_off struct foo 0:3",
      "24 byte_sz struct foo 0:3",      "28 lshift_u64 struct foo 0:3",
      "29 signed struct foo 0:3",       "31 rshift_u64 struct foo 0:3",
      "33 rshift_u64 struct foo 0:3",   "34 field_exists struct foo 0:5",
      "44 byte_sz struct foo 0:1",      "46 type_exists struct local_only 0",
      "49 type_size struct foo 0",      "51 enumval_exists enum state 1",
      "55 enumval_value enum state 2",  "58 local_type_id struct foo 0",
      "61 target_type_id struct foo 0",
  };
  EXPECT_EQ(seen, want);
}

TEST(BtfExt, CorruptInputIsAnError) {
  Parsed p = parse_object("core_reads");
  std::vector<uint8_t> bytes = object_bytes("core_reads");
  auto elf = ElfFile::parse(bytes, "core_reads");
  ASSERT_TRUE(elf.ok());
  std::vector<uint8_t> ext(elf->section(".BTF.ext")->data.begin(), elf->section(".BTF.ext")->data.end());
  auto bad = [&](size_t at, uint8_t value, const char* message) {
    std::vector<uint8_t> m = ext;
    m.at(at) = value;
    auto r = BtfExt::parse(m, p.btf, "c.o");
    ASSERT_FALSE(r.ok()) << message;
    EXPECT_NE(r.error().message.find(message), std::string::npos) << r.error().message;
  };
  bad(0, 0, "bad magic");
  bad(11, 0xff, "func_info [");  // func_info_off far out
  bad(32, 3, "record size 3");   // func_info record size
  for (size_t n = 0; n < ext.size(); ++n) (void)BtfExt::parse(std::span(ext).first(n), p.btf, "cut");
  for (size_t i = 0; i < ext.size(); ++i) {
    std::vector<uint8_t> m = ext;
    m[i] ^= 0x5a;
    (void)BtfExt::parse(m, p.btf, "mutated");
  }
}

// ---- CO-RE ----

// An object's parsed BTF, .BTF.ext and the instructions of one code section.
struct CoreObject {
  Btf btf;
  BtfExt ext;
  std::vector<RawInsn> insns;
};

CoreObject core_object(const std::string& stem, const std::string& section) {
  Parsed p = parse_object(stem);
  std::vector<uint8_t> bytes = object_bytes(stem);
  auto elf = ElfFile::parse(bytes, stem);
  const ElfSection* code = elf ? elf->section(section) : nullptr;
  EXPECT_NE(code, nullptr) << section;
  auto insns = code ? bytes_to_insns(code->data) : Result<std::vector<RawInsn>>(fail("none"));
  return {std::move(p.btf), std::move(p.ext), insns ? *insns : std::vector<RawInsn>{}};
}

const CorePatch* patch_at(const std::vector<CorePatch>& ps, uint32_t insn) {
  for (const CorePatch& p : ps)
    if (p.insn == insn) return &p;
  ADD_FAILURE() << "no patch at insn " << insn;
  return nullptr;
}

bool is_poison(const RawInsn& r) { return r.opcode == 0x85 && r.imm == kCorePoisonHelper && r.regs == 0; }

// Against its own BTF every relocation keeps what the compiler wrote.
TEST(BtfCore, SelfRelocationChangesNothing) {
  CoreObject o = core_object("core_reads", "socket");
  auto patches = resolve_core_relocations(o.btf, o.ext, o.btf, "core_reads.bpf.o");
  ASSERT_TRUE(patches.ok()) << patches.error().message;
  ASSERT_EQ(patches->size(), 17u);
  for (const CorePatch& p : *patches) {
    EXPECT_FALSE(p.poison) << p.insn;
    EXPECT_EQ(p.orig_value, p.new_value) << p.insn;
  }
  // The values the compiler wrote, computed back from the local BTF.
  EXPECT_EQ(patch_at(*patches, 9)->orig_value, 28u);   // &f->pts[2].y
  EXPECT_EQ(patch_at(*patches, 28)->orig_value, 54u);  // sig's left shift
  EXPECT_EQ(patch_at(*patches, 1)->orig_size, 4u);     // int a
  std::vector<RawInsn> insns = o.insns;
  ASSERT_TRUE(apply_core_patches("socket", insns, *patches, "core_reads.bpf.o").ok());
  // Except a bitfield's load size: clang loads `sig` with 8 bytes where its
  // 4-byte type suffices; libbpf computes the smallest load and does not
  // validate bitfield values, as "compilers may disagree".
  for (uint32_t i = 0; i < insns.size(); ++i) {
    if (i == 24) {
      EXPECT_FALSE(patch_at(*patches, i)->validate);
      EXPECT_EQ(insns[i].imm, 4);
      continue;
    }
    EXPECT_EQ(insns_to_bytes({&insns[i], 1}), insns_to_bytes({&o.insns[i], 1})) << "insn " << i;
  }
}

// Against core_target's struct foo___v2 / enum state___v2, where fields
// moved, one is gone, an enumerator is gone and another renumbered.
TEST(BtfCore, RelocatesAgainstAnotherLayout) {
  CoreObject o = core_object("core_reads", "socket");
  Parsed target = parse_object("core_target");
  auto patches = resolve_core_relocations(o.btf, o.ext, target.btf, "core_reads.bpf.o");
  ASSERT_TRUE(patches.ok()) << patches.error().message;
  std::vector<RawInsn> insns = o.insns;
  ASSERT_TRUE(apply_core_patches("socket", insns, *patches, "core_reads.bpf.o").ok());
  uint32_t v2 = target.btf.find("foo___v2", BtfKind::Struct);
  ASSERT_NE(v2, 0u);
  EXPECT_EQ(patch_at(*patches, 1)->target_type_id, v2);
  EXPECT_EQ(insns[1].off, 8);    // ldx f->a: a moved behind b
  EXPECT_EQ(insns[2].imm, 0);    // &f->b: b moved to the front
  EXPECT_EQ(insns[9].imm, 30);   // &f->pts[2].y: pts moved 2 bytes on
  EXPECT_EQ(insns[20].imm, 16);  // sig's containing word: the same
  EXPECT_EQ(insns[24].imm, 4);
  EXPECT_EQ(insns[28].imm, 51);  // sig's left shift: 3 bits higher up
  EXPECT_EQ(insns[29].imm, 1);   // signed
  EXPECT_EQ(insns[31].imm, 58);
  EXPECT_EQ(insns[33].imm, 58);
  EXPECT_EQ(insns[34].imm, 0);   // bpf_core_field_exists(f->gone)
  EXPECT_EQ(insns[44].imm, 8);   // bpf_core_field_size(f->b)
  EXPECT_EQ(insns[46].imm, 0);   // bpf_core_type_exists(struct local_only)
  EXPECT_EQ(insns[49].imm, 48);  // bpf_core_type_size(struct foo)
  EXPECT_EQ(insns[51].imm, 0);   // RUNNING is gone
  EXPECT_EQ(insns[55].imm, 20);  // DEAD renumbered
  EXPECT_EQ(insns[56].imm, 0);
  EXPECT_EQ(insns[58].imm, static_cast<int32_t>(o.btf.find("foo", BtfKind::Struct)));  // local id
  EXPECT_EQ(insns[61].imm, static_cast<int32_t>(v2));
  // Nothing but the relocated fields changed.
  std::set<uint32_t> patched;
  for (const CorePatch& p : *patches) patched.insert(p.insn);
  for (uint32_t i = 0; i < insns.size(); ++i) {
    if (patched.count(i)) continue;
    EXPECT_EQ(insns_to_bytes({&insns[i], 1}), insns_to_bytes({&o.insns[i], 1})) << i;
  }
}

// A target without `b`, with `a` widened to a signed 64-bit field, and
// without enum state: field reads that cannot be relocated become calls to
// helper 0xbad2310; questions about existence get 0.
TEST(BtfCore, UnresolvableAccessesArePoisoned) {
  CoreObject o = core_object("core_reads", "socket");
  BtfBuilder b;
  uint32_t s64 = b.int_type("long long", 8);
  b.struct_type("foo", 8, {{"a", s64, 0}});
  Btf target = parse_ok(b.bytes());
  auto patches = resolve_core_relocations(o.btf, o.ext, target, "core_reads.bpf.o");
  ASSERT_TRUE(patches.ok()) << patches.error().message;
  EXPECT_TRUE(patch_at(*patches, 1)->resize_unsafe);
  std::vector<RawInsn> insns = o.insns;
  ASSERT_TRUE(apply_core_patches("socket", insns, *patches, "core_reads.bpf.o").ok());
  EXPECT_TRUE(is_poison(insns[1]));   // 4-byte signed read of an 8-byte field
  EXPECT_TRUE(is_poison(insns[2]));   // b is gone
  EXPECT_TRUE(is_poison(insns[9]));   // pts is gone
  EXPECT_EQ(insns[34].imm, 0);        // field_exists
  EXPECT_EQ(insns[49].imm, 8);        // type_size
  EXPECT_EQ(insns[51].imm, 0);        // enumval_exists
  EXPECT_TRUE(is_poison(insns[55]));  // enumval_value: both slots of the ld_imm64
  EXPECT_TRUE(is_poison(insns[56]));
  EXPECT_EQ(insns[61].imm, 2);  // target_type_id
}

TEST(BtfCore, UnexpectedInstructionIsAnError) {
  CoreObject o = core_object("core_reads", "socket");
  auto patches = resolve_core_relocations(o.btf, o.ext, o.btf, "core_reads.bpf.o");
  ASSERT_TRUE(patches.ok()) << patches.error().message;
  std::vector<RawInsn> insns = o.insns;
  insns[2].imm = 7;
  auto st = apply_core_patches("socket", insns, *patches, "core_reads.bpf.o");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message,
            "core_reads.bpf.o: section 'socket' insn 2: CO-RE byte_off (access 0:1): immediate 7 is not the "
            "expected 8");
  insns = o.insns;
  insns.resize(10);
  st = apply_core_patches("socket", insns, *patches, "core_reads.bpf.o");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("no such instruction"), std::string::npos);
}

TEST(BtfCore, AmbiguousCandidatesAreAnError) {
  CoreObject o = core_object("core_reads", "socket");
  BtfBuilder b;
  uint32_t i32 = b.int_type("int", 4);
  b.struct_type("foo___x", 8, {{"a", i32, 0}});
  b.struct_type("foo___y", 8, {{"a", i32, 32}});
  Btf target = parse_ok(b.bytes());
  auto patches = resolve_core_relocations(o.btf, o.ext, target, "core_reads.bpf.o");
  ASSERT_FALSE(patches.ok());
  EXPECT_NE(
      patches.error().message.find("section 'socket' insn 1: CO-RE byte_off of struct foo (access 0:0): "
                                   "ambiguous: candidates [2] STRUCT 'foo___x' and [3] STRUCT 'foo___y'"),
      std::string::npos)
      << patches.error().message;
}

// TYPE_MATCHES (clang 14 cannot emit it: built by hand) asks more than
// TYPE_EXISTS: every local member present, with the same size and sign.
TEST(BtfCore, TypeMatchesIsStricterThanTypeExists) {
  BtfBuilder lb;
  uint32_t i32 = lb.int_type("int", 4);
  uint32_t s = lb.struct_type("s", 4, {{"a", i32, 0}});
  Btf local = parse_ok(lb.bytes());
  auto answer = [&](const Btf& target, CoreReloKind kind) {
    BtfCoreRelo relo{0, s, "0", kind};
    auto p = resolve_core_relocation(local, "socket", relo, target, "hand.o");
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p ? p->new_value : 99;
  };
  struct Target {
    const char* what;
    uint64_t matches;
    BtfBuilder b;
  };
  Target wider{"a superset", 1, {}}, unsigned_a{"an unsigned a", 0, {}}, no_a{"no a", 0, {}};
  uint32_t ti = wider.b.int_type("int", 4);
  wider.b.struct_type("s___new", 8, {{"b", ti, 0}, {"a", ti, 32}});
  uint32_t tu = unsigned_a.b.int_type("unsigned int", 4, /*is_signed=*/false);
  unsigned_a.b.struct_type("s", 4, {{"a", tu, 0}});
  uint32_t tn = no_a.b.int_type("int", 4);
  no_a.b.struct_type("s", 4, {{"b", tn, 0}});
  for (Target* t : {&wider, &unsigned_a, &no_a}) {
    Btf target = parse_ok(t->b.bytes());
    EXPECT_EQ(answer(target, CoreReloKind::TypeMatches), t->matches) << t->what;
    EXPECT_EQ(answer(target, CoreReloKind::TypeExists), 1u) << t->what;
  }
}

TEST(BtfCore, TaskStructPidAgainstVmlinux) {
  if (!std::ifstream(Btf::kVmlinuxPath))
    GTEST_SKIP() << Btf::kVmlinuxPath << " is absent (kernel without BTF)";
  auto vmlinux = Btf::load_file(Btf::kVmlinuxPath);
  ASSERT_TRUE(vmlinux.ok()) << vmlinux.error().message;
  CoreObject o = core_object("core_task", "kprobe/do_nanosleep");
  auto patches = resolve_core_relocations(o.btf, o.ext, *vmlinux, "core_task.bpf.o");
  ASSERT_TRUE(patches.ok()) << patches.error().message;
  std::vector<RawInsn> insns = o.insns;
  ASSERT_TRUE(apply_core_patches("kprobe/do_nanosleep", insns, *patches, "core_task.bpf.o").ok());
  // The kernel's offsets, as libbpf reads vmlinux.
  struct btf* theirs = btf__parse_raw(Btf::kVmlinuxPath);
  ASSERT_NE(theirs, nullptr);
  int task = btf__find_by_name_kind(theirs, "task_struct", BTF_KIND_STRUCT);
  ASSERT_GT(task, 0);
  const struct btf_type* t = btf__type_by_id(theirs, task);
  std::map<std::string, uint32_t> offsets;
  for (int i = 0; i < btf_vlen(t); ++i)
    offsets[btf__name_by_offset(theirs, btf_members(t)[i].name_off)] = btf_member_bit_offset(t, i) / 8;
  btf__free(theirs);
  EXPECT_GT(offsets["pid"], 0u);
  EXPECT_EQ(insns[2].imm, static_cast<int32_t>(offsets["pid"]));
  EXPECT_EQ(insns[9].imm, static_cast<int32_t>(offsets["tgid"]));
  EXPECT_EQ(patch_at(*patches, 2)->target_type_id, static_cast<uint32_t>(task));
}

}  // namespace
}  // namespace ember
