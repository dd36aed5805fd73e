/* The SFTP backend's own structures, shared by its files and by no one
 * else (repo/backend-sftp.h is the public face; backend-sftp.c says how
 * it works):
 *   - sftp-session.c  the ssh command, an ssh process and its session,
 *                     what ssh's last words mean, the pool of connections
 *                     and the retries;
 *   - sftp-request.c  one connection's bytes and requests, and the
 *                     pipelined READ/WRITE window (sftp_transfer());
 *   - backend-sftp.c  the backend's operations (get, put, list, ...).
 * A connection is used by one thread at a time (the one that took it from
 * the pool); struct sftp's pool fields are under its lock. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "lib/timeutil.h"
#include "repo/backend-sftp.h"
#include "repo/location.h"
#include "repo/sftp-proto.h"

/* READ or WRITE requests in flight on one connection: 2 MiB, what
 * OpenSSH's sftp client keeps in flight too. */
#define SFTP_WINDOW 32
/* Entries of one listing (a million packs is 1/4 of it), and their names. */
#define SFTP_MAX_ENTRIES (4u << 20)
#define SFTP_MAX_LIST_BYTES ((size_t)256 << 20)
#define SFTP_MAX_ARGS 64
#define ERR_TAIL 2048
#define READ_BUF (128u << 10)

struct conn {
	pid_t pid;
	int to, from, err; /* ssh's stdin, stdout, stderr; non-blocking */
	uint32_t next_id;
	struct sftp_version v;
	struct buf out; /* requests not yet written */
	uint8_t *rbuf;  /* bytes read from ssh, not yet consumed */
	size_t rpos, rlen;
	uint8_t *pkt; /* the last packet read */
	size_t pkt_len;
	char tail[ERR_TAIL]; /* the end of ssh's stderr */
	size_t tail_len;
	char garbage[48]; /* the first bytes of a packet that made no sense */
	/* The pack last read in ranges stays open: a restore reads many
	 * blobs of one pack, each then one round trip, not three. Packs
	 * never change, so the handle never reads stale bytes. */
	struct sftp_handle pack;
	char pack_path[LOCATION_MAX + 300];
	bool broken;
	int fail; /* what broke it */
};

struct sftp {
	struct backend b;
	struct remote *rm; /* background uploads and the last error's text */
	char **argv;
	char *root, *display, *host;
	char port_opt[12]; /* " -p PORT" for messages, or "" */
	unsigned conns, max_attempts;
	usec_t stall, max_time;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct conn **idle;
	size_t nidle, created;
};

/* Marks c broken by r (the first cause is kept); returns r. */
static inline int sftp_conn_broke(struct conn *c, int r)
{
	if (!c->broken) {
		c->broken = true;
		c->fail = r;
	}
	return r;
}

/* ---- sftp-session.c: ssh processes, sessions, the pool, retries ---- */

/* Reads what ssh wrote on stderr so far into c->tail (its end). */
void sftp_conn_drain_err(struct conn *c);
/* Ends c's ssh (stdin closed; one that lingers is killed): its exit
 * status. */
int sftp_conn_end(struct conn *c);
void sftp_conn_free(struct conn *c);

/* One operation on a connection of the pool; again: not the first try. */
typedef int (*sftp_op_fn)(struct sftp *s, struct conn *c, void *arg, bool again);

/* Runs fn on a connection of the pool, and again on a new one while
 * connections break (shared backoff: remote_retry_wait()); what describes
 * the operation in messages ("the upload of 'NAME'"). SIGPIPE is blocked
 * meanwhile. */
int sftp_run(struct sftp *s, const char *what, sftp_op_fn fn, void *arg);
