/* The snapshot tree stream decoder against arbitrary bytes, whole and fed
 * in pieces (as tree blobs arrive): both must agree, on the nodes kept and
 * on the ones refused. What it keeps obeys the rules of a tree (valid paths,
 * parents first, no child under a non-directory, hard links to earlier
 * files), and encoding it again decodes to the same tree with nothing
 * refused. A merge-only reader (a backup's parent) of the same bytes keeps
 * every node of a valid path, the decoder's among them, in their order.
 * A rewindable reader (the walk order's rules, falling back to the set)
 * accepts and refuses the very nodes the decoder (the set alone) does, with
 * the same reasons. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo/tree_reader.h"

/* The stream in pieces of a size taken from its first byte. */
static int decode_in_pieces(const uint8_t *data, size_t size, struct tree **ret)
{
	struct tree_decoder d;
	size_t piece = size ? 1 + data[0] % 64 : 1;
	int r = tree_decoder_init(&d);

	for (size_t off = 0; r >= 0 && off < size; off += piece)
		r = tree_decoder_feed(&d, data + off, size - off < piece ? size - off : piece);
	if (r >= 0)
		r = tree_decoder_finish(&d, ret);
	tree_decoder_release(&d);
	return r;
}

/* The earlier node of path p[0, len), or NULL. */
static const struct node *earlier(const struct tree *t, size_t before, const char *p, size_t len)
{
	for (size_t i = 0; i < before; i++)
		if (strncmp(t->nodes[i].path, p, len) == 0 && t->nodes[i].path[len] == 0)
			return &t->nodes[i];
	return NULL;
}

static void check_rules(const struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct node *n = &t->nodes[i], *q;
		const char *slash = strrchr(n->path, '/');

		if (tree_path_invalid(n->path) || earlier(t, i, n->path, strlen(n->path)))
			abort();
		if (slash) {
			q = earlier(t, i, n->path, (size_t)(slash - n->path));
			if (!q || q->type != NODE_DIR)
				abort();
		}
		if (n->type == NODE_HARDLINK) {
			if (tree_path_invalid(n->link))
				abort();
			q = earlier(t, i, n->link, strlen(n->link));
			if (!q || (q->type != NODE_FILE && q->type != NODE_ERROR))
				abort();
		}
	}
	if (t->nrefused_kept > TREE_MAX_REFUSALS || t->nrefused < t->nrefused_kept)
		abort();
}

/* The merge-only reader over data, checked against t (the decoder's). */
static void check_merge_only(const uint8_t *data, size_t size, const struct tree *t)
{
	struct tree_reader r;
	struct node *n;
	size_t k = 0;
	int got;

	if (tree_reader_init(&r, NULL, NULL) < 0)
		abort();
	tree_reader_merge_only(&r);
	if (tree_reader_feed(&r, data, size) < 0)
		abort();
	tree_reader_end(&r);
	while ((got = tree_reader_next(&r, &n)) == 1) {
		if (tree_path_invalid(n->path) || r.set.slots)
			abort();
		if (k < t->n && strcmp(n->path, t->nodes[k].path) == 0)
			k++;
	}
	if (got < 0 || k != t->n)
		abort(); /* the decoder took these bytes whole */
	tree_reader_release(&r);
}

struct source {
	const uint8_t *data;
	size_t size, off, piece;
};

static int fill(void *userdata, struct tree_reader *r)
{
	struct source *s = userdata;
	size_t k = s->size - s->off < s->piece ? s->size - s->off : s->piece;

	if (!k) {
		tree_reader_end(r);
		return 0;
	}
	s->off += k;
	return tree_reader_feed(r, s->data + s->off - k, k);
}

static int rewind_source(void *userdata)
{
	((struct source *)userdata)->off = 0;
	return 0;
}

/* The rewindable reader over data, checked against t (the decoder's). */
static void check_ordered(const uint8_t *data, size_t size, const struct tree *t)
{
	struct source s = { .data = data, .size = size, .piece = size > 1 ? 1 + data[1] % 97 : 1 };
	struct tree_reader r;
	struct node *n;
	size_t k = 0;
	int got;

	if (tree_reader_init(&r, fill, &s) < 0)
		abort();
	tree_reader_rewindable(&r, rewind_source);
	while ((got = tree_reader_next(&r, &n)) == 1)
		if (k >= t->n || strcmp(n->path, t->nodes[k++].path) != 0)
			abort();
	if (got < 0 || k != t->n || r.refused->nrefused != t->nrefused ||
	    r.refused->nrefused_kept != t->nrefused_kept)
		abort();
	for (size_t i = 0; i < t->nrefused_kept; i++)
		if (strcmp(r.refused->refused[i].path, t->refused[i].path) != 0 ||
		    strcmp(r.refused->refused[i].why, t->refused[i].why) != 0)
			abort();
	tree_reader_release(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tree *t = NULL, *t2 = NULL, *t3 = NULL;
	int r = tree_decode(data, size, &t), r2 = decode_in_pieces(data, size, &t2);

	if ((r >= 0) != (r2 >= 0))
		abort();
	if (r >= 0) {
		uint8_t *again = NULL;
		size_t len;

		if (t->n != t2->n || t->nrefused != t2->nrefused)
			abort();
		for (size_t i = 0; i < t->n; i++)
			if (strcmp(t->nodes[i].path, t2->nodes[i].path) != 0)
				abort();
		check_rules(t);
		check_merge_only(data, size, t);
		check_ordered(data, size, t);
		/* What decodes, encodes, and decodes again with nothing refused. */
		if (tree_encode(t, &again, &len) >= 0) {
			if (tree_decode(again, len, &t3) < 0 || t3->n != t->n || t3->nrefused)
				abort();
			tree_free(t3);
			free(again);
		}
		tree_free(t);
		tree_free(t2);
	}
	return 0;
}
