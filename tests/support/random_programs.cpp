// See random_programs.hpp. The generator keeps a rough abstract state (what
// each register holds, which stack bytes are written, which stack slots hold
// spilled pointers) and builds programs out of fragments, each of which
// breaks a rule with a small probability.
#include "support/random_programs.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <map>
#include <optional>

#include "ember/asm.hpp"
#include "ember/helpers.hpp"
#include "verifier/prog_type_rules.hpp"

namespace ember::testing {

namespace {

// ---- encoding ----
constexpr uint8_t kAlu = 0x04, kAlu64 = 0x07, kJmp = 0x05, kJmp32 = 0x06;
constexpr uint8_t kSrcX = 0x08;
constexpr uint8_t kAdd = 0x00, kSub = 0x10, kMul = 0x20, kDiv = 0x30, kOr = 0x40, kAnd = 0x50, kLsh = 0x60,
                  kRsh = 0x70, kNeg = 0x80, kMod = 0x90, kXor = 0xa0, kMov = 0xb0, kArsh = 0xc0, kEnd = 0xd0;
constexpr uint8_t kJa = 0x00, kJeq = 0x10, kJgt = 0x20, kJge = 0x30, kJset = 0x40, kJne = 0x50, kJsgt = 0x60,
                  kJsge = 0x70, kJlt = 0xa0, kJle = 0xb0, kJslt = 0xc0, kJsle = 0xd0;
constexpr uint8_t kCall = 0x85, kExit = 0x95, kLdImm64 = 0x18;
constexpr int32_t kMapLookup = 1, kKtimeGetNs = 5, kGetPrandomU32 = 7;

uint8_t size_code(int size) {
  switch (size) {
    case 1: return 0x10;
    case 2: return 0x08;
    case 4: return 0x00;
    default: return 0x18;
  }
}
uint8_t ldx(int size) { return static_cast<uint8_t>(0x61 | size_code(size)); }
uint8_t ldsx(int size) { return static_cast<uint8_t>(0x81 | size_code(size)); }
uint8_t st(int size) { return static_cast<uint8_t>(0x62 | size_code(size)); }
uint8_t stx(int size) { return static_cast<uint8_t>(0x63 | size_code(size)); }

RawInsn mk(uint8_t opcode, int dst, int src, int off, int32_t imm) {
  RawInsn r;
  r.opcode = opcode;
  r.set_regs(static_cast<uint8_t>(dst), static_cast<uint8_t>(src));
  r.off = static_cast<int16_t>(off);
  r.imm = imm;
  return r;
}

// ---- the generator's view of the program state ----
enum class Kind : uint8_t { None, Scalar, Stack, Mem, Ctx, MapValue, MapValueOrNull };

struct Reg {
  Kind kind = Kind::None;
  int64_t off = 0;  // Stack: offset from r10
  int map = 0;      // MapValue*: which map
  bool operator==(const Reg&) const = default;
  bool pointer() const { return kind != Kind::None && kind != Kind::Scalar; }
};

struct State {
  std::array<Reg, kNumRegs> r{};
  std::array<bool, kStackSize> init{};  // stack byte r10-512+i holds written data
  std::map<int, Reg> spills;            // 8-aligned slot offset -> spilled pointer

  bool stack_init(int off, int size) const {
    for (int i = 0; i < size; ++i) {
      int b = off + i + kStackSize;
      if (b < 0 || b >= kStackSize || !init[b]) return false;
    }
    return true;
  }
  void stack_write(int off, int size, bool scalar) {
    for (int i = 0; i < size; ++i) {
      int b = off + i + kStackSize;
      if (b >= 0 && b < kStackSize) init[b] = scalar;
    }
    for (auto it = spills.begin(); it != spills.end();) {
      if (it->first < off + size && off < it->first + 8)
        it = spills.erase(it);
      else
        ++it;
    }
  }
  // Where paths join: keep only what both sides agree on.
  void join(const State& o) {
    for (int i = 0; i < kNumRegs; ++i)
      if (!(r[i] == o.r[i])) r[i] = Reg{};
    for (int i = 0; i < kStackSize; ++i) init[i] = init[i] && o.init[i];
    for (auto it = spills.begin(); it != spills.end();) {
      auto j = o.spills.find(it->first);
      if (j == o.spills.end() || !(j->second == it->second))
        it = spills.erase(it);
      else
        ++it;
    }
  }
};

struct MapInfo {
  MapSpec spec;
};

class Gen {
 public:
  explicit Gen(std::mt19937_64& rng) : rng_(rng) {}

  RandomProgram build() {
    RandomProgram p;
    bad_ = 0.015 + 0.05 * uniform();  // how often a fragment breaks a rule
    choose_type(p.input);
    make_maps(p.input);
    maps_ = &p.input.maps;
    st_.r[1].kind = memory_mode_ ? Kind::Mem : Kind::Ctx;
    if (memory_mode_) st_.r[2].kind = Kind::Scalar;
    st_.r[10] = Reg{Kind::Stack, 0, 0};
    if (!chance(0.1)) mov_reg(6, 1);
    if (memory_mode_ && chance(0.5)) mov_reg(7, 2);
    int n = 3 + pick(12);
    for (int i = 0; i < n && code_.size() < 400; ++i) fragment(0);
    finish();
    p.insns = std::move(code_);
    return p;
  }

