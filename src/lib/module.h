/* Engines built as modules (bcdr-model.so, bcdr-backup.so): shared objects
 * the binary loads the first time one of their functions is called, so
 * the libraries only they need (GSL and igraph; libcrypto and libzstd)
 * stay out of every process that never uses them, `bcdr agent` first
 * (docs/internals.md, "What the binary links, and the modules").
 *
 * A module exports one table whose first fields are a struct module_head;
 * the binary defines the engine's functions as calls through it. */
#pragma once

#include <stddef.h>

struct module_head {
	/* BCDR_VERSION and the size of the table of the build that made the
	 * module: a module from another build is refused. */
	const char *version;
	size_t size;
};

/* Loads the module file (beside the executable, a build tree or an install
 * that keeps them together; then BCDR_MODULE_DIR) and returns its table,
 * the symbol named symbol, checked to be of size bytes and of this
 * version. what names the engine in messages ("the backup engine"). On
 * failure writes what went wrong, and what to do, into why and returns
 * -ELIBACC (missing), -ELIBBAD (not loadable or of another build). The
 * module is never unloaded: its code and allocations live on. */
int module_load(const char *file, const char *symbol, size_t size, const char *what,
		const void **ret, char *why, size_t why_size);
