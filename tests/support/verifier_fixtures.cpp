#include "support/verifier_fixtures.hpp"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ember/asm.hpp"
#include "support/btf_builder.hpp"
#include "support/kernel_bpf.hpp"

#define EMBER_VERIFIER_FIXTURES EMBER_TEST_DATA "/../verifier"

namespace ember::testing {
namespace {}  // namespace

std::string_view fixture_reason_name(VerifyReason r) { return reason_name(r); }

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Decimal, or hex with 0x.
bool parse_u64(std::string_view s, uint64_t* out) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2), base = 16;
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && end == s.data() + s.size();
}

bool parse_u32(std::string_view s, uint32_t* out) {
  uint64_t v = 0;
  if (!parse_u64(s, &v) || v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    size_t p = s.find(sep);
    out.push_back(s.substr(0, p));
    if (p == std::string_view::npos) return out;
    s.remove_prefix(p + 1);
  }
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t start = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// "array:4:8:1[:FLAGS]": an inner map's type, key size, value size, entries, flags.
Result<MapSpec> parse_inner(std::string_view s) {
  auto parts = split(s, ':');
  if (parts.size() != 4 && parts.size() != 5)
    return fail("inner= wants TYPE:KEY:VALUE:ENTRIES[:FLAGS], not '", s, "'");
  MapSpec in;
  auto type = map_type_from_name(parts[0]);
  if (!type) return fail("inner map: unknown map type '", parts[0], "'");
  in.type = *type;
  if (!parse_u32(parts[1], &in.key_size) || !parse_u32(parts[2], &in.value_size) ||
      !parse_u32(parts[3], &in.max_entries) || (parts.size() == 5 && !parse_u32(parts[4], &in.map_flags)))
    return fail("inner map: malformed number in '", s, "'");
  return in;
}

// "IDX TYPE key=K value=V entries=N [flags=F] [extra=X] [inner=...] [lock=OFF] [name=S]"
Status parse_map(std::string_view value, VerifierFixture& f) {
  auto w = words(value);
  if (w.size() < 2) return fail("map: wants 'INDEX TYPE key=K value=V entries=N ...'");
  uint32_t idx = 0;
  if (!parse_u32(w[0], &idx)) return fail("map: malformed index '", w[0], "'");
  if (idx != f.maps.size())
    return fail("map: index ", idx, " out of order (maps are declared 0, 1, 2 ...; expected ", f.maps.size(),
                ")");
  MapSpec m;
  auto type = map_type_from_name(w[1]);
  if (!type || *type == MapType::Unspec) return fail("map: unknown map type '", w[1], "'");
  m.type = *type;
  m.name = "m" + std::to_string(idx);
  int32_t lock = -1;
  bool have_entries = false;
  for (size_t i = 2; i < w.size(); ++i) {
    size_t eq = w[i].find('=');
    if (eq == std::string_view::npos) return fail("map: '", w[i], "' is not KEY=VALUE");
    std::string_view k = w[i].substr(0, eq), v = w[i].substr(eq + 1);
    bool good = true;
    if (k == "key") {
      good = parse_u32(v, &m.key_size);
    } else if (k == "value") {
      good = parse_u32(v, &m.value_size);
    } else if (k == "entries") {
      good = parse_u32(v, &m.max_entries), have_entries = true;
    } else if (k == "flags") {
      good = parse_u32(v, &m.map_flags);
    } else if (k == "extra") {
      good = parse_u64(v, &m.map_extra);
    } else if (k == "name") {
      m.name = std::string(v.substr(0, 15));
    } else if (k == "lock") {
      uint32_t off = 0;
      good = parse_u32(v, &off) && off % 4 == 0 && off < (1u << 20);
      lock = static_cast<int32_t>(off);
    } else if (k == "inner") {
      auto in = parse_inner(v);
      if (!in) return in.error();
      m.inner = std::make_shared<const MapSpec>(std::move(*in));
    } else {
      return fail("map: unknown attribute '", k, "' (key, value, entries, flags, extra, inner, lock, name)");
    }
    if (!good) return fail("map: bad value in '", w[i], "'");
  }
  if (!have_entries) return fail("map: entries= is missing");
  bool of_maps = m.type == MapType::ArrayOfMaps || m.type == MapType::HashOfMaps;
  if (of_maps != (m.inner != nullptr))
    return fail(of_maps ? "map: a map of maps needs inner=TYPE:KEY:VALUE:ENTRIES"
                        : "map: inner= is only for array_of_maps and hash_of_maps");
  if (lock >= 0 && static_cast<uint32_t>(lock) + 4 > m.value_size)
    return fail("map: lock=", lock, " does not fit in a ", m.value_size, "-byte value");
  f.maps.push_back(std::move(m));
  f.lock_offsets.push_back(lock);
  return ok_status();
}

bool gpl_compatible(std::string_view l) {
  // The kernel's license_is_gpl_compatible().
  for (std::string_view g :
       {"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL"})
    if (l == g) return true;
  return false;
}

Status parse_verdict(std::string_view v, bool* out) {
  if (v == "accept") return *out = true, ok_status();
  if (v == "reject") return *out = false, ok_status();
  return fail("'", v, "' is neither accept nor reject");
}

constexpr std::string_view kKeys[] = {"type",   "verdict",     "reason",  "map",   "why",
                                      "kernel", "kernel-note", "license", "attach"};

// "; key: value" with a known key: the key, and the value in `value`.
std::string_view header_key(std::string_view line, std::string_view* value) {
  line = trim(line);
  if (!line.starts_with(';')) return {};
  line = trim(line.substr(1));
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return {};
  std::string_view key = trim(line.substr(0, colon));
  for (std::string_view k : kKeys)
    if (k == key) {
      *value = trim(line.substr(colon + 1));
      return k;
    }
  return {};
}

bool looks_like_key(std::string_view line) {
  line = trim(line);
  if (!line.starts_with(';')) return false;
  line = trim(line.substr(1));
  size_t i = 0;
  while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '-')) ++i;
  return i > 0 && i < line.size() && line[i] == ':';
}

