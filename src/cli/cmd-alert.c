/* bcdr alert: the plan's notification side, without an agent.
 *   test RECEIVER   send a test notification through it now (like amtool)
 *   receivers       list the receivers and where they deliver
 * See docs/alerts.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert/alert.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "plan/plan.h"

static const char *const kind_names[] = { "email", "webhook", "exec", "log" };

/* Where a receiver delivers, in one line. */
static const char *receiver_target(const struct alert_receiver *r, char *out, size_t size)
{
	switch (r->kind) {
	case ALERT_RECEIVER_EMAIL:
		snprintf(out, size, "%s%s via %s", r->email.to[0], r->email.to[1] ? ", ..." : "",
			 r->email.smtp);
		break;
	case ALERT_RECEIVER_WEBHOOK:
		snprintf(out, size, "%s%s", r->webhook.url,
			 r->webhook.alertmanager ? " (Alertmanager /api/v2/alerts)" : "");
		break;
	case ALERT_RECEIVER_EXEC:
		snprintf(out, size, "%s", r->exec.argv[0]);
		break;
	case ALERT_RECEIVER_LOG:
		snprintf(out, size, "%s", r->log.path ? r->log.path : "the agent's log");
		break;
	}
	return out;
}

static int load_alerts(struct cli *cli, const struct alert_plan **ret)
{
	int code = cli_load_plan(cli, true);

	if (code != 0)
		return code;
	if (!cli->plan->alerts || cli->plan->alerts->n_receivers == 0) {
		log_error("'%s' has no alerts: receivers (docs/alerts.md shows how to add one)",
			  cli->plan->path);
		return EXIT_FAIL;
	}
	*ret = cli->plan->alerts;
	return 0;
}

/* Options may come before or after the arguments; the arguments are
 * gathered in args (at most max, NULL-terminated). */
static int parse_options(struct cli *cli, int argc, char **argv, char **args, size_t max,
			 size_t *ret_n)
{
	size_t n = 0;
	int code = cli_parse(cli, argc, argv, NULL, CLI_PARSE_PERMUTE);

	if (code != CLI_CONTINUE)
		return code;
	for (; optind < argc; optind++) {
		if (n >= max)
			return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
		args[n++] = argv[optind];
	}
	args[n] = NULL;
	*ret_n = n;
	return CLI_CONTINUE;
}

static int run_test(struct cli *cli, int argc, char **argv)
{
	const struct alert_plan *plan;
	const struct alert_receiver *r;
	_cleanup_free_ char *error = NULL;
	char target[512];
	usec_t t0;
	int code, k;

	char *args[2];
	size_t n = 0;

	code = parse_options(cli, argc, argv, args, 1, &n);
	if (code != CLI_CONTINUE)
		return code;
	if (n != 1)
		return cli_usage_error(cli, "which receiver? (bcdr alert receivers lists them)");
	code = load_alerts(cli, &plan);
	if (code != 0)
		return code;
	r = alert_plan_receiver(plan, args[0]);
	if (!r) {
		log_error("no receiver '%s' in '%s' (bcdr alert receivers lists them)", args[0],
			  cli->plan->path);
		return EXIT_FAIL;
	}
	receiver_target(r, target, sizeof(target));
	if (!cli->quiet && !cli->json && isatty(2))
		fprintf(stderr, "sending a test notification to '%s' (%s %s)...\n", r->name,
			kind_names[r->kind], target);
	t0 = now_monotonic();
	k = alert_receiver_test(r, NULL, plan->external_url, &error);
	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_str(j, "receiver", r->name);
		json_set_str(j, "kind", kind_names[r->kind]);
		json_set_str(j, "target", target);
		json_set_bool(j, "ok", k >= 0);
		json_set_str(j, "error", k >= 0 ? NULL : error ? error : err_str(k));
		json_set_real(j, "duration_s", (double)(now_monotonic() - t0) / USEC_PER_SEC);
		json_print(stdout, j);
	}
	if (k < 0) {
		log_error("cannot notify '%s': %s", r->name, error ? error : err_str(k));
		return EXIT_FAIL;
	}
	if (!cli->json && !cli->quiet)
		printf("sent a test notification to '%s' (%s %s)\n", r->name, kind_names[r->kind],
		       target);
	return EXIT_OK;
}

static int run_receivers(struct cli *cli, int argc, char **argv)
{
	const struct alert_plan *plan;
	_cleanup_json_ json_t *list = json_array();
	char *args[1];
	size_t n = 0;
	int code = parse_options(cli, argc, argv, args, 0, &n);

	if (code != CLI_CONTINUE)
		return code;
	code = load_alerts(cli, &plan);
	if (code != 0)
		return code;
	for (size_t i = 0; i < plan->n_receivers; i++) {
		const struct alert_receiver *r = &plan->receivers[i];
		char target[512], timeout[32];

		receiver_target(r, target, sizeof(target));
		duration_format(r->timeout, timeout, sizeof(timeout));
		if (cli->json) {
			json_t *j = json_object();

			json_set_str(j, "name", r->name);
			json_set_str(j, "kind", kind_names[r->kind]);
			json_set_str(j, "target", target);
			json_set_int(j, "timeout_s", (long long)(r->timeout / USEC_PER_SEC));
			json_array_append_new(list, j);
		} else {
			printf("%-16s %-8s %s (timeout %s)\n", r->name, kind_names[r->kind], target,
			       timeout);
		}
	}
	if (cli->json)
		json_print(stdout, list);
	return EXIT_OK;
}

static const struct command cmd_alert_test = {
	"test", "send a test notification through a receiver now",
	"alert test RECEIVER [-c PLAN] [--json]\n\n"
	"Sends one firing test alert (alertname bcdr-test) through the plan's receiver\n"
	"RECEIVER right now, with the receiver's own timeout, and reports success or\n"
	"the error (SMTP reply, HTTP status, exit status). No agent is needed.\n",
	run_test,
};

static const struct command cmd_alert_receivers = {
	"receivers", "list the plan's receivers",
	"alert receivers [-c PLAN] [--json]\n\n"
	"Lists the receivers of the plan's alerts: section and where each delivers.\n",
	run_receivers,
};

static const struct command *const alert_commands[] = { &cmd_alert_test, &cmd_alert_receivers,
							 NULL };

const struct command cmd_alert = {
	"alert", "test the plan's notification receivers",
	"alert test RECEIVER | alert receivers",
	cli_run_group,
	.subcommands = alert_commands,
};
