// State comparison (pruning) and printing, after the kernel's states_equal
// / regsafe / stacksafe / refsafe and print_verifier_state.
#include "verifier/state.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace ember::verifier {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::NotInit: return "uninitialized";
    case Kind::Scalar: return "scalar";
    case Kind::Ctx: return "ctx";
    case Kind::Stack: return "fp";
    case Kind::MapPtr: return "map_ptr";
    case Kind::MapValue: return "map_value";
    case Kind::Packet: return "pkt";
    case Kind::PacketEnd: return "pkt_end";
    case Kind::PacketMeta: return "pkt_meta";
    case Kind::Mem: return "mem";
    case Kind::Func: return "func";
  }
  return "?";
}

bool is_pointer(Kind k) { return k != Kind::NotInit && k != Kind::Scalar; }

const Reg& Frame::spill(int slot8) const {
  static const Reg kNone;
  return spilled.empty() ? kNone : spilled[slot8];
}

namespace {

// ids of the old state matched one-to-one with ids of the current one (the
// kernel's check_ids over an idmap).
class IdMap {
 public:
  bool match(uint32_t old_id, uint32_t cur_id) {
    if (old_id == 0) return true;  // old relied on no link
    if (cur_id == 0) return false;
    for (auto& [o, c] : pairs_) {
      if (o == old_id) return c == cur_id;
      if (c == cur_id) return false;
    }
    pairs_.emplace_back(old_id, cur_id);
    return true;
  }

 private:
  std::vector<std::pair<uint32_t, uint32_t>> pairs_;
};

// A loop value's relation to the loop head (see Reg::epoch) that the old
// state's exploration relied on must hold for the current one too.
bool epoch_includes(const Reg& o, const Reg& c, bool exact) {
  if (exact) return o.epoch == c.epoch && o.dslot == c.dslot && o.dmin == c.dmin && o.dmax == c.dmax;
  return !o.epoch || (o.epoch == c.epoch && o.dslot == c.dslot && o.dmin <= c.dmin && c.dmax <= o.dmax);
}

bool reg_includes(const Reg& o, const Reg& c, IdMap& ids, bool exact) {
  if (o.kind == Kind::NotInit) return !exact || c.kind == Kind::NotInit;
  if (!epoch_includes(o, c, exact)) return false;
  if (o.kind != c.kind) return false;
  if (exact ? !(o.val == c.val) : !o.val.includes(c.val)) return false;
  // Linked scalars: the distances the old state relied on hold too.
  if (o.kind == Kind::Scalar) return ids.match(o.id, c.id) && (!o.id || o.off == c.off);
  if (o.maybe_null != c.maybe_null || o.inner_map != c.inner_map || o.rdonly != c.rdonly ||
      o.frame != c.frame || o.map != c.map || o.size != c.size || o.target != c.target || o.off != c.off)
    return false;
  // More proven packet bytes is a smaller set of states.
  if (exact ? o.range != c.range : o.range > c.range) return false;
  return ids.match(o.id, c.id) && ids.match(o.ref, c.ref);
}

bool frame_stack_includes(const Frame& o, const Frame& c, IdMap& ids, bool exact) {
  for (int i = 0; i < kStackSize; ++i) {
    Slot os = o.slot[i], cs = c.slot[i];
    if (exact) {
      if (os != cs) return false;
      continue;
    }
    switch (os) {
      case Slot::Invalid: continue;  // old never read it before writing
      case Slot::Misc: {
        if (cs == Slot::Misc || cs == Slot::Zero) continue;
        if (cs == Slot::Spill && c.spill(i / 8).kind == Kind::Scalar) continue;
        return false;
      }
      case Slot::Zero:
        if (cs == Slot::Zero) continue;
        if (cs == Slot::Spill && c.spill(i / 8).is_const_zero()) continue;
        return false;
      case Slot::Spill:
        if (cs != Slot::Spill) return false;
        break;
    }
  }
  for (int s = 0; s < kStackSize / 8; ++s) {
    if (o.slot[s * 8] != Slot::Spill) continue;
    if (!reg_includes(o.spill(s), c.spill(s), ids, exact)) return false;
  }
  return true;
}

}  // namespace

