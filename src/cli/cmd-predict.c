/* bcdr predict: anomaly scores and forecasts of a metric file. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "predict/predict.h"
#include "predict/series.h"

/* The one FILE operand, wherever it stands among the options
 * (`bcdr predict forecast FILE --horizon 6h`); "-" is a FILE too. */
static int the_file(struct cli *cli, int argc, char **argv, const char **ret)
{
	if (optind == argc)
		return cli_usage_error(cli, "missing FILE");
	if (argc - optind > 1)
		return cli_usage_error(cli, "one FILE please");
	*ret = argv[optind];
	return CLI_CONTINUE;
}

static int take_method(struct cli *cli, const struct cli_option *o, const char *arg)
{
	if (predict_method_from_name(arg, o->field) < 0)
		return cli_usage_error(cli, "unknown method '%s' (auto, linear, holt, holt-winters)",
				       arg);
	return CLI_CONTINUE;
}

/* --rising and --falling: the direction is the row's min (+1 or -1). */
static int take_direction(struct cli *cli, const struct cli_option *o, const char *arg)
{
	(void)cli;
	(void)arg;
	*(int *)o->field = (int)o->min;
	return CLI_CONTINUE;
}

static FILE *open_input(const char *path)
{
	FILE *f;

	if (strcmp(path, "-") == 0)
		return stdin;
	f = fopen(path, "re");
	if (!f)
		log_error_errno(-errno, "cannot open '%s'", path);
	return f;
}

static void close_input(FILE *f)
{
	if (f && f != stdin)
		fclose(f);
}

/* Reads the rows of path, calling fn for each; counts the problems. */
struct scan {
	const char *path;
	size_t rows, bad_time, missing, out_of_order;
	usec_t last_t;
};

/* Opens path for its rows; logs. 0, or -1 with nothing to close. */
static int open_series(const char *path, FILE **ret_in, struct series_reader **ret)
{
	FILE *in = open_input(path);

	if (!in)
		return -1;
	*ret = malloc(sizeof(**ret));
	if (!*ret) {
		close_input(in);
		log_error_errno(-ENOMEM, "cannot read '%s'", path);
		return -1;
	}
	series_reader_init(*ret, in);
	*ret_in = in;
	return 0;
}

static int report_read_error(const struct scan *s, const struct series_reader *r, int k)
{
	if (k == -BCDR_ERR_TOO_BIG)
		log_error("%s:%zu: line longer than %d bytes, stopping", s->path, r->line + 1,
			  SERIES_MAX_LINE);
	else
		log_error_errno(k, "cannot read '%s'", s->path);
	return EXIT_FAIL;
}

static int finish_scan(const struct cli *cli, const struct scan *s)
{
	if (s->out_of_order && !s->bad_time && !s->missing) {
		if (cli->verbose)
			log_info("%s: %zu of %zu rows out of time order (scored, not used for "
				 "trends)", s->path, s->out_of_order, s->rows);
		return EXIT_OK;
	}
	if (s->bad_time || s->missing) {
		if (!cli->quiet)
			log_warning("%s: %zu rows: %zu with a bad timestamp, %zu with a missing "
				    "value, %zu out of order (scored 0 / not learned, see "
				    "docs/predict.md)",
				    s->path, s->rows, s->bad_time, s->missing, s->out_of_order);
		return EXIT_PROBLEMS;
	}
	return EXIT_OK;
}

static int run_anomalies(struct cli *cli, int argc, char **argv)
{
	_cleanup_predict_ struct predict *p = NULL;
	struct series_reader *reader = NULL;
	struct scan s = { 0 };
	struct series_row row;
	double only_above = -1;
	const char *file = NULL;
	FILE *in;
	int code, k, r;

	const struct cli_option options[] = {
		{ CLI_COLUMN(21) },
		{ CLI_NUMBER("above", 0, &only_above, "SCORE",
			     "print only the rows scoring at least SCORE"),
		  .min = 0, .max = 1, .what = "wants a score in [0, 1]" },
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code == CLI_CONTINUE)
		code = the_file(cli, argc, argv, &file);
	if (code != CLI_CONTINUE)
		return code;
	s.path = file;
	r = predict_new(NULL, &p);
	if (r < 0)
		return log_error_errno(r, "cannot create the detector"), EXIT_FAIL;
	if (open_series(s.path, &in, &reader) < 0)
		return EXIT_FAIL;
	if (!cli->json)
		fputs("timestamp,value,anomaly_score\n", stdout);
	while ((k = series_next(reader, &row)) > 0) {
		double score = 0;

		s.rows++;
		if (!row.time_ok)
			s.bad_time++;
		else if (!row.value_ok)
			s.missing++;
		else {
			if (s.rows > 1 && row.t < s.last_t)
				s.out_of_order++;
			else
				s.last_t = row.t;
			score = predict_update(p, row.t, row.value);
		}
		if (score < only_above)
			continue;
		if (cli->json) {
			_cleanup_json_ json_t *j = json_object();

			json_set_str(j, "timestamp", row.time_text);
			if (row.value_ok)
				json_set_real(j, "value", row.value);
			else
				json_object_set_new(j, "value", json_null());
			json_set_real(j, "anomaly_score", round(score * 1e6) / 1e6);
			json_print(stdout, j);
		} else {
			printf("%s,%s,%.6f\n", row.time_text, row.value_text, score);
		}
	}
	free(reader);
	close_input(in);
	if (fflush(stdout) != 0)
		return log_error_errno(-errno, "cannot write the output"), EXIT_FAIL;
	if (k < 0)
		return report_read_error(&s, &(struct series_reader){ .line = s.rows }, k);
	return finish_scan(cli, &s);
}

