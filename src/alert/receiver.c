#include "alert/receiver.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/spawn.h"
#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/http-client.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/secret.h"

#define RESPONSE_MAX (16u * 1024)  /* what we keep of a receiver's answer */
#define SECRET_MAX 4096
#define EXEC_OUTPUT_MAX (4u * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* A receiver's secret file (through lib/secret: bounded, mode 600). */
static int read_secret(const char *path, const char *what, char **ret, char **ret_error)
{
	char why[PATH_MAX + 128];
	int r = secret_read_file(path, SECRET_MAX, ret);

	if (r < 0) {
		secret_message(r, what, path, why, sizeof(why));
		return err_fail(ret_error, r, "%s", why);
	}
	return 0;
}

static const char *jstr(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

/* ---- webhook ---- */

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
	struct buf *b = userdata;
	size_t len = size * n;
	size_t room = b->max - b->len;

	buf_append(b, data, len < room ? len : room); /* the rest is dropped, not an error */
	return len;
}

static int xfer_cancel(void *userdata, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	const bool *cancel = userdata;

	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED) ? 1 : 0;
}

static void curl_common(CURL *c, usec_t timeout, const bool *cancel)
{
	long ms = (long)(timeout / USEC_PER_MSEC);

	if (ms <= 0)
		ms = 10000;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "bcdr/" BCDR_VERSION);
	if (cancel) {
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_cancel);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)cancel);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	}
}

static int curl_failure(char **ret_error, CURLcode cc, const char *url, const char *errbuf)
{
	int r = cc == CURLE_OPERATION_TIMEDOUT ? -BCDR_ERR_TIMEOUT :
		cc == CURLE_ABORTED_BY_CALLBACK ? -ECANCELED : -EIO;

	return err_fail(ret_error, r, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
}

/* Not 2xx: an error, with the first line of the answer (it often says why). */
static int status_failure(char **ret_error, long status, const char *url, const char *text)
{
	int line = (int)strcspn(text, "\r\n");

	return err_fail(ret_error, -BCDR_ERR_PROTOCOL, "HTTP %ld from %s%s%.*s", status, url,
			line ? ": " : "", line > 200 ? 200 : line, text);
}

/* http://: bcdr's own client, so an agent whose receivers are plain
 * webhooks never loads libcurl (lib/curl-loader.c). */
static int http_post_plain(const struct alert_receiver *rcv, const struct http_url *u,
			   const char *url, const char *body, const char *auth,
			   const bool *cancel, char **ret_error)
{
	char *headers[] = { "Content-Type: application/json", (char *)auth, NULL };
	struct http_request req = {
		.method = "POST",
		.url = u,
		.headers = headers,
		.user_agent = "bcdr/" BCDR_VERSION,
		.body = body,
		.body_len = strlen(body),
		.deadline = now_monotonic() + (rcv->timeout ? rcv->timeout : 10 * USEC_PER_SEC),
		.cancel = cancel,
		.body_keep = RESPONSE_MAX,
		.body_max = 16u << 20,
	};
	struct http_client *c = NULL;
	struct http_reply reply;
	char error[512];
	int r = http_client_new(&c);

	if (r < 0)
		return r;
	r = http_client_request(c, &req, &reply, error, sizeof(error));
	http_client_free(c);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return err_fail(ret_error, r == -ETIMEDOUT ? -BCDR_ERR_TIMEOUT :
				r == -ECANCELED ? -ECANCELED : -EIO, "%s: %s", url, error);
	if (reply.status < 200 || reply.status > 299)
		r = status_failure(ret_error, reply.status, url, reply.body.data);
	http_reply_release(&reply);
	return r;
}

static int http_post(const struct alert_receiver *rcv, const char *url, const char *body,
		     const bool *cancel, char **ret_error)
{
	_cleanup_secret_ char *token = NULL, *auth = NULL;
	struct http_url parsed;
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct buf response;
	CURL *c;
	CURLcode cc;
	long status = 0;
	int r = 0;

	if (rcv->webhook.bearer_token_file) {
		r = read_secret(rcv->webhook.bearer_token_file, "bearer token", &token, ret_error);
		if (r < 0)
			return r;
		if (asprintf(&auth, "Authorization: Bearer %s", token) < 0)
			return -ENOMEM;
	}
	if (http_url_parse(url, &parsed) == 0)
		return http_post_plain(rcv, &parsed, url, body, auth, cancel, ret_error);
	pthread_once(&curl_once, curl_init_once);
	c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	buf_init(&response, RESPONSE_MAX);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	if (auth)
		headers = curl_slist_append(headers, auth);
	curl_common(c, rcv->timeout, cancel);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		r = curl_failure(ret_error, cc, url, errbuf);
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status < 200 || status > 299)
			r = status_failure(ret_error, status, url,
					   response.data ? response.data : "");
	}
	buf_release(&response);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return r;
}

