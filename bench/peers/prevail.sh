#!/usr/bin/env bash
# Ember's verifier against PREVAIL (the abstract-interpretation eBPF verifier,
# vbpf/ebpf-verifier, MIT) on the objects `bench/run.sh verifier` measures:
# every program of the clang-built tests/bpf/*.bpf.o (compiled by
# bench/CMakeLists.txt into $BENCH_BUILD/bench/bpf). The verifier bench's
# accept fixtures (tests/verifier/accept/*.txt) are Ember's own text format,
# which PREVAIL cannot read, so they are not compared here.
#
# Per program, each verifier runs in its own process, --runs times (default
# 5), and the median is kept of:
#   wall:  the process's wall-clock time (start, ELF parsing, verification,
#          exit), for `ember verify OBJ --prog NAME -j` and for
#          `check OBJ --section SEC --function NAME`;
#   own:   the verifier's own timing of its analysis: Ember's time_ns (the
#          verify() call) and the seconds PREVAIL's check prints (analyze()
#          only, without ELF parsing and CFG construction).
# PREVAIL runs twice per program: as its check does by default (termination
# not checked) and with --termination (loops must be proven to end, as Ember
# and the kernel require). ratio = ember / prevail (< 1: Ember is faster).
#
# PREVAIL is not a Debian package: build its `check` yourself (Boost and GSL
# headers, its submodules ELFIO, libbtf, radix_tree; upstream defines the
# target only with its tests on, see bench/RESULTS.md for the build used
# there) and point PREVAIL_CHECK at it. Without it this prints "skipped" and exits 0.
# Not part of `make test` or CI.
#
# Usage: PREVAIL_CHECK=/path/to/check [PREVAIL_COMMIT=sha] [BENCH_BUILD=dir] \
#          [BENCH_BUILD_TYPE=Release] bench/peers/prevail.sh [--no-build] [--runs N] [--filter SUBSTR] [--timeout S]
# (also `bench/run.sh prevail ...`). Measure with `nice -n -19` on a quiet
# machine; the script builds first (niced), then measures; --no-build
# measures what $BENCH_BUILD already holds.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${PREVAIL_CHECK:-}" ] || [ ! -x "${PREVAIL_CHECK}" ]; then
  echo "prevail: skipped: set PREVAIL_CHECK to PREVAIL's check binary (vbpf/ebpf-verifier" \
    "on GitHub with its submodules, Release build of its target 'check'; how it was built" \
    "here: bench/RESULTS.md, section 'Verifier: Ember against PREVAIL')"
  exit 0
fi

build=${BENCH_BUILD:-build-bench}
if [ "${1:-}" = --no-build ] && [ -x "$build/ember" ]; then
  shift  # measure the ember and objects already in $build
else
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${BENCH_BUILD_TYPE:-Release}" -DEMBER_BENCH=ON \
    -DEMBER_TESTS=OFF >/dev/null
  # Built with the lowest priority even when the script runs at nice -19.
  nice -n 39 ninja -C "$build" -j 2 ember ember_bench_bpf_objects >/dev/null
fi

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, kernel $(uname -r)"
echo "load: $(uptime | sed 's/.*load average/load average/'), nice $(nice)"
echo "ember: $build/ember ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt"), built $(date -r "$build/ember" -u '+%F %T UTC'); tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include || echo ', with uncommitted src/include edits'))"
echo "prevail: $PREVAIL_CHECK (commit ${PREVAIL_COMMIT:-unknown})"

exec python3 - "$build/ember" "$PREVAIL_CHECK" "$build/bench/bpf" "$@" <<'PY'
import glob, json, math, os, statistics, subprocess, sys, time

ember, check, objdir = sys.argv[1:4]
runs, filt, timeout = 5, "", 120.0
args = sys.argv[4:]
while args:
    a = args.pop(0)
    if a == "--runs": runs = int(args.pop(0))
    elif a == "--filter": filt = args.pop(0)
    elif a == "--timeout": timeout = float(args.pop(0))
    else: sys.exit(f"prevail.sh: unknown option {a!r} (--runs N, --filter SUBSTR, --timeout S)")

