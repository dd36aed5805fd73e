/* Parsers of /proc text. The kernel's formats are stable but the text is
 * still outside bytes: every number is range-checked, every line bounded
 * by the NUL at the end of the buffer. */
#include "lib/procfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

/* Reads an unsigned decimal at *p (after blanks); advances *p. */
static int next_u64(const char **p, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return -BCDR_ERR_PROTOCOL;
	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -BCDR_ERR_PROTOCOL;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*ret = v;
	return 0;
}

static int next_i64(const char **p, int64_t *ret)
{
	const char *s = *p;
	bool neg;
	uint64_t v;
	int r;

	while (*s == ' ' || *s == '\t')
		s++;
	neg = *s == '-';
	if (neg)
		s++;
	r = next_u64(&s, &v);
	if (r < 0)
		return r;
	if (v > (uint64_t)INT64_MAX)
		return -BCDR_ERR_PROTOCOL;
	*p = s;
	*ret = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

static const char *next_line(const char *p)
{
	const char *nl = strchr(p, '\n');

	return nl ? nl + 1 : NULL;
}

int procfs_parse_stat(const char *text, struct procfs_cpu *ret)
{
	for (const char *line = text; line && *line; line = next_line(line)) {
		const char *p = line + 4;
		uint64_t v[8] = { 0 }, total = 0;
		int n = 0;

		if (strncmp(line, "cpu ", 4) != 0)
			continue;
		/* Old kernels have fewer columns; four are the minimum. */
		for (; n < 8; n++)
			if (next_u64(&p, &v[n]) < 0)
				break;
		if (n < 4)
			return -BCDR_ERR_PROTOCOL;
		for (int i = 0; i < n; i++) {
			if (total + v[i] < total)
				return -BCDR_ERR_PROTOCOL;
			total += v[i];
		}
		ret->total = total;
		ret->idle = v[3] + v[4];
		return 0;
	}
	return -BCDR_ERR_NOT_FOUND;
}

static int parse_real(const char **p, double *ret)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(*p, &end);
	if (end == *p || errno || d != d || d < 0 || d > 1e12)
		return -BCDR_ERR_PROTOCOL;
	*p = end;
	*ret = d;
	return 0;
}

int procfs_parse_loadavg(const char *text, double ret[3])
{
	const char *p = text;
	double v[3];

	for (int i = 0; i < 3; i++) {
		while (*p == ' ')
			p++;
		/* strtod accepts "inf", "0x..": only digits and a dot are loads. */
		if (*p < '0' || *p > '9')
			return -BCDR_ERR_PROTOCOL;
		if (parse_real(&p, &v[i]) < 0)
			return -BCDR_ERR_PROTOCOL;
	}
	memcpy(ret, v, sizeof(v));
	return 0;
}

int procfs_parse_uptime(const char *text, double *ret)
{
	const char *p = text;

	if (*p < '0' || *p > '9')
		return -BCDR_ERR_PROTOCOL;
	return parse_real(&p, ret);
}

int procfs_parse_meminfo(const char *text, struct procfs_mem *ret)
{
	static const char *const keys[] = { "MemTotal:", "MemAvailable:", "SwapTotal:",
					    "SwapFree:", "MemFree:", "Buffers:", "Cached:" };
	uint64_t v[7] = { 0 };
	bool seen[7] = { false };

	for (const char *line = text; line && *line; line = next_line(line)) {
		for (size_t k = 0; k < 7; k++) {
			size_t len = strlen(keys[k]);
			const char *p = line + len;
			uint64_t kb;

			if (seen[k] || strncmp(line, keys[k], len) != 0)
				continue;
			if (next_u64(&p, &kb) < 0 || kb > UINT64_MAX / 1024)
				return -BCDR_ERR_PROTOCOL;
			v[k] = kb * 1024;
			seen[k] = true;
		}
	}
	if (!seen[0] || v[0] == 0)
		return -BCDR_ERR_NOT_FOUND;
	ret->total = v[0];
	if (seen[1]) {
		ret->available = v[1];
	} else {
		uint64_t a = v[4] + v[5];

		ret->available = a < v[4] || a + v[6] < a ? v[0] : a + v[6];
	}
	if (ret->available > ret->total)
		ret->available = ret->total;
	ret->swap_total = v[2];
	ret->swap_free = v[3] > v[2] ? v[2] : v[3];
	return 0;
}

int procfs_parse_net_dev(const char *text, const char *iface, uint64_t *ret_rx, uint64_t *ret_tx)
{
	size_t len = strlen(iface);

	for (const char *line = text; line && *line; line = next_line(line)) {
		const char *p = line;
		uint64_t v[9];

		while (*p == ' ')
			p++;
		if (strncmp(p, iface, len) != 0 || p[len] != ':')
			continue;
		p += len + 1;
		/* rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes */
		for (int i = 0; i < 9; i++)
			if (next_u64(&p, &v[i]) < 0)
				return -BCDR_ERR_PROTOCOL;
		*ret_rx = v[0];
		*ret_tx = v[8];
		return 0;
	}
	return -BCDR_ERR_NOT_FOUND;
}

int procfs_parse_diskstats(const char *text, const char *device, struct procfs_disk *ret)
{
	size_t len = strlen(device);

	for (const char *line = text; line && *line; line = next_line(line)) {
		const char *p = line;
		uint64_t major, minor, v[10];

		if (next_u64(&p, &major) < 0 || next_u64(&p, &minor) < 0)
			continue;
		while (*p == ' ')
			p++;
		if (strncmp(p, device, len) != 0 || (p[len] != ' ' && p[len] != '\t'))
			continue;
		p += len;
		for (int i = 0; i < 10; i++)
			if (next_u64(&p, &v[i]) < 0)
				return -BCDR_ERR_PROTOCOL;
		ret->sectors_read = v[2];
		ret->sectors_written = v[6];
		ret->io_ms = v[9];
		return 0;
	}
	return -BCDR_ERR_NOT_FOUND;
}

int procfs_parse_pid_stat(const char *text, struct procfs_pid *ret)
{
	/* comm may hold spaces and ')': the fields start after the last ')'. */
	const char *p = strrchr(text, ')');
	uint64_t skip, utime, stime, start;
	int64_t ppid, rss, sk;
	char state;

	if (!p || p[1] != ' ')
		return -BCDR_ERR_PROTOCOL;
	p += 2;
	state = *p;
	if (state < 'A' || state > 'z' || p[1] != ' ')
		return -BCDR_ERR_PROTOCOL;
	p++;
	if (next_i64(&p, &ppid) < 0 || ppid < 0 || ppid > INT32_MAX)
		return -BCDR_ERR_PROTOCOL;
	/* pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt */
	for (int i = 0; i < 9; i++)
		if (next_i64(&p, &sk) < 0)
			return -BCDR_ERR_PROTOCOL;
	if (next_u64(&p, &utime) < 0 || next_u64(&p, &stime) < 0)
		return -BCDR_ERR_PROTOCOL;
	/* cutime cstime priority nice num_threads itrealvalue */
	for (int i = 0; i < 6; i++)
		if (next_i64(&p, &sk) < 0)
			return -BCDR_ERR_PROTOCOL;
	if (next_u64(&p, &start) < 0 || next_u64(&p, &skip) < 0 || next_i64(&p, &rss) < 0)
		return -BCDR_ERR_PROTOCOL;
	ret->ppid = (int)ppid;
	ret->state = state;
	ret->utime = utime;
	ret->stime = stime;
	ret->starttime = start;
	ret->rss_pages = rss < 0 ? 0 : rss;
	return 0;
}
