// Symbol resolution for probes (src/attach/symbols.hpp) and probe specs
// (src/attach/probe_spec.hpp). Addresses are checked against what the
// dynamic loader itself says (dlsym, &function) in this process.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "attach/elf_image.hpp"
#include "attach/probe_spec.hpp"
#include "attach/symbols.hpp"

namespace fs = std::filesystem;
using namespace ember::attach;

// A function of this test binary (a PIE) for the self-lookup test.
extern "C" __attribute__((noinline)) int ember_symbols_test_function(int x) { return x * 7 + 1; }

namespace {

std::string self_exe() { return fs::read_symlink("/proc/self/exe").string(); }

// The path /proc/self/maps shows for the file mapped with `addr`.
std::string mapped_path_of(const void* addr) {
  Dl_info info{};
  if (!dladdr(addr, &info) || !info.dli_fname) return "";
  return fs::canonical(info.dli_fname).string();
}

// libc's own function (dlsym(RTLD_DEFAULT) would give ASan's malloc in the
// sanitizer build, which interposes on it).
void* libc_function(const char* name) {
  void* h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void* fn = h ? dlsym(h, name) : nullptr;
  if (h) dlclose(h);
  return fn;
}

std::string temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "ember-symbols-XXXXXX").string();
  char* d = mkdtemp(tmpl.data());
  return d ? std::string(d) : "";
}

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

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

#define EXPECT_ERROR(result, text)                                                     \
  do {                                                                                 \
    auto r_ = (result);                                                                \
    ASSERT_FALSE(r_.ok()) << "expected an error containing: " << (text);               \
    EXPECT_NE(r_.error().message.find(text), std::string::npos) << r_.error().message; \
  } while (0)

}  // namespace

TEST(AttachSymbols, ResolvesLibrariesByName) {
  std::string libc = mapped_path_of(libc_function("malloc"));
  ASSERT_FALSE(libc.empty());
  for (const char* name : {"libc.so.6", "libc", "libc.so"}) {
    auto r = resolve_binary(name);
    ASSERT_TRUE(r.ok()) << name << ": " << r.error().message;
    EXPECT_TRUE(same_file(*r, libc)) << name << " -> " << *r;
    EXPECT_EQ((*r)[0], '/');
  }
  // Through another process's maps: a child that has libc mapped.
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  auto r = resolve_binary("libc.so.6", child);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(same_file(*r, libc));
  // Not loaded here, found through ld.so.cache or the library directories.
  auto libm = resolve_binary("libm.so.6");
  ASSERT_TRUE(libm.ok()) << libm.error().message;
  EXPECT_EQ(fs::path(*libm).filename().string().rfind("libm", 0), 0u) << *libm;
}

TEST(AttachSymbols, ResolvesPathsAndExecutables) {
  std::string exe = self_exe();
  auto abs = resolve_binary(exe);
  ASSERT_TRUE(abs.ok()) << abs.error().message;
  EXPECT_EQ(*abs, exe);
  std::string rel = fs::relative(exe, fs::current_path()).string();
  if (rel.find('/') == std::string::npos) rel = "./" + rel;
  auto r = resolve_binary(rel);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0], '/');
  EXPECT_TRUE(same_file(*r, exe));
  if (access("/bin/sh", X_OK) == 0) {
    auto sh = resolve_binary("sh");  // PATH
    ASSERT_TRUE(sh.ok()) << sh.error().message;
    EXPECT_TRUE(same_file(*sh, "/bin/sh")) << *sh;
  }
}

TEST(AttachSymbols, ResolveErrors) {
  EXPECT_ERROR(resolve_binary("libember_no_such_library.so.7"), "no such file");
  EXPECT_ERROR(resolve_binary("/nonexistent/dir/app"), "no such file");
  std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  std::ofstream(dir + "/text") << "not an ELF file at all\n";
  EXPECT_ERROR(resolve_binary(dir + "/text"), "not an ELF file");
  // An ELF file for another machine: a BPF object.
  EXPECT_ERROR(resolve_binary(EMBER_USDT_SPEC_OBJ), "not x86-64");
  // A process that is gone.
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  EXPECT_ERROR(resolve_binary("libc.so.6", child), "no process");
  fs::remove_all(dir);
}

