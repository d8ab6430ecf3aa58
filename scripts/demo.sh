#!/usr/bin/env bash
# demo.sh: ferry's main job, start to finish, on a built-in default.
#
#   sudo scripts/demo.sh
#
# Installs dependencies, builds ferry, starts a small HTTP server on the
# host's loopback (127.0.0.1, a free port, serving a temporary directory),
# and runs a shell under `ferry run` in a fresh network namespace. Inside,
# the guest shows its interface, pings the gateway (198.18.0.1, IPv6
# fd00:f::1), fetches the file from the host through the gateway address
# (which ferry maps to the host's loopback), and shows ferry's counters and
# its pinned BPF stats map. Then the server is stopped (by its PID) and the
# directory removed. Exits non-zero when a guest step failed.
#
# Every packet stays on this machine: the server listens on 127.0.0.1 only
# and the guest reaches nothing but the gateway.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
cd "$ROOT"
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: run as root (sudo scripts/demo.sh): ferry run makes a namespace and a tap" >&2
  exit 1
fi

scripts/install-deps.sh
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target ferry
FERRY=$BUILD_DIR/ferry
export FERRY

tmp=$(mktemp -d /tmp/ferry-demo.XXXXXX)
chmod 755 "$tmp"
server_pid=

# Stops the server we started (by PID) and removes the temporary directory.
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir "$tmp/www"
echo "hello from the host, through ferry" >"$tmp/www/hello.txt"
/usr/bin/python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/server.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.* port \([0-9]\+\).*/\1/p' "$tmp/server.log" | head -1)
  [[ -n $port ]] && break
  sleep 0.05
done
if [[ -z $port ]]; then
  echo "demo.sh: the HTTP server did not start:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi
echo "== host: HTTP server on 127.0.0.1:$port (pid $server_pid) serving $tmp/www"

# The guest's script. FERRY_INSTANCE is set by `ferry run` (run-<pid>); it
# names the instance's pin directory under /sys/fs/bpf/ferry/.
guest_script='
fail=0
step() { echo; echo "== guest: $*"; }
step "ip addr"
ip addr
step "ip route (IPv4 and IPv6)"
ip route; ip -6 route
step "ping the gateway 198.18.0.1"
ping -c 2 -W 2 198.18.0.1 || fail=1
step "ping the IPv6 gateway fd00:f::1"
ping -6 -c 2 -W 2 fd00:f::1 || fail=1
step "curl http://198.18.0.1:$PORT/hello.txt (the host'"'"'s 127.0.0.1:$PORT)"
curl -sS --max-time 10 "http://198.18.0.1:$PORT/hello.txt" || fail=1
# ferry forks the guest itself: without FERRY_INSTANCE, our parent is ferry.
inst=${FERRY_INSTANCE:-run-$PPID}
step "ferry stats $inst"
"$FERRY" stats $inst || fail=1
step "bpftool map dump pinned /sys/fs/bpf/ferry/$inst/stats"
bpftool map dump pinned "/sys/fs/bpf/ferry/$inst/stats" || fail=1
exit $fail
'

echo "== ferry run -- sh -c '<guest script>'"
rc=0
PORT=$port timeout -k 5 60 "$FERRY" run -- sh -c "$guest_script" || rc=$?
echo
if ((rc == 0)); then
  echo "== demo: every guest step succeeded"
else
  echo "== demo: a guest step failed (exit $rc)" >&2
fi
exit $rc
