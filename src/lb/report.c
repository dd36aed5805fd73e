#include "lb/report.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/config.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/procfs.h"

struct lb_reporter {
	struct evconnlistener *listener;
	struct event *sampler;
	lb_report_state_fn state_fn;
	void *userdata;
	unsigned long long prev_busy, prev_total;
	double cpu_busy; /* 0..1 over the last second */
};

static const char *const state_words[] = { "up", "drain", "maint", "down" };

int lb_report_capacity(double cpu_busy, double load_per_cpu)
{
	double used = cpu_busy > load_per_cpu ? cpu_busy : load_per_cpu;
	int pct;

	if (!(used >= 0)) /* NaN */
		used = 0;
	if (used > 1)
		used = 1;
	pct = (int)(100.0 * (1.0 - used) + 0.5);
	return pct < 1 ? 1 : pct > 100 ? 100 : pct;
}

int lb_report_format(enum lb_report_state state, int capacity, char *out, size_t size)
{
	int n;

	if ((unsigned)state > LB_REPORT_DOWN)
		return -EINVAL;
	if (state == LB_REPORT_UP || state == LB_REPORT_DRAIN)
		n = snprintf(out, size, "%s %d%%\n", state_words[state], capacity);
	else
		n = snprintf(out, size, "%s\n", state_words[state]);
	return n < 0 || (size_t)n >= size ? -ENOBUFS : n;
}

int lb_agent_parse(const char *line, size_t len, struct lb_agent_report *ret)
{
	struct lb_agent_report rep = { -1, -1, -1 };
	bool understood = false;
	size_t i = 0;

	if (len > LB_REPORT_MAX_LINE)
		return -BCDR_ERR_TOO_BIG;
	while (i < len) {
		char word[64];
		size_t n = 0;

		while (i < len && strchr(" ,\t\r\n", line[i]) && line[i])
			i++;
		if (i < len && line[i] == 0)
			break;
		while (i < len && line[i] && !strchr(" ,\t\r\n", line[i])) {
			if (n < sizeof(word) - 1)
				word[n++] = line[i];
			i++;
		}
		if (n == 0)
			break;
		word[n] = 0;
		if (word[n - 1] == '%' && n >= 2) {
			char *end;
			long v = strtol(word, &end, 10);

			if (*end == '%' && end == word + n - 1 && v >= 0 && v <= 100) {
				rep.percent = (int)v;
				understood = true;
			}
		} else if (strncasecmp(word, "maxconn:", 8) == 0) {
			char *end;
			long v = strtol(word + 8, &end, 10);

			if (!*end && end != word + 8 && v >= 0 && v <= 10000000) {
				rep.maxconn = v;
				understood = true;
			}
		} else if (!strcasecmp(word, "up") || !strcasecmp(word, "ready")) {
			rep.state = LB_REPORT_UP;
			understood = true;
		} else if (!strcasecmp(word, "drain")) {
			rep.state = LB_REPORT_DRAIN;
			understood = true;
		} else if (!strcasecmp(word, "maint")) {
			rep.state = LB_REPORT_MAINT;
			understood = true;
		} else if (!strcasecmp(word, "down") || !strcasecmp(word, "stopped") ||
			   !strcasecmp(word, "fail")) {
			rep.state = LB_REPORT_DOWN;
			understood = true;
		}
		/* Anything else (a "#comment", words of newer HAProxy) is ignored. */
	}
	if (!understood)
		return -BCDR_ERR_PROTOCOL;
	*ret = rep;
	return 0;
}

static int read_cpu(unsigned long long *busy, unsigned long long *total)
{
	_cleanup_free_ char *text = NULL;
	struct procfs_cpu cpu;
	int r = fs_read_file("/proc/stat", PROCFS_READ_MAX, &text, NULL);

	if (r >= 0)
		r = procfs_parse_stat(text, &cpu);
	if (r < 0)
		return r;
	*total = cpu.total;
	*busy = cpu.total - cpu.idle; /* idle and iowait are free capacity */
	return 0;
}

static void sample_cpu(evutil_socket_t fd, short what, void *arg)
{
	struct lb_reporter *r = arg;
	unsigned long long busy = 0, total = 0;

	(void)fd;
	(void)what;
	if (read_cpu(&busy, &total) < 0)
		return;
	if (total > r->prev_total && busy >= r->prev_busy)
		r->cpu_busy = (double)(busy - r->prev_busy) / (double)(total - r->prev_total);
	r->prev_busy = busy;
	r->prev_total = total;
}

static double load_per_cpu(void)
{
	double load[1];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (getloadavg(load, 1) < 1 || ncpu < 1)
		return 0;
	return load[0] / (double)ncpu;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct lb_reporter *r = arg;
	enum lb_report_state state = r->state_fn ? r->state_fn(r->userdata) : LB_REPORT_UP;
	char line[64];
	int n = lb_report_format(state, lb_report_capacity(r->cpu_busy, load_per_cpu()), line,
				 sizeof(line));

	(void)l;
	(void)sa;
	(void)len;
	/* A fresh socket's send buffer always takes a short line at once. */
	if (n > 0 && send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		(void)0;
	close(fd);
}

void lb_reporter_free(struct lb_reporter *r)
{
	if (!r)
		return;
	if (r->listener)
		evconnlistener_free(r->listener);
	if (r->sampler)
		event_free(r->sampler);
	free(r);
}

int lb_reporter_new(struct event_base *base, const char *address, unsigned port,
		    lb_report_state_fn fn, void *userdata, struct lb_reporter **ret)
{
	struct sockaddr_storage ss;
	unsigned len;
	char addr[160];
	struct lb_reporter *r;
	struct timeval second = { 1, 0 };
	int n;

	if (port == 0 || port > 65535)
		return -EINVAL;
	if (address && strchr(address, ':'))
		n = snprintf(addr, sizeof(addr), "[%s]:%u", address, port);
	else
		n = snprintf(addr, sizeof(addr), "%s:%u", address ? address : "0.0.0.0", port);
	if (n < 0 || (size_t)n >= sizeof(addr) || lb_parse_address(addr, &ss, &len) < 0)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->state_fn = fn;
	r->userdata = userdata;
	r->sampler = event_new(base, -1, EV_PERSIST, sample_cpu, r);
	if (!r->sampler || event_add(r->sampler, &second) < 0) {
		lb_reporter_free(r);
		return -ENOMEM;
	}
	sample_cpu(-1, 0, r);
	r->listener = evconnlistener_new_bind(base, on_accept, r,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						      LEV_OPT_CLOSE_ON_EXEC,
					      128, (struct sockaddr *)&ss, (int)len);
	if (!r->listener) {
		int e = errno ? -errno : -EADDRINUSE;

		lb_reporter_free(r);
		return e;
	}
	*ret = r;
	return 0;
}
