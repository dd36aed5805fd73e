#include "lib/conf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"

void conf_ctx_release(struct conf_ctx *ctx)
{
	free(ctx->error);
	ctx->error = NULL;
}

static int conf_verrorf(struct conf_ctx *ctx, unsigned line, unsigned col, const char *fmt,
			va_list ap)
{
	struct buf b;

	if (ctx->error)
		return -BCDR_ERR_CONFIG;
	buf_init(&b, 4096);
	if (line)
		buf_printf(&b, "%s:%u:%u: ", ctx->file ? ctx->file : "<plan>", line, col);
	else
		buf_printf(&b, "%s: ", ctx->file ? ctx->file : "<plan>");
	buf_vprintf(&b, fmt, ap);
	ctx->error = buf_steal(&b, NULL);
	return -BCDR_ERR_CONFIG;
}

int conf_errorf(struct conf_ctx *ctx, const struct conf_node *at, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = conf_verrorf(ctx, at ? at->line : 0, at ? at->col : 0, fmt, ap);
	va_end(ap);
	return r;
}

static int conf_errorf_at(struct conf_ctx *ctx, const yaml_mark_t *mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int conf_errorf_at(struct conf_ctx *ctx, const yaml_mark_t *mark, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = conf_verrorf(ctx, (unsigned)mark->line + 1, (unsigned)mark->column + 1, fmt, ap);
	va_end(ap);
	return r;
}

static void node_free(struct conf_node *n)
{
	if (!n)
		return;
	free(n->value);
	for (size_t i = 0; n->type == CONF_NODE_MAP && i < n->n; i++) {
		node_free(n->pairs[i].key);
		node_free(n->pairs[i].value);
	}
	for (size_t i = 0; n->type == CONF_NODE_SEQ && i < n->n; i++)
		node_free(n->items[i]);
	free(n->pairs);
	free(n->items);
	free(n);
}

void conf_doc_free(struct conf_doc *doc)
{
	if (!doc)
		return;
	node_free(doc->root);
	free(doc->file);
	free(doc);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct conf_node *, node_free)

struct loader {
	struct conf_ctx *ctx;
	yaml_parser_t parser;
	size_t nodes;
};

static int next_event(struct loader *l, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&l->parser, ev)) {
		yaml_mark_t mark = l->parser.problem_mark;

		return conf_errorf_at(l->ctx, &mark, "invalid YAML: %s",
				      l->parser.problem ? l->parser.problem : "syntax error");
	}
	return 0;
}

static struct conf_node *node_new(struct loader *l, enum conf_type type, const yaml_mark_t *mark)
{
	struct conf_node *n;

	if (++l->nodes > CONF_MAX_NODES) {
		conf_errorf_at(l->ctx, mark, "plan too large: more than %u YAML nodes",
			       CONF_MAX_NODES);
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		conf_errorf_at(l->ctx, mark, "out of memory");
		return NULL;
	}
	n->type = type;
	n->line = (unsigned)mark->line + 1;
	n->col = (unsigned)mark->column + 1;
	return n;
}

static int grow(void **array, size_t n, size_t elem)
{
	void *p;

	/* Grow at powers of two. */
	if (n & (n - 1))
		return 0;
	p = realloc(*array, (n ? n * 2 : 4) * elem);
	if (!p)
		return -ENOMEM;
	*array = p;
	return 0;
}

static int load_node(struct loader *l, yaml_event_t *ev, unsigned depth, struct conf_node **ret);

/* Loads the contents of a map or sequence whose start event was consumed. */
static int load_children(struct loader *l, struct conf_node *n, unsigned depth)
{
	for (;;) {
		yaml_event_t ev;
		struct conf_node *child = NULL;
		int r = next_event(l, &ev);

		if (r < 0)
			return r;
		if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		r = load_node(l, &ev, depth + 1, &child);
		yaml_event_delete(&ev);
		if (r < 0)
			return r;
		if (n->type == CONF_NODE_SEQ) {
			if (grow((void **)&n->items, n->n, sizeof(*n->items)) < 0) {
				node_free(child);
				return conf_errorf(l->ctx, n, "out of memory");
			}
			n->items[n->n++] = child;
			continue;
		}
		/* A map: child is the key, the next node its value. */
		if (child->type != CONF_NODE_SCALAR) {
			r = conf_errorf(l->ctx, child, "map keys must be plain words");
			node_free(child);
			return r;
		}
		for (size_t i = 0; i < n->n; i++)
			if (strcmp(n->pairs[i].key->value, child->value) == 0) {
				r = conf_errorf(l->ctx, child, "duplicate key '%s' (first at line %u)",
						child->value, n->pairs[i].key->line);
				node_free(child);
				return r;
			}
		if (grow((void **)&n->pairs, n->n, sizeof(*n->pairs)) < 0) {
			node_free(child);
			return conf_errorf(l->ctx, n, "out of memory");
		}
		n->pairs[n->n].key = child;
		n->pairs[n->n].value = NULL;
		n->n++;
		r = next_event(l, &ev);
		if (r < 0)
			return r;
		r = load_node(l, &ev, depth + 1, &n->pairs[n->n - 1].value);
		yaml_event_delete(&ev);
		if (r < 0)
			return r;
	}
}

