/* What an sftp server answers to a stream's pipelined READs (sftp_stream(),
 * the restore's and check's read of a pack): the input's first 4 bytes
 * give the stream's length (at most 4 MiB), the rest is what the server
 * sends, read as replies to READ ids 0, 1, 2, ... Whatever it sends, the
 * bytes delivered are never more than asked, each delivery is one slot's
 * worth at most, and a stream that succeeds delivered exactly its length. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "repo/sftp-request.h"
#include "repo/sftp-session.h"

struct tally {
	uint64_t got, len;
};

static int on_bytes(const uint8_t *data, size_t len, void *ctx)
{
	struct tally *t = ctx;

	(void)data;
	if (len == 0 || len > SFTP_CHUNK || len > t->len - t->got)
		abort();
	t->got += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sftp s = { .stall = 1000 };
	struct conn c = { .err = -1 };
	struct sftp_handle h = { .len = 4, .data = "abcd" };
	struct tally t = { 0 };
	uint64_t delivered = 0;
	int fd, r;

	if (size < 4)
		return 0;
	t.len = (((uint64_t)data[0] << 24 | (uint64_t)data[1] << 16 | (uint64_t)data[2] << 8 |
		  data[3]) % (4u << 20)) + 1;
	/* the server's bytes, then EOF: the connection ends */
	fd = memfd_create("replies", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data + 4, size - 4) != (ssize_t)(size - 4) || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return 0;
	}
	buf_init(&c.out, SFTP_WINDOW * (SFTP_CHUNK + 1024) + SFTP_MAX_PACKET);
	c.from = fd;
	c.to = open("/dev/null", O_WRONLY | O_CLOEXEC);
	c.rbuf = malloc(READ_BUF);
	c.pkt = malloc(SFTP_MAX_PACKET);
	if (c.to >= 0 && c.rbuf && c.pkt) {
		r = sftp_stream(&s, &c, &h, 12345, t.len, on_bytes, &t, &delivered);
		if (delivered != t.got || (r == 0 && t.got != t.len))
			abort();
	}
	free(c.rbuf);
	free(c.pkt);
	buf_release(&c.out);
	if (c.to >= 0)
		close(c.to);
	close(fd);
	return 0;
}
