#!/usr/bin/env bash
# The demo: an ordinary OCI image (made here from Debian packages) run as a VM
# task through the Nomad-client stand-in, on the embedded defaults in
# jobspecs/demo/. The image becomes a disk, the VM boots with the guest
# agent, the app serves requests, `nomad alloc exec` runs a command inside,
# the idle task sleeps (snapshot, VMM exits), a request wakes it and the app
# goes on counting where it was; a stop gives the app the image's StopSignal.
# Every task event and the measured wake latency are printed. Everything
# runs in a network namespace this script creates and removes. Needs root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build="${S2Z_BUILD_DIR:-$repo/build}"
rootfs_dir="${S2Z_ROOTFS_DIR:-$repo/.cache/rootfs}"
export AGENT_GUEST_DIR="$build/guest/agent-guest"
export DEMO_IMAGE="$repo/.cache/demo/s2z-demo.oci.tar"

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/demo.sh: run as root (it creates a network namespace, a tap and loads eBPF)" >&2
  exit 1
fi

"$repo/scripts/install-deps.sh"
"$repo/scripts/build.sh" >/dev/null
"$repo/scripts/build-agent-guest.sh" "$build/guest/s2z-guest-agent" "$AGENT_GUEST_DIR"
"$repo/scripts/build-rootfs.sh" "$rootfs_dir"
"$repo/scripts/build-demo-image.sh" "$rootfs_dir" "$(dirname "$DEMO_IMAGE")"

ns="s2z-demo-$$"
work=$(mktemp -d /tmp/s2z-demo.XXXXXX)
export STATE_DIR="$work/state"
standin_pid=""
cleanup() {
  [ -n "$standin_pid" ] && kill -TERM "$standin_pid" 2>/dev/null && wait "$standin_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
envsubst < "$repo/jobspecs/demo/plugin.yaml" > "$work/plugin.yaml"
envsubst < "$repo/jobspecs/demo/task.yaml" > "$work/task.yaml"

say() { printf '\n== %s\n' "$*"; }
in_ns() { ip netns exec "$ns" "$@"; }
# Prints "<http code> <seconds> <body>" for one request from inside the namespace.
request() {
  in_ns curl -s -o "$work/body" -w '%{http_code} %{time_total}' --max-time 20 "$1" || true
  printf ' %s\n' "$(cat "$work/body" 2>/dev/null)"
}

say "starting the plugin through the Nomad-client stand-in (probe, validation, long-lived launch)"
"$build/standin/s2z-nomad-standin" --plugin "$build/driver/s2z-kata" \
  --plugin-config "$work/plugin.yaml" --task "$work/task.yaml" \
  --netns "/run/netns/$ns" --data-dir "$work/nomad" --run-for 10m --exec-fifo "$work/exec" \
  > "$work/standin.log" 2>&1 &
standin_pid=$!
# Show the stand-in's lifecycle lines (not its debug log or every stats sample);
# the first fingerprint is shown whole.
show_lifecycle() {
  local fp=0 line
  while IFS= read -r line; do
    case "$line" in
      fingerprint:*) fp=$((fp + 1)); [ "$fp" -eq 1 ] && echo "  | $line" ;;
      "  driver."*) [ "$fp" -eq 1 ] && echo "  | $line" ;;
      handshake:*|plugin:*|probe*|started*|event:*|stop:*|exit:*|destroy:*|"task exited"*|"start failed"*|"loader failed"*|exec*)
        echo "  | $line" ;;
    esac
  done
}
tail -n +1 -f "$work/standin.log" --pid "$standin_pid" | show_lifecycle &
tail_pid=$!

addr=""
for _ in $(seq 1 120); do
  addr=$(sed -n 's/^started task .* addr=\([0-9.]*\).*/\1/p' "$work/standin.log" | head -n1)
  [ -n "$addr" ] && break
  grep -q "start failed\|loader failed" "$work/standin.log" && { echo "demo: the task did not start"; exit 1; }
  sleep 0.5
done
[ -n "$addr" ] || { echo "demo: no task started within 60 s"; exit 1; }
url="http://$addr:8080"

say "waiting for the app at $url to answer (the image was converted to a disk above; cold boot under $(grep -o 'accelerator = [a-z]*' "$work/standin.log" | head -n1 | cut -d' ' -f3))"
start=$(date +%s.%N)
until in_ns curl -s -o /dev/null --max-time 1 "$url/"; do
  grep -q '^task exited' "$work/standin.log" && { echo "demo: the task exited before it served"; exit 1; }
  sleep 0.2
done
awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "booted: first HTTP 200 after %.1f s\n", e - s }'

say "three requests to $url/ (http code, seconds, body)"
for _ in 1 2 3; do request "$url/"; done

say "nomad alloc exec: a command inside the task, as the image's user, in its root"
echo 'id; head -n1 /etc/os-release; ls -l /app; echo "GREETING=$GREETING"' > "$work/exec"
until grep -q '^exec: \(exit code\|ended\|failed\)' "$work/standin.log"; do sleep 0.2; done

say "idle: waiting for the task to sleep (idle_timeout 4s)"
until grep -q '^event: .*Sleeping' "$work/standin.log"; do sleep 0.2; done
sleep 0.5

say "a request to the sleeping VM wakes it"
read -r code seconds body < <(request "$url/")
until grep -q '^event: .*Woken' "$work/standin.log"; do sleep 0.1; done
awk -v c="$code" -v t="$seconds" -v b="$body" \
  'BEGIN { printf "wake latency, request sent -> response received: %.1f ms (HTTP %s: %s)\n", t * 1000, c, b }'

say "the count went on from where it was: the app's memory survived the sleep"
request "$url/"

say "stopping the task: the app gets the image's StopSignal (SIGINT), then the task is destroyed"
kill -TERM "$standin_pid"
wait "$standin_pid" || true
standin_pid=""
wait "$tail_pid" 2>/dev/null || true

say "nomad alloc logs: the app's stdout as the client's log collector read it"
# One reader per FIFO for the whole task, as Nomad's logmon: the lines of the
# requests served after the wake (a new VMM) arrived through the same FIFO.
logfile=$(find "$work/nomad" -name web.stdout.0 | head -n1)
tr -d '\r' < "$logfile" | sed 's/^/  | /'
echo "demo done"
