#!/bin/sh
# Regenerate vmlinux.h from the running kernel's BTF (CO-RE: the build itself
# never needs the build host's kernel, only this checked-in header).
exec bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$(dirname "$0")/vmlinux.h"
