/* The REST backend (backend_rest_open/create in repo/backend.h); its
 * listing decoder, exposed for the tests and the fuzzer. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/backend.h"

/* A GET {type}/ reply: a JSON array of {"name", "size"} (v2) or of names
 * (v1: fn gets UINT64_MAX as the size, *ret_v1 is set). Names are checked
 * (letters, digits, '-', '_', '.'; at most 128). -BCDR_ERR_PROTOCOL for
 * anything else; fn's nonzero return stops it with that value. */
int rest_list_parse(const uint8_t *data, size_t len,
		    int (*fn)(const char *name, uint64_t size, void *userdata), void *userdata,
		    bool *ret_v1);
