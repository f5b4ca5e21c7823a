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
set -euo pipefail
triple=$(rustc -vV | sed -n 's/^host: //p')
if [[ ${1:-} == --triple ]]; then
  echo "$triple"
  exit 0
fi
[[ $triple == *-linux-gnu ]] || { echo "cargo-static: a static glibc build needs a *-linux-gnu host, not $triple" >&2; exit 1; }
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static"
exec "${CARGO:-cargo}" build --locked --target "$triple" "$@"
