#!/usr/bin/env bash
# cargo-static.sh <cargo build arguments>: builds Zeroscale's components as their images ship them,
# linked statically against glibc (`-C target-feature=+crt-static`): no shared library is mapped into
# an operator, activator or autoscaler process. Each library a dynamic binary maps (libc, libm, the
# loader, libgcc) keeps about 2 MiB of pages resident in every component, which counts in its memory
# (#19's P9, docs/images.md). glibc 2.34 and later resolve names from /etc/hosts and DNS without
# loading NSS modules, which is all a pod needs. The flag is in RUSTFLAGS and --target is always
# passed, so Cargo gives it to the target only: build scripts and proc-macros stay dynamic.
# The components' build script (scripts/static_link.rs) adds link arguments for these static builds.
# The binaries land in ${CARGO_TARGET_DIR:-target}/$(bash scripts/cargo-static.sh --triple)/<profile>/.
# Called by scripts/images.sh and scripts/bench-lib.sh, so the images and the benches share one build.
#
# The `data-plane` profile (the activator) is optimised with a recorded profile of its hop (PGO,
# docs/images.md "The hop's recorded profile"): images/pgo/activator.profdata.xz, which
# `bench/activator/profile.sh pgo` makes. A function changed since the profile was recorded is
# optimised without it: LLVM warns for each such function (its mangled name, "hash mismatch"), and
# the build ends with their count, which says when to record the profile again. ZEROSCALE_PGO=off
# builds without the profile; ZEROSCALE_PGO_GENERATE=DIR builds the instrumented activator that records
# one into DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
triple=$(rustc -vV | sed -n 's/^host: //p')
if [[ ${1:-} == --triple ]]; then
  echo "$triple"
  exit 0
fi
[[ $triple == *-linux-gnu ]] || { echo "cargo-static: a static glibc build needs a *-linux-gnu host, not $triple" >&2; exit 1; }
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static"
profdata=$root/images/pgo/activator.profdata.xz
if [[ " $* " == *" --profile data-plane "* || " $* " == *" --profile=data-plane "* ]]; then
  if [[ -n ${ZEROSCALE_PGO_GENERATE:-} ]]; then
    RUSTFLAGS+=" -C profile-generate=$ZEROSCALE_PGO_GENERATE"
  elif [[ ${ZEROSCALE_PGO:-on} != off && -f $profdata ]]; then
    # Cargo rebuilds when RUSTFLAGS change, not when a file they name does: the profile is used
    # from a copy named by its contents, so a new profile rebuilds and an unchanged one stays cached.
    target=${CARGO_TARGET_DIR:-$root/target}
    [[ $target == /* ]] || target=$PWD/$target
    copy=$target/pgo/$(sha256sum "$profdata" | cut -c1-16).profdata
    [[ -f $copy ]] || { mkdir -p "$target/pgo" && xz -dc "$profdata" > "$copy.tmp" && mv "$copy.tmp" "$copy"; }
    RUSTFLAGS+=" -C profile-use=$copy"
    pgo_used=1
  fi
fi
if [[ -z ${pgo_used:-} ]]; then
  exec "${CARGO:-cargo}" build --locked --target "$triple" "$@"
fi
# Cargo replays a cached crate's warnings, so the count is there on every build, not only the first.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
{ "${CARGO:-cargo}" build --locked --target "$triple" "$@" 2>&1 1>&3 3>&- | tee "$log" >&2; } 3>&1
stale=$(grep -c 'function control flow change detected (hash mismatch)' "$log" || true)
if ((stale > 0)); then
  echo "cargo-static: $stale function(s) changed since images/pgo/activator.profdata.xz was recorded" \
    "and are optimised without it (named above); record it again: bash bench/activator/profile.sh pgo" >&2
else
  echo "cargo-static: the data-plane build matches images/pgo/activator.profdata.xz (no function changed since it was recorded)" >&2
fi