std::string stem(const std::string& path) {
  std::filesystem::path p(path);
  return p.stem().string();
}

}  // namespace

Result<VerifierFixture> parse_fixture_text(std::string_view text, const std::string& path) {
  VerifierFixture f;
  f.path = path;
  f.name = stem(path);
  bool have_type = false, have_verdict = false, have_reason = false, have_kernel = false;
  bool in_header = true;
  size_t lineno = 0;
  std::string reason_text;
  auto at = [&](const Error& e) { return fail(path, ":", lineno, ": ", e.message); };
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++lineno;
    std::string_view t = trim(line);
    std::string_view value;
    std::string_view key = header_key(t, &value);
    if (!in_header) {
      if (!key.empty()) return at(fail("header line '", key, ":' after the first instruction"));
      continue;
    }
    if (t.empty()) continue;
    if (!t.starts_with(';')) {
      in_header = false;
      continue;
    }
    if (key.empty()) {
      if (looks_like_key(t))
        return at(fail("unknown header key in '", t,
                       "' (known: type, verdict, reason, map, why, kernel, kernel-note, license, attach)"));
      continue;  // a comment
    }
    bool repeated = false;
    if (key == "type") {
      auto ty = prog_type_from_name(value);
      if (!ty) return at(fail("unknown program type '", value, "'"));
      repeated = have_type, have_type = true, f.type = *ty;
    } else if (key == "verdict") {
      if (auto st = parse_verdict(value, &f.accept); !st) return at(st.error());
      repeated = have_verdict, have_verdict = true;
    } else if (key == "reason") {
      if (!reason_from_name(value, &f.reason))
        return at(fail("unknown reason '", value, "' (see EMBER_VERIFY_REASONS)"));
      repeated = have_reason, have_reason = true;
    } else if (key == "map") {
      if (auto st = parse_map(value, f); !st) return at(st.error());
    } else if (key == "why") {
      repeated = !f.why.empty(), f.why = std::string(value);
      if (value.empty()) return at(fail("why: is empty"));
    } else if (key == "kernel") {
      if (auto st = parse_verdict(value, &f.kernel_accept); !st) return at(st.error());
      repeated = have_kernel, have_kernel = true;
    } else if (key == "kernel-note") {
      repeated = !f.kernel_note.empty(), f.kernel_note = std::string(value);
      if (value.empty()) return at(fail("kernel-note: is empty"));
    } else if (key == "license") {
      f.license = std::string(value), f.gpl = gpl_compatible(value);
    } else if (key == "attach") {
      uint32_t a = 0;
      if (!parse_u32(value, &a)) return at(fail("attach: wants a number (enum bpf_attach_type)"));
      f.attach = static_cast<AttachType>(a);
    }
    if (repeated) return at(fail("'", key, ":' given twice"));
  }
  lineno = 0;
  auto whole = [&](const std::string& what) { return fail(path, ": ", what); };
  if (!have_type) return whole("'; type:' is missing");
  if (!have_verdict) return whole("'; verdict:' is missing");
  if (f.why.empty()) return whole("'; why:' is missing");
  if (!f.accept && !have_reason) return whole("a reject fixture needs '; reason:'");
  if (f.accept && have_reason) return whole("an accept fixture has no '; reason:'");
  if (have_kernel && f.kernel_accept == f.accept)
    return whole("'; kernel:' is only for a kernel verdict that differs from '; verdict:'");
  if (have_kernel != !f.kernel_note.empty())
    return whole("'; kernel:' and '; kernel-note:' go together (the note says why the kernel differs)");
  if (!have_kernel) f.kernel_accept = f.accept;
  if (f.attach == AttachType::None) f.attach = default_attach_type(f.type);
  f.sleepable = f.type == ProgType::Syscall;

  // The assembler skips ';' comments, so its line numbers are the file's.
  auto insns = assemble(text);
  if (!insns) return whole(insns.error().message);
  f.insns = std::move(*insns);
  for (size_t i = 0; i < f.insns.size(); ++i) {
    const RawInsn& r = f.insns[i];
    if (r.opcode != 0x18 || i + 1 >= f.insns.size()) continue;
    uint8_t src = r.src();
    if ((src == 5 || src == 6) && static_cast<uint32_t>(r.imm) >= f.maps.size())
      return whole("instruction " + std::to_string(i) + " names map " + std::to_string(r.imm) + " but " +
                   std::to_string(f.maps.size()) + " map(s) are declared");
    if (src == 1 || src == 2)
      return whole("instruction " + std::to_string(i) + ": name maps by index (map[idx:N]), not by fd");
    ++i;
  }
  return f;
}

