#!/usr/bin/env bash
# remote_run: `ferry run` guests against a remote server one veth hop away
# (the real path, DESIGN.md "Test topology"), not the gateway's loopback.
#
# ferry runs in host namespace RH; the servers in the remote peer RP, which
# RH reaches over two links, MTU 1500 and MTU 9000 (e2e_remote_topology).
# For guest MTUs 1500, 9000 and 65520 (ferry's default, no -m), across each
# link: 64 MiB up and 64 MiB down over IPv4 and IPv6, each checked by sha256
# on both sides (tests/tools/tcp_xfer.py: the receiver compares what it got
# with what the sender sent, the sender checks the receiver's verdict), and
# UDP datagrams of 4000 bytes (fragmented on the hop) echoed by socat in RP;
# then 16 MiB at the default MTU to a peer that stops reading for 2 s.
# A guest stops at its first failed transfer; each transfer gives up after
# 20 s without progress, each guest after 240 s.
#
# Issue 11: on the code before its fix, a guest at MTU 65520 got window 0
# from ferry's SYN-ACK on and uploaded nothing (nor its 70-byte verdict
# after a download).
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"
command -v socat >/dev/null || e2e_die "socat missing (scripts/install-deps.sh installs it)"

N=$((64 << 20))
e2e_remote_topology 1500 9000
E2E_FERRY_IN=("${RHN[@]}")
UDP_PORT=$(e2e_free_port)
"${RPN[@]}" timeout 600 socat "UDP6-LISTEN:$UDP_PORT,ipv6only=0,fork,reuseaddr" PIPE >/dev/null 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
head -c 4000 /dev/urandom >"$E2E_TMP/dgram"

# The guest's script: every transfer of one guest MTU, one line each in
# $1 (the results file), stopping at the first failure.
cat >"$E2E_TMP/guest.sh" <<EOF
results=\$1 up=\$2 down=\$3
xfer() { timeout -k 5 60 $XFER connect --timeout 20 --bytes $N "\$@"; }
for peer in ${REMOTE_P4[*]} ${REMOTE_P6[*]}; do
  xfer --addr \$peer --port \$up --mode send --seed 31 || { echo "FAIL up \$peer" >>\$results; exit 1; }
  echo "ok up \$peer" >>\$results
  xfer --addr \$peer --port \$down --mode recv --seed 32 || { echo "FAIL down \$peer" >>\$results; exit 1; }
  echo "ok down \$peer" >>\$results
  case \$peer in *:*) u=UDP6:[\$peer]:$UDP_PORT ;; *) u=UDP4:\$peer:$UDP_PORT ;; esac
  timeout 10 socat -T 3 - \$u <$E2E_TMP/dgram >$E2E_TMP/dgram.back
  if cmp -s $E2E_TMP/dgram $E2E_TMP/dgram.back; then echo "ok udp \$peer" >>\$results
  else echo "FAIL udp \$peer" >>\$results; exit 1; fi
done
EOF

for gmtu in 1500 9000 65520; do
  # Servers in RP on every address (RP has only its links to RH): one
  # connection per link and family.
  xfer_server_in "$RP" UP --addr :: --mode sink --bytes $N --seed 31 --count 4 --timeout 60
  xfer_server_in "$RP" DOWN --addr :: --mode source --bytes $N --seed 32 --count 4 --timeout 60
  mflag=()
  [[ $gmtu == 65520 ]] || mflag=(-m "$gmtu")
  res=$E2E_TMP/results.$gmtu
  : >"$res"
  start=$SECONDS
  e2e_ferry_bg 240 run "${mflag[@]}" -- bash "$E2E_TMP/guest.sh" "$res" "$UP_PORT" "$DOWN_PORT"
  e2e_ferry_wait
  e2e_log "guest MTU $gmtu: $(($SECONDS - start)) s: $(tr '\n' ',' <"$res")"
  e2e_expect_rc 0 "guest MTU $gmtu: every transfer to the remote peer verified"
  e2e_expect "guest MTU $gmtu: 12 results, all ok" \
    bash -c "[[ \$(grep -c '^ok ' '$res') == 12 ]]"
  e2e_expect "guest MTU $gmtu: remote sink verified 4 x 64 MiB" xfer_wait "$UP_PID"
  e2e_expect "guest MTU $gmtu: remote source saw 4 verdicts" xfer_wait "$DOWN_PID"
done

# A remote receiver that stops reading for 2 s after its first MiB: ferry's
# window to the guest closes and must reopen (default MTU, link 1500).
xfer_server_in "$RP" PAUSED --addr :: --mode sink --bytes $((16 << 20)) --seed 33 --count 1 --timeout 60 --pause 2
e2e_ferry 90 run -- timeout -k 5 60 $XFER connect --addr "${REMOTE_P4[0]}" --port "$PAUSED_PORT" --mode send \
  --bytes $((16 << 20)) --seed 33 --timeout 20
e2e_expect_rc 0 "guest MTU 65520: 16 MiB to a peer that pauses 2 s (the window reopens)"
e2e_expect "the pausing peer verified 16 MiB" xfer_wait "$PAUSED_PID"