bool state_includes(const State& old, const State& cur, const std::vector<LiveSet>& live,
                    const std::vector<LiveSet>& precise, bool exact) {
  if (old.frames.size() != cur.frames.size() || old.refs.size() != cur.refs.size()) return false;
  if (old.lock_map != cur.lock_map || old.lock_off != cur.lock_off) return false;
  IdMap ids;
  if (!ids.match(old.lock_id, cur.lock_id)) return false;
  for (size_t i = 0; i < old.refs.size(); ++i)
    if (!ids.match(old.refs[i], cur.refs[i])) return false;
  for (size_t f = 0; f < old.frames.size(); ++f) {
    const Frame &o = old.frames[f], &c = cur.frames[f];
    if (o.callsite != c.callsite || o.subprog != c.subprog || o.callback != c.callback) return false;
    // The same state in another run of a callback is no loop: the helper
    // bounds the runs.
    if (exact && o.entry != c.entry) return false;
    // Live registers: at the current instruction for the top frame; for a
    // caller, r6-r9 live after its call (r0-r5 are set or clobbered then).
    bool top = f + 1 == old.frames.size();
    size_t at = top ? cur.pc : old.frames[f + 1].callsite + 1;
    LiveSet mask = top ? 0x3ff : 0x3c0;
    LiveSet lv = live[at] & mask, pv = precise[at] & mask;
    for (int r = 0; r < kNumRegs - 1; ++r) {
      if (!((lv >> r) & 1)) continue;
      const Reg &orr = o.regs[r], &cr = c.regs[r];
      if (!((pv >> r) & 1) && orr.kind == Kind::Scalar && cr.kind == Kind::Scalar &&
          epoch_includes(orr, cr, exact))
        continue;  // any value will do
      if (!reg_includes(orr, cr, ids, exact)) return false;
    }
    if (!frame_stack_includes(o, c, ids, exact)) return false;
  }
  return true;
}

namespace {

bool offsets_may_meet(Kind k) { return k == Kind::Packet || k == Kind::PacketMeta || k == Kind::MapValue; }

Reg merge_reg(const Reg& o, const Reg& c, Merge how, const Thresholds* t) {
  if (o.kind != c.kind) return Reg{};
  if (c.kind == Kind::NotInit) return c;
  Reg w = c;
  if (c.kind == Kind::Scalar) {
    // Reg::off of a scalar is its distance from linked copies: a link held
    // at different distances holds in neither (fix_ids drops it).
    w.val = how == Merge::Join ? o.val.join(c.val) : o.val.widen(c.val, t);
    if (o.off != c.off) w.id = 0, w.off = 0;
    return w;
  }
  Scalar ov = o.val, cv = c.val;
  int32_t orange = o.range, crange = c.range;
  if (o.off != c.off) {
    if (how != Merge::Join || !offsets_may_meet(c.kind)) return Reg{};
    // p + off with variable part v is p + min_off with variable part
    // v + (off - min_off); the proven packet range shrinks by as much.
    w.off = std::min(o.off, c.off);
    ov = alu(AluOp::Add, ov, Scalar::constant(static_cast<uint64_t>(o.off - w.off)), true);
    cv = alu(AluOp::Add, cv, Scalar::constant(static_cast<uint64_t>(c.off - w.off)), true);
    orange = std::max(0, orange - (o.off - w.off));
    crange = std::max(0, crange - (c.off - w.off));
  }
  w.val = how == Merge::Join ? ov.join(cv) : ov.widen(cv, t);
  if (o.maybe_null != c.maybe_null || o.inner_map != c.inner_map || o.rdonly != c.rdonly ||
      o.frame != c.frame || o.map != c.map || o.size != c.size || o.target != c.target ||
      (o.ref != 0) != (c.ref != 0))
    return Reg{};
  w.range = std::min(orange, crange);
  return w;
}

// Every register and spilled register of a state, in a fixed order.
template <class Fn>
void each_value(const State& st, Fn&& fn) {
  for (const Frame& f : st.frames) {
    for (const Reg& r : f.regs) fn(&r);
    for (int k = 0; k < kStackSize / 8; ++k) fn(f.slot[k * 8] == Slot::Spill ? &f.spill(k) : nullptr);
  }
}
template <class Fn>
void each_value_mut(State& st, Fn&& fn) {
  for (Frame& f : st.frames) {
    for (Reg& r : f.regs) fn(&r);
    for (int k = 0; k < kStackSize / 8; ++k) fn(f.slot[k * 8] == Slot::Spill ? &f.spill_mut(k) : nullptr);
  }
}

// The link an id makes: packet pointers without an id share one too (the
// same variable part: none), so id 0 is a link for them.
uint64_t link_of(const Reg& r) {
  if (r.id) return r.id;
  if (r.kind == Kind::Packet) return 1ull << 32;
  if (r.kind == Kind::PacketMeta) return 2ull << 32;
  return 0;
}

// An id of cur's links values in the merged state only if exactly the
// same values were linked in old, at the same distance between their fixed
// offsets (merge_reg moves the same amount into each variable part): then
// whatever a check learns through it (NULL, packet range, a copied
// scalar's bounds) holds for both. Other values get an id of their own.
void fix_ids(const State& old, State& cur, uint32_t (*fresh_id)(void*), void* id_ctx) {
  struct Link {
    uint64_t cur, old;
    int64_t delta;
  };
  std::vector<Link> links;
  std::vector<const Reg*> olds;
  each_value(old, [&](const Reg* r) { olds.push_back(r); });
  size_t i = 0;
  each_value(cur, [&](const Reg* r) {
    const Reg* o = olds[i++];
    if (r && link_of(*r))
      links.push_back(
          {link_of(*r), o && o->kind == r->kind ? link_of(*o) : 0, o ? int64_t{o->off} - r->off : 0});
  });
  auto consistent = [&](uint64_t cid) {
    const Link* first = nullptr;
    for (const Link& l : links)
      if (l.cur == cid) {
        if (l.old == 0 || (first && (l.old != first->old || l.delta != first->delta))) return false;
        if (!first) first = &l;
      }
    for (const Link& l : links)
      if (l.old == first->old && l.cur != cid) return false;
    return true;
  };
  std::vector<std::pair<uint64_t, bool>> verdicts;
  each_value_mut(cur, [&](Reg* r) {
    if (!r || !link_of(*r)) return;
    uint64_t id = link_of(*r);
    bool ok = false, known = false;
    for (auto [v, good] : verdicts)
      if (v == id) ok = good, known = true;
    if (!known) verdicts.emplace_back(id, ok = consistent(id));
    if (ok) return;
    if (r->kind == Kind::Scalar)
      r->id = 0, r->off = 0;
    else
      r->id = fresh_id(id_ctx);
  });
}

}  // namespace

