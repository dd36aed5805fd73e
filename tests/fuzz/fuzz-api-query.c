/* The agent's API query strings and times (outside bytes from any HTTP
 * client): query_parse, query_parse_since, query_parse_rfc3339. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = { "since", "kind", "check", "limit", NULL };
	struct query q;
	usec_t t;
	char *s;

	if (size > QUERY_MAX_LEN + 100)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (query_parse(s, allowed, &q) >= 0) {
		const char *since = query_get(&q, "since");

		if (since)
			(void)query_parse_since(since, 1795664932ull * USEC_PER_SEC, &t);
		query_release(&q);
	}
	(void)query_parse_rfc3339(s, &t);
	(void)query_parse_since(s, 1795664932ull * USEC_PER_SEC, &t);
	free(s);
	return 0;
}
