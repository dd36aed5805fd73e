/* lib/net: connects and waits bounded by a deadline and a cancel flag, on
 * real loopback sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include "lib/net.h"

static int listener(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	*sin = (struct sockaddr_in){ .sin_family = AF_INET,
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	return fd;
}

static void test_connect(void **state)
{
	struct sockaddr_in sin;
	int l = listener(&sin), fd = -1, peer;
	usec_t deadline = now_monotonic() + 5 * USEC_PER_SEC;
	char c;

	(void)state;
	assert_int_equal(net_connect((struct sockaddr *)&sin, sizeof(sin), true, deadline, NULL,
				     &fd), 0);
	assert_true(fd >= 0);
	peer = accept(l, NULL, NULL);
	assert_true(peer >= 0);
	/* Nothing to read yet: the wait ends at its deadline. */
	assert_int_equal(net_wait_fd(fd, POLLIN, now_monotonic() + 20 * USEC_PER_MSEC, NULL),
			 -ETIMEDOUT);
	assert_int_equal(write(peer, "x", 1), 1);
	assert_int_equal(net_wait_fd(fd, POLLIN, deadline, NULL), 0);
	assert_int_equal(read(fd, &c, 1), 1);
	close(peer);
	close(fd);
	/* Nobody listens any more: refused. */
	close(l);
	fd = -1;
	assert_int_equal(net_connect((struct sockaddr *)&sin, sizeof(sin), false, deadline, NULL,
				     &fd), -ECONNREFUSED);
	assert_int_equal(fd, -1);
}

static void test_deadline_and_cancel(void **state)
{
	struct sockaddr_in sin;
	int l = listener(&sin), fd = -1;
	bool cancel = true;
	usec_t t0 = now_monotonic();

	(void)state;
	assert_int_equal(net_connect((struct sockaddr *)&sin, sizeof(sin), false,
				     now_monotonic() + 5 * USEC_PER_SEC, NULL, &fd), 0);
	/* A deadline in the past, and a cancel flag already set, end at once. */
	assert_int_equal(net_wait_fd(fd, POLLIN, t0, NULL), -ETIMEDOUT);
	assert_int_equal(net_wait_fd(fd, POLLIN, t0 + 60 * USEC_PER_SEC, &cancel), -ECANCELED);
	/* Writable at once: the deadline does not matter. */
	assert_int_equal(net_wait_fd(fd, POLLOUT, t0 + 60 * USEC_PER_SEC, NULL), 0);
	close(fd);
	close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_deadline_and_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