Result<VerifierFixture> parse_fixture(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(path, ": cannot open: ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_fixture_text(ss.str(), path);
}

std::string verifier_fixtures_dir() {
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical(EMBER_VERIFIER_FIXTURES, ec);
  return ec ? std::string(EMBER_VERIFIER_FIXTURES) : p.string();
}

std::vector<std::string> fixture_paths() {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(verifier_fixtures_dir(), ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file() && it->path().extension() == ".txt") out.push_back(it->path().string());
  std::sort(out.begin(), out.end());
  return out;
}

AttachType default_attach_type(ProgType type) {
  switch (type) {
    case ProgType::CgroupSockAddr: return AttachType::CgroupInet4Connect;
    case ProgType::CgroupSockopt: return AttachType::CgroupGetsockopt;
    case ProgType::SkLookup: return AttachType::SkLookup;
    case ProgType::Netfilter: return AttachType::Netfilter;
    default: return AttachType::None;
  }
}

// ------------------------------------------------------------ the kernel

namespace {

long sys_bpf(int cmd, bpf_attr& attr) { return syscall(__NR_bpf, cmd, &attr, sizeof attr); }
uint64_t ptr(const void* p) { return reinterpret_cast<uint64_t>(p); }
std::string errno_text(int e) { return std::string(std::strerror(e)) + " (errno " + std::to_string(e) + ")"; }

// BPF_BTF_LOAD of `bytes`; an error carries the kernel's BTF log.
Result<Fd> load_btf(const std::vector<uint8_t>& bytes, const char* what) {
  std::string log(1 << 16, '\0');
  bpf_attr a{};
  a.btf = ptr(bytes.data());
  a.btf_size = static_cast<uint32_t>(bytes.size());
  a.btf_log_buf = ptr(log.data());
  a.btf_log_size = static_cast<uint32_t>(log.size());
  a.btf_log_level = 1;
  long fd = sys_bpf(BPF_BTF_LOAD, a);
  if (fd < 0) return fail(what, ": ", errno_text(errno), ": ", log.c_str());
  return Fd(static_cast<int>(fd));
}

// BTF for a map whose value holds a struct bpf_spin_lock at `lock_off`:
// key an integer (or byte array) of key_size, value a struct of value_size.
struct MapBtf {
  Fd fd;
  uint32_t key_id = 0, value_id = 0;
};

Result<MapBtf> lock_btf(const MapSpec& m, uint32_t lock_off) {
  BtfBuilder b;
  uint32_t u8 = b.int_type("unsigned char", 1, false);
  uint32_t i32 = b.int_type("int", 4);
  uint32_t idx = b.int_type("unsigned int", 4, false);
  uint32_t lock = b.struct_type("bpf_spin_lock", 4, {{"val", i32, 0}});
  uint32_t key = 0;
  if (m.key_size == 4)
    key = i32;
  else if (m.key_size > 0)
    key = b.array(u8, idx, m.key_size);
  uint32_t value = b.struct_type("value", m.value_size, {{"lock", lock, lock_off * 8}});
  std::vector<uint8_t> bytes = b.bytes();
  auto fd = load_btf(bytes, "BPF_BTF_LOAD");
  if (!fd) return fd.error();
  return MapBtf{std::move(*fd), key, value};
}

Result<Fd> create_map(const MapSpec& m, int32_t lock_off) {
  Fd inner;
  if (m.inner) {
    auto in = create_map(*m.inner, -1);
    if (!in) return fail("inner map: ", in.error().message);
    inner = std::move(*in);
  }
  MapBtf btf;
  if (lock_off >= 0) {
    auto b = lock_btf(m, static_cast<uint32_t>(lock_off));
    if (!b) return b.error();
    btf = std::move(*b);
  }
  bpf_attr a{};
  a.map_type = static_cast<uint32_t>(m.type);
  a.key_size = m.key_size;
  a.value_size = m.value_size;
  a.max_entries = m.max_entries;
  a.map_flags = m.map_flags;
  a.map_extra = m.map_extra;
  a.inner_map_fd = static_cast<uint32_t>(inner.get() < 0 ? 0 : inner.get());
  std::strncpy(a.map_name, m.name.c_str(), sizeof a.map_name - 1);
  if (lock_off >= 0) {
    a.btf_fd = static_cast<uint32_t>(btf.fd.get());
    a.btf_key_type_id = btf.key_id;
    a.btf_value_type_id = btf.value_id;
  }
  long fd = sys_bpf(BPF_MAP_CREATE, a);
  if (fd < 0)
    return fail("BPF_MAP_CREATE of a ", map_type_name(m.type), " map (key ", m.key_size, ", value ",
                m.value_size, ", entries ", m.max_entries, ", flags ", m.map_flags, "): ", errno_text(errno));
  return Fd(static_cast<int>(fd));
}

// The first instruction of every function: 0, the targets of bpf-to-bpf
// calls and of BPF_PSEUDO_FUNC ld_imm64 (callbacks). Empty if a target lies
// outside the program (the kernel refuses that anyway).
std::vector<uint32_t> function_starts(const std::vector<RawInsn>& insns) {
  std::vector<uint32_t> starts = {0};
  for (size_t i = 0; i < insns.size(); ++i) {
    const RawInsn& r = insns[i];
    bool call = r.opcode == 0x85 && r.src() == BPF_PSEUDO_CALL;
    bool func = r.opcode == 0x18 && r.src() == BPF_PSEUDO_FUNC;
    if (!call && !func) continue;
    int64_t t = static_cast<int64_t>(i) + 1 + r.imm;
    if (t < 0 || t >= static_cast<int64_t>(insns.size())) return {};
    starts.push_back(static_cast<uint32_t>(t));
  }
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  return starts;
}

// Program BTF with one static function "int fN(void)" per start: the kernel
// wants func_info for callbacks (BPF_PSEUDO_FUNC) and for tail calls from
// subprograms, and static functions are verified in their callers' context
// as without BTF.
struct ProgBtf {
  Fd fd;
  std::vector<bpf_func_info> info;
};

Result<ProgBtf> prog_btf(const std::vector<uint32_t>& starts) {
  BtfBuilder b;
  uint32_t i32 = b.int_type("int", 4);
  uint32_t proto = b.func_proto(i32, {});
  ProgBtf out;
  std::vector<std::string> names;
  names.reserve(starts.size());
  for (size_t i = 0; i < starts.size(); ++i) names.push_back("f" + std::to_string(i));
  for (size_t i = 0; i < starts.size(); ++i) {
    uint32_t id = b.raw(names[i], 12, 0, false, proto);  // BTF_KIND_FUNC, linkage static
    out.info.push_back(bpf_func_info{starts[i], id});
  }
  std::vector<uint8_t> bytes = b.bytes();
  auto fd = load_btf(bytes, "BPF_BTF_LOAD of the program's functions");
  if (!fd) return fd.error();
  out.fd = std::move(*fd);
  return out;
}

std::vector<std::string> nonempty_lines(const std::string& log) {
  std::vector<std::string> lines;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line))
    if (!trim(line).empty()) lines.push_back(line);
  return lines;
}

}  // namespace