TEST(AttachSymbols, LibcFunctionsMatchDlsym) {
  auto libc = resolve_binary("libc.so.6");
  ASSERT_TRUE(libc.ok()) << libc.error().message;
  for (const char* fn : {"malloc", "free", "realpath", "qsort"}) {
    auto off = symbol_file_offset(*libc, fn);
    ASSERT_TRUE(off.ok()) << fn << ": " << off.error().message;
    auto addr = file_offset_to_address(*libc, *off);
    ASSERT_TRUE(addr.ok()) << fn << ": " << addr.error().message;
    EXPECT_EQ(reinterpret_cast<void*>(*addr), libc_function(fn)) << fn;
  }
}

TEST(AttachSymbols, VersionedLibcSymbols) {
  auto libc = resolve_binary("libc.so.6");
  ASSERT_TRUE(libc.ok());
  auto plain = lookup_symbol(*libc, "malloc");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->name, "malloc@@GLIBC_2.2.5");
  EXPECT_FALSE(plain->ifunc);
  EXPECT_GT(plain->size, 0u);
  for (const char* v : {"malloc@GLIBC_2.2.5", "malloc@@GLIBC_2.2.5"}) {
    auto r = lookup_symbol(*libc, v);
    ASSERT_TRUE(r.ok()) << v << ": " << r.error().message;
    EXPECT_EQ(r->file_offset, plain->file_offset) << v;
  }
  EXPECT_ERROR(lookup_symbol(*libc, "malloc@GLIBC_9.9"), "versions present: malloc@@GLIBC_2.2.5");
  // memcpy: the default version (2.14) is an IFUNC, the old 2.2.5 one
  // (memmove's semantics) is another function.
  auto memcpy_default = lookup_symbol(*libc, "memcpy");
  auto memcpy_old = lookup_symbol(*libc, "memcpy@GLIBC_2.2.5");
  ASSERT_TRUE(memcpy_default.ok()) << memcpy_default.error().message;
  ASSERT_TRUE(memcpy_old.ok()) << memcpy_old.error().message;
  EXPECT_EQ(memcpy_default->name, "memcpy@@GLIBC_2.14");
  EXPECT_EQ(memcpy_old->name, "memcpy@GLIBC_2.2.5");
  EXPECT_NE(memcpy_default->file_offset, memcpy_old->file_offset);
  EXPECT_TRUE(memcpy_default->ifunc);
  EXPECT_ERROR(lookup_symbol(*libc, "memcpy@@GLIBC_2.2.5"), "has no symbol");
  // A data symbol is no probe point.
  EXPECT_ERROR(lookup_symbol(*libc, "environ"), "is not a function");
}

TEST(AttachSymbols, OwnFunctionMatchesItsAddress) {
  std::string exe = self_exe();
  auto off = symbol_file_offset(exe, "ember_symbols_test_function");
  ASSERT_TRUE(off.ok()) << off.error().message;
  auto addr = file_offset_to_address(exe, *off);
  ASSERT_TRUE(addr.ok()) << addr.error().message;
  EXPECT_EQ(*addr, reinterpret_cast<uintptr_t>(&ember_symbols_test_function));
  EXPECT_EQ(ember_symbols_test_function(1), 8);
}

#ifdef EMBER_USDT_SO

