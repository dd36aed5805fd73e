/* The SFTP codec (repo/sftp-proto.c) and the ssh side of the sftp backend
 * (the command line, what ssh's messages mean). Replies are outside
 * input: truncated, lying and random packets, each in a heap block of
 * exactly its size so that ASan sees any read past it. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "repo/backend-sftp.h"
#include "repo/location.h"
#include "repo/sftp-proto.h"

/* ---- building packets by hand ---- */

struct pk {
	uint8_t b[4096];
	size_t n;
};

static void u8(struct pk *p, uint8_t v)
{
	p->b[p->n++] = v;
}

static void u32(struct pk *p, uint32_t v)
{
	u8(p, v >> 24);
	u8(p, v >> 16);
	u8(p, v >> 8);
	u8(p, v);
}

static void u64(struct pk *p, uint64_t v)
{
	u32(p, v >> 32);
	u32(p, (uint32_t)v);
}

static void str(struct pk *p, const char *s)
{
	u32(p, (uint32_t)strlen(s));
	memcpy(p->b + p->n, s, strlen(s));
	p->n += strlen(s);
}

/* Parses the first len bytes from a block of exactly that size (kept
 * until the next call: the reply points into it). */
static uint8_t *last_copy;

static int parse(const struct pk *p, size_t len, struct sftp_reply *rep)
{
	free(last_copy);
	last_copy = malloc(len ? len : 1);
	memcpy(last_copy, p->b, len);
	return sftp_parse_reply(last_copy, len, rep);
}

static int parse_version(const struct pk *p, size_t len, struct sftp_version *v)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	memcpy(copy, p->b, len);
	r = sftp_parse_version(copy, len, v);
	free(copy);
	return r;
}

