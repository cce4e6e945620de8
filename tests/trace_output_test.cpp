// `ember trace`'s event records typed by BTF, on hand-built BTF and bytes:
// the value formatter of src/cli/map_format.cpp (integers signed and not,
// strings, nested structs, arrays, bools, enums, bitfields, pointers,
// floats, anonymous members, short bytes), one event line in text and JSON
// (src/cli/event_format.cpp), and which struct each event map gets
// (--event-type, the libbpf-tools naming conventions, the errors).
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <functional>
#include <limits>

#include "cli/event_format.hpp"
#include "cli/map_format.hpp"
#include "support/btf_builder.hpp"

namespace ember::cli {
namespace {

using testing::BtfBuilder;

std::shared_ptr<const Btf> parse(const BtfBuilder& b) {
  auto btf = Btf::parse(b.bytes(), "test");
  EXPECT_TRUE(btf) << btf.error().message;
  return btf ? std::make_shared<const Btf>(std::move(*btf)) : nullptr;
}

template <class T>
void put(std::vector<uint8_t>& bytes, size_t off, T v) {
  std::memcpy(bytes.data() + off, &v, sizeof v);
}

// An INT with an encoding of its own (bool, char).
uint32_t int_with(BtfBuilder& b, std::string_view name, uint32_t size, uint32_t encoding, uint32_t bits = 0,
                  uint32_t offset = 0) {
  uint32_t id = b.raw(name, 1, 0, false, size);
  b.word(encoding << 24 | offset << 16 | (bits ? bits : size * 8));
  return id;
}

// libbpf-tools' kind of record:
//   struct event { int pid; u64 ts; char comm[16]; struct inner { u16 a, b; } in;
//                  u32 arr[3]; bool ok; enum kind kind; void *where; };  // 64 bytes
struct EventBtf {
  BtfBuilder b;
  uint32_t event = 0;
  std::shared_ptr<const Btf> btf;
  EventBtf() {
    uint32_t i32 = b.int_type("int", 4);
    uint32_t u64 = b.int_type("unsigned long long", 8, false);
    uint32_t u16 = b.int_type("unsigned short", 2, false);
    uint32_t u32 = b.int_type("unsigned int", 4, false);
    uint32_t chr = b.int_type("char", 1);
    uint32_t boolean = int_with(b, "_Bool", 1, btf_int::kBool);
    uint32_t comm = b.array(chr, u32, 16);
    uint32_t inner = b.struct_type("inner", 4, {{"a", u16, 0}, {"b", u16, 16}});
    uint32_t arr = b.array(u32, u32, 3);
    uint32_t kind = b.enum_type("kind", 4, {{"OPEN", 1}, {"CLOSE", 2}});
    uint32_t vp = b.ptr(0);
    event = b.struct_type("event", 64,
                          {{"pid", i32, 0},
                           {"ts", u64, 64},
                           {"comm", comm, 128},
                           {"in", inner, 256},
                           {"arr", arr, 288},
                           {"ok", boolean, 384},
                           {"kind", kind, 416},
                           {"where", vp, 448}});
    btf = parse(b);
  }
  static std::vector<uint8_t> bytes() {
    std::vector<uint8_t> v(64);
    put<int32_t>(v, 0, -5);
    put<uint64_t>(v, 8, 0x8000000000000001ull);
    std::memcpy(v.data() + 16, "bash\0junk", 9);
    put<uint16_t>(v, 32, 7), put<uint16_t>(v, 34, 65535);
    put<uint32_t>(v, 36, 1), put<uint32_t>(v, 40, 2), put<uint32_t>(v, 44, 4000000000u);
    v[48] = 1;
    put<uint32_t>(v, 52, 2);
    put<uint64_t>(v, 56, 0x7ffd1000);
    return v;
  }
};

TEST(BtfValue, AStructOfEveryCommonKind) {
  EventBtf e;
  ASSERT_TRUE(e.btf);
  auto v = EventBtf::bytes();
  EXPECT_EQ(format_btf_value(*e.btf, e.event, v),
            "{pid=-5 ts=9223372036854775809 comm=\"bash\" in={a=7 b=65535} arr=[1,2,4000000000] ok=true "
            "kind=CLOSE where=0x7ffd1000}");
  EXPECT_EQ(format_btf_value(*e.btf, e.event, v, {.json = false, .braces = false}),
            "pid=-5 ts=9223372036854775809 comm=\"bash\" in={a=7 b=65535} arr=[1,2,4000000000] ok=true "
            "kind=CLOSE where=0x7ffd1000");
  EXPECT_EQ(format_btf_value(*e.btf, e.event, v, {.json = true}),
            "{\"pid\":-5,\"ts\":9223372036854775809,\"comm\":\"bash\",\"in\":{\"a\":7,\"b\":65535},"
            "\"arr\":[1,2,4000000000],\"ok\":true,\"kind\":\"CLOSE\",\"where\":\"0x7ffd1000\"}");
  v[48] = 0;
  put<uint32_t>(v, 52, 9);  // no enumerator: the number
  EXPECT_NE(format_btf_value(*e.btf, e.event, v).find("ok=false kind=9 "), std::string::npos);
}

TEST(BtfValue, ShortBytesPrintWhatDoesNotFitAsUnknown) {
  EventBtf e;
  ASSERT_TRUE(e.btf);
  auto v = EventBtf::bytes();
  v.resize(40);  // ends inside arr
  EXPECT_EQ(format_btf_value(*e.btf, e.event, v),
            "{pid=-5 ts=9223372036854775809 comm=\"bash\" in={a=7 b=65535} arr=[1,?,?] ok=? kind=? where=?}");
  EXPECT_EQ(format_btf_value(*e.btf, e.event, std::span<const uint8_t>(v.data(), 0), {.json = true}),
            "{\"pid\":null,\"ts\":null,\"comm\":null,\"in\":{\"a\":null,\"b\":null},\"arr\":[null,null,null],"
            "\"ok\":null,\"kind\":null,\"where\":null}");
}

TEST(BtfValue, StringsStopAtNulAndEscapeWhatIsNotPrintable) {
  BtfBuilder b;
  uint32_t u32 = b.int_type("unsigned int", 4, false);
  uint32_t chr = b.int_type("char", 1);
  uint32_t uchar = b.int_type("unsigned char", 1, false);
  uint32_t s8 = b.array(chr, u32, 8);
  uint32_t u8s = b.array(uchar, u32, 4);
  auto btf = parse(b);
  ASSERT_TRUE(btf);
  auto str = [&](std::string_view bytes, bool json) {
    std::vector<uint8_t> v(bytes.begin(), bytes.end());
    return format_btf_value(*btf, s8, v, {.json = json});
  };
  EXPECT_EQ(str(std::string_view("abcdefgh", 8), false), "\"abcdefgh\"") << "no NUL: all 8";
  EXPECT_EQ(str(std::string_view("ab\0cdefg", 8), false), "\"ab\"");
  EXPECT_EQ(str(std::string_view("a\"\\\n\x01\x7f\0\0", 8), false), "\"a\\\"\\\\\\n\\x01\\x7f\"");
  EXPECT_EQ(str(std::string_view("a\"\\\n\x01\x7f\0\0", 8), true), "\"a\\\"\\\\\\n\\u0001\\u007f\"");
  EXPECT_EQ(str(std::string_view("\xc3\xa9t\xe9\0\0\0\0", 8), false), "\"\xc3\xa9t\\xe9\"")
      << "valid UTF-8 stays, a stray byte is escaped";
  EXPECT_EQ(str(std::string_view("\xc3\xa9t\xe9\0\0\0\0", 8), true), "\"\xc3\xa9t\\u00e9\"");
  std::vector<uint8_t> raw{0x61, 0, 0xff, 3};
  EXPECT_EQ(format_btf_value(*btf, u8s, raw), "[97,0,255,3]") << "unsigned char (__u8) arrays are numbers";
  EXPECT_EQ(json_quote("a\tb\"c"), "\"a\\tb\\\"c\"");
}

TEST(BtfValue, BitfieldsEnumsFloatsAndWideIntegers) {
  BtfBuilder b;
  uint32_t u8 = b.int_type("unsigned char", 1, false);
  uint32_t i32 = b.int_type("int", 4);
  // kflag bitfields: u8 low:3, high:5; int neg:4 (signed)
  uint32_t bits = b.struct_type("bits", 4, {{"low", u8, 0, 3}, {"high", u8, 3, 5}, {"neg", i32, 8, 4}});
  // An old-style bitfield: the INT itself says offset 2 and 3 bits.
  uint32_t old_int = int_with(b, "unsigned int", 4, 0, 3, 2);
  uint32_t old = b.struct_type("old", 4, {{"f", old_int, 0}});
  uint32_t signed_enum = b.raw("delta", 6, 2, true, 4);  // kflag: signed
  b.word(b.str("DOWN")), b.word(static_cast<uint32_t>(-1)), b.word(b.str("UP")), b.word(1);
  uint32_t wide_enum = b.enum_type("big", 8, {{"HUGE", int64_t{1} << 40}}, true);
  uint32_t dbl = b.raw("double", 16, 0, false, 8);
  uint32_t flt = b.raw("float", 16, 0, false, 4);
  uint32_t i128 = b.int_type("__int128 unsigned", 16, false);
  auto btf = parse(b);
  ASSERT_TRUE(btf);

  std::vector<uint8_t> v{0x5 | 17 << 3, 0x0e, 0, 0};  // low 5, high 17, neg 0b1110 = -2
  EXPECT_EQ(format_btf_value(*btf, bits, v), "{low=5 high=17 neg=-2}");
  std::vector<uint8_t> o{0x1c, 0, 0, 0};  // bits 2..4 = 0b111
  EXPECT_EQ(format_btf_value(*btf, old, o), "{f=7}");

  std::vector<uint8_t> e(4);
  put<int32_t>(e, 0, -1);
  EXPECT_EQ(format_btf_value(*btf, signed_enum, e), "DOWN");
  put<int32_t>(e, 0, -7);
  EXPECT_EQ(format_btf_value(*btf, signed_enum, e, {.json = true}), "-7");
  std::vector<uint8_t> w(8);
  put<uint64_t>(w, 0, uint64_t{1} << 40);
  EXPECT_EQ(format_btf_value(*btf, wide_enum, w, {.json = true}), "\"HUGE\"");

  std::vector<uint8_t> d(8);
  put<double>(d, 0, 2.5);
  EXPECT_EQ(format_btf_value(*btf, dbl, d), "2.5");
  std::vector<uint8_t> f(4);
  put<float>(f, 0, -0.25f);
  EXPECT_EQ(format_btf_value(*btf, flt, f), "-0.25");
  put<double>(d, 0, std::numeric_limits<double>::infinity());
  EXPECT_EQ(format_btf_value(*btf, dbl, d, {.json = true}), "null") << "JSON has no infinity";

  std::vector<uint8_t> q(16);
  put<uint64_t>(q, 0, 0x1122334455667788ull), put<uint64_t>(q, 8, 0xa);
  EXPECT_EQ(format_btf_value(*btf, i128, q), "0xa1122334455667788");
  EXPECT_EQ(format_btf_value(*btf, i128, q, {.json = true}), "\"0xa1122334455667788\"");
}

TEST(BtfValue, AnonymousMembersInlineTypedefsAndNestedArrays) {
  BtfBuilder b;
  uint32_t u32 = b.int_type("unsigned int", 4, false);
  uint32_t u16 = b.int_type("unsigned short", 2, false);
  uint32_t u32_t = b.typedef_type("__u32", u32);
  uint32_t cu32 = b.const_type(u32_t);
  uint32_t anon_union = b.composite(true, "", 4, {{"as_u32", u32, 0}, {"as_u16", u16, 0}});
  uint32_t row = b.array(u16, u32, 2);
  uint32_t grid = b.array(row, u32, 2);
  uint32_t s = b.struct_type("s", 16, {{"id", cu32, 0}, {"", anon_union, 32}, {"grid", grid, 64}});
  uint32_t s_t = b.typedef_type("s_t", s);
  auto btf = parse(b);
  ASSERT_TRUE(btf);
  std::vector<uint8_t> v(16);
  put<uint32_t>(v, 0, 3), put<uint32_t>(v, 4, 0x10002);
  put<uint16_t>(v, 8, 1), put<uint16_t>(v, 10, 2), put<uint16_t>(v, 12, 3), put<uint16_t>(v, 14, 4);
  EXPECT_EQ(format_btf_value(*btf, s_t, v), "{id=3 as_u32=65538 as_u16=2 grid=[[1,2],[3,4]]}");
  EXPECT_EQ(format_btf_value(*btf, s_t, v, {.json = true}),
            "{\"id\":3,\"as_u32\":65538,\"as_u16\":2,\"grid\":[[1,2],[3,4]]}");
}

// A JSON value (RFC 8259's grammar; numbers loosely: what %g and %lld
// write) starting at s[i]; advances i past it.
bool json_value(std::string_view s, size_t& i);

bool json_string(std::string_view s, size_t& i) {
  if (s[i] != '"') return false;
  for (++i; i < s.size(); ++i) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c == '"') return ++i, true;
    if (c < 0x20) return false;
    if (c == '\\') {
      if (++i >= s.size()) return false;
      if (s[i] == 'u') {
        if (i + 4 >= s.size()) return false;
        for (int k = 1; k <= 4; ++k)
          if (!std::isxdigit(static_cast<unsigned char>(s[i + k]))) return false;
        i += 4;
      } else if (std::string_view("\"\\/bfnrt").find(s[i]) == std::string_view::npos) {
        return false;
      }
    }
  }
  return false;
}

