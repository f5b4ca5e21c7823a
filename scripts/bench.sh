#!/usr/bin/env bash
# `make bench`: runs every benchmark section, then merges their JSON fragments into
# target/bench/report.json (and a flat table in target/bench/report.md).
#
# A section is an executable `bench/<component>/bench.sh`. It gets these environment variables:
#   BENCH_OUT        directory for its outputs (target/bench)
#   BENCH_FRAGMENT   the JSON file it writes: {"<component>": {"<figure>": number, ...}}
#   BENCH_TOOLS      a cache directory for load generators and such (kept between runs)
#   BENCH_LIB        scripts/bench-lib.sh, helpers it may source (oha, nginx, rss)
# Run one section with `bash scripts/bench.sh activator`.
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
  if ! bash "bench/$section/bench.sh"; then
    echo "bench: section $section failed" >&2
    failed+=("$section")
  fi
done

python3 - "$BENCH_OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])

# Figures are named by dotted paths (`sim.kpa.cold_start_pct`); the report nests every segment, so
# `jq .sim.kpa.cold_start_pct` and a dotted lookup both find it.
def put(tree, path, value):
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value

def flat(tree, prefix=""):
    for key, value in sorted(tree.items()):
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            yield from flat(value, name)
        else:
            yield name, value

report = {}
for fragment in sorted((out / "fragments").glob("*.json")):
    for component, figures in json.loads(fragment.read_text()).items():
        for name, value in figures.items():
            put(report, f"{component}.{name}", value)
(out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
lines = ["| figure | value |", "|---|---|"]
lines += [f"| `{name}` | {value} |" for name, value in flat(report)]
(out / "report.md").write_text("\n".join(lines) + "\n")
print((out / "report.md").read_text())
PY

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "bench: failed sections: ${failed[*]}" >&2
  exit 1
fi
