// Values for `extern ... __kconfig` variables, answered in user space the
// way libbpf answers them: LINUX_KERNEL_VERSION from uname(2), the
// LINUX_HAS_* feature flags, and CONFIG_* options from the kernel's config
// (/proc/config.gz is compressed, so /boot/config-$(uname -r)).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ember/result.hpp"

namespace ember {

// What the extern holds; `weak` externs the system cannot answer are 0, as
// libbpf leaves unresolved weak externs.
Result<uint64_t> kconfig_value(std::string_view name, bool weak);

// KERNEL_VERSION(a, b, c) of a release string such as "6.1.0-13-amd64".
uint32_t kernel_version_code(std::string_view release);

}  // namespace ember