static uint32_t be32(const char *p)
{
	const uint8_t *u = (const uint8_t *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* ---- requests ---- */

static void test_requests(void **state)
{
	struct sftp_handle h = { .len = 3, .data = { 'h', '0', '1' } };
	struct buf b;
	static const uint8_t init[] = { 0, 0, 0, 5, 1, 0, 0, 0, 3 };
	uint8_t data[100];

	(void)state;
	buf_init(&b, 1 << 20);
	assert_int_equal(sftp_put_init(&b), 0);
	assert_int_equal(b.len, sizeof(init));
	assert_memory_equal(b.data, init, sizeof(init));

	buf_reset(&b);
	assert_int_equal(sftp_put_open(&b, 7, "/r/config", SFTP_FXF_WRITE | SFTP_FXF_CREAT, 0600),
			 0);
	/* length, type, id, path, pflags, attr flags, perms */
	assert_int_equal(be32(b.data), b.len - 4);
	assert_int_equal((uint8_t)b.data[4], SFTP_OPEN);
	assert_int_equal(be32(b.data + 5), 7);
	assert_int_equal(be32(b.data + 9), 9);
	assert_memory_equal(b.data + 13, "/r/config", 9);
	assert_int_equal(be32(b.data + 22), SFTP_FXF_WRITE | SFTP_FXF_CREAT);
	assert_int_equal(be32(b.data + 26), SFTP_ATTR_PERMISSIONS);
	assert_int_equal(be32(b.data + 30), 0600);
	assert_int_equal(b.len, 34);

	/* several packets in one buffer: a pipelined window */
	buf_reset(&b);
	assert_int_equal(sftp_put_read(&b, 1, &h, 1ull << 40, 65536), 0);
	assert_int_equal(b.len, 4 + 1 + 4 + 4 + 3 + 8 + 4);
	memset(data, 'x', sizeof(data));
	assert_int_equal(sftp_put_write(&b, 2, &h, 5, data, sizeof(data)), 0);
	assert_int_equal(be32(b.data + 28), 1 + 4 + 4 + 3 + 8 + 4 + 100);
	assert_int_equal((uint8_t)b.data[32], SFTP_WRITE);

	buf_reset(&b);
	assert_int_equal(sftp_put_rename(&b, 3, "a.tmp", "a", true), 0);
	assert_int_equal((uint8_t)b.data[4], SFTP_EXTENDED);
	assert_int_equal(be32(b.data + 9), 24);
	assert_memory_equal(b.data + 13, "posix-rename@openssh.com", 24);
	buf_reset(&b);
	assert_int_equal(sftp_put_rename(&b, 3, "a.tmp", "a", false), 0);
	assert_int_equal((uint8_t)b.data[4], SFTP_RENAME);
	assert_int_equal(b.len, 4 + 1 + 4 + 4 + 5 + 4 + 1);
	buf_reset(&b);
	assert_int_equal(sftp_put_fsync(&b, 4, &h), 0);
	assert_memory_equal(b.data + 13, "fsync@openssh.com", 17);
	buf_release(&b);

	/* a buffer at its maximum keeps what it had */
	buf_init(&b, 20);
	assert_int_equal(sftp_put_init(&b), 0);
	assert_int_equal(sftp_put_path(&b, SFTP_STAT, 1, "/a/long/path"), -BCDR_ERR_TOO_BIG);
	assert_int_equal(b.len, sizeof(init));
	buf_release(&b);
}

static void test_packet_length(void **state)
{
	static const uint8_t zero[4] = { 0, 0, 0, 0 }, max[4] = { 0, 4, 0, 0 },
			     over[4] = { 0, 4, 0, 1 }, five[4] = { 0, 0, 0, 5 };
	uint32_t n = 99;

	(void)state;
	assert_int_equal(sftp_packet_length(zero, &n), -BCDR_ERR_PROTOCOL);
	assert_int_equal(sftp_packet_length(over, &n), -BCDR_ERR_PROTOCOL);
	/* text where a length should be: "hell" is 1.7 GB */
	assert_int_equal(sftp_packet_length((const uint8_t *)"hell", &n), -BCDR_ERR_PROTOCOL);
	assert_int_equal(n, 99);
	assert_int_equal(sftp_packet_length(max, &n), 0);
	assert_int_equal(n, SFTP_MAX_PACKET);
	assert_int_equal(sftp_packet_length(five, &n), 0);
	assert_int_equal(n, 5);
}

/* ---- VERSION ---- */

static void test_version(void **state)
{
	struct sftp_version v;
	struct pk p = { .n = 0 };
	size_t after_version;

	(void)state;
	u8(&p, SFTP_VERSION_REPLY);
	u32(&p, 3);
	after_version = p.n;
	str(&p, "posix-rename@openssh.com");
	str(&p, "1");
	str(&p, "statvfs@openssh.com");
	str(&p, "2");
	str(&p, "fsync@openssh.com");
	str(&p, "1");
	assert_int_equal(parse_version(&p, p.n, &v), 0);
	assert_int_equal(v.version, 3);
	assert_true(v.posix_rename);
	assert_true(v.fsync);
	/* a prefix parses only when it ends between extensions, and never
	 * reads past its end */
	for (size_t n = 0; n < p.n; n++) {
		int r = parse_version(&p, n, &v);

		if (n < after_version)
			assert_int_equal(r, -BCDR_ERR_PROTOCOL);
		else if (r == 0)
			assert_false(v.fsync);
	}
	/* version 2, another type, a lying string length */
	p.n = 0;
	u8(&p, SFTP_VERSION_REPLY);
	u32(&p, 2);
	assert_int_equal(parse_version(&p, p.n, &v), -BCDR_ERR_PROTOCOL);
	p.n = 0;
	u8(&p, SFTP_STATUS);
	u32(&p, 3);
	assert_int_equal(parse_version(&p, p.n, &v), -BCDR_ERR_PROTOCOL);
	p.n = 0;
	u8(&p, SFTP_VERSION_REPLY);
	u32(&p, 3);
	u32(&p, 0xffffffff);
	assert_int_equal(parse_version(&p, p.n, &v), -BCDR_ERR_PROTOCOL);
	/* an extension with another version is not used */
	p.n = 0;
	u8(&p, SFTP_VERSION_REPLY);
	u32(&p, 3);
	str(&p, "posix-rename@openssh.com");
	str(&p, "2");
	assert_int_equal(parse_version(&p, p.n, &v), 0);
	assert_false(v.posix_rename);
}

/* ---- replies ---- */

static void test_status(void **state)
{
	struct sftp_reply rep;
	struct pk p = { .n = 0 };

	(void)state;
	u8(&p, SFTP_STATUS);
	u32(&p, 9);
	u32(&p, SFTP_NO_SUCH_FILE);
	str(&p, "No such file");
	str(&p, "en");
	assert_int_equal(parse(&p, p.n, &rep), 0);
	assert_int_equal(rep.id, 9);
	assert_int_equal(rep.code, SFTP_NO_SUCH_FILE);
	assert_int_equal(rep.msg_len, 12);
	assert_memory_equal(rep.msg, "No such file", 12);
	assert_int_equal(sftp_status_errno(rep.code), -ENOENT);
	/* without message and language (old servers): fine; cut inside a
	 * field: refused */
	assert_int_equal(parse(&p, 9, &rep), 0);
	for (size_t n = 0; n < p.n; n++)
		if (n != 9 && n != 9 + 4 + 12)
			assert_int_equal(parse(&p, n, &rep), -BCDR_ERR_PROTOCOL);
	/* trailing bytes */
	u8(&p, 0);
	assert_int_equal(parse(&p, p.n, &rep), -BCDR_ERR_PROTOCOL);

	assert_int_equal(sftp_status_errno(SFTP_OK), 0);
	assert_int_equal(sftp_status_errno(SFTP_EOF), -ENODATA);
	assert_int_equal(sftp_status_errno(SFTP_PERMISSION_DENIED), -EACCES);
	assert_int_equal(sftp_status_errno(SFTP_CONNECTION_LOST), -ECONNRESET);
	assert_int_equal(sftp_status_errno(SFTP_OP_UNSUPPORTED), -EOPNOTSUPP);
	assert_int_equal(sftp_status_errno(12345), -EIO);
}

static void test_handle_and_data(void **state)
{
	struct sftp_reply rep;
	struct pk p = { .n = 0 };

	(void)state;
	u8(&p, SFTP_HANDLE);
	u32(&p, 1);
	str(&p, "abcd");
	assert_int_equal(parse(&p, p.n, &rep), 0);
	assert_int_equal(rep.handle.len, 4);
	assert_memory_equal(rep.handle.data, "abcd", 4);
	for (size_t n = 0; n < p.n; n++)
		assert_int_equal(parse(&p, n, &rep), -BCDR_ERR_PROTOCOL);
	/* empty and oversized handles */
	p.n = 0;
	u8(&p, SFTP_HANDLE);
	u32(&p, 1);
	u32(&p, 0);
	assert_int_equal(parse(&p, p.n, &rep), -BCDR_ERR_PROTOCOL);
	p.n = 0;
	u8(&p, SFTP_HANDLE);
	u32(&p, 1);
	u32(&p, SFTP_MAX_HANDLE + 1);
	memset(p.b + p.n, 'h', SFTP_MAX_HANDLE + 1);
	p.n += SFTP_MAX_HANDLE + 1;
	assert_int_equal(parse(&p, p.n, &rep), -BCDR_ERR_PROTOCOL);

	p.n = 0;
	u8(&p, SFTP_DATA);
	u32(&p, 2);
	str(&p, "0123456789");
	assert_int_equal(parse(&p, p.n, &rep), 0);
	assert_int_equal(rep.data_len, 10);
	assert_memory_equal(rep.data, "0123456789", 10);
	for (size_t n = 0; n < p.n; n++)
		assert_int_equal(parse(&p, n, &rep), -BCDR_ERR_PROTOCOL);
	/* a length that claims more than the packet holds */
	p.n = 0;
	u8(&p, SFTP_DATA);
	u32(&p, 2);
	u32(&p, 0xfffffff0);
	memcpy(p.b + p.n, "abc", 3);
	p.n += 3;
	assert_int_equal(parse(&p, p.n, &rep), -BCDR_ERR_PROTOCOL);
	/* unknown or request types */
	p.b[0] = SFTP_OPEN;
	assert_int_equal(parse(&p, p.n, &rep), -BCDR_ERR_PROTOCOL);
	p.b[0] = 250;
	assert_int_equal(parse(&p, p.n, &rep), -BCDR_ERR_PROTOCOL);
	assert_int_equal(parse(&p, 0, &rep), -BCDR_ERR_PROTOCOL);
}

static void attrs_all(struct pk *p, uint64_t size, uint32_t perms)
{
	u32(p, SFTP_ATTR_SIZE | SFTP_ATTR_UIDGID | SFTP_ATTR_PERMISSIONS | SFTP_ATTR_ACMODTIME |
		       SFTP_ATTR_EXTENDED);
	u64(p, size);
	u32(p, 1000);
	u32(p, 1001);
	u32(p, perms);
	u32(p, 111);
	u32(p, 222);
	u32(p, 1);
	str(p, "x@example.com");
	str(p, "v");
}

static void test_name_and_attrs(void **state)
{
	struct sftp_reply rep;
	struct sftp_names it;
	struct sftp_attrs a;
	struct pk p = { .n = 0 };
	const char *name;
	size_t len;

	(void)state;
	u8(&p, SFTP_NAME);
	u32(&p, 4);
	u32(&p, 2);
	str(&p, "00");
	str(&p, "drwx------ 2 u u 4096 Jan 1 00:00 00");
	attrs_all(&p, 4096, 040700);
	str(&p, "config");
	str(&p, "");
	u32(&p, SFTP_ATTR_SIZE);
	u64(&p, 149);
	assert_int_equal(parse(&p, p.n, &rep), 0);
	assert_int_equal(rep.count, 2);
	sftp_names_begin(&rep, &it);
	assert_int_equal(sftp_names_next(&it, &name, &len, &a), 1);
	assert_int_equal(len, 2);
	assert_memory_equal(name, "00", 2);
	assert_int_equal(a.perms, 040700);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.mtime, 222);
	assert_int_equal(sftp_names_next(&it, &name, &len, &a), 1);
	assert_memory_equal(name, "config", 6);
	assert_int_equal(a.flags, SFTP_ATTR_SIZE);
	assert_int_equal(a.size, 149);
	assert_int_equal(sftp_names_next(&it, &name, &len, &a), 0);
	assert_int_equal(sftp_names_next(&it, &name, &len, &a), 0);
	for (size_t n = 0; n < p.n; n++)
		assert_int_equal(parse(&p, n, &rep), -BCDR_ERR_PROTOCOL);

	/* a count far beyond what the packet can hold */
	p.n = 0;
	u8(&p, SFTP_NAME);
	u32(&p, 4);
	u32(&p, 0x7fffffff);
	str(&p, "a");
	str(&p, "");
	u32(&p, 0);
	assert_int_equal(parse(&p, p.n, &rep), -BCDR_ERR_PROTOCOL);
	/* a NUL inside a name */
	p.n = 0;
	u8(&p, SFTP_NAME);
	u32(&p, 4);
	u32(&p, 1);
	u32(&p, 3);
	memcpy(p.b + p.n, "a\0b", 3);
	p.n += 3;
	str(&p, "");
	u32(&p, 0);
	assert_int_equal(parse(&p, p.n, &rep), -BCDR_ERR_PROTOCOL);

	p.n = 0;
	u8(&p, SFTP_ATTRS);
	u32(&p, 5);
	attrs_all(&p, 1ull << 40, 0100600);
	assert_int_equal(parse(&p, p.n, &rep), 0);
	assert_int_equal(rep.attrs.size, 1ull << 40);
	assert_int_equal(rep.attrs.perms, 0100600);
	for (size_t n = 0; n < p.n; n++)
		assert_int_equal(parse(&p, n, &rep), -BCDR_ERR_PROTOCOL);
	/* an extended count that lies */
	p.n = 0;
	u8(&p, SFTP_ATTRS);
	u32(&p, 5);
	u32(&p, SFTP_ATTR_EXTENDED);
	u32(&p, 0x40000000);
	str(&p, "k");
	str(&p, "v");
	assert_int_equal(parse(&p, p.n, &rep), -BCDR_ERR_PROTOCOL);
}

/* Random packets and random mutations of valid ones: every result is a
 * clean refusal or a reply whose pointers stay inside the packet. */
static void test_garbage(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	struct pk valid = { .n = 0 };

	(void)state;
	u8(&valid, SFTP_NAME);
	u32(&valid, 4);
	u32(&valid, 1);
	str(&valid, "snap");
	str(&valid, "long");
	attrs_all(&valid, 77, 0100600);
	for (int i = 0; i < 200000; i++) {
		size_t n;
		uint8_t *b;
		struct sftp_reply rep;
		struct sftp_version v;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (i & 1) {
			n = valid.n;
			b = malloc(n);
			memcpy(b, valid.b, n);
			b[x % n] ^= (uint8_t)(x >> 16) | 1;
			if (x & 0x100000)
				n = (x >> 24) % n;
		} else {
			n = (x >> 8) % 64;
			b = malloc(n ? n : 1);
			for (size_t k = 0; k < n; k++)
				b[k] = (uint8_t)(x >> (k % 8 * 8)) ^ (uint8_t)k;
			/* make types that parse further more likely */
			if (n)
				b[0] = (uint8_t)(101 + x % 6);
		}
		if (sftp_parse_reply(b, n, &rep) == 0) {
			if (rep.type == SFTP_DATA) {
				assert_true(rep.data >= b && rep.data + rep.data_len <= b + n);
			} else if (rep.type == SFTP_NAME) {
				struct sftp_names it;
				struct sftp_attrs a;
				const char *name;
				size_t len;
				uint32_t seen = 0;

				sftp_names_begin(&rep, &it);
				while (sftp_names_next(&it, &name, &len, &a) > 0) {
					assert_true((const uint8_t *)name >= b &&
						    (const uint8_t *)name + len <= b + n);
					seen++;
				}
				assert_int_equal(seen, rep.count);
			}
		}
		sftp_parse_version(b, n, &v);
		free(b);
	}
}

/* ---- the ssh side ---- */

static void test_ssh_argv(void **state)
{
	_cleanup_strv_free_ char **v = NULL, **w = NULL;
	struct location *loc = NULL;
	char many[400] = "ssh";
	size_t n;

	(void)state;
	assert_int_equal(location_parse("sftp:backup@vault.example.com:2222:/srv/repo", &loc, NULL),
			 0);
	assert_int_equal(sftp_ssh_argv(loc, NULL, &v), 0);
	assert_string_equal(v[0], "ssh");
	for (n = 0; v[n]; n++)
		;
	assert_true(n > 8);
	assert_string_equal(v[n - 1], "sftp");
	assert_string_equal(v[n - 2], "-s");
	assert_string_equal(v[n - 3], "vault.example.com");
	assert_string_equal(v[n - 4], "backup");
	assert_string_equal(v[n - 5], "-l");
	assert_string_equal(v[n - 6], "2222");
	assert_string_equal(v[n - 7], "-p");
	assert_string_equal(v[1], "-oBatchMode=yes");

	assert_int_equal(sftp_ssh_argv(loc, "  /opt/ssh -F '/etc/my ssh/config'\t-i \"k 1\" ", &w),
			 0);
	assert_string_equal(w[0], "/opt/ssh");
	assert_string_equal(w[1], "-F");
	assert_string_equal(w[2], "/etc/my ssh/config");
	assert_string_equal(w[3], "-i");
	assert_string_equal(w[4], "k 1");
	assert_string_equal(w[5], "-oBatchMode=yes");

	char **bad = NULL;

	assert_int_equal(sftp_ssh_argv(loc, "ssh -F 'unclosed", &bad), -EINVAL);
	assert_int_equal(sftp_ssh_argv(loc, "''", &bad), -EINVAL);
	for (int i = 0; i < 70; i++)
		snprintf(many + 3 + 3 * i, sizeof(many) - 3 - 3 * i, " -v");
	assert_int_equal(sftp_ssh_argv(loc, many, &bad), -EINVAL);
	assert_null(bad);
	location_free(loc);

	/* no port, no user: neither option */
	assert_int_equal(location_parse("sftp:h:/r", &loc, NULL), 0);
	strv_free(v);
	v = NULL;
	assert_int_equal(sftp_ssh_argv(loc, "", &v), 0);
	for (n = 0; v[n]; n++) {
		assert_string_not_equal(v[n], "-p");
		assert_string_not_equal(v[n], "-l");
	}
	assert_string_equal(v[n - 3], "h");
	location_free(loc);
}

static void test_ssh_failure(void **state)
{
	(void)state;
	/* what OpenSSH 9.2 prints */
	assert_int_equal(sftp_ssh_failure("No ED25519 host key is known for [127.0.0.1]:2222 and "
					  "you have requested strict checking.\r\nHost key "
					  "verification failed.\r\n"),
			 -EKEYREJECTED);
	assert_int_equal(sftp_ssh_failure("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@"),
			 -EKEYREJECTED);
	assert_int_equal(sftp_ssh_failure("root@127.0.0.1: Permission denied (publickey).\r\n"),
			 -EACCES);
	assert_int_equal(sftp_ssh_failure("ssh: connect to host 127.0.0.1 port 1: Connection "
					  "refused\r\n"),
			 -ECONNREFUSED);
	assert_int_equal(sftp_ssh_failure("ssh: Could not resolve hostname nope: Name or service "
					  "not known\r\n"),
			 -EHOSTUNREACH);
	assert_int_equal(sftp_ssh_failure("ssh: connect to host 10.1.1.1 port 22: Connection timed "
					  "out\r\n"),
			 -ETIMEDOUT);
	assert_int_equal(sftp_ssh_failure("subsystem request failed on channel 0\r\n"),
			 -EPROTONOSUPPORT);
	assert_int_equal(sftp_ssh_failure("Connection closed by 127.0.0.1 port 2222\r\n"), 0);
	assert_int_equal(sftp_ssh_failure(""), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),      cmocka_unit_test(test_packet_length),
		cmocka_unit_test(test_version),       cmocka_unit_test(test_status),
		cmocka_unit_test(test_handle_and_data), cmocka_unit_test(test_name_and_attrs),
		cmocka_unit_test(test_garbage),       cmocka_unit_test(test_ssh_argv),
		cmocka_unit_test(test_ssh_failure),
	};

	int r = cmocka_run_group_tests(tests, NULL, NULL);

	free(last_copy);
	return r;
}
