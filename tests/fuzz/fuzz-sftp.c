/* What an sftp server sends: a stream of packets (uint32 length, then
 * the packet), the first one read as VERSION and every one as a reply,
 * as the sftp backend reads them; and ssh's stderr, as it judges it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/backend-sftp.h"
#include "repo/sftp-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;
	char *text;

	while (size - pos >= 4) {
		struct sftp_version v;
		struct sftp_reply rep;
		uint32_t n;
		uint8_t *pkt;

		if (sftp_packet_length(data + pos, &n) < 0 || n > size - pos - 4)
			break;
		pos += 4;
		/* a block of its own size: a read past it is a crash */
		pkt = malloc(n);
		if (!pkt)
			break;
		memcpy(pkt, data + pos, n);
		pos += n;
		sftp_parse_version(pkt, n, &v);
		if (sftp_parse_reply(pkt, n, &rep) == 0 && rep.type == SFTP_NAME) {
			struct sftp_names it;
			struct sftp_attrs a;
			const char *name;
			size_t len;
			uint32_t seen = 0;

			sftp_names_begin(&rep, &it);
			while (sftp_names_next(&it, &name, &len, &a) > 0)
				seen++;
			if (seen != rep.count)
				abort(); /* parse checked every entry */
		}
		free(pkt);
	}
	text = malloc(size + 1);
	if (text) {
		memcpy(text, data, size);
		text[size] = 0;
		sftp_ssh_failure(text);
		free(text);
	}
	return 0;
}
