/* The checks: section of the plan, parsed into check_def structs. */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/hostport.h"
#include "lib/http-client.h"
#include "monitor/monitor.h"
#include "predict/predict.h"

#define CHECK_NAME_MAX 128
#define CHECK_DEFAULT_TIMEOUT (5 * USEC_PER_SEC)
#define CHECK_DEFAULT_FLAP_CHANGES 6
#define CHECK_DEFAULT_FLAP_CYCLES 20
#define CHECK_DEFAULT_HORIZON (4 * USEC_PER_HOUR)

static const char *const status_names[] = { "ok", "warning", "critical", "unknown", NULL };
static const char *const kind_names[] = { "system", "process", "tcp", "http",
					  "file", "program", "backup", NULL };

const char *check_status_name(enum check_status s)
{
	return s < CHECK_STATUS_MAX ? status_names[s] : "unknown";
}

int check_status_rank(enum check_status s)
{
	switch (s) {
	case CHECK_OK:
		return 0;
	case CHECK_WARNING:
		return 1;
	case CHECK_UNKNOWN:
		return 2;
	default:
		return 3;
	}
}

enum check_status check_status_worst(enum check_status a, enum check_status b)
{
	return check_status_rank(a) >= check_status_rank(b) ? a : b;
}

const char *probe_kind_name(enum probe_kind k)
{
	return k < PROBE_KIND_MAX ? kind_names[k] : "unknown";
}

const char *check_label(const struct check_def *def, const char *key)
{
	for (size_t i = 0; i < def->n_labels; i++)
		if (strcmp(def->labels[i].key, key) == 0)
			return def->labels[i].value;
	return NULL;
}

const struct check_def *monitor_plan_find(const struct monitor_plan *mp, const char *name)
{
	for (size_t i = 0; mp && i < mp->n_checks; i++)
		if (strcmp(mp->checks[i].name, name) == 0)
			return &mp->checks[i];
	return NULL;
}

static void check_def_release(void *elem)
{
	struct check_def *def = elem;

	free(def->name);
	free(def->description);
	for (size_t i = 0; i < def->n_labels; i++) {
		free(def->labels[i].key);
		free(def->labels[i].value);
	}
	free(def->labels);
	strv_free(def->actions);
	switch (def->kind) {
	case PROBE_SYSTEM:
		free(def->probe.system.target);
		break;
	case PROBE_PROCESS:
		free(def->probe.process.pidfile);
		free(def->probe.process.match);
		break;
	case PROBE_TCP:
		free(def->probe.tcp.host);
		free(def->probe.tcp.send);
		free(def->probe.tcp.expect);
		break;
	case PROBE_HTTP:
		free(def->probe.http.url);
		free(def->probe.http.method);
		free(def->probe.http.body);
		strv_free(def->probe.http.headers);
		free(def->probe.http.ca_file);
		break;
	case PROBE_FILE:
		free(def->probe.file.path);
		break;
	case PROBE_PROGRAM:
		strv_free(def->probe.program.argv);
		free(def->probe.program.output);
		break;
	case PROBE_BACKUP:
		free(def->probe.backup.job);
		break;
	default:
		break;
	}
	memset(def, 0, sizeof(*def));
}

void monitor_plan_free(struct monitor_plan *mp)
{
	if (!mp)
		return;
	for (size_t i = 0; i < mp->n_checks; i++)
		check_def_release(&mp->checks[i]);
	free(mp->checks);
	free(mp);
}

/* ---- values and thresholds ---- */

/* A number in the unit of the probe's value: 80, 80%, 500ms (seconds),
 * 512MiB (bytes). */
static int parse_value(struct conf_ctx *ctx, const struct conf_node *node, double *ret)
{
	const char *s;
	char *end;
	double d;
	usec_t us;
	uint64_t bytes;

	if (node->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, node, "expected a number, not a list or map");
	s = node->value;
	errno = 0;
	d = strtod(s, &end);
	if (end != s && errno == 0 && (!*end || (end[0] == '%' && !end[1]))) {
		*ret = d;
		return 0;
	}
	if (duration_parse(s, &us) >= 0) {
		*ret = (double)us / (double)USEC_PER_SEC;
		return 0;
	}
	if (size_parse(s, &bytes) >= 0) {
		*ret = (double)bytes;
		return 0;
	}
	return conf_errorf(ctx, node,
			   "expected a number such as 80, 80%%, 500ms or 512MiB, not '%s'", s);
}

