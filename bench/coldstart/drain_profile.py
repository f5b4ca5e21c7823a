#!/usr/bin/env python3
"""drain_profile.py PERF_DATA FIGURES_JSON [OUT_JSON]: where the node's CPU went while a burst from
zero woke its function and while it drained (issue #19's P5, `burst.max_over_ready_ms`).

PERF_DATA is a system-wide `perf record -a -k CLOCK_REALTIME` taken around one run of the cold-start
driver (bench/coldstart/drain-profile.sh takes it); FIGURES_JSON is that run's figures.json, whose
`burst` section gives the windows in wall-clock time:

  wake   the burst's first request → the first pod serving (`ready_ms`);
  drain  the first pod serving → the last answer (`max_over_ready_ms`, P5).

Each sample is put in a group by the program its process runs: the binary its user-space samples
fall in (a process sampled only in the kernel goes by its thread's name). Prints each window's groups
as shares of the node's CPU time in it (the number of CPUs times its length; `idle` is what nobody
used), and writes them, in milliseconds of CPU, to OUT_JSON when given.
"""

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict

# The program a process runs → the group it is counted in.
PROGRAMS = {
    "zeroscale-activator": "activator",
    "zeroscale-operator": "operator",
    "zeroscale-autoscaler": "autoscaler",
    "zeroscale-echo": "function pods",
    "coldstart-bench": "bench driver",
    "kube-apiserver": "kube-apiserver",
    "etcd": "etcd",
    "kube-controller-manager": "kube-controller-manager",
    "kube-scheduler": "kube-scheduler",
    "kubelet": "kubelet",
    "kube-proxy": "kube-proxy",
    "coredns": "coredns",
    "containerd": "containerd, shims, runc, CNI",
    "containerd-shim-runc-v2": "containerd, shims, runc, CNI",
    "runc": "containerd, shims, runc, CNI",
    "pause": "containerd, shims, runc, CNI",
    "bridge": "containerd, shims, runc, CNI",
    "host-local": "containerd, shims, runc, CNI",
    "portmap": "containerd, shims, runc, CNI",
    "loopback": "containerd, shims, runc, CNI",
}


def group_of_comm(comm):
    """The group of a process never sampled in user space, by its thread's name."""
    if comm == "swapper":
        return "idle"
    if comm.startswith("runc"):
        return "containerd, shims, runc, CNI"
    if comm.startswith(("kworker", "ksoftirqd", "rcu", "migration", "kswapd", "jbd2")):
        return "kernel threads"
    return "other"


def program(dso):
    """The program a user-space sample's DSO is, or None for a library, the vDSO or an unknown map."""
    name = os.path.basename(dso)
    if not name or name.startswith("[") or ".so" in name or name in ("deleted)", "unknown"):
        return None
    return name


def samples(perf_data):
    """(time, pid, comm, dso) of every sample, from `perf script`."""
    out = subprocess.run(
        ["perf", "script", "-G", "-i", perf_data, "-F", "comm,pid,tid,time,ip,dso"],
        capture_output=True, text=True, check=True,
    ).stdout
    for line in out.splitlines():
        # "<comm> <pid>/<tid> <time>: <ip> (<dso>)"; the comm may hold spaces.
        head, sep, rest = line.partition(": ")
        if not sep:
            continue
        fields = head.split()
        if len(fields) < 3 or "/" not in fields[-2]:
            continue
        try:
            time = float(fields[-1])
            pid = int(fields[-2].split("/")[0])
        except ValueError:
            continue
        comm = " ".join(fields[:-2])
        dso = rest[rest.find("(") + 1:-1] if rest.endswith(")") else ""
        yield time, pid, comm, dso


def windows(figures):
    """The wake and drain windows, (start, end) in seconds since the epoch."""
    burst = figures["burst"]
    end = burst["ended_unix"]
    ready = end - burst["max_over_ready_ms"] / 1000
    return {"wake": (ready - burst["ready_ms"] / 1000, ready), "drain": (ready, end)}


def profile(records, spans, cpus):
    """Per window: its length (ms), CPU ms per group, and the sampling period (ms per sample)."""
    records = list(records)
    programs = defaultdict(Counter)
    for _, pid, _, dso in records:
        name = program(dso)
        if name and pid:
            programs[pid][name] += 1

    def group(pid, comm):
        if pid in programs:
            return PROGRAMS.get(programs[pid].most_common(1)[0][0], "other")
        return group_of_comm(comm)
    # The sampling period from the whole recording: every CPU takes one sample per period.
    times = [t for t, _, _, _ in records]
    period_ms = (max(times) - min(times)) * 1000 * cpus / len(times) if len(times) > 1 else 0.0
    result = {}
    for name, (start, end) in spans.items():
        counts = Counter(group(pid, comm) for t, pid, comm, _ in records if start <= t <= end)
        result[name] = {
            "ms": round((end - start) * 1000, 2),
            "cpu_ms": {g: round(n * period_ms, 2) for g, n in counts.most_common()},
        }
    return result


def report(result, cpus):
    for name, window in result.items():
        capacity = window["ms"] * cpus
        print(f"{name}: {window['ms']:.1f} ms × {cpus} CPUs")
        for group, ms in window["cpu_ms"].items():
            share = 100 * ms / capacity if capacity else 0.0
            print(f"  {share:5.1f} %  {ms:7.1f} ms  {group}")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    with open(sys.argv[2]) as f:
        figures = json.load(f)
    cpus = os.cpu_count() or 1
    result = profile(samples(sys.argv[1]), windows(figures), cpus)
    report(result, cpus)
    if len(sys.argv) == 4:
        with open(sys.argv[3], "w") as f:
            json.dump({"cpus": cpus, "burst": figures["burst"], "windows": result}, f, indent=2)


if __name__ == "__main__":
    main()
