/* slow_tap_reader: a stand-in for a QEMU guest under TCG on a tap, whose
 * reader stalls, so the kernel drops frames on the tap toward the "VM".
 *
 * Theory of operation
 * -------------------
 * QEMU's tap backend holds the tap's fd and moves frames between it and the
 * guest's virtio ring; under TCG the guest often does not empty its ring for
 * milliseconds, QEMU stops reading, the tap's queue (txqueuelen frames)
 * fills and tun drops what the host sends next (`ip -s link` TX dropped).
 * This program does the same with a real Linux stack as the guest:
 *
 *   ferry attach DEV <-> DEV's fd (this program) <-> GT's fd <-> guest netns
 *
 * It creates DEV (a tap in the calling namespace, the one `ferry attach`
 * serves) and GT (a tap inside the guest namespace, the guest's NIC), and
 * copies frames both ways with their virtio-net headers, as QEMU does, so
 * the guest's offloads are those of a virtio-net guest: on (checksum, TSO)
 * or off (no vnet header: full checksums, MTU-sized frames).
 *
 * Guest -> DEV is copied at once. DEV -> guest is read in bursts: at most
 * `burst` frames, then nothing is read from DEV for `pause_us`; and every
 * `long_every` bursts (0: never) a pause of `long_us` instead (a vCPU
 * descheduled). Pauses are measured on the monotonic clock and the guest's
 * direction keeps flowing during them (poll with a timeout).
 *
 * Usage: slow_tap_reader DEV GUEST_NETNS_PATH GT OFFLOADS(0|1) BURST
 *        PAUSE_US LONG_EVERY LONG_US READY_FILE [STATS_FILE]
 * Ends on SIGTERM/SIGINT; prints the frames moved and each side's read
 * errors on stderr at the end. With STATS_FILE, the pauses so far are
 * rewritten there as a JSON object at every pause (a soak reads them
 * before and after each transfer: which transfers absorbed an injected
 * pause). Test tool only: no privilege is dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

/* Rewrites the stats file (fd, or -1: none) with the pause counts. */
static void write_stats(int fd, uint64_t pauses, uint64_t long_pauses, uint64_t long_us_total)
{
	char b[160];
	int n;

	if (fd < 0)
		return;
	n = snprintf(b, sizeof(b), "{\"reader_pauses\": %llu, \"reader_long_pauses\": %llu, \"reader_long_pause_us\": %llu}\n",
		     (unsigned long long)pauses, (unsigned long long)long_pauses, (unsigned long long)long_us_total);
	if (ftruncate(fd, 0) != 0 || pwrite(fd, b, (size_t)n, 0) != n)
		perror("stats file");
}

/* Monotonic time in microseconds. */
static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Opens tap `name` in the current namespace, with a vnet header and
 * checksum/TSO offloads when `offloads`. */
static int open_tap(const char *name, int offloads)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		perror("open /dev/net/tun");
		exit(1);
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (offloads ? IFF_VNET_HDR : 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
		perror("TUNSETIFF");
		exit(1);
	}
	if (offloads) {
		int len = 10; /* struct virtio_net_hdr */

		if (ioctl(fd, TUNSETVNETHDRSZ, &len) != 0 ||
		    ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) != 0) {
			perror("tap offloads");
			exit(1);
		}
	}
	return fd;
}

/* Copies up to `max` frames from `from` to `to`; returns how many. */
static long copy_frames(int from, int to, long max, unsigned char *buf, size_t len, uint64_t *errs)
{
	long n = 0;

	while (n < max) {
		ssize_t r = read(from, buf, len);

		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR)
				(*errs)++;
			break;
		}
		if (r == 0)
			break;
		/* the other tap's queue into its stack: a full one drops, as a VM's would */
		if (write(to, buf, (size_t)r) != r)
			(*errs)++;
		n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	static unsigned char buf[65536 + 256];
	uint64_t dev_errs = 0, gt_errs = 0, to_guest = 0, from_guest = 0, pauses = 0, long_pauses = 0;

	if (argc != 10 && argc != 11) {
		fprintf(stderr, "usage: %s DEV GUEST_NETNS GT OFFLOADS BURST PAUSE_US LONG_EVERY LONG_US READY_FILE [STATS_FILE]\n",
			argv[0]);
		return 2;
	}
	const int offloads = atoi(argv[4]);
	const long burst = atol(argv[5]) > 0 ? atol(argv[5]) : 1;
	const uint64_t pause_us = strtoull(argv[6], NULL, 10);
	const long long_every = atol(argv[7]);
	const uint64_t long_us = strtoull(argv[8], NULL, 10);

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	int dev = open_tap(argv[1], offloads);
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int guest_ns = open(argv[2], O_RDONLY | O_CLOEXEC);

	if (home < 0 || guest_ns < 0 || setns(guest_ns, CLONE_NEWNET) != 0) {
		perror("enter the guest namespace");
		return 1;
	}
	int gt = open_tap(argv[3], offloads);

	if (setns(home, CLONE_NEWNET) != 0) {
		perror("setns back");
		return 1;
	}
	FILE *ready = fopen(argv[9], "w");

	if (ready == NULL) {
		perror("ready file");
		return 1;
	}
	int stats = argc == 11 ? open(argv[10], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;

	if (argc == 11 && stats < 0) {
		perror("stats file");
		return 1;
	}
	write_stats(stats, 0, 0, 0);
	fputs("ready\n", ready);
	fclose(ready);

	uint64_t resume_at = 0; /* DEV is not read before this */
	long bursts = 0;

	while (!stop) {
		uint64_t t = now_us();
		int dev_open = t >= resume_at;
		int timeout_ms = dev_open ? 100 : (int)((resume_at - t + 999) / 1000);
		struct pollfd p[2] = {{.fd = gt, .events = POLLIN}, {.fd = dev, .events = dev_open ? POLLIN : 0}};

		if (poll(p, 2, timeout_ms) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN)
			from_guest += (uint64_t)copy_frames(gt, dev, 64, buf, sizeof(buf), &gt_errs);
		if (dev_open && (p[1].revents & POLLIN)) {
			long n = copy_frames(dev, gt, burst, buf, sizeof(buf), &dev_errs);

			to_guest += (uint64_t)n;
			if (n == burst) { /* the "ring" is full: stop reading for a while */
				bursts++;
				if (long_every > 0 && bursts % long_every == 0) {
					resume_at = now_us() + long_us;
					long_pauses++;
				} else {
					resume_at = now_us() + pause_us;
				}
				pauses++;
				write_stats(stats, pauses, long_pauses, long_pauses * long_us);
			}
		}
	}
	fprintf(stderr, "slow_tap_reader: to_guest=%llu from_guest=%llu pauses=%llu long_pauses=%llu dev_errs=%llu gt_errs=%llu\n",
		(unsigned long long)to_guest, (unsigned long long)from_guest, (unsigned long long)pauses,
		(unsigned long long)long_pauses, (unsigned long long)dev_errs, (unsigned long long)gt_errs);
	return 0;
}
