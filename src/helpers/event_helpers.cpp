// Helpers that stream events to user space: the ring buffer family
// (kernel/bpf/ringbuf.c) and bpf_perf_event_output (kernel/trace/bpf_trace.c).
#include <algorithm>
#include <cerrno>
#include <vector>

#include "ember/helpers.hpp"
#include "ember/maps.hpp"
#include "ember/vm.hpp"
#include "maps/perf_event_array.hpp"
#include "maps/ringbuf_map.hpp"

namespace ember {
namespace {

using maps::PerfEventArrayMap;
using maps::RingbufMap;

constexpr ArgType A = ArgType::Anything;
constexpr ArgType N = ArgType::None;
constexpr ArgType M = ArgType::ConstMapPtr;

uint64_t err(int e) { return static_cast<uint64_t>(static_cast<int64_t>(-e)); }
uint64_t ret(long r) { return static_cast<uint64_t>(static_cast<int64_t>(r)); }

RingbufMap* ringbuf(HelperCall& c, uint64_t map, const char* what) {
  Map* m = c.map(map, what);
  return m && m->type() == MapType::Ringbuf ? static_cast<RingbufMap*>(m) : nullptr;
}

// bpf_ringbuf_output(map, data, size, flags): 0, -EINVAL, -EAGAIN (full).
uint64_t ringbuf_output(HelperCall& c, uint64_t map, uint64_t data, uint64_t size, uint64_t flags, uint64_t) {
  RingbufMap* rb = ringbuf(c, map, "bpf_ringbuf_output map");
  if (!rb) return err(EINVAL);
  if (!c.check(data, size, false, "bpf_ringbuf_output data")) return err(EFAULT);
  return ret(rb->output(reinterpret_cast<const void*>(data), size, flags));
}

// bpf_ringbuf_reserve(map, size, flags): the sample or NULL; no flags exist.
uint64_t ringbuf_reserve(HelperCall& c, uint64_t map, uint64_t size, uint64_t flags, uint64_t, uint64_t) {
  RingbufMap* rb = ringbuf(c, map, "bpf_ringbuf_reserve map");
  if (!rb || flags) return 0;
  void* sample = rb->reserve(size);
  if (sample && c.guard) {
    c.guard->grant(sample, size, true);
    c.guard->hold(reinterpret_cast<uint64_t>(sample),
                  [](uint64_t s) { RingbufMap::commit(reinterpret_cast<void*>(s), 0, true); });
  }
  return reinterpret_cast<uint64_t>(sample);
}

// Checked mode: is `sample` a reservation this run holds? Gives it back.
// The kernel's verifier proves that submit/discard get such a pointer (and
// that every reservation is released); unverified code is checked here, as
// a wild pointer would otherwise lead commit() to a wild ring.
bool release_checked(HelperCall& c, uint64_t sample, const char* what) {
  if (!c.guard || c.guard->release(sample)) return true;
  if (c.fault.empty())
    c.fault = std::string(what) + ": " + std::to_string(sample) +
              " is not a sample from bpf_ringbuf_reserve still held by this run";
  return false;
}

// bpf_ringbuf_submit/discard(sample, flags): no result. The kernel checks
// no flags here; unknown bits are ignored.
uint64_t ringbuf_submit(HelperCall& c, uint64_t sample, uint64_t flags, uint64_t, uint64_t, uint64_t) {
  if (release_checked(c, sample, "bpf_ringbuf_submit"))
    RingbufMap::commit(reinterpret_cast<void*>(sample), flags, false);
  return 0;
}

uint64_t ringbuf_discard(HelperCall& c, uint64_t sample, uint64_t flags, uint64_t, uint64_t, uint64_t) {
  if (release_checked(c, sample, "bpf_ringbuf_discard"))
    RingbufMap::commit(reinterpret_cast<void*>(sample), flags, true);
  return 0;
}

// bpf_ringbuf_query(map, flags): a position or size; 0 for unknown flags.
uint64_t ringbuf_query(HelperCall& c, uint64_t map, uint64_t flags, uint64_t, uint64_t, uint64_t) {
  RingbufMap* rb = ringbuf(c, map, "bpf_ringbuf_query map");
  return rb ? rb->query(flags) : 0;
}

// bpf_perf_event_output(ctx, map, flags, data, size).
uint64_t perf_event_output(HelperCall& c, uint64_t, uint64_t map, uint64_t flags, uint64_t data,
                           uint64_t size) {
  Map* m = c.map(map, "bpf_perf_event_output map");
  if (!m || m->type() != MapType::PerfEventArray) return err(EINVAL);
  if (!c.check(data, size, false, "bpf_perf_event_output data")) return err(EFAULT);
  return ret(static_cast<PerfEventArrayMap*>(m)->output(flags, reinterpret_cast<const void*>(data), size));
}

// Prototypes as the kernel's bpf_func_proto of each helper.
constexpr HelperDef kEventHelpers[] = {
    {25,
     "bpf_perf_event_output",
     {RetType::Integer, {ArgType::PtrToCtx, M, A, ArgType::PtrToMem, ArgType::ConstSizeOrZero}},
     perf_event_output},
    {130,
     "bpf_ringbuf_output",
     {RetType::Integer, {M, ArgType::PtrToMem, ArgType::ConstSizeOrZero, A, N}},
     ringbuf_output},
    {131,
     "bpf_ringbuf_reserve",
     {RetType::RingbufMemOrNull, {M, ArgType::ConstAllocSizeOrZero, A, N, N}},
     ringbuf_reserve},
    {132, "bpf_ringbuf_submit", {RetType::Void, {ArgType::PtrToAllocMem, A, N, N, N}}, ringbuf_submit},
    {133, "bpf_ringbuf_discard", {RetType::Void, {ArgType::PtrToAllocMem, A, N, N, N}}, ringbuf_discard},
    {134, "bpf_ringbuf_query", {RetType::Integer, {M, A, N, N, N}}, ringbuf_query},
};

}  // namespace

std::span<const HelperDef> event_helpers() { return kEventHelpers; }

}  // namespace ember
