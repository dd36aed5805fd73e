/* The /proc parsers on saved samples of the kernel's text, and on garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "lib/procfs.h"

static const char stat_sample[] =
	"cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0\n"
	"cpu0 1393280 32966 572056 13366730 2924 0 11732 0 21740 0\n"
	"intr 1462898 32 0 0 0\n"
	"ctxt 2352331\n";

static void test_stat(void **state)
{
	struct procfs_cpu cpu;

	(void)state;
	assert_int_equal(procfs_parse_stat(stat_sample, &cpu), 0);
	assert_int_equal(cpu.total, 10132153ULL + 290696 + 3084719 + 46828483 + 16683 + 0 + 25195 + 0);
	assert_int_equal(cpu.idle, 46828483ULL + 16683);
	/* An old kernel with four columns. */
	assert_int_equal(procfs_parse_stat("cpu  1 2 3 4\n", &cpu), 0);
	assert_int_equal(cpu.total, 10);
	assert_int_equal(cpu.idle, 4);
	assert_int_equal(procfs_parse_stat("cpu0 1 2 3 4\n", &cpu), -BCDR_ERR_NOT_FOUND);
	assert_int_equal(procfs_parse_stat("cpu  1 2 x\n", &cpu), -BCDR_ERR_PROTOCOL);
	assert_int_equal(procfs_parse_stat("cpu  99999999999999999999999 1 1 1\n", &cpu),
			 -BCDR_ERR_PROTOCOL);
	assert_int_equal(procfs_parse_stat("", &cpu), -BCDR_ERR_NOT_FOUND);
}

static void test_loadavg(void **state)
{
	double l[3];

	(void)state;
	assert_int_equal(procfs_parse_loadavg("0.52 1.07 12.50 2/345 6789\n", l), 0);
	assert_true(l[0] == 0.52 && l[1] == 1.07 && l[2] == 12.5);
	assert_int_equal(procfs_parse_loadavg("0.52 1.07\n", l), -BCDR_ERR_PROTOCOL);
	assert_int_equal(procfs_parse_loadavg("inf nan 1\n", l), -BCDR_ERR_PROTOCOL);
	assert_int_equal(procfs_parse_loadavg("-1 1 1\n", l), -BCDR_ERR_PROTOCOL);
}

static const char meminfo_sample[] =
	"MemTotal:       16318092 kB\n"
	"MemFree:         1024000 kB\n"
	"MemAvailable:    8159046 kB\n"
	"Buffers:          200000 kB\n"
	"Cached:          3000000 kB\n"
	"SwapCached:            0 kB\n"
	"SwapTotal:       2097148 kB\n"
	"SwapFree:        1048574 kB\n";

static void test_meminfo(void **state)
{
	struct procfs_mem m;

	(void)state;
	assert_int_equal(procfs_parse_meminfo(meminfo_sample, &m), 0);
	assert_int_equal(m.total, 16318092ULL * 1024);
	assert_int_equal(m.available, 8159046ULL * 1024);
	assert_int_equal(m.swap_total, 2097148ULL * 1024);
	assert_int_equal(m.swap_free, 1048574ULL * 1024);
	/* SwapCached must not be read as SwapTotal... and without
	 * MemAvailable: free + buffers + cached. */
	assert_int_equal(procfs_parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\n"
					      "Buffers: 10 kB\nCached: 1 kB\n", &m), 0);
	assert_int_equal(m.available, 111 * 1024);
	assert_int_equal(m.swap_total, 0);
	assert_int_equal(procfs_parse_meminfo("MemFree: 1 kB\n", &m), -BCDR_ERR_NOT_FOUND);
	assert_int_equal(procfs_parse_meminfo("MemTotal: lots\n", &m), -BCDR_ERR_PROTOCOL);
	/* Available above total (a racy read) is capped. */
	assert_int_equal(procfs_parse_meminfo("MemTotal: 10 kB\nMemAvailable: 20 kB\n", &m), 0);
	assert_int_equal(m.available, m.total);
}

static const char net_sample[] =
	"Inter-|   Receive                                                |  Transmit\n"
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	"    lo: 1849340   17834    0    0    0     0          0         0  1849340   17834    0    0    0     0       0          0\n"
	"  eth0:123456789 99999    0    0    0     0          0         0 987654321   88888    0    0    0     0       0          0\n"
	"eth0.1: 5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n";