static int load_node(struct loader *l, yaml_event_t *ev, unsigned depth, struct conf_node **ret)
{
	_cleanup_(node_freep) struct conf_node *n = NULL;
	int r;

	if (depth > CONF_MAX_DEPTH)
		return conf_errorf_at(l->ctx, &ev->start_mark, "plan nested deeper than %u levels",
				      CONF_MAX_DEPTH);
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return conf_errorf_at(l->ctx, &ev->start_mark,
				      "YAML aliases are not supported in a plan; write the value out");
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor)
			return conf_errorf_at(l->ctx, &ev->start_mark,
					      "YAML anchors are not supported in a plan");
		n = node_new(l, CONF_NODE_SCALAR, &ev->start_mark);
		if (!n)
			return -BCDR_ERR_CONFIG;
		if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
			return conf_errorf(l->ctx, n, "NUL byte in a value");
		n->value = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
		if (!n->value)
			return conf_errorf(l->ctx, n, "out of memory");
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		const yaml_char_t *anchor = ev->type == YAML_SEQUENCE_START_EVENT
						    ? ev->data.sequence_start.anchor
						    : ev->data.mapping_start.anchor;

		if (anchor)
			return conf_errorf_at(l->ctx, &ev->start_mark,
					      "YAML anchors are not supported in a plan");
		n = node_new(l, ev->type == YAML_SEQUENCE_START_EVENT ? CONF_NODE_SEQ : CONF_NODE_MAP,
			     &ev->start_mark);
		if (!n)
			return -BCDR_ERR_CONFIG;
		r = load_children(l, n, depth);
		if (r < 0)
			return r;
		break;
	}
	default:
		return conf_errorf_at(l->ctx, &ev->start_mark, "unexpected YAML structure");
	}
	*ret = TAKE_PTR(n);
	return 0;
}

int conf_doc_parse(struct conf_ctx *ctx, const char *file, const char *text, size_t len,
		   struct conf_doc **ret)
{
	struct loader l = { .ctx = ctx };
	_cleanup_(conf_doc_freep) struct conf_doc *doc = NULL;
	yaml_event_t ev;
	int r = 0, done = 0;

	if (!ctx->file)
		ctx->file = file;
	if (len > CONF_MAX_BYTES)
		return conf_errorf(ctx, NULL, "plan larger than %u bytes", CONF_MAX_BYTES);
	doc = calloc(1, sizeof(*doc));
	if (!doc || !(doc->file = strdup(file ? file : "<plan>")))
		return -ENOMEM;
	if (!yaml_parser_initialize(&l.parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&l.parser, (const unsigned char *)text, len);
	while (r >= 0 && !done) {
		r = next_event(&l, &ev);
		if (r < 0)
			break;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (doc->root)
				r = conf_errorf_at(ctx, &ev.start_mark,
						   "a plan is one YAML document; found a second");
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			if (doc->root)
				r = conf_errorf_at(ctx, &ev.start_mark,
						   "a plan is one YAML document; found a second");
			else
				r = load_node(&l, &ev, 0, &doc->root);
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&l.parser);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(doc);
	return 0;
}

int conf_doc_load(struct conf_ctx *ctx, const char *path, struct conf_doc **ret)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r;

	if (!ctx->file)
		ctx->file = path;
	r = fs_read_file(path, CONF_MAX_BYTES, &text, &len);
	if (r == -BCDR_ERR_TOO_BIG)
		return conf_errorf(ctx, NULL, "plan larger than %u bytes", CONF_MAX_BYTES);
	if (r < 0)
		return conf_errorf(ctx, NULL, "cannot read the plan: %s", err_str(r));
	return conf_doc_parse(ctx, path, text, len, ret);
}

const struct conf_node *conf_map_get(const struct conf_node *map, const char *key)
{
	if (!map || map->type != CONF_NODE_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->pairs[i].key->value, key) == 0)
			return map->pairs[i].value;
	return NULL;
}

