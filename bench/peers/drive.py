#!/usr/bin/env python3
"""Drives one system (Zeroscale or the KEDA HTTP add-on) through the `peers` workload.

Both systems get the same functions (the same echo image, by digest), the same requests from the same
client code, one after the other; only the objects that make a function differ (a Zeroscale Function;
a Deployment + Service + HTTPScaledObject for the add-on). bench.sh runs this once per system and
merges the two outputs into the fragment.

    drive.py <system.json> <out dir> <phase>...

system.json: {"name", "url" (the data path, http://ip:port), "namespace", "domain", "image",
"park_image", "oha", "rss_groups": {"datapath": [[namespace, container]...], "controlplane": [...]}}.
Phases: warm, cold, burst, memory. Each writes <out>/<system>-<phase>.json.
"""

import asyncio
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

# Never listens; exits at once on SIGTERM (a bare `sleep` as PID 1 ignores it, and Zeroscale gives its
# pods a grace period of the function's timeout plus the preStop sleep), so deleting it is quick.
PARK_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
KUBECTL = None  # set from system.json: the pinned kubectl with the cluster's kubeconfig


class BenchError(Exception):
    """A phase could not be measured; the message names what was missing."""


def kubectl(*args, stdin=None, check=True):
    """Runs kubectl; returns stdout. Raises BenchError naming the command when it fails."""
    r = subprocess.run(KUBECTL + list(args), input=stdin, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise BenchError(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def log(msg):
    print(f"peers: {msg}", file=sys.stderr, flush=True)


# ---- the functions, as each system spells them -------------------------------------------------------


def function_yaml(system, name, image, lo, hi, concurrency, command=None):
    """The objects that make `name` a scale-to-zero function of `system` (at `lo` replicas first);
    `command` replaces the image's entrypoint."""
    cmd = json.dumps(command) if command else "null"
    # A command runs the busybox image, whose user is root: both systems run it as 65532, since
    # Zeroscale refuses root (restricted pod security) and fails the requests fast otherwise.
    user = "{runAsUser: 65532, runAsNonRoot: true}" if command else "null"
    if system["name"] == "zeroscale":
        return (
            f"apiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n"
            f"  image: {image}\n  command: {cmd}\n  securityContext: {user}\n"
            f"  concurrency: {concurrency}\n  timeoutSeconds: 120\n"
            f"  scale:\n    initial: {lo}\n    min: {lo}\n    max: {hi}\n    window: 30s\n"
        )
    # The add-on: the workload and its Service are the user's; the HTTPScaledObject routes `host` to the
    # Service and scales the Deployment between min and max (at zero from the start: replicas 0).
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {lo}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: user
          image: {image}
          command: {cmd}
          securityContext: {user}
          ports: [{{containerPort: 8080}}]
          # The probe Zeroscale gives a Function that sets none (operator/src/build/deployment.rs).
          readinessProbe: {{tcpSocket: {{port: 8080}}, initialDelaySeconds: 0, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: http.keda.sh/v1alpha1
kind: HTTPScaledObject
metadata: {{name: {name}}}
spec:
  hosts: [{host(system, name)}]
  scaleTargetRef: {{name: {name}, kind: Deployment, apiVersion: apps/v1, service: {name}, port: 80}}
  replicas: {{min: {lo}, max: {hi}}}
  scaledownPeriod: 300
"""


def host(system, name):
    return f"{name}.{system['namespace']}.{system['domain']}"


def selector(system, name):
    return f"zeroscale.dev/function={name}" if system["name"] == "zeroscale" else f"app={name}"


def create(system, names, image, lo, hi, concurrency=100, command=None):
    yaml = "---\n".join(function_yaml(system, n, image, lo, hi, concurrency, command) for n in names)
    kubectl("apply", "-n", system["namespace"], "-f", "-", stdin=yaml)


def delete(system, names, image, command=None):
    """Deletes the functions (not waiting), so their pods do not run beside the next measurements."""
    yaml = "---\n".join(function_yaml(system, n, image, 0, 1, 10, command) for n in names)
    kubectl("delete", "-n", system["namespace"], "--wait=false", "-f", "-", stdin=yaml, check=False)


def wait_ready(system, names, replicas, limit=180):
    """Waits until each function has `replicas` ready pods and its router knows it (a probe through the
    data path answers 2xx when replicas > 0; for 0 the scaled object reports Ready)."""
    deadline = time.monotonic() + limit
    ns = system["namespace"]
    while True:
        pods = json.loads(kubectl("get", "pods", "-n", ns, "-o", "json"))["items"]
        ready = {}
        for p in pods:
            if p["metadata"].get("deletionTimestamp"):
                continue
            labels = p["metadata"].get("labels", {})
            fn = labels.get("zeroscale.dev/function") or labels.get("app")
            conds = p.get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                ready[fn] = ready.get(fn, 0) + 1
        ok = all(ready.get(n, 0) == replicas for n in names)
        if ok and replicas == 0 and system["name"] == "keda":
            sos = json.loads(kubectl("get", "scaledobjects.keda.sh", "-n", ns, "-o", "json"))["items"]
            good = {
                s["metadata"]["name"]
                for s in sos
                if any(c["type"] == "Ready" and c["status"] == "True" for c in s.get("status", {}).get("conditions", []))
            }
            ok = all(n in good for n in names)
        if ok and replicas == 0 and system["name"] == "zeroscale":
            deps = json.loads(kubectl("get", "deployments", "-n", ns, "-o", "json"))["items"]
            at_zero = {d["metadata"].get("labels", {}).get("zeroscale.dev/function") for d in deps if d["spec"].get("replicas") == 0}
            ok = all(n in at_zero for n in names)
        if ok and replicas > 0:
            # The router knows the function: a request through the data path answers 2xx.
            ok = all(200 <= asyncio.run(get(system["url"], host(system, n), 5))[0] < 300 for n in names)
        if ok:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{system['name']}: functions not at {replicas} ready pods after {limit}s: {ready}")
        time.sleep(0.5)


def pod_ips(system, name):
    out = kubectl("get", "pods", "-n", system["namespace"], "-l", selector(system, name), "-o",
                  "jsonpath={range .items[*]}{.status.podIP}{\"\\n\"}{end}")
    return [ip for ip in out.split() if ip]


# ---- one HTTP/1.1 request per connection (asyncio), the same client for both systems --------------


async def get(url, host_header, limit):
    """GET / with Host, one connection; returns (status, seconds)."""
    hostport = url.split("://", 1)[1].rstrip("/")
    ip, port = hostport.rsplit(":", 1)
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, int(port)), limit)
        writer.write(f"GET / HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), limit - (time.monotonic() - start))
        writer.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        status = 0
    return status, time.monotonic() - start


class ServeWatch:
    """The moment a function's first pod could serve, seen from the host (the same for both systems):
    `kubectl get pods --watch` streams each pod's IP as soon as it is assigned; every new IP gets a thread
    probing its /healthz every 5 ms. The moment is the start of the first successful probe (so the
    system's share after it is measured in full, never shortened)."""

    def __init__(self, system, name):
        self.serving, self._stop, self._lock = None, threading.Event(), threading.Lock()
        self.proc = subprocess.Popen(
            KUBECTL + ["get", "pods", "-n", system["namespace"], "-l", selector(system, name), "--watch",
                       "-o", "jsonpath={.status.podIP}{\"\\n\"}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        seen = set()
        for line in self.proc.stdout:
            ip = line.strip()
            if ip and ip not in seen:
                seen.add(ip)
                threading.Thread(target=self._probe, args=(ip,), daemon=True).start()

    def _probe(self, ip):
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            try:
                with urllib.request.urlopen(f"http://{ip}:8080/healthz", timeout=0.5) as r:
                    if r.status == 200:
                        with self._lock:
                            if self.serving is None or began < self.serving:
                                self.serving = began
                        return
            except OSError:
                pass
            time.sleep(0.005)

    def wait(self, limit=10):
        deadline = time.monotonic() + limit
        while self.serving is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self.proc.terminate()
        self.proc.wait()
        return self.serving


# ---- phases --------------------------------------------------------------------------------------------


def oha(system, name, out, *args):
    """Runs oha with the function's Host; returns (rps, p50_us, p99_us, errors) from its JSON."""
    path = out / f"{system['name']}-{name}.json"
    url = args[-1]
    with open(path, "w") as f:
        subprocess.run([system["oha"], "--no-tui", "--output-format", "json", *args[:-1], url], stdout=f, check=True)
    r = json.loads(path.read_text())
    p = r["latencyPercentiles"]
    # A run bounded by -z cancels the requests in flight at its end: not errors of the system.
    errors = sum(v for k, v in r.get("errorDistribution", {}).items() if "aborted due to deadline" not in k)
    errors += sum(v for k, v in r.get("statusCodeDistribution", {}).items() if not k.startswith("2"))
    return r["summary"]["requestsPerSec"], (p["p50"] or 0) * 1e6, (p["p99"] or 0) * 1e6, errors


def warm(system, out):
    """Added latency at 1,000 rps open loop (oha's latency correction) against a direct connection to the
    pod, in rounds alternating direct and through the system; then closed-loop throughput, 64 connections."""
    create(system, ["warm"], system["image"], 1, 1, concurrency=0)
    wait_ready(system, ["warm"], 1)
    pod = pod_ips(system, "warm")[0]
    h = host(system, "warm")
    direct, through = f"http://{pod}:8080/", system["url"].rstrip("/") + "/"
    for url in (direct, through):  # warm the pools
        oha(system, "warmup", out, "-n", "2000", "-c", "16", "--host", h, url)
    rounds, dur = int(system.get("rounds", 3)), system.get("duration", "5s")
    p50s, p99s, errs = [], [], 0
    for i in range(rounds):
        _, d50, d99, _ = oha(system, f"direct-1k-{i}", out, "-z", dur, "-q", "1000", "-c", "16",
                             "--latency-correction", "--host", h, direct)
        _, s50, s99, e = oha(system, f"through-1k-{i}", out, "-z", dur, "-q", "1000", "-c", "16",
                             "--latency-correction", "--host", h, through)
        p50s.append(s50 - d50)
        p99s.append(s99 - d99)
        errs += e
    rps, _, _, terr = oha(system, "max", out, "-z", dur, "-c", "64", "--host", h, through)
    direct_rps, _, _, _ = oha(system, "max-direct", out, "-z", dur, "-c", "64", "--host", h, direct)
    delete(system, ["warm"], system["image"])
    return {
        "warm_added_p50_us": round(statistics.median(p50s), 1),
        "warm_added_p99_us": round(statistics.median(p99s), 1),
        "warm_errors": errs,
        "throughput_rps": round(rps, 1),
        "throughput_errors": terr,
        "throughput_direct_rps": round(direct_rps, 1),
    }


def cold(system, out):
    """End to end time of the first request to each of N functions created at zero, one after another."""
    n = int(system.get("cold_starts", 20))
    names = [f"cold-{i}" for i in range(n)]
    create(system, names, system["image"], 0, 5, concurrency=10)
    wait_ready(system, names, 0)
    samples, errors = [], 0
    for name in names:
        status, seconds = asyncio.run(get(system["url"], host(system, name), 120))
        if 200 <= status < 300:
            samples.append(seconds * 1000)
        else:
            errors += 1
            log(f"{system['name']}: cold start of {name} answered {status}")
        time.sleep(0.5)
    delete(system, names, system["image"])
    (out / f"{system['name']}-cold-samples.json").write_text(json.dumps(samples))
    if len(samples) < 2:
        raise BenchError(f"{system['name']}: only {len(samples)} of {n} cold starts answered")
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "coldstart_p50_ms": round(statistics.median(samples), 1),
        "coldstart_p95_ms": round(q[94], 1),
        "coldstart_errors": errors,
        "coldstart_samples": len(samples),
    }


def burst(system, out):
    """1,000 concurrent requests, one connection each, at a function at zero: errors, and the last
    answer minus the moment its first pod could serve (ServeWatch)."""
    n = int(system.get("burst", 1000))
    create(system, ["burst"], system["image"], 0, 5, concurrency=10)
    wait_ready(system, ["burst"], 0)
    watch = ServeWatch(system, "burst")
    h = host(system, "burst")

    async def shots():
        start = time.monotonic()
        results = await asyncio.gather(*(get(system["url"], h, 120) for _ in range(n)))
        return start, results

    start, results = asyncio.run(shots())
    serving = watch.wait()
    delete(system, ["burst"], system["image"])
    ok = [s for st, s in results if 200 <= st < 300]
    last = start + max(s for _, s in results)
    return {
        "burst_errors": n - len(ok),
        "burst_last_over_ready_ms": round((last - serving) * 1000, 1) if serving else None,
        "burst_last_answer_ms": round(max(ok) * 1000, 1) if ok else None,
    }


def rss_kib(groups):
    """KiB of RSS summed over the running containers of each (namespace, container) in `groups`."""
    crictl = groups["crictl"]
    total = {}
    for group, members in groups.items():
        if group == "crictl":
            continue
        kib = 0
        for ns, container in members:
            ids = subprocess.run(crictl + ["ps", "-q", "--state", "running", "--label",
                                           f"io.kubernetes.pod.namespace={ns}", "--label",
                                           f"io.kubernetes.container.name={container}"],
                                 capture_output=True, text=True, check=True).stdout.split()
            if not ids:
                raise BenchError(f"no running container {container} in {ns}")
            for cid in ids:
                info = json.loads(subprocess.run(crictl + ["inspect", cid], capture_output=True, text=True,
                                                 check=True).stdout)
                pid = info["info"]["pid"]
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        kib += int(line.split()[1])
        total[group] = kib
    return total


def memory(system, out):
    """RSS of the system's data path and control plane at idle, then with 10,000 requests parked at a
    function whose pod runs but never becomes ready (busybox waiting: nothing listens on its port, so
    the readiness probe never passes and both systems keep the requests waiting), one oha run."""
    idle = rss_kib(system["rss_groups"])
    create(system, ["park"], system["park_image"], 0, 1, concurrency=10, command=PARK_COMMAND)
    wait_ready(system, ["park"], 0)
    n = int(system.get("parked", 10000))
    report = open(out / f"{system['name']}-park.txt", "w")
    proc = subprocess.Popen([system["oha"], "--no-tui", "-n", str(n), "-c", str(n), "-t", "110s", "--host",
                             host(system, "park"), system["url"].rstrip("/") + "/"],
                            stdout=report, stderr=subprocess.STDOUT)
    hostport = system["url"].split("://", 1)[1].rstrip("/")
    ip, port = hostport.rsplit(":", 1)
    # Parked: every connection established and the count steady for 2 s.
    deadline, last, steady = time.monotonic() + 60, -1, 0
    established = 0
    while time.monotonic() < deadline:
        ss = subprocess.run(["ss", "-Htn", "state", "established"], capture_output=True, text=True).stdout
        # Columns: Recv-Q Send-Q Local Peer; the client sockets' peer is the Service's ClusterIP.
        established = sum(1 for line in ss.splitlines() if line.split()[3:4] == [f"{ip}:{port}"])
        steady = steady + 1 if established == last and established >= n * 0.99 else 0
        last = established
        if steady >= 4:
            break
        time.sleep(0.5)
    parked = rss_kib(system["rss_groups"])
    proc.send_signal(signal.SIGINT)  # oha prints its summary (status codes, errors) on Ctrl-C
    proc.wait()
    report.close()
    delete(system, ["park"], system["park_image"], PARK_COMMAND)
    mib = lambda kib: round(kib / 1024, 1)
    return {
        "datapath_idle_rss_mib": mib(idle["datapath"]),
        "controlplane_idle_rss_mib": mib(idle["controlplane"]),
        "datapath_parked_10k_rss_mib": mib(parked["datapath"]),
        "controlplane_parked_10k_rss_mib": mib(parked["controlplane"]),
        "parked_connections": established,
    }


def main():
    global KUBECTL
    system = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    KUBECTL = system["kubectl"]
    phases = {"warm": warm, "cold": cold, "burst": burst, "memory": memory}
    failed = False
    for phase in sys.argv[3:]:
        started = time.monotonic()
        try:
            figures = phases[phase](system, out)
        except (BenchError, subprocess.CalledProcessError, KeyError) as e:
            log(f"{system['name']}: {phase} failed: {e}")
            figures, failed = {}, True
        log(f"{system['name']}: {phase} took {time.monotonic() - started:.0f} s: {figures}")
        (out / f"{system['name']}-{phase}.json").write_text(json.dumps(figures, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