bool json_value(std::string_view s, size_t& i) {
  if (i >= s.size()) return false;
  char c = s[i];
  if (c == '"') return json_string(s, i);
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    if (s[++i] == close) return ++i, true;
    for (;;) {
      if (c == '{' && (!json_string(s, i) || i >= s.size() || s[i++] != ':')) return false;
      if (!json_value(s, i) || i >= s.size()) return false;
      if (s[i] == close) return ++i, true;
      if (s[i++] != ',') return false;
    }
  }
  for (std::string_view word : {"true", "false", "null"})
    if (s.substr(i, word.size()) == word) return i += word.size(), true;
  size_t start = i;
  while (i < s.size() && std::string_view("-+0123456789.e").find(s[i]) != std::string_view::npos) ++i;
  return i > start;
}

bool is_json(std::string_view s) {
  size_t i = 0;
  return json_value(s, i) && i == s.size();
}

// Every struct and union of the kernel's BTF, on bytes of exactly its size
// (ASan sees a read past them) and on half of them: text in braces, valid
// JSON, nothing read outside.
TEST(BtfValue, EveryKernelStructStaysInsideItsBytes) {
  auto btf = Btf::load_file(Btf::kVmlinuxPath);
  if (!btf) GTEST_SKIP() << "no kernel BTF here: " << btf.error().message;
  EXPECT_TRUE(is_json("{\"a\":[1,-2,null],\"b\":\"x\\u00a5\"}"));
  EXPECT_FALSE(is_json("{\"a\":?}"));
  size_t records = 0;
  for (uint32_t id = 1; id < btf->count(); ++id) {
    BtfKind k = btf->kind(id);
    auto size = btf->size_of(id);
    if ((k != BtfKind::Struct && k != BtfKind::Union) || !size || *size > 65536) continue;
    ++records;
    std::vector<uint8_t> bytes(*size, 0xa5);  // no NUL: every char array is full; 0xa5 is no UTF-8
    std::string text = format_btf_value(*btf, id, bytes);
    ASSERT_TRUE(text.starts_with("{") && text.ends_with("}")) << btf->describe(id) << ": " << text;
    std::string json = format_btf_value(*btf, id, bytes, {.json = true});
    ASSERT_TRUE(is_json(json)) << btf->describe(id) << ": " << json;
    std::span<const uint8_t> half(bytes.data(), bytes.size() / 2);
    ASSERT_TRUE(is_json(format_btf_value(*btf, id, half, {.json = true}))) << btf->describe(id);
  }
  EXPECT_GT(records, 1000u);
}

