/* What remote stores send back: S3's XML (listings, errors), REST
 * listings, and the AWS credentials file. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/backend-rest.h"
#include "repo/s3-xml.h"

static int ignore(const char *name, uint64_t size, void *userdata)
{
	(void)name;
	(void)size;
	(void)userdata;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_list_page page;
	char code[64], msg[256], id[128], sk[128], tok[1024];
	bool v1;

	s3_list_parse((const char *)data, size, &page, ignore, NULL);
	s3_error_parse((const char *)data, size, code, sizeof(code), msg, sizeof(msg));
	s3_credentials_parse((const char *)data, size, "default", id, sizeof(id), sk, sizeof(sk),
			     tok, sizeof(tok));
	rest_list_parse(data, size, ignore, NULL, &v1);
	return 0;
}
