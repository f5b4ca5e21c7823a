#!/usr/bin/env bash
# Checks that the Dockerfiles (for users with Docker) and scripts/images.sh (what `make images` builds)
# describe the same images: for every image the script builds from a Dockerfile stage, the stage's
# ENTRYPOINT (exec form), USER and EXPOSE must equal the script's entrypoint, user and ports.
# Run by `make lint`; prints each difference, naming the image, the file and both values, and fails.
set -euo pipefail
shopt -s inherit_errexit
root="$(cd "$(dirname "$0")/.." && pwd)"

# stage <Dockerfile> <stage>: prints `entrypoint=<json>`, `user=<u>` and `ports=<sorted>` of the stage
# (the last stage when <stage> is empty); the last ENTRYPOINT and USER win, as in a build.
stage() {
  awk -v want="$2" '
    function flush() { if (found) { print "entrypoint=" ep; print "user=" user; print "ports=" ports } }
    toupper($1) == "FROM" {
      name = (toupper($(NF - 1)) == "AS") ? $NF : ""
      if (want == "") { found = 1; ep = "null"; user = ""; ports = "" ; next }
      if (found) { flush(); done = 1; exit }
      if (name == want) { found = 1; ep = "null"; user = ""; ports = "" }
      next
    }
    !found { next }
    toupper($1) == "ENTRYPOINT" { sub(/^[ \t]*[A-Za-z]+[ \t]+/, ""); ep = $0 }
    toupper($1) == "USER" { user = $2 }
    toupper($1) == "EXPOSE" { for (i = 2; i <= NF; i++) { p = $i; sub(/\/tcp$/, "", p); ports = ports " " p } }
    END { if (!done) flush() }
  ' "$1"
}

sorted() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | paste -sd' ' || true; }

fail=0
diff_line() {
  printf 'images/check.sh: %s: %s says %s %s, scripts/images.sh says %s\n' "$1" "$2" "$3" "$4" "$5" >&2
  fail=1
}

while IFS=$'\t' read -r name entry _cmd user ports dockerfile; do
  entry=${entry#entrypoint=} user=${user#user=} ports=${ports#ports=} dockerfile=${dockerfile#dockerfile=}
  [[ $dockerfile == - ]] && continue
  file=${dockerfile%%#*} target=""
  [[ $dockerfile == *#* ]] && target=${dockerfile#*#}
  [[ -f $root/$file ]] || {
    diff_line "$name" "$file" "nothing" "(no such file)" "$dockerfile"
    continue
  }
  got=$(stage "$root/$file" "$target")
  if [[ -z $got ]]; then
    diff_line "$name" "$file" "no stage" "'$target'" "stage $target"
    continue
  fi
  d_entry=$(sed -n 's/^entrypoint=//p' <<<"$got")
  d_user=$(sed -n 's/^user=//p' <<<"$got")
  d_ports=$(sorted "$(sed -n 's/^ports=//p' <<<"$got")")
  where="$file${target:+ stage $target}"
  if ! d_entry_json=$(jq -c . <<<"$d_entry" 2>/dev/null) || [[ $d_entry_json != \[* && $d_entry_json != null ]]; then
    diff_line "$name" "$where" "ENTRYPOINT" "$d_entry (not the exec form)" "$entry"
  elif [[ $d_entry_json != "$(jq -c . <<<"$entry")" ]]; then
    diff_line "$name" "$where" "ENTRYPOINT" "$d_entry_json" "$entry"
  fi
  [[ $d_user == "$user" ]] || diff_line "$name" "$where" "USER" "'$d_user'" "'$user'"
  [[ $d_ports == "$(sorted "$ports")" ]] || diff_line "$name" "$where" "EXPOSE" "'$d_ports'" "'$(sorted "$ports")'"
  checked+=("$name")
done < <(bash "$root/scripts/images.sh" --describe)

((fail == 0)) || exit 1
echo "images/check.sh: the Dockerfiles and scripts/images.sh agree on ${checked[*]}"
