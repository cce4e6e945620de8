// What `ember trace` prints of a traced process's maps: ring buffer and perf
// buffer events as they come (one line each: the map's name and the record's
// fields, typed by the object's BTF, or its bytes in hex when no type is
// known; a JSON object with -j: src/cli/event_format.hpp), bpf_printk lines from its trace pipe,
// every map's contents on demand (--interval) and log2 histograms (--hist).
// The maps are opened from the agent's published list and kept open, so
// they outlive the target.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/event_format.hpp"
#include "ember/maps.hpp"
#include "ember/result.hpp"
#include "ember/ringbuf.hpp"

namespace ember::cli {

class TraceOutput {
 public:
  explicit TraceOutput(bool json) : json_(json) {}
  // The record types of the event maps (before open_maps).
  void set_event_types(EventTypes types) { events_ = std::move(types); }
  // Opens every map process `pid` publishes and starts consuming its event
  // maps and its trace pipe.
  Status open_maps(pid_t pid);
  // Prints the events that are there, waiting up to timeout_ms for one.
  void poll(int timeout_ms);
  // Every map but the event maps and libbpf's USDT bookkeeping, as `ember
  // map dump` prints them.
  void print_maps(std::FILE* out) const;
  // A map's log2 histogram (BCC's layout), headed by its name.
  Result<std::string> hist(const std::string& name) const;

 private:
  void print_event(const std::string& map, int cpu, const void* data, size_t size);
  bool json_;
  EventTypes events_;
  std::vector<MapPtr> maps_;
  std::unique_ptr<RingBufferConsumer> rings_;
  std::vector<std::unique_ptr<PerfBufferConsumer>> perf_;
};

}  // namespace ember::cli