TEST(AttachSymbols, SharedLibraryFunctionsAndOffsets) {
  void* h = dlopen(EMBER_USDT_SO, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  void* fn = dlsym(h, "ember_usdt_plain_function");
  ASSERT_NE(fn, nullptr);
  auto info = lookup_symbol(EMBER_USDT_SO, "ember_usdt_plain_function");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_FALSE(info->from_dynsym);  // .symtab first
  auto addr = file_offset_to_address(EMBER_USDT_SO, info->file_offset);
  ASSERT_TRUE(addr.ok()) << addr.error().message;
  EXPECT_EQ(reinterpret_cast<void*>(*addr), fn);

  // +OFFSET inside the function, and beyond it.
  auto plus4 = symbol_file_offset(EMBER_USDT_SO, "ember_usdt_plain_function", 4);
  ASSERT_TRUE(plus4.ok()) << plus4.error().message;
  EXPECT_EQ(*plus4, info->file_offset + 4);
  EXPECT_ERROR(symbol_file_offset(EMBER_USDT_SO, "ember_usdt_plain_function", info->size),
               "offset +" + std::to_string(info->size) + " is beyond ember_usdt_plain_function's " +
                   std::to_string(info->size) + " bytes");

  // A bare address: the symbol's vaddr gives the same offset.
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(info->vaddr));
  auto by_addr = symbol_file_offset(EMBER_USDT_SO, hex);
  ASSERT_TRUE(by_addr.ok()) << by_addr.error().message;
  EXPECT_EQ(*by_addr, info->file_offset);
  EXPECT_ERROR(symbol_file_offset(EMBER_USDT_SO, "0x0"), "is not in executable code");

  // A local function (.symtab only), and the semaphore (data, in .probes).
  EXPECT_TRUE(lookup_symbol(EMBER_USDT_SO, "ember_usdt_local_function").ok());
  EXPECT_ERROR(lookup_symbol(EMBER_USDT_SO, "ember_sema_hit_semaphore"), "is not a function");
  EXPECT_ERROR(lookup_symbol(EMBER_USDT_SO, "ember_no_such_function"),
               std::string("binary ") + EMBER_USDT_SO + " has no symbol 'ember_no_such_function'");

  // Against nm: the vaddr it prints.
  std::string nm =
      run(std::string("nm ") + EMBER_USDT_SO + " 2>/dev/null | grep ' ember_usdt_plain_function$'");
  if (!nm.empty()) {
    EXPECT_EQ(std::stoull(nm, nullptr, 16), info->vaddr) << nm;
  }

  // Through a symlink: the same file by device and inode.
  std::string dir = temp_dir();
  fs::create_symlink(EMBER_USDT_SO, dir + "/link.so");
  auto via_link = file_offset_to_address(dir + "/link.so", info->file_offset);
  ASSERT_TRUE(via_link.ok()) << via_link.error().message;
  EXPECT_EQ(reinterpret_cast<void*>(*via_link), fn);
  fs::remove_all(dir);
  dlclose(h);
}

