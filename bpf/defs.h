/* SPDX-License-Identifier: MIT */
/*
 * defs.h - constants the BPF programs need that vmlinux.h cannot give.
 *
 * vmlinux.h is generated from BTF and carries types and enums only, never
 * preprocessor #defines, so TC verdicts, EtherTypes, TCP flag bits and the
 * IPv6 next-header numbers are spelled out here, once, for every program.
 * Names carry a FERRY_ prefix where a kernel header could define the same
 * macro, so this header can coexist with UAPI headers in userspace tests.
 */
#ifndef FERRY_BPF_DEFS_H
#define FERRY_BPF_DEFS_H

/* TC verdicts (include/uapi/linux/pkt_cls.h). */
#ifndef TC_ACT_UNSPEC
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_RECLASSIFY 1
#define TC_ACT_SHOT 2
#define TC_ACT_PIPE 3
#define TC_ACT_STOLEN 4
#define TC_ACT_REDIRECT 7
#endif

/* XDP verdicts are enum xdp_action in vmlinux.h (XDP_PASS, XDP_DROP, ...). */

/* EtherTypes, host order (compare after bpf_ntohs). */
#define FERRY_ETH_P_IP 0x0800
#define FERRY_ETH_P_ARP 0x0806
#define FERRY_ETH_P_8021Q 0x8100
#define FERRY_ETH_P_8021AD 0x88A8
#define FERRY_ETH_P_IPV6 0x86DD
#define FERRY_ETH_HLEN 14
#define FERRY_VLAN_HLEN 4

/* IP protocol / IPv6 next-header numbers. */
#define FERRY_IPPROTO_HOPOPTS 0
#define FERRY_IPPROTO_ICMP 1
#define FERRY_IPPROTO_TCP 6
#define FERRY_IPPROTO_UDP 17
#define FERRY_IPPROTO_ROUTING 43
#define FERRY_IPPROTO_FRAGMENT 44
#define FERRY_IPPROTO_ICMPV6 58
#define FERRY_IPPROTO_DSTOPTS 60

/* IPv4 flags/fragment-offset field (host order). */
#define FERRY_IP_MF 0x2000
#define FERRY_IP_OFFMASK 0x1FFF

/* TCP flag bits (byte 13 of the TCP header). */
#define FERRY_TCP_FIN 0x01
#define FERRY_TCP_SYN 0x02
#define FERRY_TCP_RST 0x04
#define FERRY_TCP_PSH 0x08
#define FERRY_TCP_ACK 0x10
#define FERRY_TCP_URG 0x20
#define FERRY_TCP_ECE 0x40
#define FERRY_TCP_CWR 0x80

/* TCP option kinds. */
#define FERRY_TCPOPT_EOL 0
#define FERRY_TCPOPT_NOP 1
#define FERRY_TCPOPT_MSS 2
#define FERRY_TCPOPT_WSCALE 3
#define FERRY_TCPOPT_SACK_PERM 4
#define FERRY_TCPOPT_SACK 5
#define FERRY_TCPOPT_TIMESTAMP 8

#define FERRY_AF_INET 2
#define FERRY_AF_INET6 10

#endif /* FERRY_BPF_DEFS_H */