/* warn/crit: a number (bad above it) or { above: N } or { below: N }.
 * *dir is set to 1 for above, -1 for below. */
static int parse_threshold(struct conf_ctx *ctx, const struct conf_node *node,
			   struct check_threshold *t, int *dir)
{
	int r;

	if (node->type == CONF_NODE_MAP) {
		const struct conf_node *key;

		if (node->n != 1)
			return conf_errorf(ctx, node, "a threshold is a number, { above: N } or { below: N }");
		key = node->pairs[0].key;
		if (strcmp(key->value, "above") == 0)
			*dir = 1;
		else if (strcmp(key->value, "below") == 0)
			*dir = -1;
		else
			return conf_errorf(ctx, key, "unknown key '%s' (known here: above, below)",
					   key->value);
		node = node->pairs[0].value;
	} else {
		*dir = 1;
	}
	r = parse_value(ctx, node, &t->value);
	if (r < 0)
		return r;
	t->set = true;
	return 0;
}

/* ---- generic fields ---- */

static int parse_name(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	const char *s = node->value;

	if (node->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, node, "a check name is a single value");
	if (!*s || strlen(s) > CHECK_NAME_MAX || strspn(s, "abcdefghijklmnopqrstuvwxyz"
							 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
							 "0123456789_.-") != strlen(s))
		return conf_errorf(ctx, node,
				   "invalid check name '%s': use letters, digits, '-', '_' and '.' "
				   "(at most %d)", s, CHECK_NAME_MAX);
	*(char **)field = strdup(s);
	return *(char **)field ? 0 : -ENOMEM;
}

