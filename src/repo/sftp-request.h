/* One SFTP connection's requests (see repo/sftp-session.h): each writes
 * its packet to c->out, sends it and reads the reply. A reply that makes no
 * sense breaks the connection (sftp_conn_broke(): -BCDR_ERR_PROTOCOL); an
 * error status from the server is its errno and leaves it usable. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "repo/sftp-session.h"

/* Writes c->out to ssh (and empties it). */
int sftp_send_out(struct sftp *s, struct conn *c);
/* The next packet into c->pkt, c->pkt_len. */
int sftp_read_packet(struct sftp *s, struct conn *c);
/* The next packet, parsed (any reply type). */
int sftp_read_reply(struct sftp *s, struct conn *c, struct sftp_reply *rep);
/* Keeps the printable start of a packet that made no sense (hdr: its first
 * 4 bytes, then what is buffered) in c->garbage, for the message. */
void sftp_keep_garbage(struct conn *c, const uint8_t *hdr);
/* Sends the request in c->out and reads its reply, which must be for id. */
int sftp_call(struct sftp *s, struct conn *c, uint32_t id, struct sftp_reply *rep);
/* A reply that must be a STATUS: its errno. */
int sftp_status_of(struct conn *c, const struct sftp_reply *rep);

int sftp_conn_stat(struct sftp *s, struct conn *c, const char *path, struct sftp_attrs *ret);
/* Reads the STATUS reply to request id (REMOVE, RMDIR, MKDIR, RENAME). */
int sftp_conn_status(struct sftp *s, struct conn *c, uint32_t id);
/* A request of type on path whose answer is a STATUS (REMOVE, RMDIR). */
int sftp_conn_path(struct sftp *s, struct conn *c, uint8_t type, const char *path);
int sftp_conn_mkdir(struct sftp *s, struct conn *c, const char *path);
int sftp_conn_open(struct sftp *s, struct conn *c, const char *path, uint32_t flags,
		   struct sftp_handle *h);
int sftp_conn_opendir(struct sftp *s, struct conn *c, const char *path, struct sftp_handle *h);
int sftp_conn_close(struct sftp *s, struct conn *c, const struct sftp_handle *h);

/* Reads [off, off + len) of h into `into`, or writes `from` there, with up
 * to SFTP_WINDOW requests in flight. A read may end at EOF once need bytes
 * came (*ret_got says how many); before that, EOF is -BCDR_ERR_CORRUPT.
 * After an error the replies still due are read, so the connection stays
 * usable. */
int sftp_transfer(struct sftp *s, struct conn *c, const struct sftp_handle *h, uint64_t off,
		  size_t len, uint8_t *into, const uint8_t *from, size_t need, size_t *ret_got);

/* Streams [off, off + len) of h to fn in order, with up to SFTP_WINDOW
 * READs in flight (a ring of their buffers, 2 MiB); *delivered counts the
 * bytes fn took. EOF before the end is -BCDR_ERR_CORRUPT; fn's error stops
 * the stream. As sftp_transfer(), the replies still due are read after an
 * error. */
int sftp_stream(struct sftp *s, struct conn *c, const struct sftp_handle *h, uint64_t off,
		uint64_t len, int (*fn)(const uint8_t *data, size_t len, void *ctx), void *ctx,
		uint64_t *delivered);
