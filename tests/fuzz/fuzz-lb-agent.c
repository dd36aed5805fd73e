/* The agent-check reply parser (bytes from a backend's agent) and the
 * control-socket request parser against arbitrary bytes: an error or a
 * result, never a crash or an out-of-bounds read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lb/control.h"
#include "lb/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lb_agent_report rep;
	struct lb_control_request req;
	const char *error = NULL;
	char *copy = malloc(size + 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = 0;
	if (lb_agent_parse(copy, size, &rep) == 0 &&
	    (rep.percent > 100 || rep.state > LB_REPORT_DOWN || rep.maxconn > 10000000))
		abort();
	if (lb_control_parse(copy, size, &req, &error) == 0 &&
	    (req.weight > 1000 || !memchr(req.balancer, 0, sizeof(req.balancer))))
		abort();
	free(copy);
	return 0;
}