EventTypes typed(const EventBtf& e, const std::string& map) {
  EventTypes t;
  t.btf = e.btf;
  t.by_map[map] = e.event;
  return t;
}

TEST(EventLine, TypedRecordsInTextAndJson) {
  EventBtf e;
  ASSERT_TRUE(e.btf);
  auto v = EventBtf::bytes();
  EventTypes t = typed(e, "events");
  const std::string fields =
      "pid=-5 ts=9223372036854775809 comm=\"bash\" in={a=7 b=65535} arr=[1,2,4000000000] ok=true kind=CLOSE "
      "where=0x7ffd1000";
  EXPECT_EQ(format_event(t, "events", -1, v, false), "events: " + fields + "\n");
  EXPECT_EQ(format_event(t, "events", 1, v, false), "events cpu 1: " + fields + "\n");
  const std::string json =
      "\"event\":{\"pid\":-5,\"ts\":9223372036854775809,\"comm\":\"bash\",\"in\":{\"a\":7,\"b\":65535},"
      "\"arr\":[1,2,4000000000],\"ok\":true,\"kind\":\"CLOSE\",\"where\":\"0x7ffd1000\"}}\n";
  EXPECT_EQ(format_event(t, "events", -1, v, true), "{\"map\":\"events\"," + json);
  EXPECT_EQ(format_event(t, "events", 0, v, true), "{\"map\":\"events\",\"cpu\":0," + json);
  v.resize(68);  // perf's padding: the bytes after the struct are not printed
  EXPECT_EQ(format_event(t, "events", 0, v, false), "events cpu 0: " + fields + "\n");
}

