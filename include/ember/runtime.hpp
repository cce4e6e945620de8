// The C++ API: a Runtime owns maps and programs (the user-space stand-in
// for the kernel's map and program ids); an Object is a clang-built ELF
// object opened, adjusted (global data, map sizes) and loaded into it, like
// libbpf's bpf_object; a Prog is one of its programs, ready to run.
//
//   ember::Runtime rt;
//   auto obj = ember::Object::open_file(rt, "counter.bpf.o");
//   (*obj)->global_data(".rodata")  // set `const volatile` parameters here
//   (*obj)->load();  // verifies, and compiles with the JIT where it can
//   (*obj)->prog("count")->run(ember::RunInput::memory(packet));
//   (*obj)->map("counts")->lookup(&key, &value);
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/helpers.hpp"
#include "ember/isa.hpp"
#include "ember/jit.hpp"
#include "ember/map_def.hpp"
#include "ember/maps.hpp"
#include "ember/object.hpp"
#include "ember/result.hpp"
#include "ember/verifier.hpp"
#include "ember/vm.hpp"

namespace ember {

class Prog;
class Object;

struct RuntimeOptions {
  MapOptions maps;  // CPUs of per-CPU maps ...
  // Publish maps and programs for other processes (`ember map show`,
  // `ember map dump`...) in the run directory (src/runtime/registry.hpp).
  bool publish = false;
  // Size of the trace pipe (bpf_trace_printk's ring buffer); 0: none, lines
  // go to RunOptions::trace_out.
  uint32_t trace_pipe_bytes = 1u << 18;
};

class Runtime final : public MapResolver {
 public:
  explicit Runtime(RuntimeOptions opts = {});
  ~Runtime() override;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Creates a map and gives it the next id (ids start at 1, as the kernel's).
  // With a pin path, the map lives in that file and an existing compatible
  // one is reused (libbpf's pinning by name).
  Result<MapPtr> create_map(const MapSpec& spec, const std::string& pin_path = "");
  Map* map_by_id(uint32_t id) const override;
  MapPtr map_ptr(uint32_t id) const;
  std::vector<MapPtr> maps() const;
  bool owns_map(const void* ptr) const;
  // Forgets a map (objects release theirs when destroyed).
  void release_map(uint32_t id);

  const Prog* prog_by_id(uint32_t id) const;
  std::vector<const Prog*> progs() const;
  // The program whose interpreter this is (tail calls find its JIT code).
  const Prog* prog_by_interpreter(const Interpreter* interp) const;

  const HelperTable& helpers() const { return helpers_; }
  // bpf_trace_printk's ring buffer, named "trace_pipe"; null if disabled.
  const MapPtr& trace_pipe() const { return trace_pipe_; }
  // This process's place in the cgroup v2 hierarchy, for its programs'
  // bpf_current_task_under_cgroup (thread-safe).
  CgroupView* cgroup_view() const { return cgroups_.get(); }

 private:
  friend class Object;
  friend class Prog;
  uint32_t add_prog(const Prog* p);
  void release_prog(uint32_t id);
  void prog_changed() const;  // republishes (a program verified after load)
  void republish() const;     // with mu_ held

  RuntimeOptions opts_;
  HelperTable helpers_;
  mutable std::shared_mutex mu_;
  std::map<uint32_t, MapPtr> maps_;
  std::map<const void*, uint32_t> map_ids_;
  std::map<uint32_t, const Prog*> progs_;
  std::map<const Interpreter*, const Prog*> prog_interps_;
  uint32_t next_map_id_ = 1, next_prog_id_ = 1;
  MapPtr trace_pipe_;
  std::unique_ptr<CgroupView> cgroups_;
};

struct LoadOptions {
  bool verify = true;  // false: run unverified, in checked mode only
  int log_level = 0;   // the verifier's (1: path and state of a rejection)
  // Compile each verified program with the JIT as it is verified (x86-64
  // Linux). A program the JIT cannot compile runs in the interpreter
  // (Prog::jit_error() says why); unverified code never reaches the JIT.
  bool jit = true;
  bool blind_constants = false;  // JitOptions::blind_constants
};

// What runs a program: the x86-64 JIT, the default for verified programs, or
// the interpreter (the reference semantics; checked mode for everything the
// verifier has not proven safe).
enum class Engine { Jit, Interpreter };
std::string_view engine_name(Engine e);  // "jit", "interpreter"

// How Prog::run runs a program on a given input, and why.
struct RunPlan {
  Engine engine;
  bool checked;     // the interpreter's checked mode
  std::string why;  // why not the JIT ("" when it is the JIT)
};

// A loaded program: its code as linked (maps named by index, for the
// verifier, the disassembler and messages) and as it runs (map addresses).
class Prog final : public HelperEnv {
 public:
  const std::string& name() const { return linked_.name; }
  const std::string& section() const { return linked_.section; }
  ProgType type() const { return linked_.type.def->prog_type; }
  uint32_t id() const { return id_; }
  const Object& object() const { return *obj_; }
  const ObjectProgram& linked() const { return linked_; }
  const Program& code() const { return code_; }
  const Interpreter& interpreter() const { return *interp_; }
  // The maps the program names, in the order of its map[idx] references.
  const std::vector<MapPtr>& maps() const { return maps_; }

