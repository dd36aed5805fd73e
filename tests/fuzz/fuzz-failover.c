/* A failover history from outside (an agent's /api/v1/cluster "failovers",
 * or a state.db written by another version) as `bcdr model availability`
 * reads it (src/cluster/failover-log.c): an error or times, never a crash or
 * a leak; what parses is a record that prints back the same. */
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/failover-log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	const char *name;
	json_t *o;

	if (!doc)
		return 0;
	json_object_foreach(doc, name, o) {
		for (int kind = -1; kind <= FAILOVER_SWITCHOVER; kind++) {
			double *v = NULL;
			size_t n = 0;
			struct failover_stats st;

			if (failover_log_times(doc, name, kind, &v, &n) < 0)
				continue;
			failover_stats_of(v, n, &st);
			for (size_t i = 0; i < n; i++)
				if (!(v[i] >= 0) || !isfinite(v[i]))
					abort();
			if (n && !(st.median_s <= st.p95_s && st.p95_s <= st.max_s))
				abort();
			free(v);
		}
	}
	/* the document itself as one record */
	{
		struct failover_record r, back;
		json_t *j;

		if (failover_record_from_json(doc, &r) == 0) {
			j = failover_record_json(&r);
			if (!j || failover_record_from_json(j, &back) < 0 ||
			    strcmp(back.service, r.service) != 0 || back.seconds != r.seconds)
				abort();
			json_decref(j);
		}
	}
	json_decref(doc);
	return 0;
}
