/* The metric-file reader and the predictor behind it against arbitrary
 * bytes: every row must parse or be flagged, every score must be a number
 * in [0, 1], forecasts must not crash; no leak, no out-of-bounds read. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "predict/predict.h"
#include "predict/series.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct series_reader reader;
	struct series_row row;
	struct predict *p = NULL;
	struct predict_forecast f;
	struct predict_eta e;
	FILE *in;

	if (size == 0)
		return 0;
	in = fmemopen((void *)data, size, "r");
	if (!in)
		return 0;
	if (predict_new(NULL, &p) < 0) {
		fclose(in);
		return 0;
	}
	series_reader_init(&reader, in);
	while (series_next(&reader, &row) > 0) {
		if (row.time_ok && row.value_ok) {
			double s = predict_update(p, row.t, row.value);

			if (!(s >= 0 && s <= 1))
				abort();
		}
	}
	for (int m = 0; m < PREDICT_METHOD_MAX; m++)
		if (predict_forecast(p, m, USEC_PER_HOUR, &f) == 0 && isnan(f.value))
			abort();
	(void)predict_time_to(p, 100, true, USEC_PER_DAY, &e);
	predict_free(p);
	fclose(in);
	return 0;
}