  // What the verifier needs to know of it: its type, its maps (read-only
  // global data with its bytes) and its C source lines. Valid while the
  // object lives.
  VerifyInput verify_input() const;
  // Whether it passed the verifier, and the verifier's statistics.
  bool verified() const { return verified_; }
  const VerifyStats& verify_stats() const { return verify_stats_; }
  // Verifies a program its object loaded with LoadOptions::verify false (as
  // `ember run` does for the one program it runs); if it passes, it runs as
  // if verified at load, JIT code included. Not while it runs elsewhere.
  VerifyResult verify(int log_level = 0);
  // Runs the program once; opts.helper_env is set to this program. A
  // program that did not pass the verifier always runs in checked mode; a
  // verified one runs unchecked when opts.checked is false and its input is
  // what the verifier assumed: a syscall context at least as large as the
  // bytes it reads, or for kprobe-type programs (uprobes, USDT) a read-only
  // struct pt_regs of 168 bytes; other program types' contexts (xdp_md,
  // __sk_buff ...) are not built yet, so they run in checked mode.
  // Unchecked runs use the JIT code when there is some and `engine` is
  // Engine::Jit, else the interpreter's fast mode; plan() says which.
  Result<uint64_t> run(const RunInput& in, RunOptions opts = {}, Engine engine = Engine::Jit) const;
  RunPlan plan(const RunInput& in, const RunOptions& opts, Engine engine = Engine::Jit) const;
  // Its JIT code (null if not verified, not compiled or the JIT failed) and,
  // when verified but without JIT code, why.
  const JitProgram* jit() const { return jit_.get(); }
  const std::string& jit_error() const { return jit_error_; }

  // HelperEnv
  Map* map_at(uint64_t ptr) const override;
  void grant_static(MemoryGuard& guard) const override;
  const Interpreter* program_by_id(uint32_t id) const override;
  const JitProgram* jit_program(const Interpreter& prog) const override;
  Map* trace_pipe() const override { return rt_->trace_pipe().get(); }
  CgroupView* cgroup_view() const override { return rt_->cgroup_view(); }

 private:
  friend class Object;
  Prog() = default;
  RunPlan choose(const RunInput& in, const RunOptions& opts, Engine engine) const;  // plan() without why
  void compile_jit();
  const Object* obj_ = nullptr;
  const Runtime* rt_ = nullptr;
  uint32_t id_ = 0;
  ObjectProgram linked_;
  Program code_;       // as linked
  Program exec_code_;  // map references resolved to addresses
  std::unique_ptr<Interpreter> interp_;
  std::vector<MapPtr> maps_;
  std::vector<MemRegion> static_regions_;  // global data it may touch
  bool verified_ = false;
  VerifyStats verify_stats_;
  bool use_jit_ = true;  // LoadOptions::jit
  bool blind_constants_ = false;
  std::vector<JitHint> jit_hints_;   // from the verifier's facts
  std::unique_ptr<JitProgram> jit_;  // declared after interp_, which it uses: freed first
  std::string jit_error_;
};

class Object {
 public:
  static Result<std::unique_ptr<Object>> open_file(Runtime& rt, const std::string& path);
  static Result<std::unique_ptr<Object>> open_memory(Runtime& rt, std::span<const uint8_t> bytes,
                                                     std::string name);
  ~Object();
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;

  const std::string& name() const { return linked_.name; }
  const std::string& license() const { return linked_.license; }
  bool loaded() const { return loaded_; }
  // The object as read and linked: programs, BTF, line info.
  const ObjectFile& file() const { return linked_; }

  // Before load: the maps the object declares; sizes and flags may be changed.
  std::vector<MapDef>& map_defs() { return defs_; }
  // The bytes of a global data section (".data", ".rodata", ".bss",
  // ".data.NAME" ...): its initial value before load, the live map value
  // after. An error if the object has no such section.
  Result<std::span<uint8_t>> global_data(std::string_view section);

  // Creates the maps, resolves every map and global data reference, fills
  // prog arrays and maps of maps from their `values`, verifies each program
  // (unless opts.verify is false: an explicit choice, after which its
  // programs run only in the interpreter's checked mode) and prepares it to
  // run. On error nothing stays behind in the runtime.
  Status load(const LoadOptions& opts = {});

  Map* map(std::string_view name) const;
  const std::vector<MapPtr>& maps() const { return maps_; }
  Prog* prog(std::string_view name_or_section) const;
  std::vector<Prog*> progs() const;

 private:
  Object(Runtime& rt, std::vector<uint8_t> bytes, std::string name);
  Status open();
  Status create_maps();
  Status fill_init_slots();
  Status add_data_sections();
  Status add_kconfig();
  Status prepare(Prog& p);
  Status verify_prog(Prog& p, const LoadOptions& opts);
  struct Resolved {
    MapPtr map;
    uint64_t address;  // the map, or the byte of its value the reference names
    bool value;        // a value reference (map_value[idx]+off)
    uint64_t offset;
  };
  Result<Resolved> resolve_ref(const DataRef& ref) const;
  int def_index(std::string_view name) const;
  void unload();

  Runtime& rt_;
  std::vector<uint8_t> bytes_;
  std::vector<std::string> externs_;   // the .kconfig map's variables, 8 bytes each
  std::vector<std::string> new_pins_;  // pinned by the load in progress
  ObjectFile linked_;
  std::vector<MapDef> defs_;
  std::vector<MapPtr> maps_;  // one per def, after load
  std::vector<std::unique_ptr<Prog>> progs_;
  bool loaded_ = false;
};

}  // namespace ember