TEST(EventLine, ShortOrUntypedRecordsAreHex) {
  EventBtf e;
  ASSERT_TRUE(e.btf);
  EventTypes t = typed(e, "events");
  std::vector<uint8_t> v{1, 2, 0xab};
  EXPECT_EQ(format_event(t, "events", -1, v, false),
            "events: (short record: 3 bytes, struct event has 64) 01 02 ab\n");
  EXPECT_EQ(format_event(t, "events", 2, v, true),
            "{\"map\":\"events\",\"cpu\":2,\"size\":3,\"data\":\"0102ab\",\"error\":\"short record: 3 bytes, "
            "struct event has 64\"}\n");
  // A map without a type prints as it always did.
  EXPECT_EQ(format_event(t, "other", -1, v, false), "other: 01 02 ab\n");
  EXPECT_EQ(format_event(t, "other", 3, v, false), "other cpu 3: 01 02 ab\n");
  EXPECT_EQ(format_event(t, "other", -1, v, true), "{\"map\":\"other\",\"size\":3,\"data\":\"0102ab\"}\n");
  EXPECT_EQ(format_event(EventTypes{}, "x", 0, v, true),
            "{\"map\":\"x\",\"cpu\":0,\"size\":3,\"data\":\"0102ab\"}\n");
}

