/* process: find a process by pidfile or by a regular expression on its
 * command line (the oldest match is the one measured), then measure it
 * from /proc: count, cpu, memory, children, uptime; and tell a restart
 * (the pid or its start time changed). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "monitor/probes.h"
#include "lib/procfs.h"

#define CMDLINE_MAX 4096
#define PIDFILE_MAX 64
#define PID_STAT_MAX 4096 /* a 16-byte comm and 52 numbers: far below */
#define FIRST_SAMPLE_GAP (250 * USEC_PER_MSEC)

/* A small file into buf (NUL-terminated), at most size - 1 bytes, or
 * -EFBIG. Every process check reads two of these each cycle: open, one
 * read (a line-ending read is the whole of a pidfile or a /proc file),
 * close; no allocation. */
static int read_small(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t len = 0;

	if (fd < 0)
		return -errno;
	while (len < size - 1) {
		ssize_t n = fs_read(fd, buf + len, size - 1 - len);

		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		len += (size_t)n;
		if (buf[len - 1] == '\n')
			break;
	}
	if (len == size - 1)
		return -EFBIG;
	buf[len] = '\0';
	return (int)len;
}

static int read_pid_stat(int pid, struct procfs_pid *ret)
{
	char path[64], text[PID_STAT_MAX];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	r = read_small(path, text, sizeof(text));
	if (r < 0)
		return r;
	return procfs_parse_pid_stat(text, ret);
}

/* Seconds since boot, on the clock /proc/PID/stat's starttime counts on
 * (what /proc/uptime shows, without opening it). */
