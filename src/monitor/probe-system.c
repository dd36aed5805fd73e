/* system: probes of the host from /proc and statvfs(). Rates (cpu, io, net)
 * compare with the previous run's counters; on a first run they sample
 * twice, a short moment apart. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "monitor/probes.h"
#include "lib/procfs.h"

#define FIRST_SAMPLE_GAP (250 * USEC_PER_MSEC)

static int read_proc(const char *path, char **ret)
{
	return fs_read_file(path, PROCFS_READ_MAX, ret, NULL);
}

/* Reads the counters of the metric into c[]. */
static int read_counters(const struct check_def *def, uint64_t c[4])
{
	_cleanup_free_ char *text = NULL;
	int r;

	switch (def->probe.system.metric) {
	case SYSTEM_CPU: {
		struct procfs_cpu cpu;

		r = read_proc("/proc/stat", &text);
		if (r >= 0)
			r = procfs_parse_stat(text, &cpu);
		if (r < 0)
			return r;
		c[0] = cpu.total;
		c[1] = cpu.idle;
		return 0;
	}
	case SYSTEM_NET:
		r = read_proc("/proc/net/dev", &text);
		if (r >= 0)
			r = procfs_parse_net_dev(text, def->probe.system.target, &c[0], &c[1]);
		return r;
	case SYSTEM_IO: {
		struct procfs_disk d;

		r = read_proc("/proc/diskstats", &text);
		if (r >= 0)
			r = procfs_parse_diskstats(text, def->probe.system.target, &d);
		if (r < 0)
			return r;
		c[0] = d.io_ms;
		c[1] = d.sectors_read;
		c[2] = d.sectors_written;
		return 0;
	}
	default:
		return -EINVAL;
	}
}

static uint64_t delta(uint64_t now, uint64_t before)
{
	return now >= before ? now - before : 0; /* a counter reset counts as none */
}

static int probe_rate(const struct check_def *def, struct probe_state *ps, usec_t deadline,
		      struct probe_result *res)
{
	uint64_t c[4] = { 0 }, *p = ps->prev;
	const char *target = def->probe.system.target;
	usec_t t, dt;
	double secs;
	int r;

	if (!ps->have_prev) {
		r = read_counters(def, ps->prev);
		if (r < 0)
			goto fail;
		ps->prev_time = now_monotonic();
		ps->have_prev = true;
		probe_sleep(FIRST_SAMPLE_GAP, deadline);
	}
	r = read_counters(def, c);
	if (r < 0)
		goto fail;
	t = now_monotonic();
	dt = t > ps->prev_time ? t - ps->prev_time : 1;
	secs = (double)dt / (double)USEC_PER_SEC;
	switch (def->probe.system.metric) {
	case SYSTEM_CPU: {
		uint64_t total = delta(c[0], p[0]), idle = delta(c[1], p[1]);
		double busy = total ? 100.0 * (double)(total - (idle > total ? total : idle)) /
					      (double)total : 0;

		probe_set_value(res, busy, "%");
		probe_message(res, "cpu %.1f%% busy (%ld CPUs)", busy, sysconf(_SC_NPROCESSORS_ONLN));
		break;
	}
	case SYSTEM_NET: {
		double rx = (double)delta(c[0], p[0]) / secs, tx = (double)delta(c[1], p[1]) / secs;
		char rxs[32], txs[32];

		probe_set_value(res, rx + tx, "bytes/s");
		probe_message(res, "%s: received %s/s, sent %s/s", target,
			      size_format((uint64_t)rx, rxs, sizeof(rxs)),
			      size_format((uint64_t)tx, txs, sizeof(txs)));
		break;
	}
	case SYSTEM_IO: {
		double busy = 100.0 * (double)delta(c[0], p[0]) / (secs * 1000.0);
		double rd = (double)delta(c[1], p[1]) * 512 / secs;
		double wr = (double)delta(c[2], p[2]) * 512 / secs;
		char rds[32], wrs[32];

		if (busy > 100)
			busy = 100;
		probe_set_value(res, busy, "%");
		probe_message(res, "%s: %.1f%% busy, reading %s/s, writing %s/s", target, busy,
			      size_format((uint64_t)rd, rds, sizeof(rds)),
			      size_format((uint64_t)wr, wrs, sizeof(wrs)));
		break;
	}
	default:
		break;
	}
	memcpy(ps->prev, c, sizeof(c));
	ps->prev_time = t;
	return 0;
fail:
	ps->have_prev = false;
	if (r == -BCDR_ERR_NOT_FOUND)
		probe_fail(res, CHECK_UNKNOWN, "no %s '%s' on this host",
			   def->probe.system.metric == SYSTEM_NET ? "network interface" : "device",
			   target ? target : "cpu");
	else
		probe_fail(res, CHECK_UNKNOWN, "cannot read the counters: %s", err_str(r));
	return 0;
}

