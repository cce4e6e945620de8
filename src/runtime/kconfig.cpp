#include "runtime/kconfig.hpp"

#include <sys/utsname.h>

#include <cstdlib>
#include <fstream>

namespace ember {

uint32_t kernel_version_code(std::string_view release) {
  uint32_t parts[3] = {0, 0, 0};
  size_t i = 0;
  for (int k = 0; k < 3 && i < release.size(); ++k) {
    while (i < release.size() && release[i] >= '0' && release[i] <= '9')
      parts[k] = parts[k] * 10 + (release[i++] - '0');
    if (i < release.size() && release[i] == '.')
      ++i;
    else
      break;
  }
  // The kernel's KERNEL_VERSION macro saturates the sublevel at 255.
  return (parts[0] << 16) | (parts[1] << 8) | (parts[2] > 255 ? 255 : parts[2]);
}

namespace {

std::string release() {
  utsname u{};
  uname(&u);
  return u.release;
}

// CONFIG_FOO=y|m|n|number|"string" from the running kernel's config file.
Result<uint64_t> config_option(std::string_view name) {
  std::string path = "/boot/config-" + release();
  std::ifstream f(path);
  if (!f) return fail("extern '", name, "': the kernel config ", path, " is not readable");
  std::string line, prefix = std::string(name) + "=";
  while (std::getline(f, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::string v = line.substr(prefix.size());
    // libbpf's enum libbpf_tristate: TRI_NO 0, TRI_YES 1, TRI_MODULE 2.
    if (v == "y") return uint64_t{1};
    if (v == "m") return uint64_t{2};
    if (v == "n") return uint64_t{0};
    char* end = nullptr;
    unsigned long long n = std::strtoull(v.c_str(), &end, 0);
    if (end && *end == '\0' && !v.empty()) return static_cast<uint64_t>(n);
    return fail("extern '", name, "': value ", v, " is a string; string kconfig externs are not supported");
  }
  // "# CONFIG_FOO is not set" and absent options both read as n.
  return uint64_t{0};
}

}  // namespace

Result<uint64_t> kconfig_value(std::string_view name, bool weak) {
  if (name == "LINUX_KERNEL_VERSION") return uint64_t{kernel_version_code(release())};
  // Feature flags libbpf defines; Ember provides cookies and, for syscall
  // probes, the x86-64 wrapper layout.
  if (name == "LINUX_HAS_BPF_COOKIE" || name == "LINUX_HAS_SYSCALL_WRAPPER") return uint64_t{1};
  if (name.rfind("CONFIG_", 0) == 0) {
    auto v = config_option(name);
    if (v || !weak) return v;
    return uint64_t{0};
  }
  if (weak) return uint64_t{0};
  return fail("extern '", name,
              "' cannot be resolved in user space (only LINUX_KERNEL_VERSION, LINUX_HAS_* and CONFIG_* "
              "kconfig externs are known; declare it __weak to read 0)");
}

}  // namespace ember