static double boot_seconds(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The command line of pid with NULs as spaces, at most CMDLINE_MAX bytes. */
static int read_cmdline(int pid, char *out, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, out, size - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -ENOENT; /* kernel threads have none */
	while (n > 0 && out[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (out[i] == '\0')
			out[i] = ' ';
	out[n] = '\0';
	return 0;
}

struct scan {
	int pid;        /* the oldest match, 0: none */
	struct procfs_pid stat;
	unsigned count; /* matching processes */
	unsigned children; /* of pid */
};

static bool is_pid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* One snapshot of /proc shared by every process check, taken again when
 * older than TABLE_MAX_AGE: twenty checks matching command lines cost one
 * walk of /proc per cycle, not twenty. */
#define TABLE_MAX_AGE (500 * USEC_PER_MSEC)
#define TABLE_MAX_PROCS 65536u

struct proc_entry {
	int pid, ppid;
	char state;
	uint64_t starttime;
	size_t cmdline; /* offset in table.cmdlines */
};

static struct {
	pthread_mutex_t lock;
	usec_t taken; /* monotonic, 0: never */
	struct proc_entry *procs;
	size_t n, cap;
	struct buf cmdlines;
} table = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int table_refresh(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	char cmd[CMDLINE_MAX + 1];
	int r = 0;

	if (!d)
		return -errno;
	table.n = 0;
	buf_release(&table.cmdlines);
	buf_init(&table.cmdlines, TABLE_MAX_PROCS * 64u);
	while ((de = readdir(d)) && table.n < TABLE_MAX_PROCS) {
		struct procfs_pid st;
		struct proc_entry *e;
		int pid;

		if (!is_pid_name(de->d_name))
			continue;
		pid = atoi(de->d_name);
		/* Kernel threads have no command line: never a match. */
		if (read_cmdline(pid, cmd, sizeof(cmd)) < 0 || read_pid_stat(pid, &st) < 0)
			continue;
		if (table.n == table.cap) {
			size_t cap = table.cap ? table.cap * 2 : 512;
			struct proc_entry *p = realloc(table.procs, cap * sizeof(*p));

			if (!p) {
				r = -ENOMEM;
				break;
			}
			table.procs = p;
			table.cap = cap;
		}
		e = &table.procs[table.n];
		e->pid = pid;
		e->ppid = st.ppid;
		e->state = st.state;
		e->starttime = st.starttime;
		e->cmdline = table.cmdlines.len;
		/* Past the buffer's bound, the rest of the processes get "". */
		if (buf_append(&table.cmdlines, cmd, strlen(cmd) + 1) < 0)
			e->cmdline = (size_t)-1;
		table.n++;
	}
	closedir(d);
	table.taken = r < 0 ? 0 : now_monotonic();
	return r;
}

static const char *table_cmdline(const struct proc_entry *e)
{
	return e->cmdline == (size_t)-1 ? "" : table.cmdlines.data + e->cmdline;
}

/* Finds the processes whose command line matches re (with fresh == true,
 * from a new snapshot), and the children of the oldest. */
static int scan_proc(const regex_t *re, bool fresh, struct scan *sc)
{
	int self = getpid(), r = 0;

	memset(sc, 0, sizeof(*sc));
	pthread_mutex_lock(&table.lock);
	if (fresh || !table.taken || now_monotonic() - table.taken > TABLE_MAX_AGE)
		r = table_refresh();
	for (size_t i = 0; r >= 0 && i < table.n; i++) {
		const struct proc_entry *e = &table.procs[i];

		if (e->pid == self || e->state == 'Z' || e->state == 'X' ||
		    regexec(re, table_cmdline(e), 0, NULL, 0) != 0)
			continue;
		sc->count++;
		if (!sc->pid || e->starttime < sc->stat.starttime) {
			sc->pid = e->pid;
			sc->stat.starttime = e->starttime;
		}
	}
	for (size_t i = 0; r >= 0 && sc->pid && i < table.n; i++)
		if (table.procs[i].ppid == sc->pid)
			sc->children++;
	pthread_mutex_unlock(&table.lock);
	return r;
}

/* Children of pid, from the shared snapshot. */
static unsigned count_children(int pid)
{
	unsigned n = 0;

	pthread_mutex_lock(&table.lock);
	if (!table.taken || now_monotonic() - table.taken > TABLE_MAX_AGE)
		table_refresh();
	for (size_t i = 0; i < table.n; i++)
		if (table.procs[i].ppid == pid)
			n++;
	pthread_mutex_unlock(&table.lock);
	return n;
}

static int find_by_pidfile(const char *pidfile, struct scan *sc, struct probe_result *res)
{
	char text[PIDFILE_MAX + 2], *end;
	long pid;
	int r;

	r = read_small(pidfile, text, sizeof(text));
	if (r < 0) {
		if (r == -ENOENT)
			probe_fail(res, CHECK_CRITICAL, "not running (no pidfile '%s')", pidfile);
		else
			probe_fail(res, CHECK_CRITICAL, "not running? cannot read '%s': %s", pidfile,
				   err_str(r));
		return -1;
	}
	errno = 0;
	pid = strtol(text, &end, 10);
	while (*end == '\n' || *end == ' ')
		end++;
	if (end == text || *end || errno || pid < 1 || pid > 4194304) {
		probe_fail(res, CHECK_CRITICAL, "not running? '%s' holds no pid", pidfile);
		return -1;
	}
	if (read_pid_stat((int)pid, &sc->stat) < 0 || sc->stat.state == 'Z' ||
	    sc->stat.state == 'X') {
		probe_fail(res, CHECK_CRITICAL, "not running (pid %ld of '%s' is gone)", pid,
			   pidfile);
		return -1;
	}
	sc->pid = (int)pid;
	sc->count = 1;
	return 0;
}

int probe_process(const struct check_def *def, struct probe_state *ps, usec_t deadline,
		  struct probe_result *res)
{
	enum process_measure measure = def->probe.process.measure;
	struct scan sc = { 0 };
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	double up_s, cpu = -1;
	char mem_s[32], up_str[32], cpu_s[32] = "", was[48] = "";
	int r;

	if (ticks <= 0)
		ticks = 100;
	if (def->probe.process.pidfile) {
		if (find_by_pidfile(def->probe.process.pidfile, &sc, res) < 0) {
			ps->pid = 0;
			ps->have_prev = false;
			if (measure == PROCESS_COUNT)
				probe_set_value(res, 0, "");
			return 0;
		}
	} else {
		struct procfs_pid st;
		regex_t re;

		if (regcomp(&re, def->probe.process.match, REG_EXTENDED | REG_NOSUB) != 0) {
			probe_fail(res, CHECK_UNKNOWN, "invalid match regular expression");
			return 0;
		}
		/* The snapshot may be up to TABLE_MAX_AGE old: the process found
		 * must still be there, with the same start time. */
		r = scan_proc(&re, false, &sc);
		if (r >= 0 && sc.pid && (read_pid_stat(sc.pid, &st) < 0 ||
					  st.starttime != sc.stat.starttime))
			r = scan_proc(&re, true, &sc);
		if (r >= 0 && sc.pid && read_pid_stat(sc.pid, &st) >= 0)
			sc.stat = st;
		else if (r >= 0)
			sc.pid = 0;
		regfree(&re);
		if (r < 0) {
			probe_fail(res, CHECK_UNKNOWN, "cannot read /proc: %s", strerror(-r));
			return 0;
		}
		if (!sc.pid) {
			ps->pid = 0;
			ps->have_prev = false;
			if (measure == PROCESS_COUNT)
				probe_set_value(res, 0, "");
			probe_fail(res, CHECK_CRITICAL, "not running (no process matches '%s')",
				   def->probe.process.match);
			return 0;
		}
	}

	/* A restart: another pid, or the same pid reused by a new process. */
	if (ps->pid && (ps->pid != sc.pid || ps->pid_start != sc.stat.starttime)) {
		res->changed = true;
		ps->have_prev = false;
	}
	if (!ps->have_prev && measure == PROCESS_CPU) {
		ps->prev[0] = sc.stat.utime + sc.stat.stime;
		ps->prev_time = now_monotonic();
		ps->have_prev = true;
		probe_sleep(FIRST_SAMPLE_GAP, deadline);
		if (read_pid_stat(sc.pid, &sc.stat) < 0) {
			probe_fail(res, CHECK_CRITICAL, "not running (pid %d exited)", sc.pid);
			return 0;
		}
	}
	if (ps->have_prev) {
		usec_t t = now_monotonic(), dt = t > ps->prev_time ? t - ps->prev_time : 1;
		uint64_t used = sc.stat.utime + sc.stat.stime, before = ps->prev[0];

		cpu = used >= before ? 100.0 * (double)(used - before) / (double)ticks /
					       ((double)dt / (double)USEC_PER_SEC) : 0;
		snprintf(cpu_s, sizeof(cpu_s), ", cpu %.1f%%", cpu);
	}
	ps->prev[0] = sc.stat.utime + sc.stat.stime;
	ps->prev_time = now_monotonic();
	ps->have_prev = true;

	up_s = boot_seconds() - (double)sc.stat.starttime / (double)ticks;
	if (up_s < 0)
		up_s = 0;
	if (measure == PROCESS_CHILDREN && def->probe.process.pidfile)
		sc.children = count_children(sc.pid);

	switch (measure) {
	case PROCESS_COUNT:
		probe_set_value(res, sc.count, "");
		break;
	case PROCESS_CPU:
		probe_set_value(res, cpu < 0 ? 0 : cpu, "%");
		break;
	case PROCESS_MEMORY:
		probe_set_value(res, (double)sc.stat.rss_pages * (double)page, "bytes");
		break;
	case PROCESS_CHILDREN:
		probe_set_value(res, sc.children, "");
		break;
	case PROCESS_UPTIME:
		probe_set_value(res, up_s, "s");
		break;
	}
	if (res->changed)
		snprintf(was, sizeof(was), "; restarted (was pid %d)", ps->pid);
	probe_message(res, "pid %d%s%s, memory %s, up %s%s", sc.pid,
		      sc.count > 1 ? " (oldest of several)" : "", cpu_s,
		      size_format((uint64_t)sc.stat.rss_pages * (uint64_t)page, mem_s, sizeof(mem_s)),
		      duration_format((usec_t)(up_s * (double)USEC_PER_SEC), up_str, sizeof(up_str)),
		      was);
	ps->pid = sc.pid;
	ps->pid_start = sc.stat.starttime;
	return 0;
}
