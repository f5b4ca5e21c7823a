#!/usr/bin/env bash
# `make bench`: runs every benchmark section, then merges their JSON fragments into
# target/bench/report.json and writes target/bench/report.md: the SPEC §9 targets with each figure beside
# its target and whether it is met, the plots, and every figure.
#
# A section is an executable `bench/<component>/bench.sh`. It gets these environment variables:
#   BENCH_OUT        directory for its outputs (target/bench)
#   BENCH_FRAGMENT   the JSON file it writes: {"<component>": {"<figure>": number, ...}}
#   BENCH_TOOLS      a cache directory for load generators and such (kept between runs)
#   BENCH_LIB        scripts/bench-lib.sh, helpers it may source (oha, nginx, rss)
# Run one section with `bash scripts/bench.sh activator` (the report then merges the fragments of earlier
# runs of the other sections, if any). Plots: a section writes `<name>.svg` into BENCH_OUT and the
# report embeds every one.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export BENCH_OUT=$root/target/bench
export BENCH_TOOLS=${ZEROSCALE_CACHE:-$HOME/.cache/zeroscale}/tools
export BENCH_LIB=$root/scripts/bench-lib.sh
mkdir -p "$BENCH_OUT/fragments" "$BENCH_TOOLS"

sections=("$@")
if [[ ${#sections[@]} -eq 0 ]]; then
  for s in bench/*/bench.sh; do sections+=("$(basename "$(dirname "$s")")"); done
fi

failed=()
for section in "${sections[@]}"; do
  echo "== bench: $section"
  export BENCH_FRAGMENT=$BENCH_OUT/fragments/$section.json
  rm -f "$BENCH_FRAGMENT"
  started=$SECONDS
  if ! bash "bench/$section/bench.sh"; then
    echo "bench: section $section failed" >&2
    failed+=("$section")
  fi
  echo "== bench: $section took $((SECONDS - started)) s"
done

python3 - "$BENCH_OUT" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(nproc)" <<'PY'
import datetime, json, pathlib, sys
out, commit, cores = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]

# Figures are named by dotted paths (`sim.kpa.cold_start_pct`); the report nests every segment, so
# `jq .sim.kpa.cold_start_pct` and a dotted lookup both find it.
def put(tree, path, value):
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value

def get(tree, path):
    for part in path.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree

def flat(tree, prefix=""):
    for key, value in sorted(tree.items()):
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            yield from flat(value, name)
        else:
            yield name, value

# SPEC §9: (target, figure, comparison, limit, how the target reads). `None` limit: reported, no bound.
TARGETS = [
    ("P1", "activator.added_p50_us", "<=", 100, "added p50 ≤ 100 µs at 1k rps"),
    ("P1", "activator.added_p99_us", "<=", 1000, "added p99 ≤ 1 ms at 1k rps"),
    ("P2", "activator.rps_ratio_vs_nginx", ">=", 0.8, "≥ 0.8 × nginx throughput (median of per-round ratios)"),
    ("#19", "activator.added_p50_ratio_vs_nginx", "<=", 1.0,
     "added p50 ≤ nginx's (median of per-round ratios)"),
    ("#19", "activator.rps_ratio_vs_nginx", ">=", 1.0, "throughput ≥ nginx's (median of per-round ratios)"),
    ("P2", "activator.rps_errors", "<=", 0, "0 errors"),
    ("log", "activator.access_log.lines_missing", "<=", 0,
     "with the chart's access log on, every answered request has its line"),
    ("P3", "coldstart.arrival_to_patch_p99_ms", "<=", 5, "arrival → scale patch ≤ 5 ms p99"),
    ("P3", "coldstart.ready_to_forward_p99_ms", "<=", 50, "pod able to serve → forwarded ≤ 50 ms p99"),
    ("#19", "coldstart.ready_to_forward_p99_ms", "<=", 10, "pod able to serve → forwarded ≤ 10 ms p99"),
    ("P3", "coldstart.address_to_forward_p99_ms", None, None,
     "of which the activator's own share: it knew the pod's address → forwarded, p99 (reported)"),
    ("P3", "coldstart.ready_to_address_p99_ms", None, None,
     "and the address's way to it: pod able to serve → the activator knew its address, p99 (reported)"),
    ("P4", "coldstart.e2e_p50_ms", "<=", 700, "cold start p50 ≤ 700 ms"),
    ("P4", "coldstart.e2e_p95_ms", "<=", 1500, "cold start p95 ≤ 1.5 s"),
    ("P4", "coldstart.container_start_p50_ms", None, None,
     "of which the runtime's share: pod scheduled → container running (reported)"),
    ("P5", "burst.errors", "<=", 0, "1,000 concurrent at zero: 0 errors"),
    ("P5", "burst.max_over_ready_ms", "<=", 200, "max latency ≤ pod ready + 200 ms"),
    ("#19", "burst.max_over_ready_ms", "<=", 100, "max latency ≤ pod ready + 100 ms (with 0 errors)"),
    ("P6", "activator.parked_10k_rss_mib", "<=", 20, "10,000 parked (HTTP/1.1) add ≤ 20 MiB"),
    ("P6", "activator.parked_10k_h2c_rss_mib", "<=", 20, "10,000 parked (h2c) add ≤ 20 MiB"),
    ("P6", "activator.idle_rss_mib", "<=", 20, "idle activator RSS ≤ 20 MiB"),
    ("P7", "autoscaler.tick_1000_fns_us", "<=", 1000, "one tick over 1,000 functions ≤ 1 ms"),
    ("P8", "sim.kpa.cold_start_pct", None, None, "cold-start % per policy (plot)"),
    ("P8", "sim.kpa.idle_pod_seconds", None, None, "idle pod-seconds per policy (plot)"),
    ("P8", "sim.predictive.cold_start_pct", None, None, "predictive policy: cold-start % (vs kpa, fixed_*)"),
    ("P8", "sim.predictive.idle_pod_seconds", None, None, "predictive policy: idle pod-seconds"),
    ("P8", "sim.p8.predictive_dominates_fixed_10m", ">=", 1,
     "predictive: fewer cold starts and idle pod-seconds than fixed_10m, seed 1 (1 = yes)"),
    ("P8", "sim.p8.predictive_beats_kpa", ">=", 1,
     "predictive: fewer cold starts than kpa at no more idle pod-seconds, seed 1 (1 = yes)"),
    ("P8", "sim.p8.seeds_dominating_fixed_10m", ">=", 3,
     "the same verdict on every arrival sampling: seeds 1–3 of sample100 (`sim.p8.seeds`)"),
    ("P8", "sim.p8.seeds_beating_kpa", ">=", 3,
     "the same verdict on every arrival sampling: seeds 1–3 of sample100 (`sim.p8.seeds`)"),
    ("P9", "footprint.idle_rss_mib", "<=", 60, "operator + activator + autoscaler ≤ 60 MiB"),
    ("#19", "footprint.idle_rss_mib", "<=", 40, "operator + activator + autoscaler ≤ 40 MiB, 60 s after the burst"),
]

report = {}
for fragment in sorted((out / "fragments").glob("*.json")):
    for component, figures in json.loads(fragment.read_text()).items():
        for name, value in figures.items():
            put(report, f"{component}.{name}", value)
# Every key a target names is in the report, null when its section did not produce it.
for _, key, *_ in TARGETS:
    if get(report, key) is None:
        put(report, key, None)
(out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")

def verdict(value, op, limit, key=None):
    if op is None:
        return "reported"
    if not isinstance(value, (int, float)):
        return "not measured"
    ok = value <= limit if op == "<=" else value >= limit
    # A median of per-round ratios comes with its spread (`<key>_min`, `<key>_max`): when the limit
    # lies within it, some rounds meet the target and some do not, and the median alone cannot decide.
    lo, hi = (get(report, f"{key}_min"), get(report, f"{key}_max")) if key else (None, None)
    spread = ""
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        spread = f" (rounds {lo}–{hi})"
        if lo <= limit <= hi:
            return f"**undecided**: rounds {lo}–{hi} straddle {limit}"
    return ("met" if ok else "**not met**") + spread

def show(value):
    return "—" if value is None else str(value)

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines = [
    "# Zeroscale benchmarks",
    "",
    f"Generated {now} at commit `{commit}` on {cores} cores. How each figure is measured: "
    "`docs/benchmarks.md`.",
]
lines += ["", "## SPEC §9 targets", "", "| # | figure | value | target | |", "|---|---|---|---|---|"]
for spec, key, op, limit, text in TARGETS:
    value = get(report, key)
    lines.append(f"| {spec} | `{key}` | {show(value)} | {text} | {verdict(value, op, limit, key)} |")
load = get(report, "activator.load_avg_1m_median")
if load is not None:
    lines += ["", f"Load average (1 min) during the activator rounds: median {load}, "
              f"max {get(report, 'activator.load_avg_1m_max')} on {cores} cores."]
cpu_ratio = get(report, "activator.cpu_per_request_ratio_vs_nginx")
if cpu_ratio is not None:
    def cpu(proxy):
        return (f"{get(report, proxy + '.cpu_user_us_per_request')} µs user + "
                f"{get(report, proxy + '.cpu_system_us_per_request')} µs system")
    lo, hi = (get(report, f"activator.cpu_per_request_ratio_vs_nginx_{end}") for end in ("min", "max"))
    lines += ["", f"CPU per proxied request during the throughput runs: activator {cpu('activator')}, "
              f"nginx {cpu('nginx')}; ratio {cpu_ratio} (rounds {lo}–{hi})."]
logged = get(report, "activator.access_log")
if isinstance(logged, dict):
    lines += ["", f"The chart's logging (level info, the JSON access log), against the same activator "
              f"without it in {logged.get('pairs')} pairs of throughput runs: "
              f"{logged.get('cpu_added_us_per_request')} µs CPU more per request "
              f"({logged.get('cpu_user_added_us_per_request')} µs of it user), throughput ratio "
              f"{logged.get('rps_ratio_vs_plain')}; {logged.get('lines', 0):,} access lines for "
              f"{logged.get('requests', 0):,} requests answered ({logged.get('lines_missing')} missing)."]
peers = report.get("peers")
if isinstance(peers, dict) and any(isinstance(v, dict) and "ours" in v for v in peers.values()):
    versions = peers.get("versions", {})
    lines += ["", "## Peers: Zeroscale against the KEDA HTTP add-on", "",
              f"KEDA {versions.get('keda')}, http-add-on {versions.get('http_add_on')}, same cluster and "
              f"function image, one after the other (load average median {peers.get('load_avg_1m_median')}). "
              "Ratio: ours ÷ theirs.", "", "| figure | Zeroscale | KEDA HTTP add-on | ratio |", "|---|---|---|---|"]
    for name, v in sorted(peers.items()):
        if isinstance(v, dict) and "ours" in v:
            lines.append(f"| `{name}` | {show(v['ours'])} | {show(v['theirs'])} | {show(v['ratio'])} |")
elif isinstance(peers, dict) and peers.get("skipped"):
    lines += ["", f"Peers section skipped: {peers['skipped']}."]
plots = sorted(out.glob("*.svg"))
if plots:
    lines += ["", "## Plots", ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
lines += ["", "## Every figure", "", "| figure | value |", "|---|---|"]
lines += [f"| `{name}` | {show(value)} |" for name, value in flat(report)]
(out / "report.md").write_text("\n".join(lines) + "\n")
print((out / "report.md").read_text())
PY

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "bench: failed sections: ${failed[*]}" >&2
  exit 1
fi