TEST(AttachSymbols, SemaphoreAddressIsTheWritableMapping) {
  void* h = dlopen(EMBER_USDT_SO, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  auto sema_addr = reinterpret_cast<const volatile unsigned short* (*)()>(dlsym(h, "ember_sema_address"));
  ASSERT_NE(sema_addr, nullptr);
  auto img = ElfImage::open(EMBER_USDT_SO);
  ASSERT_TRUE(img.ok()) << img.error().message;
  const ElfSectionHeader* probes = img->section(".probes");
  ASSERT_NE(probes, nullptr);
  auto off = vaddr_to_file_offset(EMBER_USDT_SO, probes->addr);
  ASSERT_TRUE(off.ok()) << off.error().message;
  auto addr = file_offset_to_address(EMBER_USDT_SO, *off, 0, MappingUse::Data);
  ASSERT_TRUE(addr.ok()) << addr.error().message;
  EXPECT_EQ(reinterpret_cast<const volatile void*>(*addr), sema_addr());
  dlclose(h);
}

TEST(AttachSymbols, StrippedFiles) {
  if (access("/usr/bin/objcopy", X_OK) != 0) GTEST_SKIP() << "objcopy (binutils) is not installed";
  std::string dir = temp_dir();
  std::string exe = dir + "/stripped_pie", so = dir + "/stripped.so";
  ASSERT_EQ(std::system(("objcopy --strip-all " + std::string(EMBER_USDT_PIE) + " " + exe).c_str()), 0);
  ASSERT_EQ(std::system(("objcopy --strip-all " + std::string(EMBER_USDT_SO) + " " + so).c_str()), 0);
  EXPECT_ERROR(lookup_symbol(exe, "ember_usdt_plain_function"),
               "(stripped: no .symtab, and .dynsym lacks it)");
  EXPECT_ERROR(lookup_symbol(so, "ember_usdt_local_function"),
               "(stripped: no .symtab, and .dynsym lacks it)");
  auto exported = lookup_symbol(so, "ember_usdt_plain_function");
  ASSERT_TRUE(exported.ok()) << exported.error().message;
  EXPECT_TRUE(exported->from_dynsym);
  auto unstripped = lookup_symbol(EMBER_USDT_SO, "ember_usdt_plain_function");
  ASSERT_TRUE(unstripped.ok());
  EXPECT_EQ(exported->file_offset, unstripped->file_offset);
  fs::remove_all(dir);
}

TEST(AttachSymbols, FileOffsetErrors) {
  // The PIE target is not loaded in this process.
  auto off = symbol_file_offset(EMBER_USDT_PIE, "ember_usdt_plain_function");
  ASSERT_TRUE(off.ok()) << off.error().message;
  EXPECT_ERROR(file_offset_to_address(EMBER_USDT_PIE, *off), "is not mapped in this process");
  EXPECT_ERROR(file_offset_to_address("/nonexistent/file", 0), "/nonexistent/file");
  std::string exe = self_exe();
  EXPECT_ERROR(file_offset_to_address(exe, uint64_t{1} << 40), "is not mapped in this process");
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  EXPECT_ERROR(file_offset_to_address(exe, 0, child), "no process");
}

TEST(AttachSymbols, NonPieAddressesAreLinkTimeAddresses) {
  auto info = lookup_symbol(EMBER_USDT_NOPIE, "ember_usdt_plain_function");
  ASSERT_TRUE(info.ok()) << info.error().message;
  auto img = ElfImage::open(EMBER_USDT_NOPIE);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->type(), 2);  // ET_EXEC
  EXPECT_GE(info->vaddr, 0x400000u);
  EXPECT_LT(info->file_offset, info->vaddr);  // vaddr - segment base + segment offset
  auto back = img->vaddr_to_offset(info->vaddr);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, info->file_offset);
}

#endif  // EMBER_USDT_SO

TEST(AttachProbeSpec, SectionNames) {
  auto a = parse_section_probe("uprobe//lib/x86_64-linux-gnu/libc.so.6:malloc");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->kind, HookKind::Entry);
  EXPECT_FALSE(a->usdt);
  EXPECT_EQ(a->binary, "/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(a->symbol, "malloc");
  EXPECT_EQ(a->offset, 0u);

  auto b = parse_section_probe("uprobe/libc.so.6:malloc+0x10");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->binary, "libc.so.6");
  EXPECT_EQ(b->symbol, "malloc");
  EXPECT_EQ(b->offset, 16u);
  auto dec = parse_section_probe("uprobe/app:f+24");
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(dec->offset, 24u);

  auto c = parse_section_probe("uretprobe//bin/bash:readline");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->kind, HookKind::Return);
  EXPECT_EQ(c->binary, "/bin/bash");
  EXPECT_EQ(c->symbol, "readline");

  auto d = parse_section_probe("usdt/./app:my_provider:my_probe");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->usdt);
  EXPECT_EQ(d->binary, "./app");
  EXPECT_EQ(d->provider, "my_provider");
  EXPECT_EQ(d->name, "my_probe");

  auto s = parse_section_probe("uprobe.s/app:f");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->sleepable);
  auto rs = parse_section_probe("uretprobe.s/app:f");
  ASSERT_TRUE(rs.ok());
  EXPECT_EQ(rs->kind, HookKind::Return);

  // A path with ':' splits at the last one; a versioned symbol; an address.
  auto e = parse_section_probe("uprobe//opt/a:b/app:main");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->binary, "/opt/a:b/app");
  EXPECT_EQ(e->symbol, "main");
  auto v = parse_section_probe("uprobe/libc.so.6:malloc@GLIBC_2.2.5");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->symbol, "malloc@GLIBC_2.2.5");
  auto addr = parse_section_probe("uprobe/app:0x1234+8");
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(addr->symbol, "0x1234");
  EXPECT_EQ(addr->offset, 8u);

  EXPECT_TRUE(is_probe_section("uprobe"));
  EXPECT_TRUE(is_probe_section("usdt/x:y:z"));
  EXPECT_FALSE(is_probe_section("kprobe/do_sys_open"));
  EXPECT_FALSE(is_probe_section("uprobes/x"));
}