std::string log_tail(const std::string& log, size_t lines) {
  auto all = nonempty_lines(log);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += "    " + all[i] + "\n";
  return out.empty() ? "    (empty verifier log)\n" : out;
}

Result<KernelVerdict> kernel_verify_fixture(const VerifierFixture& f) {
  std::vector<Fd> maps;
  for (size_t i = 0; i < f.maps.size(); ++i) {
    auto fd = create_map(f.maps[i], f.lock_offsets[i]);
    if (!fd) return fail("map ", i, ": ", fd.error().message);
    maps.push_back(std::move(*fd));
  }
  std::vector<RawInsn> insns = f.insns;
  for (size_t i = 0; i + 1 < insns.size(); ++i) {
    RawInsn& r = insns[i];
    if (r.opcode != 0x18) continue;
    uint8_t src = r.src();
    if (src == 5 || src == 6) {  // BPF_PSEUDO_MAP_IDX(_VALUE) -> BPF_PSEUDO_MAP_FD / _VALUE
      r.set_regs(r.dst(), src == 5 ? BPF_PSEUDO_MAP_FD : BPF_PSEUDO_MAP_VALUE);
      r.imm = maps[static_cast<size_t>(r.imm)].get();
    }
    ++i;
  }
  bpf_attr a{};
  a.prog_type = static_cast<uint32_t>(f.type);
  a.insns = ptr(insns.data());
  a.insn_cnt = static_cast<uint32_t>(insns.size());
  a.license = ptr(f.license.c_str());
  a.expected_attach_type = f.attach == AttachType::None ? 0 : static_cast<uint32_t>(f.attach);
  if (f.sleepable) a.prog_flags |= BPF_F_SLEEPABLE;
  ProgBtf btf;
  if (auto starts = function_starts(insns); starts.size() > 1) {
    auto b = prog_btf(starts);
    if (!b) return b.error();
    btf = std::move(*b);
    a.prog_btf_fd = static_cast<uint32_t>(btf.fd.get());
    a.func_info = ptr(btf.info.data());
    a.func_info_rec_size = sizeof(bpf_func_info);
    a.func_info_cnt = static_cast<uint32_t>(btf.info.size());
  }
  // Without a log first: most loads succeed, and logging the path costs time.
  long fd = sys_bpf(BPF_PROG_LOAD, a);
  if (fd >= 0) {
    close(static_cast<int>(fd));
    return KernelVerdict{true, 0, {}};
  }
  int e = errno;
  if (e == EPERM && f.insns.size() <= 4096)  // not a verdict: not allowed to load at all
    if (std::string why; !kernel_bpf_available(&why)) return fail(why);
  std::string log(8u << 20, '\0');
  a.log_buf = ptr(log.data());
  a.log_size = static_cast<uint32_t>(log.size());
  a.log_level = 1;
  fd = sys_bpf(BPF_PROG_LOAD, a);
  if (fd >= 0) {
    close(static_cast<int>(fd));
    return fail("the kernel rejected the program without a log (", errno_text(e),
                ") and accepted it with one");
  }
  if (errno != ENOSPC) e = errno;
  log.resize(std::strlen(log.c_str()));
  return KernelVerdict{false, e, std::move(log)};
}

}  // namespace ember::testing
