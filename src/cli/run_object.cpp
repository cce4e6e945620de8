// `ember run OBJ`: BPF_PROG_TEST_RUN for an object file. Loads the object
// into a runtime, runs one program on the given context or data, and prints
// the return value, the mean duration, the data after the run and, on
// request, every map.
#include "cli/run_object.hpp"

#include <chrono>
#include <cinttypes>
#include <cstdio>

#include "cli/io.hpp"
#include "cli/map_format.hpp"
#include "ember/ringbuf.hpp"
#include "ember/runtime.hpp"
#include "ember/verifier.hpp"

namespace ember::cli {
namespace {

int error(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "ember: %s\n", msg.c_str());
  return code;
}

Result<Prog*> pick_program(const Object& obj, const std::string& want) {
  std::string names;
  for (Prog* p : obj.progs()) names += "\n  " + p->name() + " (SEC(\"" + p->section() + "\"))";
  if (!want.empty()) {
    if (Prog* p = obj.prog(want)) return p;
    return fail(obj.name(), ": no program named '", want, "'; the object has:", names);
  }
  if (obj.progs().size() == 1) return obj.progs()[0];
  if (obj.progs().empty()) return fail(obj.name(), ": the object has no programs");
  return fail(obj.name(), ": the object has several programs; pick one with --prog:", names);
}

void print_maps(const Object& obj, bool json) {
  if (json) {
    std::printf(",\"maps\":[");
    for (size_t i = 0; i < obj.maps().size(); ++i) {
      const Map& m = *obj.maps()[i];
      std::printf("%s{\"name\":\"%s\",\"entries\":%s}", i ? "," : "", m.spec().name.c_str(),
                  map_dump_json(m).c_str());
    }
    std::printf("]");
    return;
  }
  for (const MapPtr& m : obj.maps()) {
    std::printf("\nmap %s (%s):\n", m->spec().name.c_str(), std::string(map_type_name(m->type())).c_str());
    print_map_dump(stdout, *m);
  }
}

}  // namespace

int run_object(const std::string& path, const ObjectRunOptions& o) {
  Runtime rt;
  auto obj = Object::open_file(rt, path);
  if (!obj) return error(obj.error().message);
  // Every program is loaded; the one that runs must pass the verifier first
  // (libbpf would refuse the whole object; running one program of it is
  // what BPF_PROG_TEST_RUN on that program needs).
  LoadOptions lo;
  lo.verify = false;
  if (auto st = (*obj)->load(lo); !st) return error(st.error().message);
  auto prog = pick_program(**obj, o.prog);
  if (!prog) return error(prog.error().message, 2);
  if (!o.unverified) {
    VerifyResult r = verify((*prog)->code(), (*prog)->verify_input());
    if (!r.ok)
      return error(path + ": section " + (*prog)->section() + ", program " + (*prog)->name() +
                   ": the verifier rejects it [" + std::string(reason_name(r.reason)) + "]: " + r.message +
                   (r.state.empty() ? "" : "\n  state: " + r.state) +
                   "\n  (`ember verify` explains more; --unverified runs it anyway, in checked mode)");
  }

  std::vector<uint8_t> data = o.data_in, ctx = o.ctx_in;
  RunInput in;
  if (!ctx.empty()) {
    in.ctx = ctx.data();
    in.ctx_size = ctx.size();
    in.packet = data;
  } else if (!data.empty()) {
    in = RunInput::memory(data);
  }
  RunOptions ro;
  // Checked either way for now: verified programs could run unchecked only
  // on the contexts the verifier assumed, which Ember builds for syscall
  // programs alone (Prog::run decides that for API callers).
  ro.checked = true;
  ro.insn_budget = o.budget;
  ro.random_seed = o.seed;
  uint64_t r0 = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < o.repeat; ++i) {
    auto r = (*prog)->run(in, ro);
    if (!r) return error(path + ": program " + (*prog)->name() + ": " + r.error().message);
    r0 = *r;
  }
  auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  // What the program printed, as trace_pipe shows it, on stderr.
  if (rt.trace_pipe())
    if (auto c = RingBufferConsumer::create(rt.trace_pipe(), [](const void* d, size_t n) {
          std::fwrite(d, 1, n, stderr);
          return 0;
        }))
      (*c)->consume();
  uint64_t mean = static_cast<uint64_t>(ns) / o.repeat;

  if (!o.data_out.empty())
    if (auto st = write_file(o.data_out, data); !st) return error(st.error().message);
  if (!o.ctx_out.empty())
    if (auto st = write_file(o.ctx_out, ctx); !st) return error(st.error().message);
  if (o.json) {
    std::printf("{\"retval\":%" PRIu64 ",\"duration\":%" PRIu64, r0, mean);
    if (!data.empty()) std::printf(",\"data_out\":\"%s\"", hex_bytes(data.data(), data.size()).c_str());
    if (o.dump_maps) print_maps(**obj, true);
    std::printf("}\n");
    return 0;
  }
  // bpftool prog run's wording.
  std::printf("Return value: %" PRIu64 ", duration%s: %" PRIu64 "ns\n", r0, o.repeat > 1 ? " (average)" : "",
              mean);
  if (!data.empty() && o.data_out.empty())
    std::printf("Data out (%zu bytes):\n%s\n", data.size(), hex_bytes(data.data(), data.size()).c_str());
  if (o.dump_maps) print_maps(**obj, false);
  return 0;
}

}  // namespace ember::cli
