#!/usr/bin/env bash
# install-deps.sh: everything ferry's build, tests, demo and benchmarks need,
# on Debian 12 (bookworm), as root. Idempotent: when every package is already
# installed it runs no apt at all, so repeated runs take a second. Also mounts
# bpffs at /sys/fs/bpf when it is not mounted (ferry pins its maps there).
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config clang-19 llvm-19
  libbpf-dev libxdp-dev bpftool libelf-dev zlib1g-dev nlohmann-json3-dev libseccomp-dev
  libpcap-dev  # --pcap: the capture file's format and writer
  # fuzzing (tests/fuzz: libFuzzer with clang-19)
  libclang-rt-19-dev
  # tests
  libgtest-dev libgmock-dev iproute2 iputils-ping socat curl python3 python3-scapy
  iptables  # guest_hostile: its raw TCP flows use the guest's address, the guest kernel's RSTs are dropped
  # benchmarks and comparisons
  iperf3 passt slirp4netns tcpdump ethtool nginx-light
  # real clients and servers of the tests/e2e/real_* scenarios (each runs
  # its own instance on loopback; the system sshd is never started)
  openssh-server openssh-client apache2-utils
  # the VM scenarios (tests/e2e/vm_*.sh): QEMU (TCG is enough), a static
  # busybox for the guest's initramfs (its cpio packs it); the guest's kernel is
  # Debian's linux-image-amd64, fetched by the tests with `apt-get download`
  qemu-system-x86 busybox-static
  # stock clients of the guest-services scenarios (services_*): udhcpc,
  # dhclient, rdisc6, a throw-away resolver, dig
  # (busybox-static above: udhcpc)
  isc-dhcp-client ndisc6 dnsmasq-base bind9-dnsutils
  # tests/e2e/podman_*.sh: Debian's Podman 4.3 with ferry as its network;
  # runc, not crun (crun 1.8 refuses a hybrid cgroup hierarchy);
  podman runc containernetworking-plugins  # host-local: the IPAM of the scenarios
  uidmap  # rootless Podman's newuidmap/newgidmap (podman_rootless)
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: run as root (sudo scripts/install-deps.sh)" >&2
  exit 1
fi

# Packages not yet installed ("install ok installed" is dpkg's word for done).
missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # nginx-light would start a server on port 80 when installed, and
  # openssh-server the system sshd on port 22; ferry only uses their
  # binaries, on ports of its own choosing.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  # ... nor at the next boot, for the servers this run installed (an sshd
  # that was there before stays as it was)
  if [[ -d /run/systemd/system ]]; then
    for p in "${missing[@]}"; do
      case $p in
        openssh-server) systemctl disable -q ssh.service ssh.socket 2>/dev/null || true ;;
        nginx-light) systemctl disable -q nginx.service 2>/dev/null || true ;;
      esac
    done
  fi
else
  echo "install-deps.sh: all ${#PACKAGES[@]} packages present"
fi

# bpffs for pinned maps, root's alone (mode=0700: no world write; ferry
# also refuses a pin root /sys/fs/bpf/ferry that root does not own).
if ! mountpoint -q /sys/fs/bpf 2>/dev/null || [[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) != bpf_fs ]]; then
  mkdir -p /sys/fs/bpf
  mount -t bpf -o mode=0700 bpf /sys/fs/bpf
  echo "install-deps.sh: mounted bpffs at /sys/fs/bpf (mode 0700)"
fi
