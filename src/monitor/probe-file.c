/* file: exists, size or age, permissions, and whether the contents changed
 * (SHA-256, recomputed only when size, inode, mtime or ctime moved, as git's
 * index does: ctime cannot be set back by a user). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/cleanup.h"
#include "lib/sha256.h"
#include "monitor/probes.h"

#define HASH_BLOCK (256u * 1024)

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* SHA-256 of path, giving up at the deadline (-ETIMEDOUT). */
static int hash_file(const char *path, usec_t deadline, unsigned char out[32])
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	_cleanup_free_ unsigned char *block = NULL;
	struct sha256 md;

	if (fd < 0)
		return -errno;
	block = malloc(HASH_BLOCK);
	if (!block)
		return -ENOMEM;
	sha256_init(&md);
	for (;;) {
		ssize_t n = fs_read(fd, block, HASH_BLOCK);

		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		sha256_update(&md, block, (size_t)n);
		if (!probe_remaining(deadline))
			return -ETIMEDOUT;
	}
	sha256_final(&md, out);
	return 0;
}

int probe_file(const struct check_def *def, struct probe_state *ps, usec_t deadline,
	       struct probe_result *res)
{
	const char *path = def->probe.file.path;
	struct stat st;
	char size_s[32], age_s[32];
	usec_t now = now_realtime(), mtime;
	double age;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			probe_fail(res, CHECK_CRITICAL, "'%s' does not exist", path);
		else
			probe_fail(res, CHECK_CRITICAL, "cannot stat '%s': %s", path, strerror(errno));
		ps->have_sum = false;
		return 0;
	}
	mtime = (usec_t)st.st_mtim.tv_sec * USEC_PER_SEC + (usec_t)st.st_mtim.tv_nsec / 1000;
	age = now > mtime ? (double)(now - mtime) / (double)USEC_PER_SEC : 0;
	if (def->probe.file.measure == FILE_AGE)
		probe_set_value(res, age, "s");
	else
		probe_set_value(res, (double)st.st_size, "bytes");
	probe_message(res, "'%s': %s, modified %s ago", path,
		      size_format((uint64_t)st.st_size, size_s, sizeof(size_s)),
		      duration_format((usec_t)(age * (double)USEC_PER_SEC), age_s, sizeof(age_s)));

	if (def->probe.file.mode >= 0 && (int64_t)(st.st_mode & 07777) != def->probe.file.mode) {
		probe_fail(res, CHECK_CRITICAL, "'%s' has mode %04o, expected %04o", path,
			   (unsigned)(st.st_mode & 07777), (unsigned)def->probe.file.mode);
		return 0;
	}
	if (def->probe.file.checksum) {
		unsigned char sum[32];
		int r;

		if (!S_ISREG(st.st_mode)) {
			probe_fail(res, CHECK_UNKNOWN, "'%s' is not a regular file: no checksum", path);
			return 0;
		}
		if (ps->have_sum && ps->sum_size == (uint64_t)st.st_size &&
		    ps->sum_ino == (uint64_t)st.st_ino && ps->sum_mtime_ns == ts_ns(&st.st_mtim) &&
		    ps->sum_ctime_ns == ts_ns(&st.st_ctim))
			return 0;
		r = hash_file(path, deadline, sum);
		if (r < 0) {
			probe_fail(res, CHECK_UNKNOWN, "cannot checksum '%s': %s", path,
				   r == -ETIMEDOUT ? "timed out" : strerror(-r));
			return 0;
		}
		if (ps->have_sum && memcmp(ps->sum, sum, sizeof(sum)) != 0) {
			res->changed = true;
			probe_message(res, "'%s': the contents changed (%s, modified %s ago)", path,
				      size_s, age_s);
		}
		memcpy(ps->sum, sum, sizeof(sum));
		ps->have_sum = true;
		ps->sum_size = (uint64_t)st.st_size;
		ps->sum_ino = (uint64_t)st.st_ino;
		ps->sum_mtime_ns = ts_ns(&st.st_mtim);
		ps->sum_ctime_ns = ts_ns(&st.st_ctim);
	}
	return 0;
}
