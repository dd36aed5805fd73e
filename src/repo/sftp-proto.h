/* The SFTP protocol, version 3 (draft-ietf-secsh-filexfer-02, what
 * OpenSSH's sftp-server speaks), plus OpenSSH's posix-rename@openssh.com
 * and fsync@openssh.com extensions (its PROTOCOL file). Only the codec:
 * requests are encoded into a struct buf, replies decoded from one packet.
 * The server's bytes are outside input: every length is checked against
 * what is left of the packet, a packet is at most SFTP_MAX_PACKET, and
 * decoded strings point into the packet (no copies, no NUL assumed).
 *
 * A packet on the wire is uint32 length, then that many bytes: a type
 * byte, a uint32 request id (but INIT and VERSION), and the fields. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define SFTP_VERSION 3
/* OpenSSH's limit on a message, in its client and its server. */
#define SFTP_MAX_PACKET (256u << 10)
/* The draft: a handle is at most 256 bytes. */
#define SFTP_MAX_HANDLE 256
/* What one READ or WRITE carries: well under every server's limit. */
#define SFTP_CHUNK (64u << 10)

enum {
	SFTP_INIT = 1,
	SFTP_VERSION_REPLY = 2,
	SFTP_OPEN = 3,
	SFTP_CLOSE = 4,
	SFTP_READ = 5,
	SFTP_WRITE = 6,
	SFTP_LSTAT = 7,
	SFTP_FSTAT = 8,
	SFTP_OPENDIR = 11,
	SFTP_READDIR = 12,
	SFTP_REMOVE = 13,
	SFTP_MKDIR = 14,
	SFTP_RMDIR = 15,
	SFTP_REALPATH = 16,
	SFTP_STAT = 17,
	SFTP_RENAME = 18,
	SFTP_STATUS = 101,
	SFTP_HANDLE = 102,
	SFTP_DATA = 103,
	SFTP_NAME = 104,
	SFTP_ATTRS = 105,
	SFTP_EXTENDED = 200,
	SFTP_EXTENDED_REPLY = 201,
};

/* STATUS codes */
enum {
	SFTP_OK = 0,
	SFTP_EOF = 1,
	SFTP_NO_SUCH_FILE = 2,
	SFTP_PERMISSION_DENIED = 3,
	SFTP_FAILURE = 4,
	SFTP_BAD_MESSAGE = 5,
	SFTP_NO_CONNECTION = 6,
	SFTP_CONNECTION_LOST = 7,
	SFTP_OP_UNSUPPORTED = 8,
};

/* OPEN flags */
#define SFTP_FXF_READ 0x01u
#define SFTP_FXF_WRITE 0x02u
#define SFTP_FXF_CREAT 0x08u
#define SFTP_FXF_TRUNC 0x10u
#define SFTP_FXF_EXCL 0x20u

/* attribute flags */
#define SFTP_ATTR_SIZE 0x01u
#define SFTP_ATTR_UIDGID 0x02u
#define SFTP_ATTR_PERMISSIONS 0x04u
#define SFTP_ATTR_ACMODTIME 0x08u
#define SFTP_ATTR_EXTENDED 0x80000000u

struct sftp_attrs {
	uint32_t flags; /* which of the fields below the server gave */
	uint64_t size;
	uint32_t uid, gid, perms, atime, mtime;
};

struct sftp_handle {
	uint16_t len;
	uint8_t data[SFTP_MAX_HANDLE];
};

/* ---- requests: each appends one whole packet to b, or leaves b as it
 * was and returns -ENOMEM / -BCDR_ERR_TOO_BIG (b's max) ---- */

int sftp_put_init(struct buf *b);
/* STAT, LSTAT, OPENDIR, REMOVE, RMDIR, REALPATH: a request with one path. */
int sftp_put_path(struct buf *b, uint8_t type, uint32_t id, const char *path);
int sftp_put_mkdir(struct buf *b, uint32_t id, const char *path, uint32_t perms);
/* perms are sent with SFTP_FXF_CREAT. */
int sftp_put_open(struct buf *b, uint32_t id, const char *path, uint32_t pflags, uint32_t perms);
/* CLOSE, READDIR, FSTAT: a request with one handle. */
int sftp_put_handle(struct buf *b, uint8_t type, uint32_t id, const struct sftp_handle *h);
int sftp_put_read(struct buf *b, uint32_t id, const struct sftp_handle *h, uint64_t offset,
		  uint32_t len);
int sftp_put_write(struct buf *b, uint32_t id, const struct sftp_handle *h, uint64_t offset,
		   const void *data, uint32_t len);
/* RENAME, or posix-rename@openssh.com (replaces an existing target). */
int sftp_put_rename(struct buf *b, uint32_t id, const char *from, const char *to, bool posix);
/* fsync@openssh.com */
int sftp_put_fsync(struct buf *b, uint32_t id, const struct sftp_handle *h);

/* ---- replies ---- */

/* The length field of a packet (its first 4 bytes): -BCDR_ERR_PROTOCOL
 * when it is 0 or over SFTP_MAX_PACKET. */
int sftp_packet_length(const uint8_t hdr[4], uint32_t *ret);

struct sftp_version {
	uint32_t version;
	bool posix_rename; /* posix-rename@openssh.com "1" */
	bool fsync;        /* fsync@openssh.com "1" */
};

/* The server's first packet (without its length field): VERSION, with
 * its extension pairs. -BCDR_ERR_PROTOCOL for anything else, or a
 * version below 3. */
int sftp_parse_version(const uint8_t *p, size_t len, struct sftp_version *ret);

struct sftp_reply {
	uint8_t type;
	uint32_t id;
	/* STATUS: code and message (may be empty, not NUL-terminated) */
	uint32_t code;
	const char *msg;
	size_t msg_len;
	/* HANDLE */
	struct sftp_handle handle;
	/* DATA: points into the packet */
	const uint8_t *data;
	uint32_t data_len;
	/* NAME: count entries, already checked; walk them with sftp_names_next() */
	uint32_t count;
	const uint8_t *names;
	size_t names_len;
	/* ATTRS */
	struct sftp_attrs attrs;
};

/* One reply packet (without its length field): STATUS, HANDLE, DATA,
 * NAME, ATTRS or EXTENDED_REPLY, checked to its last byte.
 * -BCDR_ERR_PROTOCOL for a truncated or malformed packet or another type. */
int sftp_parse_reply(const uint8_t *p, size_t len, struct sftp_reply *ret);

struct sftp_names {
	const uint8_t *p;
	size_t len, pos;
	uint32_t left;
};

void sftp_names_begin(const struct sftp_reply *r, struct sftp_names *it);
/* The next entry of a NAME reply: 1 with name (not NUL-terminated, may
 * hold any byte but NUL) and its attributes, 0 after the last. */
int sftp_names_next(struct sftp_names *it, const char **ret_name, size_t *ret_len,
		    struct sftp_attrs *ret_attrs);

/* The errno for a STATUS code: 0, -ENOENT, -EACCES, -EOPNOTSUPP,
 * -ECONNRESET (no connection, connection lost), -EIO. EOF is -ENODATA. */
int sftp_status_errno(uint32_t code);
