/* The HTTP response parser (and the URL parser) against arbitrary bytes:
 * never a crash or a read past the end, and the same outcome whether the
 * bytes come at once or in pieces (sizes taken from the input's first
 * byte), as they do from a socket. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/http-client.h"
#include "lib/http-response.h"

struct outcome {
	int r;
	int status;
	bool close;
	size_t used;
	struct buf body;
};

static int collect(void *userdata, const char *data, size_t len)
{
	return buf_append(userdata, data, len);
}

static void parse(const uint8_t *data, size_t len, size_t step, bool head, struct outcome *o)
{
	struct http_response_parser p;
	size_t at = 0;

	memset(o, 0, sizeof(*o));
	buf_init(&o->body, 1 << 20);
	http_response_parser_init(&p, head, 4096, collect, &o->body);
	do {
		size_t n = step && len - at > step ? step : len - at, used = 0;

		o->r = http_response_parser_feed(&p, (const char *)data + at, n, &used);
		if (o->r == 0 && used != n)
			abort(); /* needing more, it takes everything */
		if (o->r >= 0)
			at += used;
	} while (o->r == 0 && at < len);
	if (o->r == 0)
		o->r = http_response_parser_eof(&p);
	if (o->r < 0 && !p.error)
		abort(); /* every failure says why */
	o->status = p.status;
	o->close = p.close;
	o->used = at;
	http_response_parser_release(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, pieces;
	struct http_url url;
	size_t step;
	bool head;
	char *text;

	if (size < 1)
		return 0;
	step = (data[0] & 0x3f) + 1;
	head = data[0] & 0x40;
	data++;
	size--;
	parse(data, size, 0, head, &whole);
	parse(data, size, step, head, &pieces);
	if (whole.r != pieces.r || whole.status != pieces.status || whole.close != pieces.close)
		abort();
	if (whole.r >= 0 && (whole.used != pieces.used || whole.body.len != pieces.body.len ||
			     (whole.body.len && memcmp(whole.body.data, pieces.body.data,
						       whole.body.len) != 0)))
		abort();
	if (whole.body.len > 4096)
		abort(); /* the limit holds */
	buf_release(&whole.body);
	buf_release(&pieces.body);

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (http_url_parse(text, &url) == 0 &&
	    (strlen(url.host) >= sizeof(url.host) || url.path + url.path_len > text + size))
		abort();
	free(text);
	return 0;
}
