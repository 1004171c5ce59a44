#!/usr/bin/env bash
# table.sh: run the peer benchmarks in interleaved rounds and print a table of medians.
#
#   internal/peerbench/table.sh [-rounds N] [-bench REGEXP] [-benchtime T] [-o RAW]
#
# `go test -count 5` runs the five repetitions of a sub-benchmark back to back, so on a
# shared machine whose load drifts over minutes selfheal and its peer are measured at
# different times and their ratio drifts with the load. This script instead runs the
# whole selection with -count 1 ROUNDS times (5 by default), so every round measures
# selfheal and its peers within seconds of each other, then prints per benchmark the
# median of every metric over the rounds and, for each peer, the ratio
# selfheal/peer of the medians of time (or of the benchmark's first metric when it
# reports no time) and of allocations. The raw `go test` output is kept (-o) for
# benchstat.
set -euo pipefail

rounds=5
bench=.
benchtime=1s
raw=
while [ $# -gt 0 ]; do
	case "$1" in
	-rounds) rounds=$2; shift 2 ;;
	-bench) bench=$2; shift 2 ;;
	-benchtime) benchtime=$2; shift 2 ;;
	-o) raw=$2; shift 2 ;;
	*) echo "usage: $0 [-rounds N] [-bench REGEXP] [-benchtime T] [-o RAW]" >&2; exit 2 ;;
	esac
done
case "$rounds" in '' | *[!0-9]* | 0) echo "table.sh: -rounds must be a positive integer" >&2; exit 2 ;; esac

cd "$(dirname "$0")"
[ -n "$raw" ] || raw=$(mktemp -t peerbench.XXXXXX)
: >"$raw"
go test -c -o "$raw.test" . >/dev/null
trap 'rm -f "$raw.test"' EXIT
for i in $(seq 1 "$rounds"); do
	echo "round $i/$rounds" >&2
	"$raw.test" -test.run '^$' -test.bench "$bench" -test.benchmem -test.benchtime "$benchtime" -test.count 1 >>"$raw"
done
echo "raw output: $raw ($rounds rounds)" >&2

awk -v rounds="$rounds" '
function median(list,    n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) {
		t = a[i] + 0
		for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
	if (n % 2) return a[(n + 1) / 2]
	return (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmt(v) {
	if (v == "") return "-"
	if (v >= 1000) return sprintf("%.0f", v)
	if (v >= 100) return sprintf("%.1f", v)
	return sprintf("%.3g", v)
}
/^Benchmark/ && NF >= 4 {
	name = $1
	sub(/^Benchmark/, "", name)
	sub(/-[0-9]+$/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++nnames] = name }
	for (i = 3; i < NF; i += 2) {
		unit = $(i + 1)
		key = name SUBSEP unit
		if (!(key in vals)) { units[name] = units[name] " " unit }
		vals[key] = vals[key] " " $i
	}
}
END {
	print "| benchmark | " "median of " rounds " rounds | ratio selfheal/peer (time; allocs) |"
	print "|---|---|---|"
	for (k = 1; k <= nnames; k++) {
		name = order[k]
		n = split(units[name], us, " ")
		for (u = 1; u <= n; u++) med[name, us[u]] = median(vals[name, us[u]])
		first[name] = us[1]
	}
	for (k = 1; k <= nnames; k++) {
		name = order[k]
		n = split(units[name], us, " ")
		line = ""
		for (u = 1; u <= n; u++) line = line (u > 1 ? ", " : "") fmt(med[name, us[u]]) " " us[u]
		group = name; variant = name
		sub(/\/[^\/]*$/, "", group); sub(/^.*\//, "", variant)
		ratio = ""
		if (group != name && variant !~ /^selfheal/) {
			self = group "/selfheal"
			if (!(self in seen)) { for (j = 1; j <= nnames; j++) if (index(order[j], group "/selfheal") == 1) { self = order[j]; break } }
			if (self in seen) {
				tu = (index(units[name], " ns/op") ? "ns/op" : first[name])
				if (med[name, tu] + 0 != 0 && (self, tu) in med) ratio = sprintf("%.2fx %s", med[self, tu] / med[name, tu], tu)
				if ((name, "allocs/op") in med && med[name, "allocs/op"] + 0 != 0) ratio = ratio sprintf("; %.2fx allocs", med[self, "allocs/op"] / med[name, "allocs/op"])
				ratio = ratio " (vs " self ")"
			}
		}
		print "| " name " | " line " | " ratio " |"
	}
}' "$raw"
