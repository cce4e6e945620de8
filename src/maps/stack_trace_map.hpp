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

// struct bpf_stack_build_id: one frame of a BPF_F_STACK_BUILD_ID map or of
// bpf_get_stack with BPF_F_USER_BUILD_ID.
struct StackBuildId {
  int32_t status;  // kBuildIdValid or kBuildIdIp
  uint8_t build_id[20];
  uint64_t offset_or_ip;  // file offset in the object when valid, else the address
};
static_assert(sizeof(StackBuildId) == 32);
constexpr int32_t kBuildIdValid = 1, kBuildIdIp = 2;  // BPF_STACK_BUILD_ID_*

// Frames a stack trace map's value holds: value_size / 8, or / 32 with
// BPF_F_STACK_BUILD_ID.
uint32_t stack_map_depth(const Map& map);

// __bpf_get_stackid: stores the frames `ips` (skipped frames already
// dropped, at most stack_map_depth of them) under the id their hash picks
// and returns that id; -EEXIST when another stack holds it and the flags
// lack BPF_F_REUSE_STACKID, -ENOMEM when every element is in use, -EINVAL
// when `map` is no stack trace map. A build-id map stores `build_ids`
// (the same frames, resolved) instead of the addresses.
long stack_map_get_id(Map& map, std::span<const uint64_t> ips, const StackBuildId* build_ids, uint64_t flags);

}  // namespace ember::maps