 private:
  // ---- randomness ----
  double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  bool chance(double p) { return uniform() < p; }
  bool bad() { return chance(bad_); }
  int pick(int n) { return n <= 1 ? 0 : static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  int range(int lo, int hi) { return lo + pick(hi - lo + 1); }
  template <typename T, size_t N>
  T one_of(const T (&a)[N]) {
    return a[pick(static_cast<int>(N))];
  }
  int32_t small_imm() {
    switch (pick(4)) {
      case 0: return range(-8, 8);
      case 1: return range(0, 255);
      case 2: return static_cast<int32_t>(rng_());
      default: return one_of({0, 1, -1, 7, 8, 15, 16, 31, 32, 63, 64, 255, 0x7fffffff, INT32_MIN});
    }
  }

  // ---- program type and maps ----
  void choose_type(VerifyInput& in) {
    memory_mode_ = chance(0.7);
    if (memory_mode_) {
      static constexpr ProgType kTypes[] = {
          ProgType::Syscall,  ProgType::SocketFilter, ProgType::Kprobe,       ProgType::Xdp,
          ProgType::SchedCls, ProgType::Tracepoint,   ProgType::RawTracepoint};
      in.type = one_of(kTypes);
      mem_size_ = one_of({0, 1, 8, 16, 24, 32, 64, 100, 256});
      in.mem_size = mem_size_;
    } else {
      static constexpr ProgType kTypes[] = {
          ProgType::Kprobe,       ProgType::Tracepoint, ProgType::PerfEvent, ProgType::RawTracepoint,
          ProgType::SocketFilter, ProgType::SchedCls,   ProgType::Xdp};
      in.type = one_of(kTypes);
      in.mem_size = -1;
    }
    type_ = in.type;
    const verifier::ProgTypeRules& rules = verifier::rules_for(type_);
    ret_checked_ = rules.ret_checked;
    ret_min_ = rules.ret_min, ret_max_ = rules.ret_max;
  }

  void make_maps(VerifyInput& in) {
    MapSpec h;
    h.name = "h";
    h.type = MapType::Hash;
    h.key_size = chance(0.5) ? 4 : 8;
    h.value_size = static_cast<uint32_t>(one_of({4, 8, 12, 16, 24, 32, 48, 64}));
    h.max_entries = 16;
    MapSpec a;
    a.name = "a";
    a.type = MapType::Array;
    a.key_size = 4;
    a.value_size = static_cast<uint32_t>(one_of({8, 16, 20, 32, 64}));
    a.max_entries = 1;
    a.map_flags = map_flag::kMmapable;  // direct value access (map_value[idx:1])
    in.maps = {h, a};
  }
  const MapSpec& map(int i) const { return (*maps_)[static_cast<size_t>(i)]; }

  // ---- emission ----
  size_t emit(RawInsn r) {
    code_.push_back(r);
    return code_.size() - 1;
  }
  void mov_reg(int dst, int src) {
    emit(mk(kAlu64 | kMov | kSrcX, dst, src, 0, 0));
    st_.r[dst] = st_.r[src];
  }
  void mov_imm(int dst, int32_t imm) {
    emit(mk(kAlu64 | kMov, dst, 0, 0, imm));
    st_.r[dst] = Reg{Kind::Scalar};
  }
  void ld_imm64(int dst, int pseudo, int32_t lo, int32_t hi) {
    emit(mk(kLdImm64, dst, pseudo, 0, lo));
    emit(mk(0, 0, 0, 0, hi));
  }
  // Patches the forward jump at `at` to land at the current end.
  void land(size_t at) { code_[at].off = static_cast<int16_t>(code_.size() - at - 1); }

  // ---- registers ----
  std::vector<int> regs_of(Kind k) const {
    std::vector<int> v;
    for (int i = 0; i < 10; ++i)
      if (st_.r[i].kind == k) v.push_back(i);
    return v;
  }
  std::vector<int> pointer_regs() const {
    std::vector<int> v;
    for (int i = 0; i <= 10; ++i)
      if (st_.r[i].pointer() && st_.r[i].kind != Kind::MapValueOrNull) v.push_back(i);
    return v;
  }
  // A register to overwrite: preferably one holding nothing or a number.
  int dst_reg() {
    std::vector<int> free;
    for (int i = 0; i < 10; ++i)
      if (!st_.r[i].pointer()) free.push_back(i);
    if (!free.empty() && !chance(0.05)) return free[static_cast<size_t>(pick(static_cast<int>(free.size())))];
    return pick(10);
  }
  // A register to overwrite other than those given.
  int other_reg(std::initializer_list<int> not_these) {
    auto ok = [&](int r) { return std::find(not_these.begin(), not_these.end(), r) == not_these.end(); };
    for (int tries = 0; tries < 8; ++tries) {
      int r = dst_reg();
      if (ok(r)) return r;
    }
    for (int r = 0; r < 10; ++r)
      if (ok(r) && !st_.r[r].pointer()) return r;
    return ok(9) ? 9 : 8;
  }
  // A register holding a number, made one if there is none.
  int scalar_reg() {
    if (bad() && chance(0.3)) return pick(10);  // maybe uninitialized, maybe a pointer
    auto v = regs_of(Kind::Scalar);
    if (v.empty() || chance(0.15)) {
      int d = dst_reg();
      if (memory_mode_ && mem_size_ >= 8 && chance(0.3) && !pointer_regs().empty() && has(Kind::Mem)) {
        int base = regs_of(Kind::Mem)[0];
        int size = one_of({1, 2, 4, 8});
        emit(mk(ldx(size), d, base, range(0, mem_size_ - size), 0));
        st_.r[d] = Reg{Kind::Scalar};
      } else {
        mov_imm(d, small_imm());
      }
      return d;
    }
    return v[static_cast<size_t>(pick(static_cast<int>(v.size())))];
  }
  bool has(Kind k) const { return !regs_of(k).empty(); }

  // ---- fragments ----
  void fragment(int depth) {
    switch (pick(depth > 1 ? 9 : 13)) {
      case 0:
      case 1:
      case 2: alu(); break;
      case 3: stack_store(); break;
      case 4: stack_load(); break;
      case 5: spill_fill(); break;
      case 6: const_access(); break;
      case 7: var_access(); break;
      case 8: helper_call(); break;
      case 9: map_lookup(depth); break;
      case 10: cond_jump(depth); break;
      case 11: loop(); break;
      default: map_value_direct(); break;
    }
  }

  void alu() {
    int dst = scalar_reg();
    bool is64 = chance(0.6);
    uint8_t cls = is64 ? kAlu64 : kAlu;
    int width = is64 ? 64 : 32;
    if (bad() && chance(0.3) && !pointer_regs().empty()) {  // arithmetic on a pointer
      auto p = pointer_regs();
      dst = p[static_cast<size_t>(pick(static_cast<int>(p.size())))];
    }
    static constexpr uint8_t kOps[] = {kAdd, kSub, kMul, kDiv, kOr,   kAnd, kLsh, kRsh,
                                       kNeg, kMod, kXor, kMov, kArsh, kEnd, kMov, kAnd};
    uint8_t op = one_of(kOps);
    bool reg = chance(0.4);
    int src = reg ? scalar_reg() : 0;
    int16_t off = 0;
    int32_t imm = small_imm();
    if (op == kNeg) {
      emit(mk(cls | kNeg, dst, 0, 0, 0));
    } else if (op == kEnd) {
      int32_t w = one_of({16, 32, 64});
      if (bad()) w = one_of({0, 8, 24});
      switch (pick(3)) {
        case 0: emit(mk(kAlu | kEnd, dst, 0, 0, w)); break;          // le
        case 1: emit(mk(kAlu | kEnd | kSrcX, dst, 0, 0, w)); break;  // be
        default: emit(mk(kAlu64 | kEnd, dst, 0, 0, w)); break;       // bswap
      }
    } else if (op == kMov && reg && chance(0.5)) {  // movsx
      off = static_cast<int16_t>(is64 ? one_of({8, 16, 32}) : one_of({8, 16}));
      emit(mk(cls | kMov | kSrcX, dst, src, off, 0));
    } else {
      if ((op == kDiv || op == kMod) && chance(0.4)) off = 1;  // sdiv, smod
      if (!reg) {
        if (op == kLsh || op == kRsh || op == kArsh) imm = bad() ? range(width, 70) : pick(width);
        if ((op == kDiv || op == kMod) && imm == 0 && !bad()) imm = range(1, 100);
      }
      emit(mk(static_cast<uint8_t>(cls | op | (reg ? kSrcX : 0)), dst, src, off, reg ? 0 : imm));
    }
    if (!st_.r[dst].pointer())
      st_.r[dst] = Reg{Kind::Scalar};
    else
      st_.r[dst] = Reg{};  // whatever the verifier makes of it, not used again
  }

  int random_stack_off(int size) {
    if (bad()) return one_of({0, 8, -513, -520, -3, -7, 504, -1});
    return -size * range(1, kStackSize / size);
  }

  void stack_store() {
    int size = one_of({1, 2, 4, 8});
    int off = random_stack_off(size);
    int base = 10;
    int disp = off;
    // Sometimes through a copy of r10 moved by a constant.
    if (chance(0.25)) {
      int d = dst_reg();
      int k = -8 * range(0, 32);
      mov_reg(d, 10);
      emit(mk(kAlu64 | kAdd, d, 0, 0, k));
      st_.r[d] = Reg{Kind::Stack, k, 0};
      base = d;
      disp = off - k;
    }
    if (chance(0.5)) {
      emit(mk(st(size), base, 0, disp, small_imm()));
    } else {
      int s = scalar_reg();
      emit(mk(stx(size), base, s, disp, 0));
    }
    st_.stack_write(off, size, true);
  }

  void stack_load() {
    int size = one_of({1, 2, 4, 8});
    // Mostly somewhere written (else write it first).
    std::vector<int> written;
    for (int off = -kStackSize; off < 0; off += size)
      if (st_.stack_init(off, size)) written.push_back(off);
    int off;
    if (bad()) {
      off = random_stack_off(size);
    } else if (written.empty()) {
      off = -size * range(1, kStackSize / size);
      emit(mk(st(size), 10, 0, off, small_imm()));
      st_.stack_write(off, size, true);
    } else {
      off = written[static_cast<size_t>(pick(static_cast<int>(written.size())))];
    }
    int d = dst_reg();
    emit(mk(chance(0.2) && size < 8 ? ldsx(size) : ldx(size), d, 10, off, 0));
    st_.r[d] = Reg{Kind::Scalar};
  }

  void spill_fill() {
    if (!st_.spills.empty() && chance(0.5)) {  // fill
      auto it = st_.spills.begin();
      std::advance(it, pick(static_cast<int>(st_.spills.size())));
      int d = dst_reg();
      int size = bad() ? 4 : 8;  // a narrow fill of a pointer is a scalar at best
      emit(mk(ldx(size), d, 10, it->first, 0));
      st_.r[d] = size == 8 ? it->second : Reg{};
      return;
    }
    // Spill a pointer: a fresh r10-derived one or one held already.
    int p;
    auto held = pointer_regs();
    held.erase(std::remove(held.begin(), held.end(), 10), held.end());
    if (held.empty() || chance(0.5)) {
      p = dst_reg();
      int k = -8 * range(1, 64);
      if (bad()) k = one_of({8, -520, 0});
      mov_reg(p, 10);
      emit(mk(kAlu64 | kAdd, p, 0, 0, k));
      st_.r[p] = Reg{Kind::Stack, k, 0};
    } else {
      p = held[static_cast<size_t>(pick(static_cast<int>(held.size())))];
    }
    int slot = -8 * range(1, 64);
    if (bad()) slot = one_of({-4, -516, 0});
    emit(mk(stx(8), 10, p, slot, 0));
    Reg spilled = st_.r[p];
    st_.stack_write(slot, 8, false);
    if (slot % 8 == 0 && slot >= -kStackSize && slot < 0) st_.spills[slot] = spilled;
  }

  // Bytes a pointer register may address from its own position: [lo, hi).
  bool bounds_of(const Reg& r, int64_t* lo, int64_t* hi) const {
    switch (r.kind) {
      case Kind::Stack: *lo = -kStackSize - r.off, *hi = -r.off; return true;
      case Kind::Mem: *lo = 0, *hi = mem_size_; return true;
      case Kind::MapValue: *lo = 0, *hi = map(r.map).value_size; return true;
      default: return false;
    }
  }

  void access(int base, int off, int size, bool through_var) {
    const Reg& r = st_.r[base];
    bool write = chance(0.4);
    // Variable offsets into the stack: reads need every byte of the range
    // written; mostly write.
    if (r.kind == Kind::Stack && through_var && !bad()) write = true;
    if (r.kind == Kind::Stack && !through_var && !write) {
      int abs = static_cast<int>(r.off) + off;
      if (!st_.stack_init(abs, size) && !bad()) write = true;
    }
    int d = dst_reg();
    if (write) {
      int k = pick(4);
      if (k == 0) {
        emit(mk(st(size), base, 0, off, small_imm()));
      } else if (k == 1 && (size == 4 || size == 8) && r.kind != Kind::Ctx) {
        int s = scalar_reg();
        int32_t aop = one_of({0x00, 0x40, 0x50, 0xa0}) | (chance(0.5) ? 0x01 : 0);
        emit(mk(size == 8 ? 0xdb : 0xc3, base, s, off, aop));
        if (aop & 1) st_.r[s] = Reg{Kind::Scalar};
      } else {
        int s = scalar_reg();
        if (bad() && !pointer_regs().empty()) s = pointer_regs()[0];  // a pointer leak
        emit(mk(stx(size), base, s, off, 0));
      }
      if (r.kind == Kind::Stack && !through_var) st_.stack_write(static_cast<int>(r.off) + off, size, true);
      if (r.kind == Kind::Stack && through_var) st_.spills.clear();
    } else {
      emit(mk(chance(0.15) && size < 8 ? ldsx(size) : ldx(size), d, base, off, 0));
      st_.r[d] = Reg{Kind::Scalar};
    }
  }

  // A load or store at a constant offset from a pointer register.
  void const_access() {
    auto ptrs = pointer_regs();
    if (bad() || ptrs.empty()) {  // through a number, or a maybe-NULL value
      int r = pick(10);
      access(r, range(-8, 8), one_of({1, 2, 4, 8}), false);
      return;
    }
    int base = ptrs[static_cast<size_t>(pick(static_cast<int>(ptrs.size())))];
    int size = one_of({1, 2, 4, 8});
    const Reg& r = st_.r[base];
    if (r.kind == Kind::Ctx) {
      ctx_access(base);
      return;
    }
    int64_t lo = 0, hi = 0;
    bounds_of(r, &lo, &hi);
    int off;
    if (hi - lo < size || bad()) {
      off = static_cast<int>(chance(0.5) ? hi - size + range(1, size) : lo - range(1, 8));
    } else {
      int64_t n = (hi - lo - size) / size;
      off = static_cast<int>(lo + size * (n > 0 ? range(0, static_cast<int>(n)) : 0));
      if (chance(0.1)) off = static_cast<int>(lo + range(0, static_cast<int>(hi - lo - size)));  // unaligned
    }
    access(base, off, size, false);
  }

  void ctx_access(int base) {
    const verifier::ProgTypeRules& rules = verifier::rules_for(type_);
    int size = 4, off = 0;
    bool write = false;
    for (int tries = 0; tries < 30; ++tries) {
      size = one_of({1, 2, 4, 8});
      off = size * range(0, std::max(1, static_cast<int>(rules.ctx_size) / size));
      write = chance(0.1);
      auto a = verifier::check_ctx_access(type_, off, size, write);
      if (a.ok && a.value == verifier::CtxValue::Scalar) break;
      if (bad()) break;
    }
    int d = dst_reg();
    if (write)
      emit(mk(stx(size), base, scalar_reg(), off, 0));
    else
      emit(mk(ldx(size), d, base, off, 0)), st_.r[d] = Reg{Kind::Scalar};
  }

  // A number made small (or not) by a few operations, added to a pointer,
  // and used: where the verifier's value tracking is tested.
  void var_access() {
    auto ptrs = pointer_regs();
    ptrs.erase(
        std::remove_if(ptrs.begin(), ptrs.end(), [&](int i) { return st_.r[i].kind == Kind::Ctx && !bad(); }),
        ptrs.end());
    if (ptrs.empty()) return;
    int base = ptrs[static_cast<size_t>(pick(static_cast<int>(ptrs.size())))];
    Reg b = st_.r[base];
    int64_t lo = 0, hi = 64;
    bounds_of(b, &lo, &hi);
    int size = one_of({1, 2, 4, 8});
    int64_t span = std::max<int64_t>(hi - lo - size, 0);
    // The number: something unknown, then a few operations.
    int x = other_reg({base});
    if (memory_mode_ && mem_size_ >= 8 && has(Kind::Mem) && chance(0.5)) {
      int m = regs_of(Kind::Mem)[0];
      int sz = one_of({1, 2, 4, 8});
      emit(mk(ldx(sz), x, m, range(0, mem_size_ - sz), 0));
    } else if (chance(0.5)) {
      int s = scalar_reg();
      if (s != x) emit(mk(kAlu64 | kMov | kSrcX, x, s, 0, 0));
    } else {
      emit(mk(kAlu64 | kMov, x, 0, 0, small_imm()));
    }
    st_.r[x] = Reg{Kind::Scalar};
    int steps = range(0, 3);
    for (int i = 0; i < steps; ++i) {
      bool is64 = chance(0.7);
      uint8_t cls = is64 ? kAlu64 : kAlu;
      switch (pick(11)) {
        case 0: emit(mk(cls | kAnd, x, 0, 0, static_cast<int32_t>(mask_for(span)))); break;
        case 1: emit(mk(cls | kRsh, x, 0, 0, is64 ? range(40, 63) : range(20, 31))); break;
        case 2:
          emit(mk(cls | kMod, x, 0, 0, static_cast<int32_t>(std::max<int64_t>(1, span + range(-2, 3)))));
          break;
        case 3: emit(mk(cls | kLsh, x, 0, 0, range(0, 4))); break;
        case 4: emit(mk(cls | kAdd, x, 0, 0, range(-16, 16))); break;
        case 5: emit(mk(cls | kMov | kSrcX, x, x, 0, 0)); break;  // w = w: zero-extends
        case 6: emit(mk(cls | kMov | kSrcX, x, x, is64 ? one_of({8, 16, 32}) : one_of({8, 16}), 0)); break;
        case 7: emit(mk(cls | kArsh, x, 0, 0, is64 ? range(50, 63) : range(20, 31))); break;
        case 8: emit(mk(cls | kDiv, x, 0, 0, range(1, 1 << 20))); break;
        case 9: emit(mk(cls | kMul, x, 0, 0, range(0, 3))); break;
        default: emit(mk(kAlu | kEnd, x, 0, 0, one_of({16, 32, 64}))); break;
      }
    }
    // The stack wants aligned accesses, variable offsets too.
    if (b.kind == Kind::Stack && size > 1 && !bad()) emit(mk(kAlu64 | kAnd, x, 0, 0, -size));
    // Maybe bounded by comparisons that jump over the access.
    std::vector<size_t> guards;
    int guard_kind = pick(4);
    if (guard_kind == 1 || guard_kind == 3) {
      uint8_t cls = chance(0.3) ? kJmp32 : kJmp;
      int32_t limit = static_cast<int32_t>(span + range(-2, 2));
      guards.push_back(emit(mk(cls | (chance(0.6) ? kJgt : kJsgt), x, 0, 0, limit)));
      if (guard_kind == 3) guards.push_back(emit(mk(cls | kJslt, x, 0, 0, chance(0.8) ? 0 : -4)));
    } else if (guard_kind == 2) {
      int y = other_reg({x, base});  // compare against a register holding the limit
      emit(mk(kAlu64 | kMov, y, 0, 0, static_cast<int32_t>(span + range(-1, 1))));
      st_.r[y] = Reg{Kind::Scalar};
      guards.push_back(emit(mk(kJmp | (chance(0.5) ? kJgt : kJge) | kSrcX, x, y, 0, 0)));
    }
    State before = st_;
    int t = other_reg({x, base});
    if (chance(0.8)) {
      emit(mk(kAlu64 | kMov | kSrcX, t, base, 0, 0));
      emit(mk(kAlu64 | kAdd | kSrcX, t, x, 0, 0));
    } else {  // scalar += pointer
      emit(mk(kAlu64 | kMov | kSrcX, t, x, 0, 0));
      emit(mk(kAlu64 | kAdd | kSrcX, t, base, 0, 0));
    }
    st_.r[t] = b;
    int off = static_cast<int>(lo);
    if (bad()) off += range(-4, 4);
    access(t, off, size, true);
    st_.r[t] = Reg{};
    for (size_t g : guards) land(g);
    if (!guards.empty()) st_.join(before);
  }

  static int64_t mask_for(int64_t span) {
    int64_t m = 0;
    while ((m << 1 | 1) <= span) m = m << 1 | 1;
    return m;
  }

  void helper_call() {
    int32_t id = chance(0.5) ? kKtimeGetNs : kGetPrandomU32;
    // Arguments it lacks. (No unknown ids: dead code may hold one, which
    // the verifier rightly ignores and the interpreter refuses to load.)
    if (bad()) id = one_of({2, 3, 6});
    emit(mk(kCall, 0, 0, 0, id));
    clobber();
    st_.r[0] = Reg{Kind::Scalar};
  }
  void clobber() {
    for (int i = 1; i <= 5; ++i) st_.r[i] = Reg{};
  }

  void map_lookup(int depth) {
    int m = pick(2);
    const MapSpec& spec = map(m);
    int ksize = static_cast<int>(spec.key_size);
    int koff = -8 * range(1, 16);
    if (!bad()) {
      if (ksize == 8 && chance(0.5))
        emit(mk(st(4), 10, 0, koff, range(0, 5))), emit(mk(st(4), 10, 0, koff + 4, 0));
      else
        emit(mk(st(ksize), 10, 0, koff, chance(0.8) ? range(0, 4) : small_imm()));
      st_.stack_write(koff, ksize, true);
    }
    ld_imm64(1, static_cast<int>(Pseudo::MapIdx), bad() ? 7 : m, 0);
    if (bad() && chance(0.5)) {
      emit(mk(kAlu64 | kMov, 2, 0, 0, koff));  // a number as the key
    } else {
      emit(mk(kAlu64 | kMov | kSrcX, 2, 10, 0, 0));
      emit(mk(kAlu64 | kAdd, 2, 0, 0, koff));
    }
    emit(mk(kCall, 0, 0, 0, kMapLookup));
    clobber();
    st_.r[0] = Reg{Kind::MapValueOrNull, 0, m};
    int keep = chance(0.5) ? one_of({7, 8, 9}) : 0;
    if (keep && !(bad() && chance(0.3))) mov_reg(keep, 0);
    int style = pick(10);
    if (style < 4) {  // if (!v) return 0;
      emit(mk(kJmp | kJne, 0, 0, 2, 0));
      emit(mk(kAlu64 | kMov, 0, 0, 0, 0));
      emit(mk(kExit, 0, 0, 0, 0));
      for (auto& r : st_.r)
        if (r.kind == Kind::MapValueOrNull) r.kind = Kind::MapValue;
    } else if (style < 9 || bad()) {  // if (v) { ... }
      size_t j = emit(mk(kJmp | kJeq, 0, 0, 0, 0));
      State before = st_;
      for (auto& r : before.r)
        if (r.kind == Kind::MapValueOrNull) r = Reg{Kind::Scalar};
      for (auto& r : st_.r)
        if (r.kind == Kind::MapValueOrNull) r.kind = Kind::MapValue;
      int n = range(1, 3);
      for (int i = 0; i < n; ++i) {
        if (chance(0.6))
          value_access(0);
        else
          fragment(depth + 1);
      }
      land(j);
      st_.join(before);
    } else {  // no check: the access must be rejected
      st_.r[0].kind = Kind::MapValue;
      value_access(0);
    }
  }
  void value_access(int r) {
    if (st_.r[r].kind != Kind::MapValue) {
      auto v = regs_of(Kind::MapValue);
      if (v.empty()) return;
      r = v[0];
    }
    if (chance(0.3)) {
      var_access();
      return;
    }
    int size = one_of({1, 2, 4, 8});
    int vs = static_cast<int>(map(st_.r[r].map).value_size);
    int off = vs >= size ? size * range(0, (vs - size) / size) : 0;
    if (bad()) off = chance(0.5) ? vs - size + range(1, size) : -range(1, 8);
    access(r, off, size, false);
  }

  // r = map_value[idx:1] + off: the array's first value, directly.
  void map_value_direct() {
    const MapSpec& a = map(1);
    int vs = static_cast<int>(a.value_size);
    int size = one_of({1, 2, 4, 8});
    int start = bad() ? vs + range(0, 8) : 8 * range(0, (vs - 1) / 8);
    int d = dst_reg();
    ld_imm64(d, static_cast<int>(Pseudo::MapIdxValue), 1, start);
    st_.r[d] = Reg{Kind::MapValue, 0, 1};
    int off = vs - start >= size ? size * range(0, (vs - start - size) / size) : 0;
    if (bad()) off = vs - start - size + range(1, size);
    access(d, off, size, false);
    st_.r[d] = Reg{};  // its offset is not the value's start: not used again
  }

  void cond_jump(int depth) {
    static constexpr uint8_t kConds[] = {kJeq,  kJgt, kJge, kJset, kJne, kJsgt,
                                         kJsge, kJlt, kJle, kJslt, kJsle};
    int a = scalar_reg();
    if (chance(0.2)) mov_imm(a, small_imm());  // a known value: one side is dead
    if (bad() && !pointer_regs().empty()) a = pointer_regs()[0];
    uint8_t cls = chance(0.3) ? kJmp32 : kJmp;
    uint8_t op = one_of(kConds);
    size_t j;
    if (chance(0.4)) {
      int b = scalar_reg();
      j = emit(mk(cls | op | kSrcX, a, b, 0, 0));
    } else {
      j = emit(mk(cls | op, a, 0, 0, small_imm()));
    }
    State before = st_;
    if (chance(0.05)) {  // ja over nothing but a dead instruction
      size_t ja = emit(mk(kJmp | kJa, 0, 0, 0, 0));
      emit(mk(kAlu64 | kMov, 0, 0, 0, 0));
      land(ja);
    }
    int n = range(1, 3);
    for (int i = 0; i < n; ++i) fragment(depth + 1);
    land(j);
    st_.join(before);
  }

  // A loop bounded by a counter: for (c = 0; c < N; c += step) { ... }
  void loop() {
    int c = dst_reg();
    if (c == 0) c = 9;
    bool down = chance(0.3);
    int n = range(1, 20);
    mov_imm(c, down ? n : 0);
    size_t top = code_.size();
    bool forever = bad();  // no step: the verifier must refuse it
    int body = range(1, 3);
    for (int i = 0; i < body; ++i) {
      if (chance(0.7)) {
        int d = other_reg({c});
        if (st_.r[d].kind != Kind::Scalar) mov_imm(d, small_imm());
        static constexpr uint8_t kOps[] = {kAdd, kSub, kXor, kOr, kAnd, kMul, kLsh, kRsh};
        uint8_t op = one_of(kOps);
        int32_t imm = (op == kLsh || op == kRsh) ? pick(64) : small_imm();
        emit(mk(kAlu64 | op, d, 0, 0, imm));
        st_.r[d] = Reg{Kind::Scalar};
      } else {
        int off = -8 * range(1, 64);
        emit(mk(stx(8), 10, c, off, 0));
        st_.stack_write(off, 8, true);
      }
    }
    if (!forever) emit(mk(kAlu64 | (down ? kSub : kAdd), c, 0, 0, chance(0.8) ? 1 : range(2, 4)));
    size_t j = emit(mk(kJmp | (down ? kJsgt : kJlt), c, 0, 0, down ? 0 : n));
    code_[j].off = static_cast<int16_t>(static_cast<int64_t>(top) - static_cast<int64_t>(j) - 1);
    st_.r[c] = Reg{Kind::Scalar};
  }

  void finish() {
    if (bad() && chance(0.3)) {  // r0 as it is: maybe unset, maybe a pointer
    } else if (ret_checked_ && !chance(0.2)) {
      mov_imm(0, static_cast<int32_t>(range(static_cast<int>(std::max<int64_t>(ret_min_, -4)),
                                            static_cast<int>(std::min<int64_t>(ret_max_, 4)))));
    } else if (chance(0.5)) {
      mov_reg(0, scalar_reg());
    } else {
      mov_imm(0, small_imm());
    }
    emit(mk(kExit, 0, 0, 0, 0));
  }

  std::mt19937_64& rng_;
  std::vector<RawInsn> code_;
  State st_;
  double bad_ = 0.05;
  bool memory_mode_ = true;
  int mem_size_ = 0;
  ProgType type_ = ProgType::Syscall;
  bool ret_checked_ = false;
  int64_t ret_min_ = 0, ret_max_ = 0;
  const std::vector<MapSpec>* maps_ = nullptr;
};

// ---- the checked-mode sandbox ----
class Sandbox : public HelperEnv {
 public:
  Map* map_at(uint64_t ptr) const override {
    for (const MapPtr& m : maps_)
      if (reinterpret_cast<uint64_t>(m.get()) == ptr) return m.get();
    return nullptr;
  }
  void grant_static(MemoryGuard& guard) const override {
    for (const MemRegion& r : statics_)
      guard.grant(reinterpret_cast<const void*>(r.start), r.size, r.writable);
  }
  const Interpreter* program_by_id(uint32_t) const override { return nullptr; }