bool merge_state(const State& old, State& cur, Merge how, const Thresholds* t, uint32_t (*fresh_id)(void*),
                 void* id_ctx) {
  if (old.frames.size() != cur.frames.size() || old.refs.size() != cur.refs.size() ||
      old.lock_map != cur.lock_map || old.lock_off != cur.lock_off)
    return false;
  for (size_t f = 0; f < old.frames.size(); ++f) {
    const Frame& o = old.frames[f];
    Frame& c = cur.frames[f];
    if (o.callsite != c.callsite || o.subprog != c.subprog || o.callback != c.callback) return false;
  }
  fix_ids(old, cur, fresh_id, id_ctx);
  for (size_t f = 0; f < old.frames.size(); ++f) {
    const Frame& o = old.frames[f];
    Frame& c = cur.frames[f];
    for (int r = 0; r < kNumRegs; ++r) c.regs[r] = merge_reg(o.regs[r], c.regs[r], how, t);
    for (int s8 = 0; s8 < kStackSize / 8; ++s8) {
      bool ospill = o.slot[s8 * 8] == Slot::Spill, cspill = c.slot[s8 * 8] == Slot::Spill;
      if (ospill && cspill) {
        Reg w = merge_reg(o.spill(s8), c.spill(s8), how, t);
        if (w.kind != Kind::NotInit) {
          c.spill_mut(s8) = w;
          continue;
        }
      }
      // Bytes: equal stays; a pointer anywhere or an uninitialized side
      // leaves them uninitialized; numbers of any kind become unknown.
      bool opointer = ospill && o.spill(s8).kind != Kind::Scalar;
      bool cpointer = cspill && c.spill(s8).kind != Kind::Scalar;
      for (int b = s8 * 8; b < s8 * 8 + 8; ++b) {
        Slot os = o.slot[b], cs = c.slot[b];
        if (os == cs && !ospill) continue;
        if (os == Slot::Invalid || cs == Slot::Invalid || opointer || cpointer)
          c.slot[b] = Slot::Invalid;
        else
          c.slot[b] = Slot::Misc;
      }
    }
  }
  return true;
}

namespace {

struct Hasher {
  uint64_t h = 0xcbf29ce484222325ull;
  void add(uint64_t v) { h = (h ^ v) * 0x100000001b3ull; }
  void reg(const Reg& r) {
    add(static_cast<uint64_t>(r.kind) | uint64_t{r.maybe_null} << 8 | uint64_t{r.inner_map} << 9 |
        uint64_t{r.rdonly} << 10 | uint64_t{r.frame} << 16 | uint64_t{r.map} << 32);
    add(static_cast<uint32_t>(r.off) | uint64_t{static_cast<uint32_t>(r.range)} << 32);
    add(r.size | uint64_t{r.target} << 32);
    add(r.val.tn.value), add(r.val.tn.mask), add(r.val.umin), add(r.val.umax);
    add(static_cast<uint64_t>(r.val.smin)), add(static_cast<uint64_t>(r.val.smax));
    add(r.val.u32min | uint64_t{r.val.u32max} << 32);
    add(r.epoch | uint64_t{r.dslot} << 32), add(static_cast<uint64_t>(r.dmin)),
        add(static_cast<uint64_t>(r.dmax));
  }
};

}  // namespace

