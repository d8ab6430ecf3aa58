#!/usr/bin/env bash
# fuzz.sh: builds ferry's libFuzzer harnesses (tests/fuzz: the frame codec,
# IPv4/IPv6 reassembly, the whole guest-input path) with clang-19, ASan and
# UBSan, and runs each for a while.
#
#   scripts/fuzz.sh [--time SECS] [--short] [--build DIR] [--jobs N] [HARNESS...]
#
# HARNESS: frame, reassembly, guest_input (default: all three). --time: how
# long each runs (default 600 s); --short: 20 s each, on the seed corpus only
# (what the test suite runs). Seeds come from tests/fuzz/corpus/HARNESS/ and
# are never written; new inputs collect in DIR/corpus/HARNESS/, crashes in
# DIR/artifacts/HARNESS/ (default DIR: build-fuzz). Exits 1 when a harness
# found a crash (its input and libFuzzer's report are printed), 2 on usage.
# guest_input runs in a network namespace of its own (it makes one): what a
# fuzzed frame asks for can only reach loopback.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
secs=600 short=0 build=$here/build-fuzz jobs=2
harnesses=()
while (($#)); do
  case $1 in
    --time) secs=${2:?--time SECS}; shift ;;
    --short) short=1 secs=20 ;;
    --build) build=${2:?--build DIR}; shift ;;
    --jobs) jobs=${2:?--jobs N}; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    frame|reassembly|guest_input) harnesses+=("$1") ;;
    *) echo "fuzz.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[[ $secs =~ ^[0-9]+$ ]] || { echo "fuzz.sh: bad --time '$secs'" >&2; exit 2; }
((${#harnesses[@]})) || harnesses=(frame reassembly guest_input)
command -v clang++-19 >/dev/null || { echo "fuzz.sh: clang++-19 missing (scripts/install-deps.sh)" >&2; exit 1; }

export CCACHE_BASEDIR=${CCACHE_BASEDIR:-/work} CCACHE_NOHASHDIR=1
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$here" -B "$build" -DFERRY_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-19 -DCMAKE_C_COMPILER=clang-19 "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$jobs" --target "${harnesses[@]/#/fuzz_}" >/dev/null

found=0
for h in "${harnesses[@]}"; do
  seeds=$here/tests/fuzz/corpus/$h
  work=$build/corpus/$h art=$build/artifacts/$h/
  mkdir -p "$work" "$art"
  log=$build/fuzz_$h.log
  # --short: only the seeds (a fresh scratch corpus), so the suite's run is the same each time
  if ((short)); then
    work=$(mktemp -d "$build/corpus/$h.short.XXXXXX")
  fi
  rc=0
  (cd "$build" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "./fuzz_$h" -max_total_time="$secs" -max_len=70000 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$art" -print_final_stats=1 "$work" "$seeds") >"$log" 2>&1 || rc=$?
  if ((short)); then rm -rf "$work"; fi
  stats=$(grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$log" | tr '\n' ' ' || true)
  if ((rc != 0)); then
    found=1
    echo "fuzz.sh: $h FAILED (exit $rc) after ${secs}s: $stats"
    grep -E "ERROR|SUMMARY|Test unit written|runtime error" "$log" | head -20
  else
    echo "fuzz.sh: $h ok, ${secs}s: $stats"
  fi
done
exit $found
