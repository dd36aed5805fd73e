#include "backup/pathmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

void pathmap_release(struct pathmap *m)
{
	free(m->keys);
	free(m->values);
	memset(m, 0, sizeof(*m));
}

static int grow_to(struct pathmap *m, size_t nslots)
{
	const char **keys = calloc(nslots, sizeof(*keys));
	size_t *values = calloc(nslots, sizeof(*values));

	if (!keys || !values) {
		free(keys);
		free(values);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->nslots; i++) {
		size_t s;

		if (!m->keys[i])
			continue;
		for (s = hash_str(m->keys[i]) & (nslots - 1); keys[s]; s = (s + 1) & (nslots - 1))
			;
		keys[s] = m->keys[i];
		values[s] = m->values[i];
	}
	free(m->keys);
	free(m->values);
	m->keys = keys;
	m->values = values;
	m->nslots = nslots;
	return 0;
}

static int grow(struct pathmap *m)
{
	return grow_to(m, m->nslots ? m->nslots * 2 : 1024);
}

int pathmap_reserve(struct pathmap *m, size_t n)
{
	size_t nslots = m->nslots ? m->nslots : 1024;

	while ((n + 1) * 2 > nslots)
		nslots *= 2;
	return nslots == m->nslots ? 0 : grow_to(m, nslots);
}

int pathmap_put(struct pathmap *m, const char *key, size_t value)
{
	size_t s;
	int r;

	if ((m->n + 1) * 2 > m->nslots && (r = grow(m)) < 0)
		return r;
	for (s = hash_str(key) & (m->nslots - 1); m->keys[s]; s = (s + 1) & (m->nslots - 1))
		if (strcmp(m->keys[s], key) == 0) {
			m->values[s] = value;
			return 0;
		}
	m->keys[s] = key;
	m->values[s] = value;
	m->n++;
	return 0;
}

int pathmap_get(const struct pathmap *m, const char *key, size_t *ret)
{
	if (!m->nslots)
		return -ENOENT;
	for (size_t s = hash_str(key) & (m->nslots - 1); m->keys[s]; s = (s + 1) & (m->nslots - 1))
		if (strcmp(m->keys[s], key) == 0) {
			*ret = m->values[s];
			return 0;
		}
	return -ENOENT;
}
