/* SPDX-License-Identifier: MIT */
/*
 * ferry_conns.bpf.c - a map-only object: the `conns` view of a translator's
 * TCP table (include/ferry/conn_view.h), and nothing else.
 *
 * Theory of operation
 * -------------------
 * No program reads or writes `conns`: the translator's process fills it
 * through its mmap and readers (`ferry conns`, `ferry status`, `bpftool map
 * dump`) open the pin. It is a BPF map only so that it has BTF (bpftool
 * prints field names) and can be pinned and mapped. Both `ferry run` and
 * `ferry attach` create it from this object (userspace/attach/conns_map.h),
 * sized to --max-conns before load, so neither loads a program or any other
 * map to get it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "ferry/conn_view.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* resized to the flow table at load */
	__type(key, __u32);
	__type(value, struct ferry_conn_view);
} conns SEC(".maps");