static int parse_labels(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct check_def *def = (struct check_def *)((char *)field - offsetof(struct check_def, labels));
	int r;

	r = conf_expect(ctx, node, CONF_NODE_MAP, "labels");
	if (r < 0)
		return r;
	def->labels = calloc(node->n ? node->n : 1, sizeof(*def->labels));
	if (!def->labels)
		return -ENOMEM;
	for (size_t i = 0; i < node->n; i++) {
		const struct conf_node *k = node->pairs[i].key, *v = node->pairs[i].value;

		if (v->type != CONF_NODE_SCALAR)
			return conf_errorf(ctx, v, "label '%s' must be a single value", k->value);
		if (!*k->value || strspn(k->value, "abcdefghijklmnopqrstuvwxyz"
					 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(k->value) ||
		    (k->value[0] >= '0' && k->value[0] <= '9'))
			return conf_errorf(ctx, k, "invalid label name '%s': use letters, digits "
					   "and '_', not starting with a digit", k->value);
		def->labels[i].key = strdup(k->value);
		def->labels[i].value = strdup(v->value);
		def->n_labels = i + 1;
		if (!def->labels[i].key || !def->labels[i].value)
			return -ENOMEM;
	}
	return 0;
}

static int check_regex(struct conf_ctx *ctx, const struct conf_node *node, const char *what)
{
	regex_t re;
	int r;

	if (!node)
		return 0;
	r = regcomp(&re, node->value, REG_EXTENDED | REG_NOSUB);
	if (r != 0) {
		char msg[128];

		regerror(r, &re, msg, sizeof(msg));
		return conf_errorf(ctx, node, "invalid %s regular expression '%s': %s", what,
				   node->value, msg);
	}
	regfree(&re);
	return 0;
}

/* ---- probes ---- */

static const struct {
	const char *name;
	enum system_metric metric;
	const char *default_target; /* NULL: a target is required (net:eth0) */
	bool takes_target;
} system_metrics[] = {
	{ "cpu", SYSTEM_CPU, NULL, false },
	{ "load", SYSTEM_LOAD1, NULL, false },
	{ "load1", SYSTEM_LOAD1, NULL, false },
	{ "load5", SYSTEM_LOAD5, NULL, false },
	{ "load15", SYSTEM_LOAD15, NULL, false },
	{ "memory", SYSTEM_MEMORY, NULL, false },
	{ "swap", SYSTEM_SWAP, NULL, false },
	{ "disk", SYSTEM_DISK, "/", true },
	{ "inodes", SYSTEM_INODES, "/", true },
	{ "io", SYSTEM_IO, NULL, true },
	{ "net", SYSTEM_NET, NULL, true },
};

static int parse_system(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	const char *s, *colon;
	size_t len;

	if (node->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, node, "system: takes one of cpu, load, load5, load15, memory, "
				   "swap, disk:/PATH, inodes:/PATH, io:DEVICE, net:INTERFACE");
	s = node->value;
	colon = strchr(s, ':');
	len = colon ? (size_t)(colon - s) : strlen(s);
	for (size_t i = 0; i < ELEMENTSOF(system_metrics); i++) {
		const char *target;

		if (strlen(system_metrics[i].name) != len || strncmp(system_metrics[i].name, s, len))
			continue;
		def->probe.system.metric = system_metrics[i].metric;
		if (colon && !system_metrics[i].takes_target)
			return conf_errorf(ctx, node, "system: %s takes no ':' argument",
					   system_metrics[i].name);
		target = colon ? colon + 1 : system_metrics[i].default_target;
		if (system_metrics[i].takes_target && (!target || !*target))
			return conf_errorf(ctx, node, "system: %s needs a name: %s:%s",
					   system_metrics[i].name, system_metrics[i].name,
					   def->probe.system.metric == SYSTEM_NET ? "eth0" : "sda");
		if ((def->probe.system.metric == SYSTEM_DISK ||
		     def->probe.system.metric == SYSTEM_INODES) && target[0] != '/')
			return conf_errorf(ctx, node, "system: %s needs an absolute path, not '%s'",
					   system_metrics[i].name, target);
		if ((def->probe.system.metric == SYSTEM_NET || def->probe.system.metric == SYSTEM_IO) &&
		    (strchr(target, '/') || strlen(target) > 64 || target[0] == '.'))
			return conf_errorf(ctx, node, "invalid device or interface name '%s'", target);
		if (target && !(def->probe.system.target = strdup(target)))
			return -ENOMEM;
		return 0;
	}
	return conf_errorf(ctx, node, "unknown system metric '%s' (known: cpu, load, load5, load15, "
			   "memory, swap, disk:/PATH, inodes:/PATH, io:DEVICE, net:INTERFACE)", s);
}

static const char *const process_measures[] = { "count", "cpu", "memory", "children", "uptime",
						 NULL };

static int parse_process(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	const struct conf_field fields[] = {
		CONF_FIELD("pidfile", CONF_STRING, struct check_def, probe.process.pidfile, 0),
		CONF_FIELD("match", CONF_STRING, struct check_def, probe.process.match, 0),
		CONF_ENUM_FIELD("measure", struct check_def, probe.process.measure, 0,
				process_measures),
		{}
	};
	int r = conf_parse_fields(ctx, node, fields, def);

	if (r < 0)
		return r;
	if (!def->probe.process.pidfile == !def->probe.process.match)
		return conf_errorf(ctx, node, "process: needs one of 'pidfile' or 'match'");
	if (def->probe.process.pidfile && def->probe.process.pidfile[0] != '/')
		return conf_errorf(ctx, conf_map_get(node, "pidfile"),
				   "pidfile must be an absolute path, not '%s'",
				   def->probe.process.pidfile);
	return check_regex(ctx, conf_map_get(node, "match"), "match");
}

static int parse_tcp(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	int64_t port = 0;
	const struct conf_field fields[] = {
		CONF_FIELD("host", CONF_STRING, struct check_def, probe.tcp.host, 0),
		CONF_FIELD("send", CONF_STRING, struct check_def, probe.tcp.send, 0),
		CONF_FIELD("expect", CONF_STRING, struct check_def, probe.tcp.expect, 0),
		CONF_IGNORE("port"),
		{}
	};
	const struct conf_node *pn;
	int r;

	if (node->type == CONF_NODE_SCALAR) {
		/* tcp: HOST:PORT, spelled as a balancer's backend address */
		char host[HOSTPORT_MAX + 1];
		uint16_t p;

		if (hostport_split(node->value, strlen(node->value), HOSTPORT_NAME, host,
				   sizeof(host), &p) < 0)
			return conf_errorf(ctx, node, "tcp: '%s' is not HOST:PORT (such as "
					   "db:5432 or [::1]:5432)", node->value);
		def->probe.tcp.port = p;
		def->probe.tcp.host = strdup(host);
		return def->probe.tcp.host ? 0 : -ENOMEM;
	}
	r = conf_parse_fields(ctx, node, fields, def);
	if (r < 0)
		return r;
	pn = conf_map_get(node, "port");
	if (!pn)
		return conf_errorf(ctx, node, "missing required key 'port'");
	r = conf_parse_scalar(ctx, pn, CONF_INT, &port);
	if (r < 0)
		return r;
	if (port < 1 || port > 65535)
		return conf_errorf(ctx, pn, "'port' must be from 1 to 65535");
	def->probe.tcp.port = (uint16_t)port;
	if (!def->probe.tcp.host && !(def->probe.tcp.host = strdup("127.0.0.1")))
		return -ENOMEM;
	if (def->probe.tcp.send && strlen(def->probe.tcp.send) > 4096)
		return conf_errorf(ctx, conf_map_get(node, "send"), "'send' is limited to 4096 bytes");
	return check_regex(ctx, conf_map_get(node, "expect"), "expect");
}

static const char *const http_measures[] = { "latency", "cert_days", NULL };

static int parse_http(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	const struct conf_field fields[] = {
		CONF_FIELD("url", CONF_STRING, struct check_def, probe.http.url, CONF_REQUIRED),
		CONF_FIELD("method", CONF_STRING, struct check_def, probe.http.method, 0),
		CONF_RANGE("expect_status", CONF_INT, struct check_def, probe.http.expect_status, 0,
			   100, 599),
		CONF_FIELD("body", CONF_STRING, struct check_def, probe.http.body, 0),
		CONF_FIELD("headers", CONF_STRV, struct check_def, probe.http.headers, 0),
		CONF_FIELD("insecure", CONF_BOOL, struct check_def, probe.http.insecure, 0),
		CONF_FIELD("ca_file", CONF_STRING, struct check_def, probe.http.ca_file, 0),
		CONF_ENUM_FIELD("measure", struct check_def, probe.http.measure, 0, http_measures),
		{}
	};
	const char *url, *m;
	int r;

	if (node->type == CONF_NODE_SCALAR) {
		r = conf_parse_scalar(ctx, node, CONF_STRING, &def->probe.http.url);
	} else {
		r = conf_parse_fields(ctx, node, fields, def);
	}
	if (r < 0)
		return r;
	url = def->probe.http.url;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return conf_errorf(ctx, conf_map_get(node, "url") ?: node,
				   "url must start with http:// or https://, not '%s'", url);
	if (strncmp(url, "http://", 7) == 0) {
		struct http_url parsed;

		/* The own client takes it (credentials in the URL: libcurl). */
		r = http_url_parse(url, &parsed);
		if (r < 0 && r != -ENOTSUP)
			return conf_errorf(ctx, conf_map_get(node, "url") ?: node,
					   "'%s' is not a valid URL: http://HOST[:PORT][/PATH], "
					   "IPv6 addresses in [], no spaces", url);
	}
	if (def->probe.http.measure == HTTP_CERT_DAYS && strncmp(url, "https://", 8) != 0)
		return conf_errorf(ctx, conf_map_get(node, "measure") ?: node,
				   "measure: cert_days needs an https:// url");
	m = def->probe.http.method;
	if (m && strcmp(m, "GET") && strcmp(m, "HEAD") && strcmp(m, "POST"))
		return conf_errorf(ctx, conf_map_get(node, "method"),
				   "'method' must be one of: GET, HEAD, POST");
	for (char **h = def->probe.http.headers; h && *h; h++)
		if (!strchr(*h, ':') || strpbrk(*h, "\r\n"))
			return conf_errorf(ctx, conf_map_get(node, "headers"),
					   "a header is 'Name: value' on one line, not '%s'", *h);
	return check_regex(ctx, node->type == CONF_NODE_MAP ? conf_map_get(node, "body") : NULL,
			   "body");
}

static const char *const file_measures[] = { "size", "age", NULL };

static int parse_mode(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	char *end;
	long v;

	if (node->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, node, "mode is an octal number such as \"0640\"");
	errno = 0;
	v = strtol(node->value, &end, 8);
	if (end == node->value || *end || errno || v < 0 || v > 07777)
		return conf_errorf(ctx, node, "mode is an octal number such as \"0640\", not '%s'",
				   node->value);
	*(int64_t *)field = v;
	return 0;
}

static int parse_file(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	const struct conf_field fields[] = {
		CONF_FIELD("path", CONF_STRING, struct check_def, probe.file.path, CONF_REQUIRED),
		CONF_ENUM_FIELD("measure", struct check_def, probe.file.measure, 0, file_measures),
		CONF_FIELD("checksum", CONF_BOOL, struct check_def, probe.file.checksum, 0),
		CONF_CUSTOM_FIELD("mode", struct check_def, probe.file.mode, 0, parse_mode),
		{}
	};
	int r;

	def->probe.file.mode = -1;
	if (node->type == CONF_NODE_SCALAR)
		r = conf_parse_scalar(ctx, node, CONF_STRING, &def->probe.file.path);
	else
		r = conf_parse_fields(ctx, node, fields, def);
	if (r < 0)
		return r;
	if (def->probe.file.path[0] != '/')
		return conf_errorf(ctx, conf_map_get(node, "path") ?: node,
				   "path must be absolute, not '%s'", def->probe.file.path);
	return 0;
}

static const char *const program_measures[] = { "exit", "output", NULL };
static const char *const program_exit_codes[] = { "zero", "nagios", NULL };

static int parse_program(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	const struct conf_field fields[] = {
		CONF_FIELD("argv", CONF_STRV, struct check_def, probe.program.argv, CONF_REQUIRED),
		CONF_FIELD("output", CONF_STRING, struct check_def, probe.program.output, 0),
		CONF_ENUM_FIELD("measure", struct check_def, probe.program.measure, 0,
				program_measures),
		CONF_ENUM_FIELD("exit_codes", struct check_def, probe.program.exit_codes, 0,
				program_exit_codes),
		{}
	};
	const struct conf_node *at = node;
	int r;

	if (node->type == CONF_NODE_SEQ) {
		r = conf_parse_scalar(ctx, node, CONF_STRV, &def->probe.program.argv);
	} else {
		r = conf_parse_fields(ctx, node, fields, def);
		at = conf_map_get(node, "argv") ?: node;
	}
	if (r < 0)
		return r;
	if (!def->probe.program.argv || !def->probe.program.argv[0])
		return conf_errorf(ctx, at, "a program needs argv: [/path/to/program, args...]");
	if (def->probe.program.argv[0][0] != '/')
		return conf_errorf(ctx, at, "the program must be an absolute path (no shell, no "
				   "PATH search), not '%s'", def->probe.program.argv[0]);
	return check_regex(ctx, node->type == CONF_NODE_MAP ? conf_map_get(node, "output") : NULL,
			   "output");
}

static int parse_backup(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	const struct conf_field fields[] = {
		CONF_FIELD("job", CONF_STRING, struct check_def, probe.backup.job, CONF_REQUIRED),
		{}
	};

	if (node->type == CONF_NODE_SCALAR)
		return conf_parse_scalar(ctx, node, CONF_STRING, &def->probe.backup.job);
	return conf_parse_fields(ctx, node, fields, def);
}

static int (*const probe_parsers[])(struct conf_ctx *, const struct conf_node *,
				    struct check_def *) = {
	[PROBE_SYSTEM] = parse_system,   [PROBE_PROCESS] = parse_process,
	[PROBE_TCP] = parse_tcp,         [PROBE_HTTP] = parse_http,
	[PROBE_FILE] = parse_file,       [PROBE_PROGRAM] = parse_program,
	[PROBE_BACKUP] = parse_backup,
};

/* ---- the check ---- */

static int parse_recover(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	const struct conf_field fields[] = {
		CONF_RANGE("for", CONF_UINT, struct check_def, recover_cycles, 0, 1, 1000000),
		CONF_IGNORE("margin"),
		{}
	};
	const struct conf_node *m;
	int r;

	if (node->type == CONF_NODE_SCALAR) {
		r = conf_parse_scalar(ctx, node, CONF_UINT, &def->recover_cycles);
		if (r >= 0 && (def->recover_cycles < 1 || def->recover_cycles > 1000000))
			return conf_errorf(ctx, node, "'recover' must be from 1 to 1000000 cycles");
		return r;
	}
	r = conf_parse_fields(ctx, node, fields, def);
	if (r < 0)
		return r;
	m = conf_map_get(node, "margin");
	if (m) {
		r = parse_value(ctx, m, &def->recover_margin);
		if (r < 0)
			return r;
		if (def->recover_margin < 0)
			return conf_errorf(ctx, m, "'margin' cannot be negative");
	}
	return 0;
}

static int parse_flap(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	const struct conf_field fields[] = {
		CONF_RANGE("changes", CONF_UINT, struct check_def, flap_changes, 0, 2,
			   RULE_HISTORY_MAX - 1),
		CONF_RANGE("cycles", CONF_UINT, struct check_def, flap_cycles, 0, 3, RULE_HISTORY_MAX),
		{}
	};
	bool on;
	int r;

	if (node->type == CONF_NODE_SCALAR) {
		r = conf_parse_scalar(ctx, node, CONF_BOOL, &on);
		if (r < 0)
			return r;
		if (!on)
			def->flap_changes = 0;
		return 0;
	}
	r = conf_parse_fields(ctx, node, fields, def);
	if (r < 0)
		return r;
	if (def->flap_changes >= def->flap_cycles)
		return conf_errorf(ctx, node, "flap: 'changes' (%llu) must be fewer than 'cycles' (%llu)",
				   (unsigned long long)def->flap_changes,
				   (unsigned long long)def->flap_cycles);
	return 0;
}

static int parse_predict(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	const struct conf_field fields[] = {
		CONF_RANGE("horizon", CONF_DURATION, struct check_def, predict_horizon, 0, 60,
			   366 * 86400.0),
		{}
	};

	if (node->type == CONF_NODE_SCALAR)
		return conf_parse_scalar(ctx, node, CONF_BOOL, &def->predict);
	def->predict = true;
	return conf_parse_fields(ctx, node, fields, def);
}

static int parse_anomaly(struct conf_ctx *ctx, const struct conf_node *node, struct check_def *def)
{
	const struct conf_field fields[] = {
		CONF_RANGE("above", CONF_DOUBLE, struct check_def, anomaly_above, 0, 0.0, 1.0),
		CONF_RANGE("for", CONF_UINT, struct check_def, anomaly_for, 0, 1, 1000000),
		{}
	};

	if (node->type == CONF_NODE_SCALAR)
		return conf_parse_scalar(ctx, node, CONF_BOOL, &def->anomaly);
	def->anomaly = true;
	return conf_parse_fields(ctx, node, fields, def);
}

static const char *const on_change_names[] = { "ok", "warning", "critical", NULL };

static int parse_check(struct conf_ctx *ctx, const struct conf_node *node, void *elem)
{
	static const struct conf_field fields[] = {
		CONF_CUSTOM_FIELD("name", struct check_def, name, CONF_REQUIRED, parse_name),
		CONF_FIELD("description", CONF_STRING, struct check_def, description, 0),
		CONF_FIELD("enabled", CONF_BOOL, struct check_def, enabled, 0),
		CONF_RANGE("interval", CONF_DURATION, struct check_def, interval, 0, 0.01, 86400),
		CONF_RANGE("timeout", CONF_DURATION, struct check_def, timeout, 0, 0.01, 3600),
		CONF_RANGE("for", CONF_UINT, struct check_def, for_cycles, 0, 1, 1000000),
		CONF_ENUM_FIELD("on_change", struct check_def, on_change, 0, on_change_names),
		CONF_CUSTOM_FIELD("labels", struct check_def, labels, 0, parse_labels),
		CONF_FIELD("actions", CONF_STRV, struct check_def, actions, 0),
		CONF_IGNORE("warn"), CONF_IGNORE("crit"), CONF_IGNORE("recover"),
		CONF_IGNORE("flap"), CONF_IGNORE("predict"), CONF_IGNORE("anomaly"),
		CONF_IGNORE("system"), CONF_IGNORE("process"), CONF_IGNORE("tcp"),
		CONF_IGNORE("http"), CONF_IGNORE("file"), CONF_IGNORE("program"),
		CONF_IGNORE("backup"),
		{}
	};
	struct check_def *def = elem;
	const struct conf_node *probe = NULL, *wn, *cn, *n;
	int r, wdir = 0, cdir = 0;

	r = conf_parse_fields(ctx, node, fields, def);
	if (r < 0)
		return r;
	for (int k = 0; k < PROBE_KIND_MAX; k++) {
		const struct conf_node *p = conf_map_get(node, kind_names[k]);

		if (!p)
			continue;
		if (probe)
			return conf_errorf(ctx, p, "check '%s' has two probes (%s and %s): one per check",
					   def->name, probe_kind_name(def->kind), kind_names[k]);
		probe = p;
		def->kind = (enum probe_kind)k;
	}
	if (!probe)
		return conf_errorf(ctx, node, "check '%s' needs a probe: one of system, process, "
				   "tcp, http, file, program, backup", def->name);
	r = probe_parsers[def->kind](ctx, probe, def);
	if (r < 0)
		return r;

	wn = conf_map_get(node, "warn");
	cn = conf_map_get(node, "crit");
	if (wn && (r = parse_threshold(ctx, wn, &def->warn, &wdir)) < 0)
		return r;
	if (cn && (r = parse_threshold(ctx, cn, &def->crit, &cdir)) < 0)
		return r;
	if (wn && cn && wdir != cdir)
		return conf_errorf(ctx, cn, "warn and crit must both be above or both below");
	def->below = (wdir ?: cdir) < 0;
	if (def->warn.set && def->crit.set &&
	    (def->below ? def->crit.value > def->warn.value : def->crit.value < def->warn.value))
		return conf_errorf(ctx, cn, "crit (%g) must be %s warn (%g)", def->crit.value,
				   def->below ? "at or below" : "at or above", def->warn.value);
	if ((n = conf_map_get(node, "recover")) && (r = parse_recover(ctx, n, def)) < 0)
		return r;
	if ((n = conf_map_get(node, "flap")) && (r = parse_flap(ctx, n, def)) < 0)
		return r;
	if ((n = conf_map_get(node, "predict")) && (r = parse_predict(ctx, n, def)) < 0)
		return r;
	if ((n = conf_map_get(node, "anomaly")) && (r = parse_anomaly(ctx, n, def)) < 0)
		return r;
	return 0;
}

static void check_def_init(void *elem)
{
	struct check_def *def = elem;

	def->enabled = true;
	def->timeout = CHECK_DEFAULT_TIMEOUT;
	def->for_cycles = 1;
	def->recover_cycles = 1;
	def->flap_changes = CHECK_DEFAULT_FLAP_CHANGES;
	def->flap_cycles = CHECK_DEFAULT_FLAP_CYCLES;
	def->on_change = CHECK_WARNING;
	def->predict_horizon = CHECK_DEFAULT_HORIZON;
	def->anomaly_above = PREDICT_ANOMALY_ABOVE;
	def->anomaly_for = 1; /* the detector gives one alarm per event */
}

int monitor_plan_parse(struct conf_ctx *ctx, const struct conf_node *node,
		       struct monitor_plan **ret)
{
	_cleanup_free_ struct monitor_plan *mp = calloc(1, sizeof(*mp));
	int r;

	if (!mp)
		return -ENOMEM;
	if (node->type == CONF_NODE_SCALAR && !node->quoted && !*node->value) {
		*ret = TAKE_PTR(mp); /* "checks:" with nothing under it */
		return 0;
	}
	r = conf_parse_list(ctx, node, sizeof(struct check_def), check_def_init, parse_check,
			    check_def_release, (void **)&mp->checks, &mp->n_checks);
	if (r < 0)
		return r;
	for (size_t i = 0; i < mp->n_checks; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(mp->checks[i].name, mp->checks[j].name) == 0) {
				r = conf_errorf(ctx, node->items[i], "two checks are named '%s'",
						mp->checks[i].name);
				monitor_plan_free(TAKE_PTR(mp));
				return r;
			}
	*ret = TAKE_PTR(mp);
	return 0;
}
