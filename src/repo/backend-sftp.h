/* The SFTP backend (backend_sftp_open/create in repo/backend.h): the
 * repository's files on a server reached by the system's ssh, which runs
 * the server's sftp subsystem (`ssh [-p PORT] [USER@]HOST -s sftp`), so
 * the operator's ssh_config, agent, known_hosts and jump hosts apply as
 * they are. The protocol itself is repo/sftp-proto.h. Exposed here for
 * the tests: the ssh command line, and what ssh's last words mean. */
#pragma once

#include <stddef.h>

#include "repo/backend.h"

/* Parallel ssh connections when the repository names none: each one is
 * an ssh process and an sftp-server on the far side. */
#define SFTP_DEFAULT_CONNECTIONS 4

/* The argument vector for loc: command (BCDR_SSH_COMMAND, NULL or empty
 * for "ssh") split at spaces and tabs, with '...' or "..." for a word
 * holding spaces; then bcdr's options, the port, the user and host, and
 * "-s sftp". A NULL-terminated vector (strv_free() it); -EINVAL with an
 * unclosed quote or more than 64 words. */
int sftp_ssh_argv(const struct location *loc, const char *command, char ***ret);

/* What ssh said on its standard error when it failed, as an errno:
 * -EKEYREJECTED (host key unknown or changed), -EACCES (login refused),
 * -EHOSTUNREACH (no such host), -ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH,
 * -EPROTONOSUPPORT (no sftp subsystem); 0 when it says none of these. */
int sftp_ssh_failure(const char *text);