const std::vector<EventMapName> kMaps = {{"events", true}, {"perf_out", true}, {"counts", false}};

TEST(EventTypes, ExplicitOptions) {
  EventBtf e;
  ASSERT_TRUE(e.btf);
  uint32_t inner = e.btf->find("inner", BtfKind::Struct);
  auto r = resolve_event_types(e.btf, kMaps, {"perf_out=inner", "struct event"}, "x.bpf.o");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type_of("events"), e.event) << "STRUCT: every event map";
  EXPECT_EQ(r->type_of("perf_out"), inner) << "MAP=STRUCT wins, whatever the order";
  EXPECT_EQ(r->type_of("counts"), 0u);
  EXPECT_TRUE(r->notes.empty());
  auto one = resolve_event_types(e.btf, kMaps, {"events=inner"}, "x.bpf.o");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->type_of("events"), inner);
  EXPECT_EQ(one->type_of("perf_out"), e.event) << "the others: found by name";
}

TEST(EventTypes, UnknownNamesAreErrorsNamingThem) {
  EventBtf e;
  ASSERT_TRUE(e.btf);
  struct Case {
    std::vector<std::string> opts;
    std::shared_ptr<const Btf> btf;
    std::vector<EventMapName> maps;
    std::string says;
  };
  std::vector<Case> cases = {
      {{"no_such_struct"}, e.btf, kMaps, "no struct or union 'no_such_struct' in the BTF of x.bpf.o"},
      {{"events=nope"}, e.btf, kMaps, "'nope'"},
      {{"union event"}, e.btf, kMaps, "'union event'"},
      {{"nomap=event"}, e.btf, kMaps, "x.bpf.o has no map 'nomap'"},
      {{"counts=event"}, e.btf, kMaps, "map 'counts' is not a ring buffer or perf event array"},
      {{"=event"}, e.btf, kMaps, "expected MAP=STRUCT or STRUCT"},
      {{"events="}, e.btf, kMaps, "expected MAP=STRUCT or STRUCT"},
      {{"event"}, nullptr, kMaps, "x.bpf.o has no BTF"},
      {{"event"}, e.btf, {{"counts", false}}, "x.bpf.o has no ring buffer or perf event array"},
  };
  for (const auto& c : cases) {
    auto r = resolve_event_types(c.btf, c.maps, c.opts, "x.bpf.o");
    ASSERT_FALSE(r) << c.says;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("--event-type " + c.opts[0]), std::string::npos) << r.error().message;
  }
}