TEST(AttachProbeSpec, SectionErrors) {
  EXPECT_ERROR(parse_section_probe("uprobe"),
               "names no probe point: attach it with -e uprobe:PATH:FUNC=PROG");
  EXPECT_ERROR(parse_section_probe("uretprobe"), "-e uretprobe:PATH:FUNC=PROG");
  EXPECT_ERROR(parse_section_probe("usdt"), "-e usdt:PATH:PROVIDER:NAME=PROG");
  EXPECT_ERROR(parse_section_probe("uprobe/"), "names no probe point");
  EXPECT_ERROR(parse_section_probe("uprobe/libc.so.6"), "missing ':function[+offset]'");
  EXPECT_ERROR(parse_section_probe("uprobe/:malloc"), "empty path");
  EXPECT_ERROR(parse_section_probe("uprobe/libc.so.6:"), "empty function name");
  EXPECT_ERROR(parse_section_probe("uprobe/libc.so.6:malloc+zz"), "bad offset '+zz'");
  EXPECT_ERROR(parse_section_probe("uprobe/libc.so.6:malloc+"), "bad offset");
  EXPECT_ERROR(parse_section_probe("uretprobe/libc.so.6:malloc+4"), "uretprobes do not support an offset");
  EXPECT_ERROR(parse_section_probe("usdt/app:provider"), "expected PATH:PROVIDER:NAME");
  EXPECT_ERROR(parse_section_probe("usdt/app::name"), "empty path, provider or name");
  EXPECT_ERROR(parse_section_probe("kprobe/foo"), "is not a probe section");
}

TEST(AttachProbeSpec, CommandLine) {
  auto a = parse_cli_probe("uprobe:/lib/x86_64-linux-gnu/libc.so.6:malloc=prog_name");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->kind, HookKind::Entry);
  EXPECT_EQ(a->binary, "/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(a->symbol, "malloc");
  EXPECT_EQ(a->prog, "prog_name");
  auto b = parse_cli_probe("uretprobe:/bin/bash:readline=on_readline");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->kind, HookKind::Return);
  EXPECT_EQ(b->prog, "on_readline");
  auto c = parse_cli_probe("usdt:./app:prov:probe1=handler");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->usdt);
  EXPECT_EQ(c->binary, "./app");
  EXPECT_EQ(c->provider, "prov");
  EXPECT_EQ(c->name, "probe1");
  EXPECT_EQ(c->prog, "handler");
  auto d = parse_cli_probe("uprobe:libc:free+0x4=p");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->offset, 4u);

  EXPECT_ERROR(parse_cli_probe("uprobe:libc:malloc"), "missing '=PROG'");
  EXPECT_ERROR(parse_cli_probe("uprobe:libc:malloc="), "missing '=PROG'");
  EXPECT_ERROR(parse_cli_probe("uprobe:libc:malloc=a-b"), "is not a program name");
  EXPECT_ERROR(parse_cli_probe("kprobe:x:y=p"), "expected uprobe:, uretprobe: or usdt:");
  EXPECT_ERROR(parse_cli_probe("uprobe=p"), "expected uprobe:");
  EXPECT_ERROR(parse_cli_probe("uprobe:libc=p"), "missing ':function[+offset]'");
  EXPECT_ERROR(parse_cli_probe("uretprobe:libc:f+8=p"), "uretprobes do not support an offset");
  EXPECT_ERROR(parse_cli_probe("usdt:app:prov=p"), "expected PATH:PROVIDER:NAME");
}
