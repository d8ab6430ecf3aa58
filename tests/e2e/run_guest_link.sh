#!/usr/bin/env bash
# run_guest_link: what the guest sees: one interface besides lo, with
# 198.18.0.2/24 and fd00:f::2/64 (not tentative: usable at once), MTU 65520,
# default routes via 198.18.0.1 and fd00:f::1, lo up.
source "$(dirname "$0")/lib.sh"
e2e_init

e2e_ferry 20 run -- sh -c 'ip -o link show; echo ==; ip -o addr show; echo ==; ip -4 route show; echo ==; ip -6 route show'
e2e_expect_rc 0 "ip in the guest"
sed 's/^/    /' "$OUT"

ifname=$(awk '/ inet 198\.18\.0\.2\/24 / {print $2; exit}' "$OUT")
e2e_expect "198.18.0.2/24 on an interface" test -n "$ifname"
ifname=${ifname:-none}
e2e_expect "fd00:f::2/64 on $ifname" grep -qE "^[0-9]+: $ifname +inet6 fd00:f::2/64 " "$OUT"
e2e_expect "fd00:f::2 not tentative" bash -c "! grep -E 'inet6 fd00:f::2/64 .*tentative' '$OUT'"
e2e_expect "MTU 65520 on $ifname" grep -qE "^[0-9]+: $ifname(@[^:]*)?: .* mtu 65520 " "$OUT"
e2e_expect "$ifname is up" grep -qE "^[0-9]+: $ifname(@[^:]*)?: <[^>]*\bUP\b" "$OUT"
e2e_expect "lo is up" grep -qE "^[0-9]+: lo: <[^>]*\bUP\b" "$OUT"
e2e_expect "IPv4 default route" grep -qE "^default via 198\.18\.0\.1 dev $ifname" "$OUT"
e2e_expect "IPv6 default route" grep -qE "^default via fd00:f::1 dev $ifname" "$OUT"
links=$(grep -cE '^[0-9]+: ' <(sed -n '1,/^==$/p' "$OUT"))
e2e_expect "only lo and $ifname (saw $links links)" test "$links" -eq 2

# No IPv4 forwarding for what arrives on ferry's link, whatever the namespace
# inherited (a host that forwards, as this one does, may hand its setting
# down): frames ferry sends to an address the guest does not own must not
# come back out.
e2e_ferry 20 run -- sh -c 'cat /proc/sys/net/ipv4/conf/eth0/forwarding'
e2e_expect_rc 0 "read eth0's forwarding in the guest"
e2e_expect "no IPv4 forwarding on the guest's link (got $(tr -d '\n' <"$OUT"))" grep -qx 0 "$OUT"