TEST(EventTypes, FoundByLibbpfToolsNames) {
  // The one `struct event`, even beside *_event structs.
  EventBtf e;
  ASSERT_TRUE(e.btf);
  auto r = resolve_event_types(e.btf, kMaps, {}, "x.bpf.o");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type_of("events"), e.event);
  EXPECT_EQ(r->type_of("perf_out"), e.event);
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_NE(r->notes[0].find("printed as struct event"), std::string::npos) << r->notes[0];

  auto with = [](std::function<void(BtfBuilder&, uint32_t)> add) {
    BtfBuilder b;
    uint32_t i32 = b.int_type("int", 4);
    add(b, i32);
    return parse(b);
  };
  // No struct event: the one *_event or *event_t (a typedef of an anonymous struct counts).
  auto one = with([](BtfBuilder& b, uint32_t i32) {
    b.struct_type("exec_event", 4, {{"pid", i32, 0}});
    b.struct_type("eventful", 4, {{"x", i32, 0}});
  });
  auto r1 = resolve_event_types(one, kMaps, {}, "x.bpf.o");
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->type_of("events"), one->find("exec_event", BtfKind::Struct));
  auto td = with([](BtfBuilder& b, uint32_t i32) {
    uint32_t s = b.struct_type("", 4, {{"pid", i32, 0}});
    b.typedef_type("event_t", s);
  });
  auto r2 = resolve_event_types(td, kMaps, {}, "x.bpf.o");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->type_of("events"), td->find("event_t", BtfKind::Typedef));
  auto same = with([](BtfBuilder& b, uint32_t i32) {  // a typedef of a struct is not a second candidate
    uint32_t s = b.struct_type("data_event", 4, {{"pid", i32, 0}});
    b.typedef_type("data_event_t", s);
  });
  auto r3 = resolve_event_types(same, kMaps, {}, "x.bpf.o");
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->type_of("events"), same->find("data_event", BtfKind::Struct));

  // Two candidates, or none: hex, and a note that says why.
  auto two = with([](BtfBuilder& b, uint32_t i32) {
    b.struct_type("open_event", 4, {{"pid", i32, 0}});
    b.struct_type("close_event", 4, {{"pid", i32, 0}});
  });
  auto r4 = resolve_event_types(two, kMaps, {}, "x.bpf.o");
  ASSERT_TRUE(r4);
  EXPECT_EQ(r4->type_of("events"), 0u);
  ASSERT_EQ(r4->notes.size(), 1u);
  EXPECT_NE(r4->notes[0].find("2 types could be theirs (struct open_event, struct close_event)"),
            std::string::npos)
      << r4->notes[0];
  auto none = with([](BtfBuilder& b, uint32_t i32) { b.struct_type("stats", 4, {{"n", i32, 0}}); });
  auto r5 = resolve_event_types(none, kMaps, {}, "x.bpf.o");
  ASSERT_TRUE(r5);
  EXPECT_EQ(r5->type_of("events"), 0u);
  ASSERT_EQ(r5->notes.size(), 1u);
  EXPECT_NE(r5->notes[0].find("'events', 'perf_out' are printed as hex"), std::string::npos) << r5->notes[0];
  auto r6 = resolve_event_types(nullptr, kMaps, {}, "x.bpf.o");
  ASSERT_TRUE(r6);
  EXPECT_EQ(r6->type_of("events"), 0u);
  // No event maps: nothing to say.
  auto r7 = resolve_event_types(e.btf, {{"counts", false}}, {}, "x.bpf.o");
  ASSERT_TRUE(r7);
  EXPECT_TRUE(r7->notes.empty());
}

TEST(EventTypes, MapNamesKeepFifteenCharacters) {
  EventBtf e;
  ASSERT_TRUE(e.btf);
  auto r =
      resolve_event_types(e.btf, {{"a_very_long_event_map", true}}, {"a_very_long_event_map=event"}, "x");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type_of("a_very_long_eve"), e.event) << "the name the traced process publishes";
}

}  // namespace
}  // namespace ember::cli
