#!/usr/bin/env bash
# services_run_dns: `ferry run` when the host's resolv.conf names only a
# loopback resolver (systemd-resolved's 127.0.0.53), which the guest's own
# loopback is not.
#
# Topology: namespace H of our own (no route out) with dnsmasq on 127.0.0.53
# holding one record and no upstream; ferry runs in H, in a mount namespace
# where /etc/resolv.conf names 127.0.0.53 (search host.example). Checks:
#   CMD sees a private /etc/resolv.conf naming ferry's forwarder (198.18.0.1,
#   fd00:f::1) with the host's search list and options; glibc's getent and
#   dig (UDP, and +tcp, which ferry connects to the resolver) resolve the
#   record through it; the host's file is untouched;
#   --dns-forward 198.18.0.53 moves the forwarder (resolv.conf and answers);
#   --dns 192.0.2.53 names that server instead (no query is sent to it);
#   a host resolv.conf with a non-loopback resolver is left as it is, and so
#   is a loopback one under --no-dns.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
for tool in dnsmasq dig getent unshare; do command -v "$tool" >/dev/null || e2e_die "$tool missing"; done

U=$(e2e_unique d)
H=${U}h
HN=(nsenter "--net=/run/netns/$H")
T=$E2E_TMP
RECORD=svc.ferry.test
RECORD_ADDR=198.18.7.7

e2e_on_exit "ip netns del $H"
ip netns add "$H" || e2e_die "namespace"
ip -n "$H" link set lo up
"${HN[@]}" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --user=root \
  --listen-address=127.0.0.53 --bind-interfaces --pid-file="$T/dnsmasq.pid" \
  --address="/$RECORD/$RECORD_ADDR" 2>"$T/dnsmasq.err" &
DNSMASQ=$!
e2e_on_exit "e2e_kill_pid $DNSMASQ"
for i in $(seq 1 50); do
  [[ $("${HN[@]}" dig +short +time=1 +tries=1 @127.0.0.53 "$RECORD" A 2>/dev/null) == "$RECORD_ADDR" ]] && break
  sleep 0.2
done

# run RESOLV_CONF ARGS... -- CMD: ferry run in H with RESOLV_CONF as the host's /etc/resolv.conf.
run() {
  local rc_file=$1
  shift
  timeout 60 "${HN[@]}" unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' \
    sh "$rc_file" "$FERRY" run -q "$@" >"$OUT" 2>"$ERR"
}
printf 'nameserver 127.0.0.53\nsearch host.example\noptions edns0 trust-ad\n' >"$T/loopback.conf"
printf 'nameserver 10.77.0.53\n' >"$T/remote.conf"
before=$(sha256sum /etc/resolv.conf)

run "$T/loopback.conf" -- sh -c "cat /etc/resolv.conf; echo ===; getent hosts $RECORD; echo ===; \
  dig +short +time=3 +tries=2 $RECORD A; echo ===; dig +tcp +short +time=3 +tries=2 $RECORD A"
e2e_expect "ferry run -> 0" test $? -eq 0 || e2e_show_output
section() { awk -v n="$1" 'BEGIN { s = 1 } /^===$/ { s++; next } s == n' "$OUT"; }
e2e_expect "guest resolv.conf names 198.18.0.1" grep -qx "nameserver 198.18.0.1" <(section 1)
e2e_expect "guest resolv.conf names fd00:f::1" grep -qx "nameserver fd00:f::1" <(section 1)
e2e_expect "guest resolv.conf keeps the search list" grep -qx "search host.example" <(section 1)
e2e_expect "guest resolv.conf keeps the options" grep -qx "options edns0 trust-ad" <(section 1)
e2e_expect "no loopback resolver in the guest's file" bash -c "! grep -q 127.0.0.53 <(awk 'BEGIN{s=1} /^===\$/{s++; next} s==1' '$OUT')"
e2e_expect "getent hosts resolves the record" grep -q "^$RECORD_ADDR *$RECORD" <(section 2)
e2e_expect "dig (UDP) resolves the record" grep -qx "$RECORD_ADDR" <(section 3)
e2e_expect "dig +tcp resolves the record" grep -qx "$RECORD_ADDR" <(section 4)
e2e_expect "the host's /etc/resolv.conf is untouched" test "$(sha256sum /etc/resolv.conf)" = "$before"

run "$T/loopback.conf" --dns-forward 198.18.0.53 -- sh -c "cat /etc/resolv.conf; echo ===; \
  dig +short +time=3 +tries=2 @198.18.0.53 $RECORD A; echo ===; dig +tcp +short +time=3 +tries=2 @198.18.0.53 $RECORD A"
e2e_expect "--dns-forward: resolv.conf names it" grep -qx "nameserver 198.18.0.53" <(section 1)
e2e_expect "--dns-forward: UDP answer" grep -qx "$RECORD_ADDR" <(section 2)
e2e_expect "--dns-forward: TCP answer" grep -qx "$RECORD_ADDR" <(section 3)

run "$T/loopback.conf" --dns 192.0.2.53 -- cat /etc/resolv.conf
e2e_expect "--dns: resolv.conf names that server" grep -qx "nameserver 192.0.2.53" "$OUT"
e2e_expect "--dns: and not the forwarder" bash -c "! grep -q 'nameserver 198.18.0.1' '$OUT'"

run "$T/remote.conf" -- cat /etc/resolv.conf
e2e_expect "a non-loopback host resolver: the host's file as it is" grep -qx "nameserver 10.77.0.53" "$OUT"
run "$T/loopback.conf" --no-dns -- cat /etc/resolv.conf
e2e_expect "--no-dns: the host's file as it is" grep -qx "nameserver 127.0.0.53" "$OUT"
run "$T/loopback.conf" --dns-forward 10.1.2.3 -- true
e2e_expect "--dns-forward outside the guest's subnet -> 2" test $? -eq 2
e2e_expect "--dns-forward outside: says why" grep -q "is not an address of" "$ERR"
