#!/usr/bin/env bash
# Compile benchmark: generated policies with 100 networks and 1k / 10k / 100k published
# ports; prints wall time and peak memory of `weir compile` for each.
set -euo pipefail
weir=${1:-.build/release/weir}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-10s %-10s %12s %12s %14s %10s\n' networks publishes rules wall_s peak_MiB goal
for publishes in 1000 10000 100000; do
    policy="$work/bench-$publishes.weir"
    "$weir" bench-policy --networks 100 --publishes "$publishes" > "$policy"
    /usr/bin/time -f '%e %M' -o "$work/time" "$weir" compile "$policy" -o "$work/out.rules"
    read -r wall kib < "$work/time"
    rules=$(grep -c '^-A' "$work/out.rules")
    goal=""
    if [ "$publishes" -eq 100000 ]; then goal="<=1s <=300MiB"; fi
    printf '%-10s %-10s %12s %12s %14s %10s\n' 100 "$publishes" "$rules" "$wall" "$((kib / 1024))" "$goal"
done
