#!/usr/bin/env python3
"""link_order.py BINARY ORDER_FILE CALLGRIND_OUT...: the functions a component ran, for its link order.
link_order.py --check BINARY ORDER_FILE [MIN_FOUND]: whether BINARY was linked in that order (and, with
MIN_FOUND, a fraction such as 0.9, whether at least that share of the file's functions is still found).
link_order.py --hot BINARY ORDER_FILE CALLGRIND_OUT...: puts the functions that ran in these profiles
(the activator's request path, `bench/activator/profile.sh order`) first in ORDER_FILE.

Reads callgrind profiles taken with `--dump-instr=yes` (scripts/link-order.sh takes them on the real
node) and writes the symbols of every function of BINARY that ran, one per line, the most instructions
first: the order file `--symbol-ordering-file` takes (scripts/static_link.rs). Prints how many pages of
code the run touched, against how many the same functions fill once laid out together.

Why: the kernel maps the pages around each page of code a process touches (fault-around, 64 KiB), so
an idle component keeps resident most of the code near anything it ever ran. Its functions are spread
over the whole binary in the order the compiler emitted them; grouped, they fill a few windows instead
of a hundred. docs/images.md ("The link order") has the figures.

Why the request path goes first: a request runs about 300 functions, which the order made from the
real node's whole life (start-up, the API's JSON and TLS, bursts) spread over 58 windows of 64 KiB.
Each request then touches twice the pages of code nginx does, and on an idle core every page and line
of it is fetched again. Together they fill about 110 pages.
"""

import bisect
import subprocess
import sys
from collections import defaultdict


def executed(path):
    """Self instruction counts per address of one callgrind profile (positions: instr line)."""
    costs = defaultdict(int)
    pos = 0
    call_cost = False  # the line after `calls=` is the call's inclusive cost: a position, not self cost
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("calls="):
                call_cost = True
                continue
            if not line or line[0] not in "0123456789+-*":
                continue
            fields = line.split()
            token = fields[0]
            if token.startswith("0x"):
                pos = int(token, 16)
            elif token[0] in "+-":
                pos += int(token)
            elif token != "*":
                continue
            cost = int(fields[2]) if len(fields) > 2 and not call_cost else 0
            costs[pos] += cost
            call_cost = False
    return costs


def functions(binary):
    """(start, size, symbol) of the binary's defined functions, by address."""
    listing = subprocess.run(
        ["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True
    ).stdout
    symbols = []
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwWiI":
            size = int(parts[1], 16)
            if size:
                symbols.append((int(parts[0], 16), size, parts[3]))
    symbols.sort()
    return symbols


def check(binary, order_file, min_found=0.0):
    """Prints how many of the order file's functions BINARY has and how many 64 KiB windows they span;
    exits 1 when most are there but spread out (the linker ignored the order), 2 when fewer than
    `min_found` of them are found (the file is stale), 0 otherwise."""
    wanted = set(open(order_file).read().split())
    symbols = functions(binary)
    found = [(start, size) for start, size, name in symbols if name in wanted]
    stale = f"regenerate {order_file} (scripts/link-order.sh, docs/images.md)"
    if not found:
        print(f"{binary}: none of the {len(wanted)} functions of {order_file} found: {stale}")
        return 2 if min_found > 0 else 0
    windows = {a >> 16 for start, size in found for a in range(start, start + size, 4096)}
    ideal = -(-sum(size for _, size in found) // 65536)
    share = len({name for _, _, name in symbols} & wanted) / len(wanted)
    print(
        f"{binary}: {share:.0%} of the {len(wanted)} functions of {order_file} found, in {len(windows)} "
        f"windows of 64 KiB (laid out together: {ideal})"
    )
    if share < min_found:
        print(f"  fewer than {min_found:.0%} found: {stale}")
        return 2
    if share < 0.5:
        print(f"  fewer than half found: {stale}")
        return 0
    if len(windows) > 2 * ideal + 2:
        print("  spread over the binary: the linker did not apply the order (rust-lld reads it)")
        return 1
    return 0


def ran_in(binary, profiles):
    """The functions of BINARY that ran in the profiles: instructions and size by symbol, and the
    addresses that ran."""
    symbols = functions(binary)
    starts = [s[0] for s in symbols]
    ran = defaultdict(int)  # symbol -> instructions
    sizes = {}
    addresses = set()
    for profile in profiles:
        for address, cost in executed(profile).items():
            i = bisect.bisect_right(starts, address) - 1
            if i < 0:
                continue
            start, size, name = symbols[i]
            if address >= start + size:
                continue
            addresses.add(address)
            ran[name] += cost
            sizes[name] = size
    if not ran:
        sys.exit(f"link_order: no function of {binary} ran in {' '.join(profiles)}")
    return ran, sizes, addresses


def hot_first(binary, order_file, profiles):
    """Rewrites ORDER_FILE with the functions that ran in the profiles first (the most instructions
    first), then its other functions in their order."""
    ran, sizes, _ = ran_in(binary, profiles)
    hot = sorted(ran, key=lambda n: (-ran[n], n))
    hot_set = set(hot)
    try:
        rest = [n for n in open(order_file).read().split() if n not in hot_set]
    except FileNotFoundError:
        rest = []
    with open(order_file, "w") as f:
        f.write("".join(name + "\n" for name in hot + rest))
    total = sum(sizes.values())
    print(
        f"{binary}: the {len(hot)} functions of the request path ({total / 1024:.0f} KiB, about "
        f"{-(-total // 4096)} pages) first in {order_file}, then {len(rest)} others"
    )


def main():
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) == 5 else 0.0))
    if len(sys.argv) >= 5 and sys.argv[1] == "--hot":
        hot_first(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    if len(sys.argv) < 4:
        sys.exit("usage: link_order.py BINARY ORDER_FILE CALLGRIND_OUT...")
    binary, order_file, profiles = sys.argv[1], sys.argv[2], sys.argv[3:]
    ran, sizes, addresses = ran_in(binary, profiles)
    # Hot first: the request path's functions share cache lines and pages; ties by name, so the same
    # profiles always give the same file.
    order = sorted(ran, key=lambda n: (-ran[n], n))
    with open(order_file, "w") as f:
        f.write("".join(name + "\n" for name in order))
    pages = {a >> 12 for a in addresses}
    windows = {a >> 16 for a in addresses}
    total = sum(sizes.values())
    print(
        f"{binary}: {len(order)} functions ran ({total / 1024:.0f} KiB of code); as linked they touch "
        f"{len(pages)} pages of 4 KiB and {len(windows)} windows of 64 KiB ({len(windows) * 64} KiB); "
        f"laid out together about {-(-total // 65536)} windows"
    )


if __name__ == "__main__":
    main()