  std::vector<MapPtr> maps_;
  std::vector<MemRegion> statics_;
};

}  // namespace

RandomProgram RandomProgramGenerator::generate(uint64_t seed) {
  std::mt19937_64 r(seed);
  Gen g(r);
  RandomProgram p = g.build();
  p.seed = seed;
  return p;
}

std::vector<RawInsn> mutate(std::vector<RawInsn> insns, std::mt19937_64& rng) {
  if (insns.empty()) insns.push_back(mk(kExit, 0, 0, 0, 0));
  int n = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < n; ++k) {
    size_t i = rng() % insns.size();
    RawInsn& s = insns[i];
    switch (rng() % 9) {
      case 0: s.opcode = static_cast<uint8_t>(rng()); break;
      case 1: s.regs = static_cast<uint8_t>(rng()); break;
      case 2: s.off = static_cast<int16_t>(static_cast<int>(s.off) + static_cast<int>(rng() % 17) - 8); break;
      case 3:
        s.imm = static_cast<int32_t>(static_cast<int64_t>(s.imm) + static_cast<int64_t>(rng() % 33) - 16);
        break;
      case 4: s.imm = static_cast<int32_t>(rng()); break;
      case 5: s.off = static_cast<int16_t>(rng()); break;
      case 6:
        if (insns.size() > 1) insns.erase(insns.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      case 7: insns.insert(insns.begin() + static_cast<std::ptrdiff_t>(i), s); break;
      default: std::swap(s, insns[rng() % insns.size()]); break;
    }
  }
  return insns;
}

std::vector<RawInsn> random_slots(std::mt19937_64& rng, size_t max_len) {
  auto table = op_table();
  size_t n = 1 + rng() % max_len;
  std::vector<RawInsn> v(n);
  for (RawInsn& s : v) {
    uint64_t bits = rng();
    s.opcode = static_cast<uint8_t>(bits);
    s.regs = static_cast<uint8_t>(bits >> 8);
    s.off = static_cast<int16_t>(bits >> 16);
    s.imm = static_cast<int32_t>(bits >> 32);
    if (rng() % 4 != 0) {
      const OpInfo& info = table[rng() % table.size()];
      s.opcode = info.opcode;
      s.set_regs(static_cast<uint8_t>(rng() % 11), static_cast<uint8_t>(rng() % 11));
      if (info.match == Match::Imm) s.imm = info.disc;
      if (info.match == Match::Off) s.off = static_cast<int16_t>(info.disc);
      if (info.match == Match::Src) s.set_regs(s.dst(), static_cast<uint8_t>(info.disc));
      if (rng() % 2) s.off = static_cast<int16_t>(static_cast<int>(rng() % 17) - 8);
      if (rng() % 2) s.imm = static_cast<int32_t>(rng() % 64);
    }
  }
  v.back() = mk(kExit, 0, 0, 0, 0);
  return v;
}

CheckedRun run_checked(const RandomProgram& p, uint64_t insn_budget, uint64_t data_seed) {
  CheckedRun out;
  std::mt19937_64 rng(data_seed);
  Sandbox env;
  for (const MapSpec& spec : p.input.maps) {
    auto m = Map::create(spec);
    if (!m) {
      out.error = "map " + spec.name + ": " + m.error().message;
      return out;
    }
    env.maps_.push_back(*m);
  }
  // A few keys in hash maps, random bytes in every value.
  for (const MapPtr& m : env.maps_) {
    const MapSpec& s = m->spec();
    std::vector<uint8_t> key(s.key_size), value(m->host_value_size());
    for (uint32_t k = 0; k < std::min<uint32_t>(s.max_entries, 4); ++k) {
      std::fill(key.begin(), key.end(), 0);
      std::memcpy(key.data(), &k, std::min<size_t>(4, key.size()));
      for (auto& b : value) b = static_cast<uint8_t>(rng());
      m->update(key.data(), value.data(), kBpfAny);
    }
  }
  // The execution copy: map references become addresses (Object::prepare).
  std::vector<RawInsn> exec = p.insns;
  for (size_t i = 0; i + 1 < exec.size(); ++i) {
    if (exec[i].opcode != kLdImm64) continue;
    auto pseudo = static_cast<Pseudo>(exec[i].src());
    if (pseudo == Pseudo::MapIdx || pseudo == Pseudo::MapIdxValue) {
      size_t idx = static_cast<uint32_t>(exec[i].imm);
      if (idx >= env.maps_.size()) {
        // The verifier passes a bad map index in dead code (the kernel
        // would refuse it at load). Address 0: should the code run after
        // all, checked mode faults on it.
        exec[i].set_regs(exec[i].dst(), 0);
        exec[i].imm = exec[i + 1].imm = 0;
        ++i;
        continue;
      }
      Map* m = env.maps_[idx].get();
      uint64_t addr = reinterpret_cast<uint64_t>(m);
      if (pseudo == Pseudo::MapIdxValue) {
        if (!m->mmap_data()) {
          out.error = "map " + m->spec().name + " has no directly addressable value";
          return out;
        }
        addr = reinterpret_cast<uint64_t>(m->mmap_data()) + static_cast<uint32_t>(exec[i + 1].imm);
        env.statics_.push_back({reinterpret_cast<uint64_t>(m->mmap_data()), m->spec().value_size,
                                !(m->spec().map_flags & map_flag::kRdonlyProg)});
      }
      exec[i].set_regs(exec[i].dst(), 0);
      exec[i].imm = static_cast<int32_t>(static_cast<uint32_t>(addr));
      exec[i + 1].imm = static_cast<int32_t>(static_cast<uint32_t>(addr >> 32));
    }
    ++i;
  }
  auto prog = decode(exec);
  if (!prog) {
    out.error = "the execution copy does not decode: " + prog.error().message;
    return out;
  }
  static const HelperTable helpers = default_helper_table();
  auto interp = Interpreter::create(*prog, helpers);
  if (!interp) {
    out.error = interp.error().message;
    return out;
  }
  out.setup_ok = true;
  RunInput in;
  std::vector<uint8_t> mem;
  if (p.input.mem_size >= 0) {
    mem.resize(static_cast<size_t>(p.input.mem_size));
    for (auto& b : mem) b = static_cast<uint8_t>(rng());
    in = RunInput::memory(mem);
  } else {
    mem.resize(std::max<uint32_t>(verifier::rules_for(p.input.type).ctx_size, 1));
    for (auto& b : mem) b = static_cast<uint8_t>(rng());
    in.ctx = mem.data();
    in.ctx_size = mem.size();
  }
  RunOptions opts;
  opts.checked = true;
  opts.insn_budget = insn_budget;
  opts.helper_env = &env;
  opts.random_seed = data_seed | 1;
  static std::FILE* const devnull = std::fopen("/dev/null", "w");  // bpf_trace_printk output
  if (devnull) opts.trace_out = devnull;
  auto r = interp->run(in, opts);
  if (!r) {
    out.fault = true;
    out.error = r.error().message;
  } else {
    out.r0 = *r;
  }
  return out;
}

std::string listing(const std::vector<RawInsn>& insns) {
  auto prog = decode(insns);
  if (prog) return disassemble(*prog);
  std::string s = "(does not decode: " + prog.error().message + ")\n";
  char line[64];
  for (size_t i = 0; i < insns.size(); ++i) {
    const RawInsn& r = insns[i];
    std::snprintf(line, sizeof line, "%4zu: %02x %02x %04x %08x\n", i, r.opcode, r.regs,
                  static_cast<uint16_t>(r.off), static_cast<uint32_t>(r.imm));
    s += line;
  }
  return s;
}

}  // namespace ember::testing