/* The message's alerts, as Alertmanager's API takes them. */
static json_t *alertmanager_alerts(const json_t *message)
{
	json_t *out = json_array(), *a;
	size_t i;

	if (!out)
		return NULL;
	json_array_foreach(json_object_get(message, "alerts"), i, a) {
		json_t *one = json_pack("{s:O,s:O,s:O,s:O}", "labels", json_object_get(a, "labels"),
					"annotations", json_object_get(a, "annotations"),
					"startsAt", json_object_get(a, "startsAt"),
					"generatorURL", json_object_get(a, "generatorURL"));

		if (!one) {
			json_decref(out);
			return NULL;
		}
		/* a firing alert's endsAt is left out: Alertmanager resolves it
		 * itself when we stop sending it; a resolved one carries its end */
		if (strcmp(jstr(a, "status"), "resolved") == 0)
			json_object_set(one, "endsAt", json_object_get(a, "endsAt"));
		json_array_append_new(out, one);
	}
	return out;
}

static int deliver_webhook(const struct alert_receiver *rcv, const json_t *message,
			   const bool *cancel, char **ret_error)
{
	_cleanup_free_ char *body = NULL, *url = NULL;
	_cleanup_json_ json_t *copy = NULL;
	const json_t *send = message;

	if (rcv->webhook.alertmanager) {
		size_t len = strlen(rcv->webhook.url);

		while (len && rcv->webhook.url[len - 1] == '/')
			len--;
		if (asprintf(&url, "%.*s/api/v2/alerts", (int)len, rcv->webhook.url) < 0)
			return -ENOMEM;
		copy = alertmanager_alerts(message);
		if (!copy)
			return -ENOMEM;
		send = copy;
	} else if (rcv->webhook.max_alerts &&
		   json_array_size(json_object_get(message, "alerts")) > rcv->webhook.max_alerts) {
		json_t *alerts;
		size_t n;

		copy = json_deep_copy(message);
		if (!copy)
			return -ENOMEM;
		alerts = json_object_get(copy, "alerts");
		n = json_array_size(alerts);
		while (json_array_size(alerts) > rcv->webhook.max_alerts)
			json_array_remove(alerts, json_array_size(alerts) - 1);
		json_object_set_new(copy, "truncatedAlerts",
				    json_integer((json_int_t)(n - rcv->webhook.max_alerts)));
		send = copy;
	}
	body = json_dumps(send, JSON_COMPACT);
	if (!body)
		return -ENOMEM;
	return http_post(rcv, url ? url : rcv->webhook.url, body, cancel, ret_error);
}

/* ---- email ---- */

/* Header values must not smuggle in headers of their own. */
static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			*s = ' ';
}

