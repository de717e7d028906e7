#!/bin/sh
# Run one libFuzzer harness for a bounded time over its checked-in corpus.
# New inputs go to a scratch directory, so the source tree is not modified.
# usage: run-fuzzer.sh BINARY CORPUS_DIR SECONDS
set -eu
bin=$1 corpus=$2 secs=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/new"
[ -d "$corpus" ] || { echo "no corpus at $corpus" >&2; exit 1; }
exec "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work/new" "$corpus"
