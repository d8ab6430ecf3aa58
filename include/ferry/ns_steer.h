/* SPDX-License-Identifier: MIT */
/*
 * The contract of ferry_ns_steer.bpf.c (an sk_lookup program in the guest's
 * network namespace, userspace/nsfwd/ns_steering.h): one listener per
 * family takes the guest's loopback connections to every port `-T all`
 * forwards.
 *
 * Maps (not pinned; the program and its link live as long as ferry run):
 *   steer_listeners  sockmap, FERRY_STEER_SLOTS entries: the TCP listener on
 *                    127.0.0.1 at FERRY_STEER_V4, on [::1] at FERRY_STEER_V6
 *                    (an empty slot: that family is not steered)
 *   steer_ports      array of 65536 __u8, keyed by the destination port in
 *                    host order: 1 when the port is steered
 * Both are written by userspace once, before the program is attached.
 */
#ifndef FERRY_NS_STEER_H
#define FERRY_NS_STEER_H

#define FERRY_STEER_V4 0u
#define FERRY_STEER_V6 1u
#define FERRY_STEER_SLOTS 2u
#define FERRY_STEER_PORTS 65536u

#endif