def timed(cmd):
    """Runs cmd once: (wall seconds, exit code, stdout), or None on timeout."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - t0, p.returncode, p.stdout + p.stderr

def repeat(cmd, parse):
    """Median wall time and median own time over `runs` runs; the verdict of
    the first run (every run's must agree: a verifier is deterministic)."""
    walls, owns, verdict = [], [], None
    for _ in range(runs):
        r = timed(cmd)
        if r is None:
            return {"verdict": f"timeout>{timeout:g}s", "wall": None, "own": None}
        wall, rc, out = r
        v, own = parse(rc, out)
        if verdict is None: verdict = v
        elif v != verdict: verdict += "/unstable"
        walls.append(wall)
        if own is not None: owns.append(own)
        if v.startswith("error"): break
    return {"verdict": verdict, "wall": statistics.median(walls),
            "own": statistics.median(owns) if owns else None}

def parse_ember(rc, out):
    try:
        r = json.loads(out)[0]
    except (ValueError, IndexError):
        return "error: " + out.strip().splitlines()[-1][:60] if out.strip() else f"error rc={rc}", None
    v = "yes" if r["verdict"] == "accepted" else "NO: " + r.get("reason", "?")
    return v, r["stats"]["time_ns"] / 1e9

def parse_prevail(rc, out):
    # check prints "PASS,SECONDS,RSS_KB" (PASS 1 or 0) after any warnings.
    last = out.strip().splitlines()[-1] if out.strip() else ""
    f = last.split(",")
    if len(f) == 3 and f[0] in ("0", "1"):
        return ("yes" if f[0] == "1" else "NO"), float(f[1])
    err = next((l for l in out.splitlines() if l.startswith("error: ")), last)
    return "error: " + (err.removeprefix("error: ")[:60] or f"rc={rc}"), None

def ember_progs(obj):
    """Ember's programs of obj: [(name, section)], or an error line."""
    r = timed([ember, "verify", obj, "-j"])
    try:
        return [(p["name"], p["section"]) for p in json.loads(r[2])], None
    except (TypeError, ValueError, KeyError):
        if r is None: return [], "timeout"
        why = (r[2].strip().splitlines() or ["?"])[-1]
        return [], why.removeprefix("ember: ").removeprefix(obj + ": ")[:70]

def prevail_progs(obj):
    """PREVAIL's programs of obj: {function: section}, or an error line."""
    r = timed([check, obj, "-l"])
    if r is None: return {}, "timeout"
    progs = {}
    for line in r[2].splitlines():
        if line.startswith("section=") and " function=" in line:
            sec, fn = line[len("section="):].split(" function=", 1)
            progs[fn] = sec
    lines = r[2].strip().splitlines() or ["?"]
    why = next((l for l in lines if l.startswith("error: ")), lines[-1])
    return progs, (None if r[1] == 0 else why.removeprefix("error: ").replace(obj, "OBJ")[:70])

sys.stdout.flush()
rows = []
for obj in sorted(glob.glob(os.path.join(objdir, "*.bpf.o"))):
    stem = os.path.basename(obj)[:-len(".bpf.o")]
    eprogs, eerr = ember_progs(obj)
    pprogs, perr = prevail_progs(obj)
    names = [n for n, _ in eprogs] + [n for n in pprogs if n not in dict(eprogs)]
    if not names:
        if not filt or filt in stem:
            rows.append({"name": stem, "note": f"ember: {eerr}; prevail: {perr}"})
        continue
    for name in names:
        row = {"name": f"{stem}/{name}", "note": ""}
        if filt and filt not in row["name"]: continue
        if name in dict(eprogs):
            row["ember"] = repeat([ember, "verify", obj, "--prog", name, "-j"], parse_ember)
        else:
            row["note"] += f"ember: {eerr or 'no such program'}; "
        if name in pprogs:
            base = [check, obj, "--section", pprogs[name], "--function", name]
            row["prevail"] = repeat(base, parse_prevail)
            row["prevail_t"] = repeat(base + ["--termination"], parse_prevail)
        else:
            row["note"] += f"prevail: {perr or 'not listed by check -l'}; "
        rows.append(row)
        print(".", end="", file=sys.stderr, flush=True)
print(file=sys.stderr)

def us(x): return "-" if x is None else f"{x * 1e6:.0f}"
def cell(row, key): return row.get(key, {"verdict": "-", "wall": None, "own": None})
def ratio(a, b): return None if a is None or b is None or b == 0 else a / b

print(f"\n{'program':38} {'ember':>14} {'wall_us':>9} {'own_us':>9} | {'prevail':>7} {'wall_us':>9} {'own_us':>9}"
      f" | {'+term':>7} {'wall_us':>9} {'own_us':>9} | {'r_wall':>6} {'r_own':>6} {'r_wallT':>7} {'r_ownT':>6}")
means = {k: [] for k in ("wall", "own", "wallT", "ownT")}
for row in rows:
    e, p, t = cell(row, "ember"), cell(row, "prevail"), cell(row, "prevail_t")
    for who, c in (("ember", e), ("prevail", p), ("prevail --termination", t)):
        if c["verdict"].startswith("error"): row["note"] += f"{who}: {c['verdict'][7:]}; "
    r = {"wall": ratio(e["wall"], p["wall"]), "own": ratio(e["own"], p["own"]),
         "wallT": ratio(e["wall"], t["wall"]), "ownT": ratio(e["own"], t["own"])}
    both = e["verdict"] == "yes" and p["verdict"] == "yes"
    bothT = e["verdict"] == "yes" and t["verdict"] == "yes"
    for k in r:
        if r[k] and (bothT if k.endswith("T") else both): means[k].append(r[k])
    f = lambda x: "-" if x is None else f"{x:.2f}"
    print(f"{row['name'][:38]:38} {e['verdict'][:14]:>14} {us(e['wall']):>9} {us(e['own']):>9} |"
          f" {p['verdict'][:7]:>7} {us(p['wall']):>9} {us(p['own']):>9} |"
          f" {t['verdict'][:7]:>7} {us(t['wall']):>9} {us(t['own']):>9} |"
          f" {f(r['wall']):>6} {f(r['own']):>6} {f(r['wallT']):>7} {f(r['ownT']):>6}"
          + (f"  {row['note'].rstrip('; ')}" if row["note"] else ""))

def gmean(xs): return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")
print()
for k, what in (("wall", "process wall time, PREVAIL default"), ("own", "own analysis time, PREVAIL default"),
                ("wallT", "process wall time, PREVAIL --termination"),
                ("ownT", "own analysis time, PREVAIL --termination")):
    xs = means[k]
    print(f"geometric mean ember/prevail, {what}: {gmean(xs):.3f} over {len(xs)} programs both accept"
          f" (Ember slower on {sum(x > 1 for x in xs)})")
PY