int alert_message_email(const json_t *message, char **ret_subject, char **ret_body)
{
	const json_t *alerts = json_object_get(message, "alerts");
	const json_t *group = json_object_get(message, "groupLabels");
	struct buf subject, body;
	size_t n_firing = 0, n_resolved = 0, i;
	const char *key;
	json_t *a, *v;

	json_array_foreach(alerts, i, a) {
		if (strcmp(jstr(a, "status"), "firing") == 0)
			n_firing++;
		else
			n_resolved++;
	}
	buf_init(&subject, 998);
	buf_init(&body, 4u << 20);
	if (n_firing)
		buf_printf(&subject, "[FIRING:%zu]", n_firing);
	else
		buf_printf(&subject, "[RESOLVED]");
	json_object_foreach((json_t *)group, key, v)
		buf_printf(&subject, " %s", json_string_value(v) ? json_string_value(v) : "");
	{
		const char *hostname = json_string_value(
			json_object_get(json_object_get(message, "commonLabels"), "host"));

		if (hostname && !json_object_get(group, "host"))
			buf_printf(&subject, " on %s", hostname);
	}
	for (int pass = 0; pass < 2; pass++) {
		const char *want = pass == 0 ? "firing" : "resolved";
		size_t count = pass == 0 ? n_firing : n_resolved;

		if (!count)
			continue;
		buf_printf(&body, "%s%s (%zu):\r\n", pass && n_firing ? "\r\n" : "",
			   pass == 0 ? "Firing" : "Resolved", count);
		json_array_foreach(alerts, i, a) {
			const json_t *labels = json_object_get(a, "labels");
			const json_t *ann = json_object_get(a, "annotations");
			const char *summary = jstr(ann, "summary"), *desc = jstr(ann, "description");

			if (strcmp(jstr(a, "status"), want) != 0)
				continue;
			buf_printf(&body, "\r\n- %s%s%s\r\n", jstr(labels, "alertname"),
				   summary[0] ? ": " : "", summary);
			if (desc[0])
				buf_printf(&body, "  %s\r\n", desc);
			buf_printf(&body, "  labels:");
			json_object_foreach((json_t *)labels, key, v)
				buf_printf(&body, " %s=%s", key,
					   json_string_value(v) ? json_string_value(v) : "");
			buf_printf(&body, "\r\n  since: %s\r\n", jstr(a, "startsAt"));
			if (pass == 1)
				buf_printf(&body, "  ended: %s\r\n", jstr(a, "endsAt"));
		}
	}
	if (jstr(message, "externalURL")[0])
		buf_printf(&body, "\r\n-- \r\nbcdr agent: %s\r\n", jstr(message, "externalURL"));
	if (!subject.data || !body.data) {
		buf_release(&subject);
		buf_release(&body);
		return -ENOMEM;
	}
	one_line(subject.data);
	*ret_subject = buf_steal(&subject, NULL);
	*ret_body = buf_steal(&body, NULL);
	return 0;
}

struct upload {
	const char *data;
	size_t len, pos;
};

static size_t upload_read(char *out, size_t size, size_t n, void *userdata)
{
	struct upload *u = userdata;
	size_t want = size * n, left = u->len - u->pos;
	size_t k = want < left ? want : left;

	memcpy(out, u->data + u->pos, k);
	u->pos += k;
	return k;
}

/* "<addr>" for SMTP envelopes: a bare address or "Name <addr>". */
static char *envelope_address(const char *s)
{
	const char *lt = strrchr(s, '<');
	char *out = NULL;

	if (lt && strchr(lt, '>')) {
		if (asprintf(&out, "%.*s", (int)(strchr(lt, '>') - lt + 1), lt) < 0)
			return NULL;
		return out;
	}
	if (asprintf(&out, "<%s>", s) < 0)
		return NULL;
	return out;
}

