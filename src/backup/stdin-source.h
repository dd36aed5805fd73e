/* A snapshot's file from a stream: the standard output of a command (a
 * database dump: `bcdr backup --stdin-from-command -- pg_dump shop`) or
 * bcdr's own standard input (--stdin). The command runs with its standard
 * error kept (the last 4 KiB), so a dump that fails says why; one that
 * exits non-zero or is killed fails the backup before its snapshot is
 * saved (backup_stream.finish). */
#pragma once

#include "backup/backup.h"
#include "lib/cleanup.h"

struct stdin_source;

/* Starts argv (envp NULL: this process's environment). */
int stdin_source_command(char *const *argv, char *const *envp, const char *filename,
			 struct stdin_source **ret);
/* Reads fd (not closed). */
int stdin_source_fd(int fd, const char *filename, struct stdin_source **ret);
/* What backup_options.stream points at; lives as long as the source. */
const struct backup_stream *stdin_source_stream(struct stdin_source *s);
/* Waits for the command (kills it first when r < 0: the backup failed and
 * reads no more) and returns r, or -ECHILD when the command failed. Once
 * only: later calls return the first answer. */
int stdin_source_finish(struct stdin_source *s, int r);
/* Why the command failed: "'pg_dump' exit status 1: pg_dump: error: ..."
 * ("" when it did not); static to s. */
const char *stdin_source_message(const struct stdin_source *s);
/* Kills a command still running. */
void stdin_source_free(struct stdin_source *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct stdin_source *, stdin_source_free)
