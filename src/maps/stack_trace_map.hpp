// The map half of bpf_get_stackid: what the stack helpers
// (src/helpers/stack_helpers.cpp) call on a BPF_MAP_TYPE_STACK_TRACE map.
#pragma once

#include <cstdint>
#include <span>

#include "ember/maps.hpp"

namespace ember::maps {

// bpf_get_stackid flags (linux/bpf.h).
namespace stack_flag {
constexpr uint64_t kSkipFieldMask = 0xff;
constexpr uint64_t kUserStack = 1u << 8;
constexpr uint64_t kFastStackCmp = 1u << 9;
constexpr uint64_t kReuseStackid = 1u << 10;
constexpr uint64_t kUserBuildId = 1u << 11;
}  // namespace stack_flag

// sysctl kernel.perf_event_max_stack's default: the deepest stack a
// program can ask for.
constexpr uint32_t kMaxStackDepth = 127;

// __bpf_get_stackid: stores the frames `ips` (skipped frames already
// dropped, at most value_size / 8 of them) under the id their hash picks
// and returns that id; -EEXIST when another stack holds it and the flags
// lack BPF_F_REUSE_STACKID, -ENOMEM when every element is in use, -EINVAL
// when `map` is no stack trace map.
long stack_map_get_id(Map& map, std::span<const uint64_t> ips, uint64_t flags);

}  // namespace ember::maps
