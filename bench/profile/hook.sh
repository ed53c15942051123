#!/usr/bin/env bash
# Step hook for `chat-bench` (CHAT_BENCH_STEP_HOOK): counts what the measured server process
# does during exactly one measured load step. Called as `hook.sh start|end <server pid>`; with
# `end`, CHAT_BENCH_DELIVERED / CHAT_BENCH_ACKED hold the step's counts. PROFILE_MODE:
#   callgrind  the server runs under `valgrind --tool=callgrind --instr-atstart=no`: switch
#              instrumentation on and zero the counters at start, dump them at end
#   strace     attach `strace -c -f` for the step (syscalls by name)
# In both modes the threads' context switches (voluntary + involuntary) are counted too.
# Results go to PROFILE_OUT (one directory per run), one numbered set of files per step.
set -euo pipefail
phase=$1
pid=$2
out=${PROFILE_OUT:?set PROFILE_OUT}
mode=${PROFILE_MODE:-callgrind}
mkdir -p "$out"

ctxsw() {
  local total=0 v
  for f in /proc/"$pid"/task/*/status; do
    v=$(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {s += $2} END {print s + 0}' "$f" 2>/dev/null || echo 0)
    total=$((total + v))
  done
  echo "$total"
}

case "$phase" in
start)
  n=$(( $(cat "$out/steps" 2>/dev/null || echo 0) + 1 ))
  echo "$n" > "$out/steps"
  case "$mode" in
  callgrind)
    callgrind_control -i on "$pid" > /dev/null
    callgrind_control -z "$pid" > /dev/null
    ;;
  strace)
    strace -c -f -p "$pid" -o "$out/strace.$n" 2> /dev/null &
    echo $! > "$out/strace.pid"
    sleep 2  # let strace attach to every thread before the step starts
    ;;
  esac
  ctxsw > "$out/ctx.start"
  ;;
end)
  n=$(cat "$out/steps")
  echo $(( $(ctxsw) - $(cat "$out/ctx.start") )) > "$out/ctx.$n"
  case "$mode" in
  callgrind)
    callgrind_control -d "step$n" "$pid" > /dev/null
    callgrind_control -i off "$pid" > /dev/null
    ;;
  strace)
    kill -INT "$(cat "$out/strace.pid")"
    while kill -0 "$(cat "$out/strace.pid")" 2> /dev/null; do sleep 0.2; done
    ;;
  esac
  echo "${CHAT_BENCH_DELIVERED:-0} ${CHAT_BENCH_ACKED:-0}" > "$out/counts.$n"
  ;;
esac
