// The trace pipe: bpf_trace_printk lines in a ring buffer map, each
// prefixed the way tracefs's trace_pipe prefixes them ("comm-pid [cpu]
// flags timestamp: bpf_trace_printk: text"), so that tools that read the
// kernel's trace_pipe read Ember's too.
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "ember/helpers.hpp"
#include "ember/maps.hpp"
#include "maps/ringbuf_map.hpp"

namespace ember {
namespace {

std::string trace_prefix() {
  char comm[17] = {};
  prctl(PR_GET_NAME, comm);
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int cpu = sched_getcpu();
  char buf[96];
  std::snprintf(buf, sizeof buf, "%16s-%-7ld [%03d] ..... %5ld.%06ld: bpf_trace_printk: ", comm,
                static_cast<long>(syscall(SYS_gettid)), cpu < 0 ? 0 : cpu, static_cast<long>(ts.tv_sec),
                static_cast<long>(ts.tv_nsec / 1000));
  return buf;
}

}  // namespace

void emit_trace_line(HelperCall& call, const std::string& text) {
  Map* pipe = call.env ? call.env->trace_pipe() : nullptr;
  auto* ring = pipe ? dynamic_cast<maps::RingbufMap*>(pipe) : nullptr;
  if (!ring) {
    std::fputs(text.c_str(), call.trace_out);
    return;
  }
  std::string line = trace_prefix() + text;
  if (line.empty() || line.back() != '\n') line += '\n';
  // A full pipe drops the line, as tracefs overwrites unread ones.
  ring->output(line.data(), line.size(), 0);
}

}  // namespace ember