static int deliver_email(const struct alert_receiver *rcv, const json_t *message,
			 const bool *cancel, char **ret_error)
{
	const struct alert_email *m = &rcv->email;
	_cleanup_free_ char *subject = NULL, *body = NULL, *from = NULL;
	_cleanup_secret_ char *password = NULL;
	struct curl_slist *rcpt = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", date[64], host[256] = "localhost";
	struct buf mail;
	struct upload up;
	struct tm tm;
	time_t t = time(NULL);
	CURL *c;
	CURLcode cc;
	int r;

	r = alert_message_email(message, &subject, &body);
	if (r < 0)
		return r;
	if (m->password_file) {
		r = read_secret(m->password_file, "SMTP password", &password, ret_error);
		if (r < 0)
			return r;
	}
	gethostname(host, sizeof(host) - 1);
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_init(&mail, 8u << 20);
	buf_printf(&mail, "Date: %s\r\nFrom: %s\r\nTo: ", date, m->from);
	for (size_t i = 0; m->to[i]; i++)
		buf_printf(&mail, "%s%s", i ? ", " : "", m->to[i]);
	buf_printf(&mail,
		   "\r\nSubject: %s\r\nMessage-ID: <%lld.%d.%ld@%s>\r\nMIME-Version: 1.0\r\n"
		   "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
		   "X-Bcdr-Status: %s\r\nX-Bcdr-Group-Key: %s\r\n\r\n%s",
		   subject, (long long)now_realtime(), (int)getpid(), random(), host,
		   jstr(message, "status"), jstr(message, "groupKey"), body);
	if (!mail.data)
		return -ENOMEM;
	/* header values come from the plan and labels: keep them on one line */
	from = envelope_address(m->from);
	if (!from) {
		buf_release(&mail);
		return -ENOMEM;
	}
	for (size_t i = 0; m->to[i]; i++) {
		_cleanup_free_ char *a = envelope_address(m->to[i]);

		if (!a || !(rcpt = curl_slist_append(rcpt, a))) {
			curl_slist_free_all(rcpt);
			buf_release(&mail);
			return -ENOMEM;
		}
	}
	pthread_once(&curl_once, curl_init_once);
	c = curl_easy_init();
	if (!c) {
		curl_slist_free_all(rcpt);
		buf_release(&mail);
		return -ENOMEM;
	}
	up = (struct upload){ .data = mail.data, .len = mail.len };
	curl_common(c, rcv->timeout, cancel);
	curl_easy_setopt(c, CURLOPT_URL, m->smtp);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)mail.len);
	curl_easy_setopt(c, CURLOPT_USE_SSL, m->require_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (m->username)
		curl_easy_setopt(c, CURLOPT_USERNAME, m->username);
	if (password)
		curl_easy_setopt(c, CURLOPT_PASSWORD, password);
	cc = curl_easy_perform(c);
	r = 0;
	if (cc == CURLE_USE_SSL_FAILED && m->require_tls && strncmp(m->smtp, "smtp://", 7) == 0)
		r = err_fail(ret_error, -BCDR_ERR_PROTOCOL,
			     "%s: the server offers no STARTTLS and require_tls is on (the default "
			     "for a server that is not on loopback): the mail was not sent; use "
			     "smtps://, enable STARTTLS on the server, or set require_tls: false",
			     m->smtp);
	else if (cc != CURLE_OK)
		r = curl_failure(ret_error, cc, m->smtp, errbuf);
	curl_easy_cleanup(c);
	curl_slist_free_all(rcpt);
	buf_release(&mail);
	return r;
}

/* ---- exec ---- */

static int env_add(char ***env, size_t *n, const char *key, const char *value)
{
	char **grown = realloc(*env, (*n + 2) * sizeof(char *));
	char *kv = NULL;

	if (!grown)
		return -ENOMEM;
	*env = grown;
	if (asprintf(&kv, "%s=%s", key, value ? value : "") < 0)
		return -ENOMEM;
	grown[(*n)++] = kv;
	grown[*n] = NULL;
	return 0;
}

