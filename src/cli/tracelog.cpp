// `ember tracelog`: streams the trace pipes (bpf_trace_printk output) of
// running Ember processes, like `bpftool prog tracelog` reads tracefs's
// trace_pipe.
#include <signal.h>

#include <atomic>
#include <cstdio>

#include "cli/commands.hpp"
#include "ember/ringbuf.hpp"
#include "runtime/registry.hpp"

namespace ember::cli {
namespace {

std::atomic<bool> g_stop{false};  // set by SIGINT/SIGTERM: the only way a handler can talk
void on_signal(int) { g_stop = true; }

}  // namespace

int cmd_tracelog(const std::vector<std::string>& argv) {
  bool once = false;
  for (const auto& a : argv) {
    if (a == "--help" || a == "-h") return std::fputs(command_usage("tracelog"), stdout), 0;
    if (a == "--once")
      once = true;
    else
      return std::fprintf(stderr, "ember: tracelog: unknown option '%s'\n", a.c_str()), 2;
  }
  std::vector<PublishedMap> maps;
  read_published(&maps, nullptr);
  std::unique_ptr<RingBufferConsumer> consumer;
  auto print = [](const void* d, size_t n) {
    std::fwrite(d, 1, n, stdout);
    return 0;
  };
  for (const auto& pm : maps) {
    if (pm.name != "trace_pipe") continue;
    auto m = open_published(pm);
    if (!m) {
      std::fprintf(stderr, "ember: %s\n", m.error().message.c_str());
      continue;
    }
    if (!consumer) {
      auto c = RingBufferConsumer::create(*m, print);
      if (!c) return std::fprintf(stderr, "ember: %s\n", c.error().message.c_str()), 1;
      consumer = std::move(*c);
    } else if (auto st = consumer->add(*m, print); !st) {
      std::fprintf(stderr, "ember: %s\n", st.error().message.c_str());
    }
  }
  if (!consumer) {
    std::fprintf(stderr, "ember: no running Ember process publishes a trace pipe\n");
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  do {
    consumer->poll(once ? 0 : 200);
    std::fflush(stdout);
  } while (!once && !g_stop);
  return 0;
}

}  // namespace ember::cli
