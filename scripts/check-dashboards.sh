#!/usr/bin/env bash
# `make lint` part: checks the chart's Grafana dashboard and Prometheus alerts (docs/observability.md).
#   1. dashboards/zeroscale.json: valid JSON; unique panel ids; a `datasource` variable of type
#      datasource (prometheus) that every panel and target uses; every target has an expression.
#   2. every dashboard expression parsed by promtool: written as recording rules (Grafana's variables
#      replaced by values of their kind) and checked with `promtool check rules`;
#   3. the PrometheusRule the chart renders (alerts and a usage budget enabled) checked by `promtool
#      check rules`;
#   4. `helm lint --strict` with the dashboard and the alerts enabled.
# promtool and helm are the pinned builds (e2e/cluster/build.sh promtool, e2e/cluster/helm/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh
bash e2e/cluster/build.sh promtool >/dev/null 2>&1 || bash e2e/cluster/build.sh promtool
promtool="$ZS_BIN/promtool"
helm="$(bash e2e/cluster/helm/build.sh)"
chart=charts/zeroscale
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$chart/dashboards/zeroscale.json" "$work/dashboard-rules.yaml" <<'PY'
import json, re, sys
path, out = sys.argv[1], sys.argv[2]
try:
    dash = json.load(open(path))
except ValueError as e:
    sys.exit(f"{path}: not valid JSON: {e}")
errors = []
variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
ds = variables.get("datasource")
if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    errors.append("no `datasource` variable of type datasource querying prometheus")
panels = []
def walk(ps):
    for p in ps:
        panels.append(p)
        walk(p.get("panels", []))
walk(dash.get("panels", []))
ids = [p.get("id") for p in panels]
dupes = sorted({i for i in ids if ids.count(i) > 1})
if dupes or None in ids:
    errors.append(f"panel ids must be present and unique: duplicated {dupes}")
if not dash.get("uid") or not dash.get("title"):
    errors.append("the dashboard needs a uid and a title")
exprs = []
for p in panels:
    if p.get("type") == "row":
        continue
    name = f"panel {p.get('id')} ({p.get('title')!r})"
    for key in ("gridPos", "title", "targets"):
        if key not in p:
            errors.append(f"{name}: no {key}")
    if p.get("datasource", {}).get("uid") != "${datasource}":
        errors.append(f"{name}: its datasource is not the `datasource` variable")
    for t in p.get("targets", []):
        if t.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"{name} target {t.get('refId')}: its datasource is not the `datasource` variable")
        if not t.get("expr", "").strip():
            errors.append(f"{name} target {t.get('refId')}: no expression")
        else:
            exprs.append((p["id"], t.get("refId", "A"), t["expr"]))
# Grafana's variables, replaced by a value of their kind so promtool parses what Prometheus will get.
values = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "namespace": ".*", "function": ".*"}
for name, v in variables.items():
    if v.get("type") in ("textbox", "constant"):
        values[name] = v.get("query") or "1"
def substitute(expr):
    def one(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            errors.append(f"unknown variable ${name} in {expr!r}")
            return "0"
        return values[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)
with open(out, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for pid, ref, expr in exprs:
        f.write(f"      - record: dashboard:panel_{pid}_{ref.lower()}\n        expr: {json.dumps(substitute(expr))}\n")
if errors:
    sys.exit("dashboard check failed:\n  " + "\n  ".join(errors))
print(f"dashboard: {len(panels)} panels, {len(exprs)} expressions")
PY
"$promtool" check rules --lint-fatal "$work/dashboard-rules.yaml"

"$helm" template zeroscale "$chart" --set alerts.enabled=true \
  --set-json 'alerts.usageBudgetGbSecondsPerDay={"team-a":50000,"*":100000}' \
  --show-only templates/prometheusrule.yaml >"$work/prometheusrule.yaml"
grep -q '^kind: PrometheusRule$' "$work/prometheusrule.yaml" || { echo "no PrometheusRule rendered" >&2; exit 1; }
# Its `spec` is a rules file: the lines after `spec:`, one indentation level less.
sed -n '/^spec:$/,$p' "$work/prometheusrule.yaml" | tail -n +2 | sed 's/^  //' >"$work/alert-rules.yaml"
"$promtool" check rules --lint-fatal "$work/alert-rules.yaml"

"$helm" lint --strict "$chart" --set dashboards.enabled=true,alerts.enabled=true \
  --set-json 'alerts.usageBudgetGbSecondsPerDay={"team-a":50000}' >/dev/null
echo "dashboards and alerts: ok"
