/* The /proc parsers against arbitrary text: they must return an error or a
 * value, never crash or read past the end. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/procfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct procfs_cpu cpu;
	struct procfs_mem mem;
	struct procfs_disk disk;
	struct procfs_pid pid;
	double load[3], up;
	uint64_t rx, tx;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	procfs_parse_stat(text, &cpu);
	procfs_parse_loadavg(text, load);
	procfs_parse_uptime(text, &up);
	procfs_parse_meminfo(text, &mem);
	procfs_parse_net_dev(text, "eth0", &rx, &tx);
	procfs_parse_diskstats(text, "sda", &disk);
	procfs_parse_pid_stat(text, &pid);
	free(text);
	return 0;
}
