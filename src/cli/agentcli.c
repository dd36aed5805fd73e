#include "cli/agentcli.h"

#include <errno.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/client.h"
#include "agent/query.h"
#include "agent/settings.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "plan/plan.h"

int agentcli_connect(struct cli *cli, struct agentcli *ac)
{
	_cleanup_(agent_settings_freep) struct agent_settings *dflt = NULL;
	_cleanup_free_ char *error = NULL;
	const struct agent_settings *s;
	int code, r;

	/* With --agent no plan is needed; one that exists still gives the token. */
	code = cli_load_plan(cli, false);
	if (code != 0)
		return code;
	if (cli->plan->agent) {
		s = cli->plan->agent;
	} else {
		r = agent_settings_new(&dflt);
		if (r < 0)
			return log_error_errno(r, "cannot set up the client"), EXIT_FAIL;
		s = dflt;
	}
	r = agent_client_new(s, ac->url, ac->token_file, &ac->client, &error);
	if (r < 0) {
		log_error("%s", error ? error : err_str(r));
		return EXIT_FAIL;
	}
	return 0;
}

void agentcli_release(struct agentcli *ac)
{
	agent_client_free(ac->client);
	ac->client = NULL;
}

int agentcli_call(struct agentcli *ac, const char *method, const char *path, const json_t *body,
		  json_t **ret)
{
	_cleanup_free_ char *error = NULL;
	_cleanup_json_ json_t *j = NULL;
	long status = 0;
	int r;

	r = agent_client_call(ac->client, method, path, body, &status, &j, &error);
	if (r < 0) {
		log_error("%s", error ? error : err_str(r));
		return EXIT_FAIL;
	}
	if (status < 200 || status > 299) {
		const char *msg = json_string_value(json_object_get(j, "error"));

		if (status == 401 || status == 403)
			log_error("the agent refused the request (%ld): %s (see --token-file)", status,
				  msg ? msg : "not authorized");
		else
			log_error("the agent answered %ld: %s", status, msg ? msg : "no message");
		return status == 400 || status == 404 ? EXIT_USAGE : EXIT_FAIL;
	}
	if (ret)
		*ret = TAKE_PTR(j);
	return 0;
}

int agentcli_parse(struct cli *cli, struct agentcli *ac, int argc, char **argv)
{
	const struct cli_option options[] = { AGENTCLI_OPTIONS(ac), {} };

	return cli_parse(cli, argc, argv, options, 0);
}

int agentcli_request(struct cli *cli, struct agentcli *ac, const char *method, const char *path,
		     const json_t *body, json_t **ret)
{
	int code = agentcli_connect(cli, ac);

	return code != 0 ? code : agentcli_call(ac, method, path, body, ret);
}

int agentcli_name_command(struct cli *cli, struct agentcli *ac, int argc, char **argv,
			  const char *usage_error, const char *method, const char *path_fmt)
{
	_cleanup_free_ char *encoded = NULL, *path = NULL;
	int code = agentcli_parse(cli, ac, argc, argv);

	if (code != CLI_CONTINUE)
		return code;
	if (argc - optind != 1)
		return cli_usage_error(cli, "%s", usage_error);
	encoded = evhttp_encode_uri(argv[optind]);
	if (!encoded || asprintf(&path, path_fmt, encoded) < 0)
		return log_error_errno(-ENOMEM, "cannot call the agent"), EXIT_FAIL;
	code = agentcli_request(cli, ac, method, path, NULL, NULL);
	return code ? code : CLI_CONTINUE;
}

int agentcli_get_list(struct cli *cli, struct agentcli *ac, int argc, char **argv,
		      const char *path, json_t **ret)
{
	_cleanup_json_ json_t *j = NULL;
	int code = agentcli_parse(cli, ac, argc, argv);

	if (code != CLI_CONTINUE)
		return code;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	code = agentcli_request(cli, ac, "GET", path, NULL, &j);
	if (code != 0)
		return code;
	if (cli->json) {
		json_print(stdout, j);
		return EXIT_OK;
	}
	*ret = TAKE_PTR(j);
	return CLI_CONTINUE;
}

const char *agentcli_age(const char *rfc3339, char *out, size_t size)
{
	usec_t t, now = now_realtime();
	char d[32];

	if (!rfc3339 || query_parse_rfc3339(rfc3339, &t) < 0) {
		snprintf(out, size, "-");
		return out;
	}
	snprintf(out, size, "%s ago", duration_format(now > t ? (now - t) / USEC_PER_SEC *
								   USEC_PER_SEC : 0, d, sizeof(d)));
	return out;
}
