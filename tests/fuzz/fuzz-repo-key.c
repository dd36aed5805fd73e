/* The plaintext decoders of a repository: key files and the config. */
#include <stddef.h>
#include <stdint.h>

#include "repo/repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t salt[32], sealed[256];
	size_t sealed_len, min, avg, max;
	uint64_t n;
	uint32_t r, p;
	char id[33];
	int level;

	key_file_decode(data, size, &n, &r, &p, salt, sealed, &sealed_len);
	config_decode(data, size, id, &min, &avg, &max, &level);
	return 0;
}
