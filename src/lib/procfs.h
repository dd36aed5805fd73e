/* Parsers of the kernel's /proc text, kept apart from the reading so they
 * can be tested on saved samples and fuzzed. Each takes NUL-terminated
 * text (as fs_read_file() returns it) and returns 0, -BCDR_ERR_NOT_FOUND
 * when what was asked for is absent, or -BCDR_ERR_PROTOCOL on garbage. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define PROCFS_READ_MAX (4u << 20) /* /proc/stat on a big machine stays far below */

/* First "cpu " line of /proc/stat, in clock ticks. */
struct procfs_cpu {
	uint64_t total; /* user + nice + system + idle + iowait + irq + softirq + steal */
	uint64_t idle;  /* idle + iowait */
};
int procfs_parse_stat(const char *text, struct procfs_cpu *ret);

/* /proc/loadavg: the three load averages. */
int procfs_parse_loadavg(const char *text, double ret[3]);

/* /proc/meminfo, in bytes. available falls back to free + buffers + cached
 * on kernels without MemAvailable. */
struct procfs_mem {
	uint64_t total, available, swap_total, swap_free;
};
int procfs_parse_meminfo(const char *text, struct procfs_mem *ret);

/* /proc/net/dev: received and sent bytes of one interface. */
int procfs_parse_net_dev(const char *text, const char *iface, uint64_t *ret_rx, uint64_t *ret_tx);

/* /proc/diskstats: one device's milliseconds spent doing I/O and sectors
 * read and written. */
struct procfs_disk {
	uint64_t io_ms, sectors_read, sectors_written;
};
int procfs_parse_diskstats(const char *text, const char *device, struct procfs_disk *ret);

/* /proc/PID/stat. */
struct procfs_pid {
	int ppid;
	char state;
	uint64_t utime, stime; /* clock ticks */
	uint64_t starttime;    /* clock ticks after boot */
	int64_t rss_pages;
};
int procfs_parse_pid_stat(const char *text, struct procfs_pid *ret);

/* /proc/uptime: seconds since boot. */
int procfs_parse_uptime(const char *text, double *ret);
