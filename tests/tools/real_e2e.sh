# shellcheck shell=bash
# real_e2e.sh: helpers of the tests/e2e/real_* scenarios (real clients and
# servers from Debian through ferry), sourced after tests/e2e/lib.sh and
# e2e_init. Every server listens on loopback only (127.0.0.1 or ::1) or
# inside a namespace ferry made, and is killed by its PID.
#
#   real_need CMD...                  SKIP the scenario unless every CMD exists
#   real_free_port                    a TCP port free on 127.0.0.1 and ::1 now
#   real_sshd_config DIR PORT ADDR... writes DIR/sshd_config (own host key,
#                                     own authorized_keys, no PAM) listening
#                                     on ADDR:PORT; DIR/id_ed25519 logs in as
#                                     the current user; sets SSH_OPTS (client
#                                     options, minus -p)
#   real_sshd DIR                     starts /usr/sbin/sshd -D on DIR's config
#                                     in the background: SSHD_PID
#   real_fd_count PID                 open fds of PID
#   real_conn_count INSTANCE          TCP connections in the table of ferry
#                                     INSTANCE (run-PID, or an attached DEV)
#   real_wait_healthy PID FDS SECS [SLACK [INSTANCE]]
#                                     until ferry PID has at most FDS+SLACK
#                                     (2) open fds and no TCP connection in
#                                     INSTANCE's table (run-PID); false after
#                                     SECS (prints what it saw). UDP flows
#                                     keep their socket until idle for 180 s:
#                                     count them in SLACK

real_need() {
  local c
  for c in "$@"; do
    if ! command -v "$c" >/dev/null 2>&1 && [[ ! -x $c ]]; then
      e2e_log "SKIP: $c not installed (scripts/install-deps.sh installs it)"
      exit 0
    fi
  done
}

real_free_port() {
  /usr/bin/python3 - <<'PY'
import socket
for _ in range(50):
    a = socket.socket()
    a.bind(("127.0.0.1", 0))
    port = a.getsockname()[1]
    try:
        b = socket.socket(socket.AF_INET6)
        b.bind(("::1", port))
        b.close()
    except OSError:
        a.close()
        continue
    print(port)
    break
PY
}

real_sshd_config() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  chmod 700 "$dir"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519" </dev/null >/dev/null || e2e_die "ssh-keygen (host)"
  [[ -f $dir/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519" </dev/null >/dev/null ||
    e2e_die "ssh-keygen (user)"
  cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
  {
    local a
    for a in "$@"; do
      case $a in
        127.0.0.1 | ::1 | 198.18.0.2 | fd00:f::2) ;;
        *) e2e_die "real_sshd_config: loopback or guest addresses only, not $a" ;;
      esac
      if [[ $a == *:* ]]; then echo "ListenAddress [$a]:$port"; else echo "ListenAddress $a:$port"; fi
    done
    cat <<EOF
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
MaxSessions 50
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
  } >"$dir/sshd_config"
  SSH_OPTS=(-F /dev/null -i "$dir/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10
    -o ServerAliveInterval=5 -o ServerAliveCountMax=4)
}

real_sshd() {
  local dir=$1
  # sshd's compiled-in privilege-separation directory (the system service
  # makes it at start; the system sshd itself is never started here)
  mkdir -p /run/sshd
  chmod 755 /run/sshd
  /usr/sbin/sshd -t -f "$dir/sshd_config" || e2e_die "sshd -t rejected $dir/sshd_config"
  /usr/sbin/sshd -D -e -f "$dir/sshd_config" >"$dir/sshd.log" 2>&1 &
  SSHD_PID=$!
  e2e_on_exit "e2e_kill_pid $SSHD_PID"
}

real_fd_count() {
  local n
  n=$(ls "/proc/$1/fd" 2>/dev/null | wc -l)
  echo "$n"
}

real_conn_count() {
  "$FERRY" conns "$1" -j 2>/dev/null | grep -o '"slot"' | wc -l
}

real_wait_healthy() {
  local pid=$1 fds=$2 secs=$3 slack=${4:-2} inst=${5:-run-$1} i n c
  for ((i = 0; i < secs * 5; i++)); do
    n=$(real_fd_count "$pid")
    c=$(real_conn_count "$inst")
    if ((n <= fds + slack && c == 0)); then
      e2e_log "ferry $pid: $n fds (baseline $fds), $c connections"
      return 0
    fi
    sleep 0.2
  done
  e2e_log "ferry $pid after ${secs}s: $n fds (baseline $fds), $c connections"
  ls -l "/proc/$pid/fd" 2>/dev/null | sed 's/^/    /' | tail -30
  "$FERRY" conns "$inst" 2>/dev/null | sed 's/^/    /' | head -20
  return 1
}
