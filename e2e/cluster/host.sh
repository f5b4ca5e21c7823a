#!/usr/bin/env bash
# What the node changes on the host, and how it is put back (sourced after lib.sh by up.sh, down.sh and
# check-clean.sh). Before the first bring-up, save_baseline records the sysctls the node components
# set, the iptables tables that exist and which of the host paths the node creates regardless of its
# configuration already exist. down.sh restores the sysctls, deletes the tables and paths that were not
# there, and then moves the baseline to host-baseline.restored (which check-clean.sh compares with). A baseline left by a crashed run is kept: it holds the values from
# before that run.

save_baseline() {
  [[ -d $ZS_BASELINE ]] && return 0
  mkdir -p "$ZS_BASELINE"
  local key path
  for key in "${ZS_SYSCTLS[@]}"; do
    sysctl -n "$key" >/dev/null 2>&1 && echo "$key=$(sysctl -n "$key" | tr '\t' ' ')"
  done >"$ZS_BASELINE/sysctl"
  iptables_tables >"$ZS_BASELINE/tables"
  for path in "${ZS_HOST_PATHS[@]}"; do
    [[ -e $path ]] && echo "$path"
  done >"$ZS_BASELINE/paths"
  return 0
}

# iptables_tables: "<family> <table>" for every iptables table that exists (v4 and v6).
iptables_tables() {
  local save fam
  for fam in ip ip6; do
    save=iptables-save
    [[ $fam == ip6 ]] && save=ip6tables-save
    command -v "$save" >/dev/null || continue
    "$save" 2>/dev/null | sed -n "s/^\*\(.*\)/$fam \1/p"
  done
}

# baseline_drift <baseline dir>: one line per difference between the host and that baseline (sysctls,
# iptables tables, host paths).
baseline_drift() {
  local base=$1 line key want have path
  [[ -d $base ]] || return 0
  while read -r line; do
    grep -qxF "$line" "$base/tables" || echo "iptables table $line (not there before the cluster)"
  done < <(iptables_tables)
  for path in "${ZS_HOST_PATHS[@]}"; do
    [[ -e $path ]] && ! grep -qxF "$path" "$base/paths" && echo "path $path (not there before the cluster)"
  done
  while IFS= read -r line; do
    key=${line%%=*}
    want=${line#*=}
    have=$(sysctl -n "$key" 2>/dev/null | tr '\t' ' ' || true)
    [[ $have == "$want" ]] || echo "sysctl $key is $have, was $want"
  done <"$base/sysctl"
  return 0
}

restore_baseline() {
  [[ -d $ZS_BASELINE ]] || return 0
  local line key path fam table
  while IFS= read -r line; do
    key=${line%%=*}
    sysctl -qw "$key=${line#*=}" 2>/dev/null || log "could not restore sysctl $key"
  done <"$ZS_BASELINE/sysctl"
  # Tables our rules created and that are now empty (iptables-nft leaves them behind). Needs `nft`.
  if command -v nft >/dev/null; then
    while read -r fam table; do
      grep -qx "$fam $table" "$ZS_BASELINE/tables" && continue
      nft delete table "$fam" "$table" 2>/dev/null || true
    done < <(iptables_tables)
  fi
  for path in "${ZS_HOST_PATHS[@]}"; do
    grep -qxF "$path" "$ZS_BASELINE/paths" && continue
    [[ -e $path ]] || continue
    # Nothing may be mounted below a path we remove. One awk, not awk | grep -q: grep leaving at the
    # first match can kill awk with SIGPIPE, and pipefail would then read "nothing mounted".
    if awk -v p="$path" '$2 == p || index($2, p "/") == 1 {found = 1} END {exit !found}' /proc/mounts; then
      log "not removing $path: something is mounted below it"
      continue
    fi
    rm -rf "$path"
  done
  # check-clean.sh compares the host with it.
  rm -rf "$ZS_BASELINE.restored"
  mv "$ZS_BASELINE" "$ZS_BASELINE.restored"
}
