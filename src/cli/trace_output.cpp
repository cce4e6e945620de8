#include "cli/trace_output.hpp"

#include <poll.h>

#include "cli/log2_hist.hpp"
#include "cli/map_format.hpp"
#include "runtime/registry.hpp"

namespace ember::cli {
namespace {

bool is_event_map(const Map& m) {
  return m.spec().type == MapType::Ringbuf || m.spec().type == MapType::PerfEventArray;
}

}  // namespace

Status TraceOutput::open_maps(pid_t pid) {
  std::vector<PublishedMap> published;
  read_published(&published, nullptr);
  for (const auto& pm : published) {
    if (pm.pid != pid) continue;
    auto m = open_published(pm);
    if (!m) return fail("map '", pm.name, "' of process ", pid, ": ", m.error().message);
    maps_.push_back(*m);
  }
  for (const MapPtr& m : maps_) {
    std::string name = m->spec().name;
    if (m->spec().type == MapType::Ringbuf) {
      RingBufferConsumer::Callback cb;
      if (name == "trace_pipe")
        cb = [](const void* d, size_t n) { return std::fwrite(d, 1, n, stdout), 0; };
      else
        cb = [this, name](const void* d, size_t n) { return print_event(name, -1, d, n), 0; };
      if (!rings_) {
        auto r = RingBufferConsumer::create(m, cb);
        if (!r) return fail("ring buffer '", name, "': ", r.error().message);
        rings_ = std::move(*r);
      } else if (auto st = rings_->add(m, cb); !st) {
        return fail("ring buffer '", name, "': ", st.error().message);
      }
    } else if (m->spec().type == MapType::PerfEventArray) {
      auto p = PerfBufferConsumer::create(m, [this, name](uint32_t cpu, const void* d, uint32_t n) {
        print_event(name, static_cast<int>(cpu), d, n);
      });
      if (!p) return fail("perf event array '", name, "': ", p.error().message);
      perf_.push_back(std::move(*p));
    }
  }
  return ok_status();
}

void TraceOutput::print_event(const std::string& map, int cpu, const void* data, size_t size) {
  std::string line = format_event(events_, map, cpu, {static_cast<const uint8_t*>(data), size}, json_);
  std::fwrite(line.data(), 1, line.size(), stdout);
}

void TraceOutput::poll(int timeout_ms) {
  int got = 0;
  for (auto& p : perf_) got += p->consume();
  if (rings_)
    rings_->poll(got ? 0 : timeout_ms);
  else if (!got && timeout_ms > 0)
    ::poll(nullptr, 0, timeout_ms);
  std::fflush(stdout);
}

void TraceOutput::print_maps(std::FILE* out) const {
  for (const MapPtr& m : maps_) {
    const std::string& name = m->spec().name;
    if (is_event_map(*m) || name.starts_with("__bpf_usdt")) continue;
    std::fprintf(out, "%s:\n", name.c_str());
    print_map_dump(out, *m);
  }
  std::fflush(out);
}

Result<std::string> TraceOutput::hist(const std::string& name) const {
  for (const MapPtr& m : maps_) {
    if (m->spec().name != name.substr(0, 15)) continue;  // map names keep 15 characters (BPF_OBJ_NAME_LEN)
    auto slots = log2_slots(*m);
    if (!slots) return slots.error();
    return name + ":\n" + format_log2_hist(*slots);
  }
  return fail("no map '", name, "' in the traced process");
}

}  // namespace ember::cli
