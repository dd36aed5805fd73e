/* Scores NAB files with given detector parameters, for bench/nab/lofo:
 *   tune PARAMS... -- FILE...
 * PARAMS are margin,halflife,quiet,resid_weight[,members[,floor]] (struct
 * anomaly_params; left out: the defaults); for each parameter set
 * and file, one line: "<set index> <file> <score> <score> ...". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predict/anomaly.h"
#include "predict/series.h"

int main(int argc, char **argv)
{
	static struct series_reader rd;
	struct anomaly_params ps[256];
	int np = 0, i = 1;

	for (; i < argc && strcmp(argv[i], "--") != 0 && np < 256; i++) {
		struct anomaly_params p = anomaly_default_params;

		if (sscanf(argv[i], "%lf,%lf,%u,%lf,%u,%lf", &p.margin, &p.peak_halflife,
			   &p.quiet, &p.resid_weight, &p.members, &p.floor) < 4) {
			fprintf(stderr, "bad parameter set '%s'\n", argv[i]);
			return 2;
		}
		ps[np++] = p;
	}
	for (i++; i < argc; i++)
		for (int k = 0; k < np; k++) {
			struct series_row row;
			static struct anomaly a;
			FILE *f = fopen(argv[i], "r");

			if (!f)
				return 1;
			anomaly_init(&a);
			series_reader_init(&rd, f);
			printf("%d %s", k, argv[i]);
			while (series_next(&rd, &row) > 0)
				printf(" %.4f", row.time_ok && row.value_ok
							? anomaly_update_with(&a, &ps[k],
									      row.t / 1e6, row.value)
							: 0.0);
			putchar('\n');
			fclose(f);
		}
	return 0;
}