static void test_net_dev(void **state)
{
	uint64_t rx, tx;

	(void)state;
	assert_int_equal(procfs_parse_net_dev(net_sample, "eth0", &rx, &tx), 0);
	assert_int_equal(rx, 123456789);
	assert_int_equal(tx, 987654321);
	assert_int_equal(procfs_parse_net_dev(net_sample, "eth0.1", &rx, &tx), 0);
	assert_int_equal(rx, 5);
	assert_int_equal(tx, 7);
	assert_int_equal(procfs_parse_net_dev(net_sample, "lo", &rx, &tx), 0);
	assert_int_equal(rx, 1849340);
	assert_int_equal(procfs_parse_net_dev(net_sample, "eth", &rx, &tx), -BCDR_ERR_NOT_FOUND);
	assert_int_equal(procfs_parse_net_dev("x: 1 2 3\n", "x", &rx, &tx), -BCDR_ERR_PROTOCOL);
}

static const char disk_sample[] =
	"   8       0 sda 51234 1200 4096000 30000 20000 5000 2048000 40000 0 61000 70000 0 0 0 0\n"
	"   8       1 sda1 100 0 800 10 0 0 0 0 0 12 10\n"
	" 259       0 nvme0n1 7 0 56 1 9 0 72 2 0 3 3\n";

static void test_diskstats(void **state)
{
	struct procfs_disk d;

	(void)state;
	assert_int_equal(procfs_parse_diskstats(disk_sample, "sda", &d), 0);
	assert_int_equal(d.sectors_read, 4096000);
	assert_int_equal(d.sectors_written, 2048000);
	assert_int_equal(d.io_ms, 61000);
	assert_int_equal(procfs_parse_diskstats(disk_sample, "sda1", &d), 0);
	assert_int_equal(d.io_ms, 12);
	assert_int_equal(procfs_parse_diskstats(disk_sample, "nvme0n1", &d), 0);
	assert_int_equal(d.sectors_written, 72);
	assert_int_equal(procfs_parse_diskstats(disk_sample, "sdb", &d), -BCDR_ERR_NOT_FOUND);
	assert_int_equal(procfs_parse_diskstats("8 0 sdb 1 2\n", "sdb", &d), -BCDR_ERR_PROTOCOL);
}

static void test_pid_stat(void **state)
{
	struct procfs_pid p;
	/* A comm with spaces and a ')' in it. */
	static const char sample[] =
		"4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1234 0 5 0 "
		"150 75 0 0 20 0 3 0 987654 123456789 2048 18446744073709551615\n";

	(void)state;
	assert_int_equal(procfs_parse_pid_stat(sample, &p), 0);
	assert_int_equal(p.ppid, 1);
	assert_int_equal(p.state, 'S');
	assert_int_equal(p.utime, 150);
	assert_int_equal(p.stime, 75);
	assert_int_equal(p.starttime, 987654);
	assert_int_equal(p.rss_pages, 2048);
	assert_int_equal(procfs_parse_pid_stat("4242 (x) S 1 2\n", &p), -BCDR_ERR_PROTOCOL);
	assert_int_equal(procfs_parse_pid_stat("4242 x S 1\n", &p), -BCDR_ERR_PROTOCOL);
	assert_int_equal(procfs_parse_pid_stat("", &p), -BCDR_ERR_PROTOCOL);
}

static void test_uptime(void **state)
{
	double u;

	(void)state;
	assert_int_equal(procfs_parse_uptime("12345.67 54321.00\n", &u), 0);
	assert_true(u > 12345.6 && u < 12345.7);
	assert_int_equal(procfs_parse_uptime("x\n", &u), -BCDR_ERR_PROTOCOL);
}

/* Random bytes: the parsers return, never read past the NUL. */
static void test_garbage(void **state)
{
	char buf[512];
	struct procfs_cpu cpu;
	struct procfs_mem m;
	struct procfs_disk d;
	struct procfs_pid p;
	double l[3];
	uint64_t a, b;
	unsigned seed = 1;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(rand_r(&seed) % (sizeof(buf) - 1));

		for (size_t i = 0; i < n; i++) {
			static const char alphabet[] = "0123456789 \n:()-.cpuMemTotalSwaplo sda kB";
			buf[i] = rand_r(&seed) % 4 ? alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)]
						   : (char)(rand_r(&seed) % 255 + 1);
		}
		buf[n] = '\0';
		procfs_parse_stat(buf, &cpu);
		procfs_parse_meminfo(buf, &m);
		procfs_parse_diskstats(buf, "sda", &d);
		procfs_parse_net_dev(buf, "lo", &a, &b);
		procfs_parse_pid_stat(buf, &p);
		procfs_parse_loadavg(buf, l);
		procfs_parse_uptime(buf, l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stat),
		cmocka_unit_test(test_loadavg),
		cmocka_unit_test(test_meminfo),
		cmocka_unit_test(test_net_dev),
		cmocka_unit_test(test_diskstats),
		cmocka_unit_test(test_pid_stat),
		cmocka_unit_test(test_uptime),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
