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
  // what BPF_PROG_TEST_RUN on that program needs). The others are verified
  // too, as tail calls from a verified program reach only verified ones;
  // a rejection of one of them only keeps it out of reach.
  LoadOptions lo;
  lo.verify = false;
  lo.jit = !o.interp;
  if (auto st = (*obj)->load(lo); !st) return error(st.error().message);
  auto prog = pick_program(**obj, o.prog);
  if (!prog) return error(prog.error().message, 2);
  if (!o.unverified) {
    for (Prog* other : (*obj)->progs())
      if (other != *prog) (void)other->verify();
    VerifyResult r = (*prog)->verify();
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
  // Unchecked where Prog::run finds the verifier's proof covers the input
  // (verified, and a context like the one it assumed); checked otherwise.
  ro.checked = false;
  ro.insn_budget = o.budget;
  ro.random_seed = o.seed;
  Engine engine = o.interp ? Engine::Interpreter : Engine::Jit;
  RunPlan plan = (*prog)->plan(in, ro, engine);
  if (o.interp && !plan.checked) plan.why = "--interp";
  uint64_t r0 = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < o.repeat; ++i) {
    auto r = (*prog)->run(in, ro, engine);
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
    std::printf("{\"retval\":%" PRIu64 ",\"duration\":%" PRIu64 ",\"engine\":\"%s\",\"checked\":%s", r0, mean,
                std::string(engine_name(plan.engine)).c_str(), plan.checked ? "true" : "false");
    if (!plan.why.empty()) std::printf(",\"engine_note\":%s", json_text(plan.why).c_str());
    if (!data.empty()) std::printf(",\"data_out\":\"%s\"", hex_bytes(data.data(), data.size()).c_str());
    if (o.dump_maps) print_maps(**obj, true);
    std::printf("}\n");
    return 0;
  }
  // bpftool prog run's wording.
  std::printf("Return value: %" PRIu64 ", duration%s: %" PRIu64 "ns\n", r0, o.repeat > 1 ? " (average)" : "",
              mean);
  std::printf("Engine: %s%s%s\n", plan.engine == Engine::Jit ? "jit (x86-64)" : "interpreter",
              plan.engine == Engine::Jit ? ""
              : plan.checked             ? ", checked mode"
                                         : ", fast mode",
              plan.why.empty() ? "" : (" (" + plan.why + ")").c_str());
  if (!data.empty() && o.data_out.empty())
    std::printf("Data out (%zu bytes):\n%s\n", data.size(), hex_bytes(data.data(), data.size()).c_str());
  if (o.dump_maps) print_maps(**obj, false);
  return 0;
}

}  // namespace ember::cli