static int deliver_exec(const struct alert_receiver *rcv, const json_t *message, char **ret_error)
{
	const json_t *alerts = json_object_get(message, "alerts");
	const json_t *first = json_array_get(alerts, 0);
	const json_t *labels = json_object_get(first, "labels");
	const json_t *ann = json_object_get(first, "annotations");
	_cleanup_strv_free_ char **extra = NULL, **env = NULL;
	_cleanup_free_ char *input = NULL;
	struct spawn_result res = { 0 };
	char count[32], how[128];
	size_t n = 0;
	int r = 0;

	snprintf(count, sizeof(count), "%zu", json_array_size(alerts));
	/* the first alert's fields for simple scripts; the whole message on stdin */
	r = env_add(&extra, &n, "BCDR_ALERT_STATUS", jstr(message, "status"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_RECEIVER", jstr(message, "receiver"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_GROUP_KEY", jstr(message, "groupKey"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_COUNT", count);
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_NAME", jstr(labels, "alertname"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_CHECK", jstr(labels, "check"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_HOST", jstr(labels, "host"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_SEVERITY", jstr(labels, "severity"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_COMPONENT", jstr(labels, "component"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_SUMMARY", jstr(ann, "summary"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_DESCRIPTION", jstr(ann, "description"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_STARTS_AT", jstr(first, "startsAt"));
	r = r < 0 ? r : env_add(&extra, &n, "BCDR_ALERT_ENDS_AT", jstr(first, "endsAt"));
	if (r < 0)
		return r;
	env = spawn_default_env(extra);
	input = json_dumps(message, JSON_COMPACT);
	if (!env || !input)
		return -ENOMEM;
	{
		struct spawn_options o = {
			.argv = rcv->exec.argv,
			.envp = env,
			.input = input,
			.input_len = strlen(input),
			.timeout = rcv->timeout,
			.output_max = EXEC_OUTPUT_MAX,
		};

		r = spawn_run(&o, &res);
	}
	if (r < 0)
		return err_fail(ret_error, r, "cannot run '%s': %s", rcv->exec.argv[0], err_str(r));
	if (res.timed_out || res.exit_status != 0) {
		const char *out = res.output ? res.output : "";
		int line = (int)strcspn(out, "\r\n");

		r = err_fail(ret_error, res.timed_out ? -BCDR_ERR_TIMEOUT : -EIO, "'%s': %s%s%.*s",
			     rcv->exec.argv[0], spawn_describe(&res, rcv->timeout, how, sizeof(how)),
			     line ? ": " : "", line > 200 ? 200 : line, out);
	}
	spawn_result_release(&res);
	return r;
}

/* ---- log ---- */

static int deliver_log(const struct alert_receiver *rcv, const json_t *message, char **ret_error)
{
	_cleanup_free_ char *line = json_dumps(message, JSON_COMPACT);
	_cleanup_close_ int fd = -1;
	size_t len;

	if (!line)
		return -ENOMEM;
	if (!rcv->log.path) {
		log_info("alert %s: %s", rcv->name, line);
		return 0;
	}
	len = strlen(line);
	line[len] = '\n'; /* replaces the NUL: written by length */
	fd = open(rcv->log.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0)
		return err_fail(ret_error, -errno, "cannot open '%s': %s", rcv->log.path,
				strerror(errno));
	/* one write with O_APPEND: lines from several writers do not interleave */
	if (write(fd, line, len + 1) != (ssize_t)(len + 1))
		return err_fail(ret_error, -EIO, "cannot write to '%s': %s", rcv->log.path,
				strerror(errno));
	line[len] = '\0';
	return 0;
}

int alert_receiver_deliver(const struct alert_receiver *receiver, const json_t *message,
			   char **ret_error)
{
	return alert_receiver_deliver_cancellable(receiver, message, NULL, ret_error);
}

int alert_receiver_deliver_cancellable(const struct alert_receiver *receiver,
				       const json_t *message, const bool *cancel, char **ret_error)
{
	switch (receiver->kind) {
	case ALERT_RECEIVER_WEBHOOK:
		return deliver_webhook(receiver, message, cancel, ret_error);
	case ALERT_RECEIVER_EMAIL:
		return deliver_email(receiver, message, cancel, ret_error);
	case ALERT_RECEIVER_EXEC:
		return deliver_exec(receiver, message, ret_error);
	case ALERT_RECEIVER_LOG:
		return deliver_log(receiver, message, ret_error);
	}
	return -BCDR_ERR_UNSUPPORTED;
}
