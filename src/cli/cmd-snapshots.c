/* bcdr snapshots: list the snapshots of a repository. */
#include <stdio.h>
#include <string.h>

#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"

static int run_snapshots(struct cli *cli, int argc, char **argv)
{
	const char *host = NULL, *tag = NULL, *job = NULL;
	struct repo_cli rc = {};
	_cleanup_(repo_freep) struct repo *repo = NULL;
	struct snapshot **v;
	size_t n, shown = 0;
	int code, r;

	/* --host, --tag and --job are for scripts and tests, not in the help */
	const struct cli_option options[] = {
		REPO_CLI_OPTIONS(&rc),
		{ CLI_STRING("host", 0, &host, "HOST", NULL) },
		{ CLI_STRING("tag", 0, &tag, "TAG", NULL) },
		{ CLI_STRING("job", 0, &job, "NAME", NULL) },
		{}
	};

	code = repo_cli_parse_open(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS, &rc, &repo);
	if (code != CLI_CONTINUE)
		return code;
	r = repo_list_snapshots(repo, &v, &n);
	if (r < 0) {
		code = repo_cli_error(r, "cannot read the snapshots", rc.path);
		return code;
	}
	{
		_cleanup_json_ json_t *arr = json_array();

		if (!cli->json && n)
			printf("%-8s  %-20s  %-16s  %-12s  %s\n", "ID", "TIME", "HOST", "TAGS", "PATHS");
		for (size_t i = 0; i < n; i++) {
			const struct snapshot *s = v[i];
			char id[9], when[64], tags[128] = "";
			size_t tl = 0;

			if ((host && strcmp(s->host, host) != 0) || (tag && !snapshot_has_tag(s, tag)) ||
			    (job && (!s->job || strcmp(s->job, job) != 0)))
				continue;
			shown++;
			if (cli->json) {
				json_array_append_new(arr, snapshot_list_json(s));
				continue;
			}
			for (char **t = s->tags; t && *t && tl < sizeof(tags); t++)
				tl += (size_t)snprintf(tags + tl, sizeof(tags) - tl, "%s%s",
						       tl ? "," : "", *t);
			time_format_iso(s->time, when, sizeof(when));
			printf("%-8s  %-20s  %-16s  %-12s  %s", short_id(s->id, id), when, s->host,
			       tags, s->paths && s->paths[0] ? s->paths[0] : "");
			for (char **p = s->paths && s->paths[0] ? s->paths + 1 : NULL; p && *p; p++)
				printf(" %s", *p);
			printf("\n");
		}
		if (cli->json)
			json_print(stdout, arr);
		else if (!cli->quiet)
			printf("%zu snapshot%s\n", shown, shown == 1 ? "" : "s");
	}
	snapshots_free(v, n);
	return EXIT_OK;
}

const struct command cmd_snapshots = {
	"snapshots", "list the snapshots of a repository",
	"snapshots [--host HOST] [--tag TAG] [--job NAME] [--repo DIR] [--json]\n\n"
	"Lists snapshots, oldest first, with their ID, time, host, tags and paths.\n"
	"With --json, an array of objects that include each snapshot's summary.\n",
	run_snapshots,
};
