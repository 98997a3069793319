#!/usr/bin/env bash
# compression-compare.sh compares the segment writer with the zstd and gzip
# command-line tools on the generated benchmark corpora (segment/corpus_test.go)
# and prints one Markdown table per corpus.
#
# For each corpus (short records, ~1 KiB records) it writes the corpus to a
# file with the segment test binary (TestCorpus -corpus-out), then compresses
# that file with `zstd --single-thread -1/-3/-9` and `gzip -6` from the page
# cache to a file, best of RUNS, and measures ratio (input / output bytes) and
# speed in MB/s (1e6 bytes) of input per CPU-second (user + system time of the
# child, from getrusage) and per wall-clock second. The Go rows come from
# `go test -bench BenchmarkAppend -cpu 1` on the same corpus (same generator,
# seed and size), best of RUNS: MB/cpu-s, MB/s and ratio as reported.
#
# CPU time is the headline number because the machine may be shared with
# other work; wall-clock speed is printed beside it.
#
# Needs go, zstd, gzip and python3 (for precise child CPU times).
# Environment: CORPUS_SIZE bytes per corpus (default 67108864), KINDS
# (default "short kib"), RUNS (default 3), BENCHTIME (default 1x per run,
# i.e. one timed pass over the corpus after an untimed warm-up pass).
set -euo pipefail

cd "$(dirname "$0")/.."
size=${CORPUS_SIZE:-67108864}
kinds=${KINDS:-short kib}
runs=${RUNS:-3}
benchtime=${BENCHTIME:-1x}

for tool in go zstd gzip python3; do
	command -v "$tool" >/dev/null || { echo "compression-compare: $tool is not installed" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go test -c -o "$tmp/segment.test" ./segment/

# measure RUNS CMD...: runs CMD with stdin from $in and stdout to $tmp/out
# RUNS times; prints "<best cpu seconds> <best wall seconds> <output bytes>".
measure() {
	python3 - "$@" <<'EOF'
import os, resource, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
inp, out = os.environ["in"], os.environ["out"]
best_cpu = best_wall = float("inf")
for _ in range(runs):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(inp, "rb") as i, open(out, "wb") as o:
        subprocess.run(cmd, stdin=i, stdout=o, check=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
print(f"{best_cpu:.6f} {best_wall:.6f} {os.path.getsize(out)}")
EOF
}

for kind in $kinds; do
	export in="$tmp/$kind.jsonl" out="$tmp/$kind.out"
	"$tmp/segment.test" -test.run '^TestCorpus$' -corpus-out "$in" -corpus-kind "$kind" -corpus-size "$size" >/dev/null
	raw=$(stat -c %s "$in")
	cat "$in" >/dev/null # into the page cache

	rows="$tmp/$kind.rows" # name ratio cpu-MB/s wall-MB/s
	: >"$rows"
	for spec in "zstd -1:zstd --single-thread -q -1 -c" "zstd -3:zstd --single-thread -q -3 -c" \
		"zstd -9:zstd --single-thread -q -9 -c" "gzip -6:gzip -6 -c"; do
		name=${spec%%:*}
		read -r cpu wall comp < <(measure "$runs" ${spec#*:})
		awk -v n="$name" -v raw="$raw" -v comp="$comp" -v cpu="$cpu" -v wall="$wall" \
			'BEGIN { printf "`%s`\t%.3f\t%.1f\t%.1f\n", n, raw/comp, raw/1e6/cpu, raw/1e6/wall }' >>"$rows"
	done

	"$tmp/segment.test" -test.run '^$' -test.bench "^BenchmarkAppend\$/^corpus=$kind\$/" \
		-test.benchtime "$benchtime" -test.count "$runs" -test.cpu 1 -corpus-size "$size" >"$tmp/$kind.bench"
	awk '/^BenchmarkAppend\// {
		split($1, p, "level="); lv = p[2]; sub(/-[0-9]+$/, "", lv)
		for (i = 2; i < NF; i++) {
			if ($(i+1) == "MB/s" && $i > wall[lv]) wall[lv] = $i
			if ($(i+1) == "MB/cpu-s" && $i > cpu[lv]) cpu[lv] = $i
			if ($(i+1) == "ratio") ratio[lv] = $i
		}
		if (!(lv in seen)) { seen[lv] = 1; order[++n] = lv }
	}
	END { for (k = 1; k <= n; k++) { lv = order[k]; printf "s3logs `%s`\t%.3f\t%.1f\t%.1f\n", lv, ratio[lv], cpu[lv], wall[lv] } }' \
		"$tmp/$kind.bench" >>"$rows"

	records=$(wc -l <"$in")
	printf '\nCorpus `%s`: %d records, %.1f MB, %.0f bytes per record (best of %s runs)\n\n' \
		"$kind" "$records" "$(awk -v r="$raw" 'BEGIN{print r/1e6}')" "$(awk -v r="$raw" -v n="$records" 'BEGIN{print r/n}')" "$runs"
	awk -F'\t' '
		{ name[NR] = $1; ratio[NR] = $2; cpu[NR] = $3; wall[NR] = $4 }
		$1 == "`zstd -3`" { z3 = $2 }
		$1 == "`gzip -6`" { g6 = $3 }
		END {
			print "| Compressor | Ratio | vs `zstd -3` ratio | MB/s per CPU-second | MB/s wall clock | Speed vs `gzip -6` |"
			print "|---|---:|---:|---:|---:|---:|"
			for (i = 1; i <= NR; i++)
				printf "| %s | %.2f | %+.1f%% | %.0f | %.0f | %.1fx |\n", name[i], ratio[i], 100*(ratio[i]/z3-1), cpu[i], wall[i], cpu[i]/g6
		}' "$rows"
done
