#include "cli/event_format.hpp"

#include <algorithm>

#include "cli/map_format.hpp"

namespace ember::cli {
namespace {

// Map names keep 15 characters once created (BPF_OBJ_NAME_LEN), which is
// what the traced process publishes.
std::string map_key(const std::string& name) { return name.substr(0, 15); }

bool is_record(const Btf& btf, uint32_t id) {
  BtfKind k = btf.kind(btf.resolve(id));
  return k == BtfKind::Struct || k == BtfKind::Union;
}

// STRUCT as --event-type names it; 0 if the BTF has no such record type.
uint32_t find_record_type(const Btf& btf, std::string name) {
  BtfKind want = BtfKind::Void;  // any of struct, union, typedef
  for (auto [prefix, kind] : {std::pair{"struct ", BtfKind::Struct}, std::pair{"union ", BtfKind::Union}}) {
    if (!name.starts_with(prefix)) continue;
    name.erase(0, std::string_view(prefix).size());
    want = kind;
  }
  for (BtfKind k : {BtfKind::Struct, BtfKind::Union, BtfKind::Typedef}) {
    if (want != BtfKind::Void && k != want) continue;
    uint32_t id = btf.find(name, k);
    if (id && is_record(btf, id)) return id;
  }
  return 0;
}

// libbpf-tools' conventions: the one `struct event`, else the one struct
// (or typedef of one) named *_event or *event_t. 0 and the candidates when
// there is no single one.
uint32_t guess_record_type(const Btf& btf, std::vector<uint32_t>* candidates) {
  uint32_t event = 0, events_named = 0;
  for (uint32_t id = 1; id < btf.count(); ++id) {
    const BtfType& t = *btf.type(id);
    if (t.kind == BtfKind::Struct && t.name == "event") event = id, ++events_named;
  }
  if (events_named == 1) return event;
  std::vector<uint32_t> resolved;
  for (uint32_t id = 1; id < btf.count(); ++id) {
    const BtfType& t = *btf.type(id);
    if (!t.name.ends_with("_event") && !t.name.ends_with("event_t")) continue;
    uint32_t r = btf.resolve(id);
    if (btf.kind(r) != BtfKind::Struct || std::find(resolved.begin(), resolved.end(), r) != resolved.end())
      continue;
    resolved.push_back(r);  // a typedef of a struct counts once with it
    candidates->push_back(id);
  }
  return candidates->size() == 1 ? candidates->front() : 0;
}

std::string join_names(const Btf& btf, const std::vector<uint32_t>& ids) {
  std::string s;
  for (uint32_t id : ids) s += (s.empty() ? "" : ", ") + btf.to_string(id);
  return s;
}

// The maps that get the guessed type; notes say which, or why none.
void guess(EventTypes& r, const std::vector<std::string>& untyped, const std::string& object) {
  std::string maps;
  for (const auto& m : untyped) maps += (maps.empty() ? "'" : ", '") + m + "'";
  if (!r.btf) {
    r.notes.push_back(object + " has no BTF: the records of " + maps + " are printed as hex");
    return;
  }
  std::vector<uint32_t> candidates;
  uint32_t id = guess_record_type(*r.btf, &candidates);
  if (id) {
    for (const auto& m : untyped) r.by_map[map_key(m)] = id;
    r.notes.push_back("the records of " + maps + " are printed as " + r.btf->to_string(id) +
                      " (--event-type to choose another type)");
  } else if (candidates.empty()) {
    r.notes.push_back(
        "the records of " + maps + " are printed as hex: " + object +
        "'s BTF has no struct event (keep it with a global `struct event *unused_event;` or name "
        "a type with --event-type)");
  } else {
    r.notes.push_back("the records of " + maps + " are printed as hex: " + std::to_string(candidates.size()) +
                      " types could be theirs (" + join_names(*r.btf, candidates) +
                      "); choose one with --event-type");
  }
}

std::string hex(std::span<const uint8_t> data, const char* sep) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < data.size(); ++i) {
    std::snprintf(b, sizeof b, "%02x", data[i]);
    if (i) s += sep;
    s += b;
  }
  return s;
}

}  // namespace

uint32_t EventTypes::type_of(const std::string& map) const {
  auto it = by_map.find(map_key(map));
  return it == by_map.end() ? 0 : it->second;
}

Result<EventTypes> resolve_event_types(std::shared_ptr<const Btf> btf, const std::vector<EventMapName>& maps,
                                       const std::vector<std::string>& options, const std::string& object) {
  EventTypes r;
  r.btf = std::move(btf);
  std::vector<std::string> events;
  for (const auto& m : maps)
    if (m.is_event) events.push_back(m.name);
  uint32_t for_all = 0;
  std::map<std::string, uint32_t> for_map;  // MAP=STRUCT wins over STRUCT, whatever the order
  for (const std::string& opt : options) {
    size_t eq = opt.find('=');
    std::string map = eq == std::string::npos ? "" : opt.substr(0, eq);
    std::string type = eq == std::string::npos ? opt : opt.substr(eq + 1);
    std::string what = "--event-type " + opt + ": ";
    if (type.empty() || (eq != std::string::npos && map.empty()))
      return fail(what, "expected MAP=STRUCT or STRUCT");
    if (!map.empty()) {
      auto m = std::find_if(maps.begin(), maps.end(), [&](const EventMapName& e) { return e.name == map; });
      if (m == maps.end()) return fail(what, object, " has no map '", map, "'");
      if (!m->is_event) return fail(what, "map '", map, "' is not a ring buffer or perf event array");
    } else if (events.empty()) {
      return fail(what, object, " has no ring buffer or perf event array");
    }
    if (!r.btf) return fail(what, object, " has no BTF (compile it with clang -g)");
    uint32_t id = find_record_type(*r.btf, type);
    if (!id) return fail(what, "no struct or union '", type, "' in the BTF of ", object);
    if (map.empty())
      for_all = id;
    else
      for_map[map] = id;
  }
  std::vector<std::string> untyped;
  for (const auto& m : events) {
    uint32_t id = for_map.count(m) ? for_map[m] : for_all;
    if (id)
      r.by_map[map_key(m)] = id;
    else
      untyped.push_back(m);
  }
  if (!untyped.empty()) guess(r, untyped, object);
  return r;
}

std::string format_event(const EventTypes& types, const std::string& map, int cpu,
                         std::span<const uint8_t> data, bool json) {
  std::string head = json
                         ? "{\"map\":" + json_quote(map) + (cpu >= 0 ? ",\"cpu\":" + std::to_string(cpu) : "")
                         : map + (cpu >= 0 ? " cpu " + std::to_string(cpu) : "") + ": ";
  uint32_t id = types.btf ? types.type_of(map) : 0;
  std::string why_hex;
  if (id) {
    auto size = types.btf->size_of(id);
    if (size && data.size() >= *size) {
      if (json) return head + ",\"event\":" + format_btf_value(*types.btf, id, data, {.json = true}) + "}\n";
      return head + format_btf_value(*types.btf, id, data, {.json = false, .braces = false}) + "\n";
    }
    if (size)
      why_hex = "short record: " + std::to_string(data.size()) + " bytes, " + types.btf->to_string(id) +
                " has " + std::to_string(*size);
  }
  if (json)
    return head + ",\"size\":" + std::to_string(data.size()) + ",\"data\":\"" + hex(data, "") + "\"" +
           (why_hex.empty() ? "" : ",\"error\":" + json_quote(why_hex)) + "}\n";
  return head + (why_hex.empty() ? "" : "(" + why_hex + ") ") + hex(data, " ") + "\n";
}

}  // namespace ember::cli
