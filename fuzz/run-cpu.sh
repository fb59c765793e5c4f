#!/usr/bin/env bash
# Runs one cargo-fuzz target until its fuzzing process has had CPU_SECONDS of CPU time (user +
# system, from /proc), however long that takes on the wall clock: on a shared machine, or at a
# low priority beside other work, a wall-clock hour is not an hour of fuzzing.
#   fuzz/run-cpu.sh TARGET CPU_SECONDS [extra libFuzzer flags...]
# Starts fuzz/run.sh TARGET with a wall-clock limit of a week, finds the fuzzer's process,
# samples its CPU time every 10 s, and stops it with SIGINT (libFuzzer then prints its final
# statistics) once CPU_SECONDS is reached. The run's log is fuzz/run.sh's
# (fuzz/artifacts/TARGET/run-<UTC time>.log); this script appends one line to it:
#   run-cpu.sh: TARGET cpu=<s> wall=<s> (stopped at the CPU budget | ended by itself, rc N)
# A crash or a leak ends the run early, as with fuzz/run.sh: the line then says so, and the
# failing input is in fuzz/artifacts/TARGET/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${1:?usage: fuzz/run-cpu.sh TARGET CPU_SECONDS [libFuzzer flags]}"
budget="${2:?usage: fuzz/run-cpu.sh TARGET CPU_SECONDS [libFuzzer flags]}"
shift 2
ticks=$(getconf CLK_TCK)
# cargo fuzz starts the binary by a path relative to fuzz/, so match its tail.
bin="x86_64-unknown-linux-gnu/release/$target"
start=$(date +%s)
"$here/run.sh" "$target" 604800 "$@" &
runner=$!

# The fuzzer is the oldest process running the target's binary (cargo fuzz starts it as a
# child; a target may start short-lived children of its own, which are younger).
pid=""
for _ in $(seq 1 600); do
    pid=$(pgrep -o -f "$bin " || true)
    [ -n "$pid" ] && break
    kill -0 "$runner" 2>/dev/null || break
    sleep 1
done
if [ -z "$pid" ]; then
    # Not found in 10 minutes (a build that long, or no fuzzer at all): stop rather than let
    # it run without its CPU budget.
    pkill -INT -f "$bin " 2>/dev/null || true
    kill "$runner" 2>/dev/null || true
    wait "$runner" || true
    echo "run-cpu.sh: $target: the fuzzer was not found running; stopped (see the output above)" >&2
    exit 1
fi

cpu=0
how=""
while kill -0 "$pid" 2>/dev/null; do
    # Fields 14 and 15 of /proc/PID/stat: user and system time in clock ticks (the command
    # name, field 2, has no spaces here).
    if stat=$(cat "/proc/$pid/stat" 2>/dev/null); then
        read -r -a f <<<"$stat"
        cpu=$(((f[13] + f[14]) / ticks))
    fi
    if [ "$cpu" -ge "$budget" ]; then
        how="stopped at the CPU budget"
        kill -INT "$pid" 2>/dev/null || true
        break
    fi
    sleep 10
done
rc=0
wait "$runner" || rc=$?
[ -n "$how" ] || how="ended by itself, rc $rc"
log=$(ls -t "$here/artifacts/$target"/run-*.log 2>/dev/null | head -n 1)
line="run-cpu.sh: $target cpu=${cpu}s wall=$(($(date +%s) - start))s ($how)"
echo "$line" >&2
[ -n "$log" ] && echo "$line" >>"$log"