static const char *type_name(enum conf_type type)
{
	switch (type) {
	case CONF_NODE_MAP:
		return "a map (key: value)";
	case CONF_NODE_SEQ:
		return "a list";
	default:
		return "a single value";
	}
}

int conf_expect(struct conf_ctx *ctx, const struct conf_node *node, enum conf_type type,
		const char *what)
{
	if (node->type == type)
		return 0;
	return conf_errorf(ctx, node, "%s must be %s, not %s", what, type_name(type),
			   type_name(node->type));
}

static int parse_double(const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v))
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };

	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

int conf_parse_scalar(struct conf_ctx *ctx, const struct conf_node *node, enum conf_kind kind,
		      void *field)
{
	const char *s;
	double d;

	if (kind == CONF_STRV) {
		char **v;
		size_t n = node->type == CONF_NODE_SEQ ? node->n : 1;

		if (node->type == CONF_NODE_MAP)
			return conf_errorf(ctx, node, "expected a list of values, not a map");
		v = calloc(n + 1, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			const struct conf_node *item = node->type == CONF_NODE_SEQ ? node->items[i] : node;

			if (item->type != CONF_NODE_SCALAR) {
				strv_free(v);
				return conf_errorf(ctx, item, "expected a single value in this list");
			}
			v[i] = strdup(item->value);
			if (!v[i]) {
				strv_free(v);
				return -ENOMEM;
			}
		}
		strv_free(*(char ***)field);
		*(char ***)field = v;
		return 0;
	}
	if (node->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, node, "expected a single value, not %s", type_name(node->type));
	s = node->value;
	switch (kind) {
	case CONF_STRING: {
		char *copy = strdup(s);

		if (!copy)
			return -ENOMEM;
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case CONF_BOOL:
		if (node->quoted || parse_bool(s, field) < 0)
			return conf_errorf(ctx, node, "expected true or false, not '%s'", s);
		return 0;
	case CONF_INT:
	case CONF_UINT: {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(s, &end, 10);
		if (end == s || *end || errno || (kind == CONF_UINT && v < 0))
			return conf_errorf(ctx, node, "expected a%s whole number, not '%s'",
					   kind == CONF_UINT ? " non-negative" : "", s);
		if (kind == CONF_INT)
			*(int64_t *)field = v;
		else
			*(uint64_t *)field = (uint64_t)v;
		return 0;
	}
	case CONF_DOUBLE:
		if (parse_double(s, field) < 0)
			return conf_errorf(ctx, node, "expected a number, not '%s'", s);
		return 0;
	case CONF_DURATION:
		if (duration_parse(s, field) < 0)
			return conf_errorf(ctx, node,
					   "expected a duration such as 500ms, 30s, 5m, 1h30m or 7d, not '%s'", s);
		return 0;
	case CONF_SIZE:
		if (size_parse(s, field) < 0)
			return conf_errorf(ctx, node, "expected a size such as 4096, 512MiB or 2G, not '%s'",
					   s);
		return 0;
	case CONF_PERCENT: {
		size_t len = strlen(s);
		_cleanup_free_ char *num = strdup(s);

		if (!num)
			return -ENOMEM;
		if (len > 0 && num[len - 1] == '%') {
			num[len - 1] = '\0';
			if (parse_double(num, &d) < 0 || d < 0 || d > 100)
				return conf_errorf(ctx, node, "expected a percentage from 0%% to 100%%, not '%s'", s);
			d /= 100;
		} else if (parse_double(num, &d) < 0 || d < 0 || d > 1) {
			return conf_errorf(ctx, node,
					   "expected a percentage such as 99.9%% (or a fraction from 0 to 1), not '%s'", s);
		}
		*(double *)field = d;
		return 0;
	}
	default:
		return conf_errorf(ctx, node, "internal error: bad field kind");
	}
}

static int check_range(struct conf_ctx *ctx, const struct conf_node *node,
		       const struct conf_field *f, const void *field)
{
	double v;

	if (!(f->min < f->max))
		return 0;
	switch (f->kind) {
	case CONF_INT:
		v = (double)*(const int64_t *)field;
		break;
	case CONF_UINT:
	case CONF_SIZE:
		v = (double)*(const uint64_t *)field;
		break;
	case CONF_DURATION:
		v = (double)*(const usec_t *)field / (double)USEC_PER_SEC;
		break;
	case CONF_DOUBLE:
	case CONF_PERCENT:
		v = *(const double *)field;
		break;
	default:
		return 0;
	}
	if (v < f->min || v > f->max) {
		if (f->kind == CONF_DURATION)
			return conf_errorf(ctx, node, "'%s' must be from %gs to %gs", f->key, f->min, f->max);
		return conf_errorf(ctx, node, "'%s' must be from %g to %g", f->key, f->min, f->max);
	}
	return 0;
}

static int parse_enum(struct conf_ctx *ctx, const struct conf_node *node, const struct conf_field *f,
		      int *field)
{
	struct buf choices;
	int r;

	if (node->type == CONF_NODE_SCALAR)
		for (int i = 0; f->names[i]; i++)
			if (strcmp(node->value, f->names[i]) == 0) {
				*field = i;
				return 0;
			}
	buf_init(&choices, 4096);
	for (int i = 0; f->names[i]; i++)
		buf_printf(&choices, "%s%s", i ? ", " : "", f->names[i]);
	r = conf_errorf(ctx, node, "'%s' must be one of: %s", f->key, choices.data ? choices.data : "");
	buf_release(&choices);
	return r;
}

int conf_parse_map(struct conf_ctx *ctx, const struct conf_node *node, const char *what,
		   const struct conf_field *fields, void *obj)
{
	int r = conf_expect(ctx, node, CONF_NODE_MAP, what);

	return r < 0 ? r : conf_parse_fields(ctx, node, fields, obj);
}

int conf_parse_fields(struct conf_ctx *ctx, const struct conf_node *map,
		      const struct conf_field *fields, void *obj)
{
	int r;

	if (map->type != CONF_NODE_MAP)
		return conf_errorf(ctx, map, "expected a map (key: value), not %s", type_name(map->type));
	for (size_t i = 0; i < map->n; i++) {
		const struct conf_node *key = map->pairs[i].key, *value = map->pairs[i].value;
		const struct conf_field *f = fields;
		void *field;

		while (f->key && strcmp(f->key, key->value) != 0)
			f++;
		if (!f->key) {
			struct buf known;

			buf_init(&known, 4096);
			for (const struct conf_field *k = fields; k->key; k++)
				buf_printf(&known, "%s%s", k == fields ? "" : ", ", k->key);
			r = conf_errorf(ctx, key, "unknown key '%s' (known here: %s)", key->value,
					known.data ? known.data : "none");
			buf_release(&known);
			return r;
		}
		field = (char *)obj + f->offset;
		if (f->kind == CONF_CUSTOM) {
			if (!f->parse)
				continue; /* CONF_IGNORE: the caller reads it */
			r = f->parse(ctx, value, field);
		} else if (f->kind == CONF_ENUM) {
			r = parse_enum(ctx, value, f, field);
		} else {
			r = conf_parse_scalar(ctx, value, f->kind, field);
			if (r >= 0)
				r = check_range(ctx, value, f, field);
		}
		if (r < 0) {
			if (!ctx->error)
				conf_errorf(ctx, value, "invalid '%s': %s", f->key, err_str(r));
			return r;
		}
	}
	for (const struct conf_field *f = fields; f->key; f++)
		if ((f->flags & CONF_REQUIRED) && !conf_map_get(map, f->key))
			return conf_errorf(ctx, map, "missing required key '%s'", f->key);
	return 0;
}

void conf_free_fields(const struct conf_field *fields, void *obj)
{
	for (const struct conf_field *f = fields; f->key; f++) {
		void *field = (char *)obj + f->offset;

		if (f->kind == CONF_STRING) {
			free(*(char **)field);
			*(char **)field = NULL;
		} else if (f->kind == CONF_STRV) {
			strv_free(*(char ***)field);
			*(char ***)field = NULL;
		}
	}
}

int conf_parse_list(struct conf_ctx *ctx, const struct conf_node *seq, size_t elem_size,
		    void (*init)(void *elem),
		    int (*parse)(struct conf_ctx *ctx, const struct conf_node *item, void *elem),
		    void (*release)(void *elem), void **ret_array, size_t *ret_n)
{
	char *array;
	size_t done = 0;
	int r = 0;

	if (seq->type != CONF_NODE_SEQ)
		return conf_errorf(ctx, seq, "expected a list (- item), not %s", type_name(seq->type));
	array = calloc(seq->n ? seq->n : 1, elem_size);
	if (!array)
		return -ENOMEM;
	for (; done < seq->n; done++) {
		void *elem = array + done * elem_size;

		if (init)
			init(elem);
		r = parse(ctx, seq->items[done], elem);
		if (r < 0) {
			done++;
			break;
		}
	}
	if (r < 0) {
		for (size_t i = 0; release && i < done; i++)
			release(array + i * elem_size);
		free(array);
		return r;
	}
	*ret_array = array;
	*ret_n = seq->n;
	return 0;
}
