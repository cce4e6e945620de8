// parse_map_definitions on BTF-defined maps (tests/bpf/btf_maps.bpf.c),
// legacy `maps` definitions (tests/bpf/btf_legacy_maps.bpf.c), and on
// definitions broken by hand: each error names the file, the map and why.
#include "ember/map_defs.hpp"

#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>

#include "support/btf_builder.hpp"

namespace ember {
namespace {

struct Loaded {
  std::vector<uint8_t> bytes;
  ElfFile elf;
  std::unique_ptr<Btf> btf;
};

Loaded load(const std::string& stem) {
  Loaded l;
  std::ifstream in(std::string(EMBER_BPF_OBJ_DIR) + "/" + stem + ".bpf.o", std::ios::binary);
  l.bytes.assign(std::istreambuf_iterator<char>(in), {});
  auto elf = ElfFile::parse(l.bytes, stem + ".bpf.o");
  if (!elf) {
    ADD_FAILURE() << elf.error().message;
    return l;
  }
  l.elf = std::move(*elf);
  if (const ElfSection* s = l.elf.section(".BTF")) {
    auto btf = Btf::parse(s->data, stem);
    if (btf)
      l.btf = std::make_unique<Btf>(std::move(*btf));
    else
      ADD_FAILURE() << btf.error().message;
  }
  return l;
}

std::map<std::string, MapDef> by_name(const std::vector<MapDef>& defs) {
  std::map<std::string, MapDef> m;
  for (const MapDef& d : defs) m[d.name] = d;
  return m;
}

void expect_def(const MapDef& d, uint32_t type, uint32_t key, uint32_t value, uint32_t max,
                uint32_t flags = 0) {
  SCOPED_TRACE(d.name);
  EXPECT_EQ(d.type, type);
  EXPECT_EQ(d.key_size, key);
  EXPECT_EQ(d.value_size, value);
  EXPECT_EQ(d.max_entries, max);
  EXPECT_EQ(d.map_flags, flags);
}

TEST(MapDef, BtfDefinedMaps) {
  Loaded l = load("btf_maps");
  auto defs = parse_map_definitions(l.elf, l.btf.get());
  ASSERT_TRUE(defs.ok()) << defs.error().message;
  std::vector<std::string> order;
  for (const MapDef& d : *defs) order.push_back(d.name);
  // The order of the .maps DATASEC, in which libbpf creates them too (clang
  // puts initialized variables first).
  EXPECT_EQ(order, (std::vector<std::string>{"jumps", "inner2", "inner1", "outer", "counts", "sized",
                                             "percpu", "lru", "lpm", "events", "bloom", "pinned"}));
  auto m = by_name(*defs);
  const Btf& btf = *l.btf;
  expect_def(m["counts"], 1, 8, 8, 128);
  EXPECT_EQ(btf.to_string(m["counts"].btf_key_type_id), "struct key");
  EXPECT_EQ(btf.to_string(m["counts"].btf_value_type_id), "__u64");
  expect_def(m["sized"], 2, 4, 24, 4);
  EXPECT_EQ(m["sized"].btf_key_type_id, 0u);
  EXPECT_EQ(m["sized"].btf_value_type_id, 0u);
  expect_def(m["percpu"], 6, 4, 8, 2);
  EXPECT_EQ(m["percpu"].numa_node, 1u);
  expect_def(m["lru"], 9, 8, 4, 1000, BPF_F_NO_COMMON_LRU);
  expect_def(m["lpm"], 11, 8, 4, 64, BPF_F_NO_PREALLOC);
  EXPECT_EQ(btf.to_string(m["lpm"].btf_key_type_id), "struct lpm_key");
  expect_def(m["events"], 27, 0, 0, 4096);
  expect_def(m["bloom"], 30, 0, 4, 100);
  EXPECT_EQ(m["bloom"].map_extra, 3u);

  const MapDef& jumps = m["jumps"];
  expect_def(jumps, 3, 4, 4, 4);
  ASSERT_EQ(jumps.init_slots.size(), 2u);
  EXPECT_EQ(jumps.init_slots[0].index, 0u);
  EXPECT_EQ(jumps.init_slots[0].symbol, "prog_a");
  EXPECT_EQ(jumps.init_slots[1].index, 2u);
  EXPECT_EQ(jumps.init_slots[1].symbol, "prog_b");
  EXPECT_EQ(jumps.inner, nullptr);

  const MapDef& outer = m["outer"];
  expect_def(outer, 12, 4, 4, 3);
  ASSERT_NE(outer.inner, nullptr);
  expect_def(*outer.inner, 2, 4, 8, 1);
  EXPECT_EQ(outer.inner->name, "outer.inner");
  ASSERT_EQ(outer.init_slots.size(), 2u);
  EXPECT_EQ(outer.init_slots[0].index, 1u);
  EXPECT_EQ(outer.init_slots[0].symbol, "inner2");
  EXPECT_EQ(outer.init_slots[1].index, 2u);
  EXPECT_EQ(outer.init_slots[1].symbol, "inner1");

  EXPECT_EQ(m["pinned"].pinning, MapPinning::ByName);
  EXPECT_EQ(m["counts"].pinning, MapPinning::None);
  for (const MapDef& d : *defs) EXPECT_EQ(d.section, ".maps") << d.name;
}

TEST(MapDef, LegacyMaps) {
  Loaded l = load("btf_legacy_maps");
  auto defs = parse_map_definitions(l.elf, l.btf.get());
  ASSERT_TRUE(defs.ok()) << defs.error().message;
  auto m = by_name(*defs);
  ASSERT_EQ(m.size(), 2u);
  expect_def(m["old_hash"], 1, 4, 8, 32);
  expect_def(m["old_array"], 2, 4, 16, 2, BPF_F_MMAPABLE);
  EXPECT_EQ(m["old_hash"].section, "maps");
}

// The legacy definition with extra bytes: a non-zero extra is refused.
TEST(MapDef, LegacyExtraBytesMustBeZero) {
  Loaded l = load("btf_legacy_maps");
  const ElfSection* maps = l.elf.section("maps");
  ASSERT_NE(maps, nullptr);
  const ElfSymbol* sym = nullptr;
  for (const ElfSymbol& s : l.elf.symbols())
    if (s.name == "old_array") sym = &s;
  ASSERT_TRUE(sym && sym->size == 28);
  size_t file_off = static_cast<size_t>(maps->data.data() - l.bytes.data()) + sym->value + 24;
  l.bytes[file_off] = 1;  // numa_node in the extended struct
  auto defs = parse_map_definitions(l.elf, nullptr);
  ASSERT_FALSE(defs.ok());
  EXPECT_EQ(
      defs.error().message,
      "btf_legacy_maps.bpf.o: map 'old_array': unrecognized non-zero option at byte 24 of its definition");
}

TEST(MapDef, MapsNeedBtf) {
  Loaded l = load("btf_maps");
  auto defs = parse_map_definitions(l.elf, nullptr);
  ASSERT_FALSE(defs.ok());
  EXPECT_NE(defs.error().message.find("need the object's .BTF"), std::string::npos);
}

// Hand-built BTF for the object's `.maps`: the same ELF, other definitions.
// Built as: int, the ".maps" DATASEC's VAR "counts" of a struct whose
// members are listed; the section/symbol offsets come from the object.
struct MapBtf {
  testing::BtfBuilder b;
  uint32_t i32 = b.int_type("int", 4);
  uint32_t attr(uint32_t n) { return b.ptr(b.array(i32, i32, n)); }
};

Result<std::vector<MapDef>> parse_with(const Loaded& l, MapBtf& mb, uint32_t def_struct) {
  uint32_t var = mb.b.var("counts", def_struct);
  mb.b.raw(".maps", 15, 1, false, 0);
  mb.b.word(var), mb.b.word(0), mb.b.word(32);
  std::vector<uint8_t> bytes = mb.b.bytes();
  auto btf = Btf::parse(bytes, "hand");
  if (!btf) return btf.error();
  // Only the first map of the object's `.maps` is described: its relocations
  // (none for `counts`) do not matter.
  return parse_map_definitions(l.elf, &*btf);
}

TEST(MapDef, ErrorsNameTheMap) {
  Loaded maps = load("btf_maps");
  struct Case {
    const char* what;
    std::function<uint32_t(MapBtf&)> def;
    const char* message;
  };
  const Case cases[] = {
      {"value_size 0",
       [](MapBtf& m) {
         uint32_t t = m.attr(1), n = m.attr(4), k = m.attr(4);
         return m.b.struct_type("", 24, {{"type", t, 0}, {"max_entries", n, 64}, {"key_size", k, 128}});
       },
       "btf_maps.bpf.o: map 'counts': value_size 0"},
      {"conflicting key",
       [](MapBtf& m) {
         uint32_t t = m.attr(1), k = m.attr(8), kt = m.b.ptr(m.i32);
         return m.b.struct_type("", 24, {{"type", t, 0}, {"key_size", k, 64}, {"key", kt, 128}});
       },
       "map 'counts': conflicting key size 8 != 4"},
      {"unknown field",
       [](MapBtf& m) {
         uint32_t t = m.attr(1);
         return m.b.struct_type("", 16, {{"type", t, 0}, {"colour", t, 64}});
       },
       "map 'counts': unknown field 'colour'"},
      {"not a pointer",
       [](MapBtf& m) {
         return m.b.struct_type("", 4, {{"type", m.i32, 0}});
       },
       "map 'counts': attribute 'type': expected a pointer, got int"},
      {"not a struct", [](MapBtf& m) { return m.i32; }, "map 'counts': definition is int, not a struct"},
      {"values on a hash",
       [](MapBtf& m) {
         uint32_t t = m.attr(1), n = m.attr(4), v = m.b.array(m.b.ptr(m.i32), m.i32, 0);
         return m.b.struct_type("", 16, {{"type", t, 0}, {"max_entries", n, 64}, {"values", v, 128}});
       },
       "map 'counts': 'values' needs a prog array or a map of maps (type is 1)"},
      {"pinned inner",
       [](MapBtf& m) {
         uint32_t t = m.attr(2), n = m.attr(1), p = m.attr(1), vs = m.attr(8);
         uint32_t inner = m.b.struct_type(
             "inner", 32,
             {{"type", t, 0}, {"max_entries", n, 64}, {"value_size", vs, 128}, {"pinning", p, 192}});
         uint32_t aom = m.attr(12), v = m.b.array(m.b.ptr(inner), m.i32, 0);
         return m.b.struct_type("", 24, {{"type", aom, 0}, {"max_entries", n, 64}, {"values", v, 128}});
       },
       "map 'counts.inner': inner map definition can't be pinned"},
  };
  for (const Case& c : cases) {
    MapBtf mb;
    uint32_t def = c.def(mb);
    auto defs = parse_with(maps, mb, def);
    ASSERT_FALSE(defs.ok()) << c.what;
    EXPECT_NE(defs.error().message.find(c.message), std::string::npos)
        << c.what << ": " << defs.error().message;
  }
}

}  // namespace
}  // namespace ember