static int probe_statvfs(const struct check_def *def, struct probe_result *res)
{
	const char *path = def->probe.system.target;
	struct statvfs st;
	char a[32], b[32];

	if (statvfs(path, &st) < 0) {
		probe_fail(res, CHECK_UNKNOWN, "cannot stat the filesystem of '%s': %s", path,
			   strerror(errno));
		return 0;
	}
	if (def->probe.system.metric == SYSTEM_DISK) {
		/* As df: used / (used + available to unprivileged users). */
		double used = (double)(st.f_blocks - st.f_bfree) * (double)st.f_frsize;
		double avail = (double)st.f_bavail * (double)st.f_frsize;
		double pct = used + avail > 0 ? 100.0 * used / (used + avail) : 0;

		probe_set_value(res, pct, "%");
		probe_message(res, "%s: %.1f%% used, %s free of %s", path, pct,
			      size_format((uint64_t)avail, a, sizeof(a)),
			      size_format((uint64_t)(st.f_blocks * st.f_frsize), b, sizeof(b)));
	} else {
		double pct = st.f_files ? 100.0 * (double)(st.f_files - st.f_ffree) /
						 (double)st.f_files : 0;

		probe_set_value(res, pct, "%");
		if (st.f_files)
			probe_message(res, "%s: %.1f%% of inodes used, %llu free", path, pct,
				      (unsigned long long)st.f_favail);
		else
			probe_message(res, "%s: the filesystem has no inode limit", path);
	}
	return 0;
}

int probe_system(const struct check_def *def, struct probe_state *ps, usec_t deadline,
		 struct probe_result *res)
{
	_cleanup_free_ char *text = NULL;
	int r;

	switch (def->probe.system.metric) {
	case SYSTEM_CPU:
	case SYSTEM_NET:
	case SYSTEM_IO:
		return probe_rate(def, ps, deadline, res);
	case SYSTEM_DISK:
	case SYSTEM_INODES:
		return probe_statvfs(def, res);
	case SYSTEM_LOAD1:
	case SYSTEM_LOAD5:
	case SYSTEM_LOAD15: {
		double load[3];
		int i = def->probe.system.metric - SYSTEM_LOAD1;

		r = read_proc("/proc/loadavg", &text);
		if (r >= 0)
			r = procfs_parse_loadavg(text, load);
		if (r < 0) {
			probe_fail(res, CHECK_UNKNOWN, "cannot read '/proc/loadavg': %s", err_str(r));
			return 0;
		}
		probe_set_value(res, load[i], "");
		probe_message(res, "load %.2f %.2f %.2f (%ld CPUs)", load[0], load[1], load[2],
			      sysconf(_SC_NPROCESSORS_ONLN));
		return 0;
	}
	case SYSTEM_MEMORY:
	case SYSTEM_SWAP: {
		struct procfs_mem m;
		char a[32], b[32];

		r = read_proc("/proc/meminfo", &text);
		if (r >= 0)
			r = procfs_parse_meminfo(text, &m);
		if (r < 0) {
			probe_fail(res, CHECK_UNKNOWN, "cannot read '/proc/meminfo': %s", err_str(r));
			return 0;
		}
		if (def->probe.system.metric == SYSTEM_MEMORY) {
			double pct = 100.0 * (double)(m.total - m.available) / (double)m.total;

			probe_set_value(res, pct, "%");
			probe_message(res, "memory %.1f%% used, %s available of %s", pct,
				      size_format(m.available, a, sizeof(a)),
				      size_format(m.total, b, sizeof(b)));
		} else if (m.swap_total) {
			double pct = 100.0 * (double)(m.swap_total - m.swap_free) /
				     (double)m.swap_total;

			probe_set_value(res, pct, "%");
			probe_message(res, "swap %.1f%% used, %s free of %s", pct,
				      size_format(m.swap_free, a, sizeof(a)),
				      size_format(m.swap_total, b, sizeof(b)));
		} else {
			probe_set_value(res, 0, "%");
			probe_message(res, "no swap configured");
		}
		return 0;
	}
	default:
		probe_fail(res, CHECK_UNKNOWN, "unknown system metric");
		return 0;
	}
}