static const struct command cmd_predict_anomalies = {
	"anomalies", "score every row of a metric file for anomalies (0..1)",
	"predict anomalies FILE.csv [--above SCORE] [--json]\n\n"
	"Reads `timestamp,value` rows (NAB style; FILE - for stdin), oldest first,\n"
	"and writes `timestamp,value,anomaly_score` for every row, in order. Each\n"
	"score is computed before the row is learned (no look-ahead); 0.5 and\n"
	"above means anomalous. Streams in constant memory.\n"
	"Rows with a bad timestamp or a missing value score 0 and are not learned\n"
	"(exit status 3).\n",
	run_anomalies,
};

static json_t *forecast_json(const struct predict_forecast *f)
{
	json_t *j = json_object();
	char when[64];

	json_set_str(j, "method", predict_method_name(f->method));
	json_set_str(j, "at", time_format_iso(f->at, when, sizeof(when)));
	json_set_real(j, "value", f->value);
	json_set_real(j, "lower", f->lower);
	json_set_real(j, "upper", f->upper);
	json_set_real(j, "rate_per_s", f->rate);
	return j;
}

static const char *eta_text(usec_t d, char *out, size_t size)
{
	if (d == UINT64_MAX)
		return "never";
	return duration_format(d, out, size);
}

static int run_forecast(struct cli *cli, int argc, char **argv)
{
	struct predict_options popts = { 0 };
	_cleanup_predict_ struct predict *p = NULL;
	struct series_reader *reader;
	enum predict_method method = PREDICT_AUTO;
	usec_t horizon = 0;
	double threshold = NAN;
	int direction = 0; /* +1 rising, -1 falling, 0 from the current level */
	struct scan s = { 0 };
	struct series_row row;
	struct predict_forecast fc[PREDICT_METHOD_MAX];
	int have[PREDICT_METHOD_MAX] = { 0 };
	struct predict_eta eta;
	bool have_eta = false, above = true;
	char b1[64], b2[64], b3[64];
	const char *file = NULL;
	FILE *in;
	int code, k, r;

	const struct cli_option options[] = {
		{ CLI_COLUMN(21) },
		{ CLI_DURATION("horizon", 0, &horizon, "D", "how far ahead, e.g. 6h, 2d (required)"),
		  .min = 1, .what = "wants a duration such as '6h'" },
		{ CLI_NUMBER("threshold", 0, &threshold, "X", "time until the trend reaches X") },
		{ CLI_CALL("rising", 0, take_direction, &direction, NULL,
			   "X is crossed from below (default: from the side the"), .min = 1 },
		{ CLI_CALL("falling", 0, take_direction, &direction, NULL, "level is on now)"),
		  .min = -1 },
		{ CLI_CALL("method", 0, take_method, &method, "M",
			   "auto (default), linear, holt, holt-winters") },
		{ CLI_DURATION("window", 0, &popts.window, "D",
			       "look-back of the linear trend (default 6h)"),
		  .min = 1, .what = "wants a duration such as '6h'" },
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code == CLI_CONTINUE)
		code = the_file(cli, argc, argv, &file);
	if (code != CLI_CONTINUE)
		return code;
	if (!horizon)
		return cli_usage_error(cli, "missing --horizon (e.g. --horizon 6h)");
	s.path = file;
	r = predict_new(&popts, &p);
	if (r < 0)
		return log_error_errno(r, "cannot create the model"), EXIT_FAIL;
	if (open_series(s.path, &in, &reader) < 0)
		return EXIT_FAIL;
	while ((k = series_next(reader, &row)) > 0) {
		s.rows++;
		if (!row.time_ok) {
			s.bad_time++;
			continue;
		}
		if (!row.value_ok) {
			s.missing++;
			continue;
		}
		if (s.rows > 1 && row.t < s.last_t)
			s.out_of_order++;
		else
			s.last_t = row.t;
		predict_update(p, row.t, row.value);
	}
	free(reader);
	close_input(in);
	if (k < 0)
		return report_read_error(&s, &(struct series_reader){ .line = s.rows }, k);

	for (int m = 0; m < PREDICT_METHOD_MAX; m++)
		have[m] = predict_forecast(p, m, horizon, &fc[m]) == 0;
	if (!have[method]) {
		log_error("%s: not enough samples to forecast with %s (%llu usable)", s.path,
			  predict_method_name(method), (unsigned long long)predict_samples(p));
		return EXIT_FAIL;
	}
	if (!isnan(threshold)) {
		struct predict_forecast now;

		if (direction == 0 && predict_forecast(p, PREDICT_LINEAR, 0, &now) == 0)
			above = threshold >= now.value;
		else
			above = direction >= 0;
		have_eta = predict_time_to(p, threshold, above, horizon, &eta) == 0;
	}

	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();
		json_t *list = json_array();
		usec_t season = predict_season(p);

		json_set_str(j, "file", s.path);
		json_set_int(j, "samples", (long long)predict_samples(p));
		json_set_str(j, "last_time", time_format_iso(predict_last_time(p), b1, sizeof(b1)));
		json_set_int(j, "horizon_s", (long long)(horizon / USEC_PER_SEC));
		json_set_str(j, "season", season == USEC_PER_WEEK ? "weekly"
					  : season == USEC_PER_DAY ? "daily" : "none");
		json_object_set_new(j, "forecast", forecast_json(&fc[method]));
		for (int m = 1; m < PREDICT_METHOD_MAX; m++)
			if (have[m])
				json_array_append_new(list, forecast_json(&fc[m]));
		json_object_set_new(j, "methods", list);
		if (have_eta) {
			json_t *t = json_object();

			json_set_real(t, "value", threshold);
			json_set_str(t, "direction", above ? "rising" : "falling");
			json_set_bool(t, "crosses_within_horizon", eta.crosses);
			if (eta.eta != UINT64_MAX) {
				json_set_real(t, "eta_s", (double)eta.eta / USEC_PER_SEC);
				json_set_str(t, "at", time_format_iso(predict_last_time(p) + eta.eta,
								     b1, sizeof(b1)));
			} else {
				json_object_set_new(t, "eta_s", json_null());
			}
			json_set_real(t, "earliest_s", (double)eta.earliest / USEC_PER_SEC);
			if (eta.latest != UINT64_MAX)
				json_set_real(t, "latest_s", (double)eta.latest / USEC_PER_SEC);
			else
				json_object_set_new(t, "latest_s", json_null());
			json_set_real(t, "rate_per_s", eta.rate);
			json_object_set_new(j, "threshold", t);
		}
		json_print(stdout, j);
	} else {
		usec_t season = predict_season(p);

		printf("%s: %llu samples, newest %s, season %s\n", s.path,
		       (unsigned long long)predict_samples(p),
		       time_format_iso(predict_last_time(p), b1, sizeof(b1)),
		       season == USEC_PER_WEEK ? "weekly" : season == USEC_PER_DAY ? "daily" : "none");
		printf("forecast at %s (+%s), 95%% interval:\n",
		       time_format_iso(fc[method].at, b1, sizeof(b1)),
		       duration_format(horizon, b2, sizeof(b2)));
		for (int m = 1; m < PREDICT_METHOD_MAX; m++) {
			if (!have[m])
				continue;
			printf("  %-13s %14.6g  [%.6g, %.6g]%s\n", predict_method_name(m),
			       fc[m].value, fc[m].lower, fc[m].upper,
			       m == (int)fc[method].method ? "  <- chosen" : "");
		}
		if (have_eta) {
			if (eta.eta == 0)
				printf("threshold %g: already reached\n", threshold);
			else if (eta.eta == UINT64_MAX)
				printf("threshold %g (%s): not approaching (trend %+.6g/h)\n",
				       threshold, above ? "rising" : "falling", eta.rate * 3600);
			else
				printf("threshold %g (%s): reached in %s (95%%: %s to %s)%s\n",
				       threshold, above ? "rising" : "falling",
				       eta_text(eta.eta, b1, sizeof(b1)),
				       eta_text(eta.earliest, b2, sizeof(b2)),
				       eta_text(eta.latest, b3, sizeof(b3)),
				       eta.crosses ? ", within the horizon" : "");
		} else if (!isnan(threshold)) {
			printf("threshold %g: not enough samples for a trend\n", threshold);
		}
	}
	return finish_scan(cli, &s);
}

static const struct command cmd_predict_forecast = {
	"forecast", "forecast a metric file and the time until a threshold",
	"predict forecast FILE.csv --horizon DURATION [--threshold X] [--method M] [--json]\n\n"
	"Reads `timestamp,value` rows (FILE - for stdin) in constant memory and\n"
	"prints the forecast HORIZON after the newest sample by each method, with\n"
	"95% intervals: linear (Theil-Sen over --window, like predict_linear but\n"
	"robust to outliers), holt (level + trend smoothing) and holt-winters\n"
	"(daily or weekly season, when the data has one). With --threshold, the\n"
	"time until the robust trend reaches it, with an interval.\n",
	run_forecast,
};

static const struct command *const predict_commands[] = {
	&cmd_predict_anomalies,
	&cmd_predict_forecast,
	NULL,
};

const struct command cmd_predict = {
	"predict", "anomaly scores, forecasts and time to a threshold of a metric",
	"predict anomalies FILE.csv [--json]\n"
	"       bcdr predict forecast FILE.csv --horizon 6h [--threshold X] [--json]",
	cli_run_group,
	.subcommands = predict_commands,
};