uint64_t state_hash(const State& s, const std::vector<LiveSet>& live, const std::vector<LiveSet>& precise) {
  Hasher h;
  h.add(s.frames.size() | uint64_t{s.lock_map} << 32);
  for (size_t f = 0; f < s.frames.size(); ++f) {
    const Frame& fr = s.frames[f];
    h.add(fr.callsite | uint64_t{fr.subprog} << 32);
    h.add(fr.entry);
    bool top = f + 1 == s.frames.size();
    size_t at = top ? s.pc : s.frames[f + 1].callsite + 1;
    LiveSet mask = top ? 0x3ff : 0x3c0;
    LiveSet lv = live[at] & mask, pv = precise[at] & mask;
    for (int r = 0; r < kNumRegs - 1; ++r) {
      if (!((lv >> r) & 1)) continue;
      if ((pv >> r) & 1 || fr.regs[r].kind != Kind::Scalar)
        h.reg(fr.regs[r]);
      else
        h.add(static_cast<uint64_t>(Kind::Scalar) | uint64_t{fr.regs[r].epoch} << 8);
    }
    for (int i = 0; i < kStackSize; i += 8) {
      uint64_t w;
      std::memcpy(&w, &fr.slot[i], 8);
      if (!w) continue;
      h.add(w ^ static_cast<uint64_t>(i));
      if (fr.slot[i] == Slot::Spill) h.reg(fr.spill(i / 8));
    }
  }
  return h.h;
}

std::string reg_str(const Reg& r) {
  std::string s;
  auto field = [&s](const char* name, long long v) {
    if (s.back() != '(') s += ',';
    s += name;
    s += '=';
    s += std::to_string(v);
  };
  switch (r.kind) {
    case Kind::NotInit: return "?";
    case Kind::Scalar: return r.val.str();
    case Kind::Stack:
      s = "fp" + std::to_string(r.off);
      if (!r.val.is_const()) s += "+" + r.val.str();
      if (r.frame) s = "frame" + std::to_string(r.frame) + ":" + s;
      return s;
    case Kind::Func: return "func(insn=" + std::to_string(r.target) + ")";
    default: break;
  }
  s = std::string(kind_name(r.kind)) + (r.maybe_null ? "_or_null" : "") + "(";
  if (r.kind == Kind::MapPtr || r.kind == Kind::MapValue) field(r.inner_map ? "inner_of_map" : "map", r.map);
  if (r.id) field("id", r.id);
  if (r.ref) field("ref_obj_id", r.ref);
  if (r.off) field("off", r.off);
  if (r.kind == Kind::Packet || r.kind == Kind::PacketMeta) field("r", r.range);
  if (r.kind == Kind::Mem) field("sz", r.size);
  if (!(r.val.is_const() && r.val.const_value() == 0)) s += (s.back() == '(' ? "" : ",") + r.val.str();
  return s + ")";
}

namespace {

char slot_char(Slot s) {
  switch (s) {
    case Slot::Invalid: return '?';
    case Slot::Misc: return 'm';
    case Slot::Zero: return '0';
    case Slot::Spill: return 'r';
  }
  return '?';
}

}  // namespace

std::string state_str(const State& st) {
  std::string out;
  for (size_t f = 0; f < st.frames.size(); ++f) {
    const Frame& fr = st.frames[f];
    if (st.frames.size() > 1) out += (f ? " | frame" : "frame") + std::to_string(f) + ":";
    for (int r = 0; r < kNumRegs; ++r) {
      if (fr.regs[r].kind == Kind::NotInit) continue;
      out += (out.empty() || out.back() == ':' ? "R" : " R") + std::to_string(r) + "=" + reg_str(fr.regs[r]);
    }
    for (int s = 0; s < kStackSize / 8; ++s) {
      bool any = false;
      std::string bytes;
      for (int b = 0; b < 8; ++b) {
        Slot sl = fr.slot[s * 8 + b];
        any |= sl != Slot::Invalid;
        bytes += slot_char(sl);
      }
      if (!any) continue;
      out += " fp" + std::to_string(s * 8 - kStackSize) + "=";
      out += bytes == "rrrrrrrr" ? reg_str(fr.spill(s)) : bytes;
    }
  }
  if (!st.refs.empty()) {
    out += " refs=";
    for (size_t i = 0; i < st.refs.size(); ++i) out += (i ? "," : "") + std::to_string(st.refs[i]);
  }
  if (st.lock_map) out += " lock=map" + std::to_string(st.lock_map - 1) + "+" + std::to_string(st.lock_off);
  return out;
}

}  // namespace ember::verifier
