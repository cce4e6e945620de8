// The records of ring buffers and perf event arrays as `ember trace` prints
// them: typed by a struct of the object's BTF (chosen with --event-type, or
// found by libbpf-tools' naming conventions), hex when there is none.
//
// Ring buffer and perf maps have no value type, and clang's BTF keeps only
// the types reachable from globals and function signatures, so libbpf-tools
// keep their record type alive with a global (`struct event *unused_event`)
// or as a __type(value, ...) of some map; it is usually `struct event`.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ember/btf.hpp"
#include "ember/result.hpp"

namespace ember::cli {

// The record type of each event map that has one.
struct EventTypes {
  std::shared_ptr<const Btf> btf;
  std::map<std::string, uint32_t> by_map;  // map name (its first 15 characters) -> struct or union id
  // Says which type was guessed, or why none was: for stderr.
  std::vector<std::string> notes;

  // 0 if the map's records print as hex.
  uint32_t type_of(const std::string& map) const;
};

struct EventMapName {
  std::string name;
  bool is_event = false;  // a ring buffer or a perf event array
};

// --event-type options: "MAP=STRUCT" (that map) or "STRUCT" (every event
// map); STRUCT may be a struct, a union or a typedef of one, with or without
// a "struct "/"union " prefix. Without options for a map: the one struct
// named `event`, else the one struct (or typedef of one) whose name ends in
// `_event` or `event_t`, else none. `maps` are every map of the object;
// `object` names it in errors. An unknown map or struct, a map that is not
// an event map, or no BTF when an option asks for a type is an error.
Result<EventTypes> resolve_event_types(std::shared_ptr<const Btf> btf, const std::vector<EventMapName>& maps,
                                       const std::vector<std::string>& options, const std::string& object);

// One record as one line (with its newline):
//   text: `MAP: pid=1 comm="bash"` (`MAP cpu N: ...` for perf records)
//   json: {"map":"MAP","cpu":N,"event":{"pid":1,"comm":"bash"}}
// cpu < 0 for ring buffer records (no "cpu"). Without a type, or for a
// record shorter than its type (said as "short record"), the bytes in hex
// as before: `MAP: 01 02 ...`, {"map":"MAP","size":N,"data":"0102..."}.
// Bytes after the type's size are not printed (perf pads its records to 8).
std::string format_event(const EventTypes& types, const std::string& map, int cpu,
                         std::span<const uint8_t> data, bool json);

}  // namespace ember::cli
