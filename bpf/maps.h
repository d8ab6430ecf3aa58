/* SPDX-License-Identifier: MIT */
/*
 * maps.h - the maps both BPF objects define, in one place.
 *
 * Theory of operation
 * -------------------
 * ferry_classify.bpf.c (`ferry run`'s tap) and ferry_attach.bpf.c (`ferry
 * attach`'s DEV) each load their own copy of these maps; userspace drives
 * either copy the same way, by name (userspace/bpf/fastpath_maps.h opens the
 * fast-path maps by fd, the stats readers open the pinned `stats`). Layouts
 * and writers are the contract's (include/ferry/contract.h):
 *   stats       per-CPU counters, one struct ferry_stats at key 0 (bpf/stats.h
 *               counts into it)
 *   conn_hash   flow key -> conn_state index            (userspace writes)
 *   conn_state  one struct ferry_conn_slot per index    (split writers)
 *   events      ring buffer of struct ferry_event       (BPF writes)
 * The connection-sized maps are declared at the default size and resized
 * by the loader (bpf_map__set_max_entries) before load. Maps only one
 * object has (the attach object's attach_stats, tx_port) stay in that
 * object's file; the `conns` view is no program's (bpf/ferry_conns.bpf.c).
 */
#ifndef FERRY_BPF_MAPS_H
#define FERRY_BPF_MAPS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "ferry/contract.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ferry_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FERRY_MAX_CONNS_DEFAULT); /* set at load */
	__type(key, struct ferry_conn_key);
	__type(value, __u32);
} conn_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FERRY_MAX_CONNS_DEFAULT); /* set at load */
	__type(key, __u32);
	__type(value, struct ferry_conn_slot);
} conn_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FERRY_EVENTS_RING_BYTES);
} events SEC(".maps");

#endif /* FERRY_BPF_MAPS_H */
