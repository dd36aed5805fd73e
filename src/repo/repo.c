#include "repo/repo.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <zstd.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"

/* What new keys cost: the most a key file may ask for (crypto.h). */
#define SCRYPT_N CRYPTO_SCRYPT_N_MAX
#define SCRYPT_R CRYPTO_SCRYPT_R_MAX
#define SCRYPT_P CRYPTO_SCRYPT_P_MAX
#define MASTER_LEN (3 * CRYPTO_KEY_LEN)

void repo_object_name(const char *dir, const uint8_t id[32], char *out, size_t size)
{
	char hex[65];

	hex_encode(id, 32, hex);
	snprintf(out, size, "%s/%s", dir, hex);
}

/* ---- objects ---- */

static int object_seal(struct crypto_ctx *c, enum object_kind kind, const void *plain, size_t len,
		       uint8_t **ret, size_t *ret_len)
{
	size_t bound = ZSTD_compressBound(len), z;
	_cleanup_free_ uint8_t *zbuf = malloc(bound ? bound : 1);
	uint8_t *out;
	int r;

	if (!zbuf)
		return -ENOMEM;
	z = ZSTD_compress(zbuf, bound, plain, len, 3);
	if (ZSTD_isError(z))
		return -EIO;
	out = malloc(REPO_OBJECT_HEADER + z + CRYPTO_OVERHEAD);
	if (!out)
		return -ENOMEM;
	memcpy(out, "BCDR", 4);
	out[4] = REPO_FORMAT_VERSION;
	out[5] = (uint8_t)kind;
	out[6] = out[7] = 0;
	r = crypto_seal(c, out, REPO_OBJECT_HEADER, zbuf, z, out + REPO_OBJECT_HEADER);
	if (r < 0) {
		free(out);
		return r;
	}
	*ret = out;
	*ret_len = REPO_OBJECT_HEADER + z + CRYPTO_OVERHEAD;
	return 0;
}

int repo_open_object(struct crypto_ctx *c, enum object_kind kind, const uint8_t *data, size_t len,
		     size_t max, uint8_t **ret, size_t *ret_len)
{
	_cleanup_free_ uint8_t *z = NULL;
	unsigned long long size;
	uint8_t *out;
	size_t zlen, n;
	int r;

	if (len < REPO_OBJECT_HEADER + CRYPTO_OVERHEAD || memcmp(data, "BCDR", 4) != 0)
		return -BCDR_ERR_CORRUPT;
	if (data[4] > REPO_FORMAT_VERSION)
		return -BCDR_ERR_VERSION;
	if (data[4] != REPO_FORMAT_VERSION || data[5] != kind || data[6] || data[7])
		return -BCDR_ERR_CORRUPT;
	zlen = len - REPO_OBJECT_HEADER - CRYPTO_OVERHEAD;
	z = malloc(zlen ? zlen : 1);
	if (!z)
		return -ENOMEM;
	r = crypto_open(c, data, REPO_OBJECT_HEADER, data + REPO_OBJECT_HEADER,
			len - REPO_OBJECT_HEADER, z);
	if (r < 0)
		return r;
	size = ZSTD_getFrameContentSize(z, zlen);
	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
		return -BCDR_ERR_CORRUPT;
	if (size > max)
		return -BCDR_ERR_TOO_BIG;
	out = malloc(size + 1);
	if (!out)
		return -ENOMEM;
	n = ZSTD_decompress(out, size, z, zlen);
	if (ZSTD_isError(n) || n != size) {
		free(out);
		return -BCDR_ERR_CORRUPT;
	}
	out[n] = 0;
	*ret = out;
	*ret_len = n;
	return 0;
}

int repo_save_object(struct repo *repo, enum object_kind kind, const char *dir, const void *plain,
		     size_t len, uint8_t ret_id[32])
{
	_cleanup_free_ uint8_t *obj = NULL;
	uint8_t id[32];
	char name[128];
	size_t olen;
	int r;

	/* An index or a snapshot commits what the lock protected: never
	 * under a lock others may have taken for stale. */
	if (kind != OBJ_CONFIG && (r = repo_lock_verify(repo)) < 0)
		return r;
	r = object_seal(repo->crypto, kind, plain, len, &obj, &olen);
	if (r < 0)
		return r;
	if ((r = crypto_sha256(repo->crypto, obj, olen, id)) < 0)
		return r;
	repo_object_name(dir, id, name, sizeof(name));
	r = repo->backend->ops->put(repo->backend, name, obj, olen);
	if (r < 0)
		return r;
	if (ret_id)
		memcpy(ret_id, id, 32);
	return 0;
}

int repo_save_pack(struct repo *repo, struct crypto_ctx *c, struct pack_writer *w,
		   uint8_t ret_id[32])
{
	uint8_t id[32];
	char name[128];
	int r = pack_writer_finish(w, c, id);

	if (r < 0)
		return r;
	repo_object_name("data", id, name, sizeof(name));
	r = repo->backend->ops->put(repo->backend, name, w->data, w->len);
	if (r < 0)
		return r;
	memcpy(ret_id, id, 32);
	return 0;
}

int repo_load_object(struct repo *repo, enum object_kind kind, const char *dir, const char *name,
		     size_t max, uint8_t **ret, size_t *ret_len)
{
	_cleanup_free_ uint8_t *data = NULL;
	uint8_t want[32], got[32];
	char full[128];
	size_t len;
	int r;

	if (hex_decode(name, want, 32) < 0)
		return -BCDR_ERR_CORRUPT;
	snprintf(full, sizeof(full), "%s/%s", dir, name);
	r = repo->backend->ops->get(repo->backend, full, REPO_MAX_OBJECT, &data, &len);
	if (r < 0)
		return r;
	if ((r = crypto_sha256(repo->crypto, data, len, got)) < 0)
		return r;
	if (memcmp(want, got, 32) != 0)
		return -BCDR_ERR_CORRUPT;
	return repo_open_object(repo->crypto, kind, data, len, max, ret, ret_len);
}

/* ---- keys and config ---- */

int key_file_decode(const uint8_t *data, size_t len, uint64_t *n, uint32_t *r, uint32_t *p,
		    uint8_t salt[32], uint8_t *sealed, size_t *sealed_len)
{
	_cleanup_json_ json_t *j = NULL;
	json_t *v;
	const char *hex;

	if (len > REPO_MAX_KEYFILE)
		return -BCDR_ERR_TOO_BIG;
	j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j))
		return -BCDR_ERR_CORRUPT;
	v = json_object_get(j, "version");
	if (!json_is_integer(v))
		return -BCDR_ERR_CORRUPT;
	if (json_integer_value(v) > REPO_FORMAT_VERSION)
		return -BCDR_ERR_VERSION;
	if (json_integer_value(v) != REPO_FORMAT_VERSION)
		return -BCDR_ERR_CORRUPT;
	v = json_object_get(j, "kdf");
	if (!json_is_string(v) || strcmp(json_string_value(v), "scrypt") != 0)
		return -BCDR_ERR_CORRUPT;
	v = json_object_get(j, "n");
	*n = json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
	v = json_object_get(j, "r");
	*r = json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= UINT32_MAX
		     ? (uint32_t)json_integer_value(v)
		     : 0;
	v = json_object_get(j, "p");
	*p = json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= UINT32_MAX
		     ? (uint32_t)json_integer_value(v)
		     : 0;
	if (!*n || !*r || !*p || (*n & (*n - 1)))
		return -BCDR_ERR_CORRUPT;
	v = json_object_get(j, "salt");
	if (!json_is_string(v) || hex_decode(json_string_value(v), salt, 32) < 0)
		return -BCDR_ERR_CORRUPT;
	v = json_object_get(j, "data");
	if (!json_is_string(v))
		return -BCDR_ERR_CORRUPT;
	hex = json_string_value(v);
	if (strlen(hex) != 2 * (MASTER_LEN + CRYPTO_OVERHEAD) ||
	    hex_decode(hex, sealed, MASTER_LEN + CRYPTO_OVERHEAD) < 0)
		return -BCDR_ERR_CORRUPT;
	*sealed_len = MASTER_LEN + CRYPTO_OVERHEAD;
	/* Well formed, but dearer than any key bcdr writes: refused before
	 * scrypt runs. */
	if (!crypto_scrypt_params_ok(*n, *r, *p))
		return -BCDR_ERR_TOO_BIG;
	return 0;
}

int config_decode(const uint8_t *data, size_t len, char id[33], size_t *min, size_t *avg,
		  size_t *max, int *compression)
{
	_cleanup_json_ json_t *j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *v, *ch;

	if (!json_is_object(j))
		return -BCDR_ERR_CORRUPT;
	v = json_object_get(j, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return -BCDR_ERR_CORRUPT;
	if (json_integer_value(v) > REPO_FORMAT_VERSION)
		return -BCDR_ERR_VERSION;
	v = json_object_get(j, "id");
	if (!json_is_string(v) || strlen(json_string_value(v)) != 32)
		return -BCDR_ERR_CORRUPT;
	memcpy(id, json_string_value(v), 33);
	ch = json_object_get(j, "chunker");
	if (!json_is_object(ch))
		return -BCDR_ERR_CORRUPT;
	*min = (size_t)json_integer_value(json_object_get(ch, "min"));
	*avg = (size_t)json_integer_value(json_object_get(ch, "avg"));
	*max = (size_t)json_integer_value(json_object_get(ch, "max"));
	if (*min < 4096 || *max > CHUNK_MAX || *min > *avg || *avg > *max || (*avg & (*avg - 1)))
		return -BCDR_ERR_CORRUPT;
	v = json_object_get(j, "compression");
	if (!json_is_integer(v) || json_integer_value(v) < -5 || json_integer_value(v) > 19)
		return -BCDR_ERR_CORRUPT;
	*compression = (int)json_integer_value(v);
	return 0;
}

/* scrypt's cost for new keys: BCDR_SCRYPT_N, for the test suite only, may
 * lower n (a power of two from CRYPTO_SCRYPT_N_MIN), never raise it; it is
 * logged whenever it is used, so a key cheaper than the default never goes
 * unnoticed. */
static uint64_t scrypt_n(void)
{
	const char *env = getenv("BCDR_SCRYPT_N");
	unsigned long long n = env ? strtoull(env, NULL, 10) : 0;

	if (!env)
		return SCRYPT_N;
	if (n >= CRYPTO_SCRYPT_N_MIN && n <= SCRYPT_N && !(n & (n - 1))) {
		log_warning("BCDR_SCRYPT_N=%llu: the new key is cheaper to guess than the default "
			    "(n=%u); for the test suite only",
			    n, SCRYPT_N);
		return n;
	}
	log_warning("BCDR_SCRYPT_N='%s' ignored: it may only lower n to a power of two from %u to "
		    "%u",
		    env, CRYPTO_SCRYPT_N_MIN, SCRYPT_N);
	return SCRYPT_N;
}

static int key_wrap(const struct master_key *mk, const char *password, char **ret_json)
{
	uint8_t salt[32], wrap[32], sealed[MASTER_LEN + CRYPTO_OVERHEAD];
	char salt_hex[65], data_hex[2 * sizeof(sealed) + 1], host[256] = "";
	_cleanup_json_ json_t *j = json_object();
	int r;

	if (!j)
		return -ENOMEM;
	if ((r = crypto_random(salt, sizeof(salt))) < 0)
		return r;
	if ((r = crypto_scrypt(password, salt, sizeof(salt), scrypt_n(), SCRYPT_R, SCRYPT_P, wrap)) <
	    0)
		return r;
	r = crypto_seal_with(wrap, mk, MASTER_LEN, sealed);
	OPENSSL_cleanse(wrap, sizeof(wrap));
	if (r < 0)
		return r;
	hex_encode(salt, sizeof(salt), salt_hex);
	hex_encode(sealed, sizeof(sealed), data_hex);
	gethostname(host, sizeof(host) - 1);
	json_set_int(j, "version", REPO_FORMAT_VERSION);
	json_set_int(j, "created_us", (long long)now_realtime());
	json_set_str(j, "host", host);
	json_set_str(j, "kdf", "scrypt");
	json_set_int(j, "n", (long long)scrypt_n());
	json_set_int(j, "r", SCRYPT_R);
	json_set_int(j, "p", SCRYPT_P);
	json_set_str(j, "salt", salt_hex);
	json_set_str(j, "data", data_hex);
	*ret_json = json_dumps(j, JSON_INDENT(2));
	return *ret_json ? 0 : -ENOMEM;
}

int repo_add_key(struct repo *repo, const char *password, char ret_name[65])
{
	_cleanup_free_ char *text = NULL;
	uint8_t id[32];
	char name[128];
	int r = key_wrap(&repo->key, password, &text);

	if (r < 0)
		return r;
	if ((r = crypto_sha256(repo->crypto, text, strlen(text), id)) < 0)
		return r;
	repo_object_name("keys", id, name, sizeof(name));
	r = repo->backend->ops->put(repo->backend, name, text, strlen(text));
	if (r < 0)
		return r;
	hex_encode(id, 32, ret_name);
	return 0;
}

int repo_remove_key(struct repo *repo, const char *name)
{
	char full[128];

	snprintf(full, sizeof(full), "keys/%s", name);
	return repo->backend->ops->remove(repo->backend, full);
}

static int repo_setup(struct repo *repo, size_t min, size_t avg, size_t max)
{
	int r = crypto_ctx_new(&repo->key, &repo->crypto);

	if (r < 0)
		return r;
	return chunker_init(&repo->chunker, repo->key.gear, min, avg, max);
}

static struct repo *repo_alloc(void)
{
	struct repo *repo = calloc(1, sizeof(*repo));

	if (repo)
		repo->compression = 3;
	return repo;
}

/* The backend of a location written by an operator. */
static int backend_at(const char *text, const struct backend_options *o, bool create,
		      struct backend **ret)
{
	_cleanup_(location_freep) struct location *loc = NULL;
	int r = location_parse(text, &loc, NULL);

	if (r < 0)
		return r == -EINVAL ? -BCDR_ERR_USAGE : r;
	return create ? backend_create(loc, o, ret) : backend_open(loc, o, ret);
}

int repo_init(const char *path, const char *password, struct repo **ret)
{
	return repo_init_at(path, NULL, password, ret);
}

int repo_init_at(const char *location, const struct backend_options *o, const char *password,
		 struct repo **ret)
{
	_cleanup_(repo_freep) struct repo *repo = repo_alloc();
	_cleanup_json_ json_t *cfg = json_object();
	json_t *ch = json_object();
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ uint8_t *obj = NULL;
	uint8_t rid[16];
	size_t olen;
	int r;

	if (!repo || !cfg || !ch) {
		json_decref(ch);
		return -ENOMEM;
	}
	r = backend_at(location, o, true, &repo->backend);
	if (r < 0) {
		json_decref(ch);
		return r;
	}
	if ((r = crypto_random(&repo->key, sizeof(repo->key))) < 0 ||
	    (r = crypto_random(rid, sizeof(rid))) < 0) {
		json_decref(ch);
		return r;
	}
	hex_encode(rid, sizeof(rid), repo->id);
	if ((r = repo_setup(repo, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX)) < 0) {
		json_decref(ch);
		return r;
	}
	json_set_int(cfg, "version", REPO_FORMAT_VERSION);
	json_set_str(cfg, "id", repo->id);
	json_set_int(ch, "min", CHUNK_MIN);
	json_set_int(ch, "avg", CHUNK_AVG);
	json_set_int(ch, "max", CHUNK_MAX);
	json_object_set_new(cfg, "chunker", ch);
	json_set_int(cfg, "compression", repo->compression);
	text = json_dumps(cfg, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	/* The key first: a config without a key is useless, a key without a
	 * config is an unfinished init the next init can see. */
	if ((r = repo_add_key(repo, password, repo->key_name)) < 0)
		return r;
	if ((r = object_seal(repo->crypto, OBJ_CONFIG, text, strlen(text), &obj, &olen)) < 0)
		return r;
	if ((r = repo->backend->ops->put(repo->backend, "config", obj, olen)) < 0)
		return r;
	*ret = TAKE_PTR(repo);
	return 0;
}

static __thread char key_refusal[600];

const char *repo_key_refusal(void)
{
	return key_refusal;
}

struct key_try {
	struct repo *repo;
	const char *password;
	bool found;
	int error;
};

static int try_key(const char *name, uint64_t size, void *userdata)
{
	struct key_try *t = userdata;
	_cleanup_free_ uint8_t *data = NULL;
	uint8_t salt[32], sealed[MASTER_LEN + CRYPTO_OVERHEAD], wrap[32];
	size_t len, sealed_len;
	uint64_t n;
	uint32_t r_, p;
	char full[128];
	int r;

	(void)size;
	if (strlen(name) != 64)
		return 0;
	snprintf(full, sizeof(full), "keys/%s", name);
	r = t->repo->backend->ops->get(t->repo->backend, full, REPO_MAX_KEYFILE, &data, &len);
	if (r >= 0)
		r = key_file_decode(data, len, &n, &r_, &p, salt, sealed, &sealed_len);
	if (r == -BCDR_ERR_TOO_BIG) {
		size_t used = strlen(key_refusal);

		snprintf(key_refusal + used, sizeof(key_refusal) - used,
			 "%skey file 'keys/%s' skipped: it asks scrypt for n=%llu r=%u p=%u, more "
			 "than bcdr writes (n <= %u, r <= %u, p <= %u)",
			 used ? "; " : "", name, (unsigned long long)n, r_, p, CRYPTO_SCRYPT_N_MAX,
			 CRYPTO_SCRYPT_R_MAX, CRYPTO_SCRYPT_P_MAX);
		return 0;
	}
	if (r >= 0)
		r = crypto_scrypt(t->password, salt, 32, n, r_, p, wrap);
	if (r >= 0) {
		r = crypto_open_with(wrap, sealed, sealed_len, (uint8_t *)&t->repo->key);
		OPENSSL_cleanse(wrap, sizeof(wrap));
		if (r < 0) /* what a wrong key decrypted before the tag failed */
			OPENSSL_cleanse(&t->repo->key, sizeof(t->repo->key));
	}
	if (r >= 0) {
		t->found = true;
		snprintf(t->repo->key_name, sizeof(t->repo->key_name), "%s", name);
		return 1; /* stop */
	}
	if (r != -BCDR_ERR_CORRUPT || t->error == 0)
		t->error = r == -BCDR_ERR_CORRUPT ? 0 : r;
	return 0;
}

int repo_open(const char *path, const char *password, struct repo **ret)
{
	return repo_open_at(path, NULL, password, ret);
}

int repo_open_at(const char *location, const struct backend_options *o, const char *password,
		 struct repo **ret)
{
	_cleanup_(repo_freep) struct repo *repo = repo_alloc();
	_cleanup_free_ uint8_t *cfg = NULL, *plain = NULL;
	struct key_try t = { .password = password };
	size_t cfg_len, plain_len, min, avg, max;
	int r;

	if (!repo)
		return -ENOMEM;
	r = backend_at(location, o, false, &repo->backend);
	if (r < 0)
		return r;
	r = repo->backend->ops->get(repo->backend, "config", 1 << 20, &cfg, &cfg_len);
	if (r < 0)
		return r == -ENOENT ? -BCDR_ERR_NOT_FOUND : r;
	/* The format version is readable before any key is tried. */
	if (cfg_len >= 5 && memcmp(cfg, "BCDR", 4) == 0 && cfg[4] > REPO_FORMAT_VERSION)
		return -BCDR_ERR_VERSION;
	t.repo = repo;
	key_refusal[0] = 0;
	r = repo->backend->ops->list(repo->backend, "keys", try_key, &t);
	if (r < 0)
		return r;
	if (!t.found)
		return t.error == -BCDR_ERR_VERSION ? t.error : -BCDR_ERR_AUTH;
	if ((r = crypto_ctx_new(&repo->key, &repo->crypto)) < 0)
		return r;
	r = repo_open_object(repo->crypto, OBJ_CONFIG, cfg, cfg_len, 1 << 20, &plain, &plain_len);
	if (r < 0)
		return r;
	r = config_decode(plain, plain_len, repo->id, &min, &avg, &max, &repo->compression);
	if (r < 0)
		return r;
	crypto_ctx_free(TAKE_PTR(repo->crypto));
	if ((r = repo_setup(repo, min, avg, max)) < 0)
		return r;
	*ret = TAKE_PTR(repo);
	return 0;
}

void repo_free(struct repo *repo)
{
	if (!repo)
		return;
	if (repo->lock)
		repo_unlock(repo);
	crypto_ctx_free(repo->crypto);
	index_free(repo->index);
	strv_free(repo->index_files);
	backend_free(repo->backend);
	/* The master key, and the gear table derived from it (it would tell
	 * where chunks are cut). */
	OPENSSL_cleanse(&repo->key, sizeof(repo->key));
	OPENSSL_cleanse(&repo->chunker, sizeof(repo->chunker));
	free(repo);
}

/* ---- index ---- */

struct name_list {
	char **v;
	size_t n, cap;
};

static int collect_name(const char *name, uint64_t size, void *userdata)
{
	struct name_list *l = userdata;

	(void)size;
	if (strlen(name) != 64)
		return 0;
	if (l->n + 2 > l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		char **nv = realloc(l->v, ncap * sizeof(char *));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n] = strdup(name);
	if (!l->v[l->n])
		return -ENOMEM;
	l->v[++l->n] = NULL;
	return 0;
}

static int list_names(struct repo *repo, const char *dir, char ***ret, size_t *ret_n)
{
	struct name_list l = {};
	int r = repo->backend->ops->list(repo->backend, dir, collect_name, &l);

	if (r < 0) {
		strv_free(l.v);
		return r;
	}
	if (!l.v && !(l.v = calloc(1, sizeof(char *))))
		return -ENOMEM;
	*ret = l.v;
	if (ret_n)
		*ret_n = l.n;
	return 0;
}

int repo_load_index(struct repo *repo)
{
	_cleanup_strv_free_ char **names = NULL;
	struct index *ix;
	int r = list_names(repo, "index", &names, NULL);

	if (r < 0)
		return r;
	ix = index_new();
	if (!ix)
		return -ENOMEM;
	for (char **n = names; *n; n++) {
		_cleanup_free_ uint8_t *plain = NULL;
		size_t len;

		r = repo_load_object(repo, OBJ_INDEX, "index", *n, INDEX_MAX_PLAIN, &plain, &len);
		if (r >= 0)
			r = index_decode(ix, plain, len);
		if (r < 0) {
			index_free(ix);
			return r;
		}
	}
	index_free(repo->index);
	repo->index = ix;
	strv_free(repo->index_files);
	repo->index_files = TAKE_PTR(names);
	return 0;
}

/* ---- snapshots ---- */

void snapshots_free(struct snapshot **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snapshot_free(v[i]);
	free(v);
}

static int cmp_snapshot_time(const void *a, const void *b)
{
	const struct snapshot *x = *(struct snapshot *const *)a, *y = *(struct snapshot *const *)b;

	return x->time < y->time ? -1 : x->time > y->time;
}

static int load_snapshot(struct repo *repo, const char *name, struct snapshot **ret)
{
	_cleanup_free_ uint8_t *plain = NULL;
	size_t len;
	int r = repo_load_object(repo, OBJ_SNAPSHOT, "snapshots", name, SNAPSHOT_MAX_JSON, &plain,
				 &len);

	if (r < 0)
		return r;
	r = snapshot_decode(plain, len, ret);
	if (r < 0)
		return r;
	hex_decode(name, (*ret)->id, 32);
	return 0;
}

int repo_list_snapshots(struct repo *repo, struct snapshot ***ret, size_t *ret_n)
{
	_cleanup_strv_free_ char **names = NULL;
	struct snapshot **v;
	size_t n;
	int r = list_names(repo, "snapshots", &names, &n);

	if (r < 0)
		return r;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = load_snapshot(repo, names[i], &v[i]);
		if (r < 0) {
			snapshots_free(v, i);
			return r;
		}
	}
	qsort(v, n, sizeof(*v), cmp_snapshot_time);
	*ret = v;
	*ret_n = n;
	return 0;
}

int repo_find_snapshot(struct repo *repo, const char *spec, struct snapshot **ret)
{
	_cleanup_strv_free_ char **names = NULL;
	const char *match = NULL;
	size_t n, plen = strlen(spec);
	int r;

	if (strcmp(spec, "latest") == 0) {
		struct snapshot **v;

		r = repo_list_snapshots(repo, &v, &n);
		if (r < 0)
			return r;
		if (n == 0) {
			free(v);
			return -BCDR_ERR_NOT_FOUND;
		}
		*ret = v[n - 1];
		v[n - 1] = NULL;
		snapshots_free(v, n);
		return 0;
	}
	if (plen == 0 || plen > 64)
		return -BCDR_ERR_NOT_FOUND;
	r = list_names(repo, "snapshots", &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (strncmp(names[i], spec, plen) == 0) {
			if (match)
				return -BCDR_ERR_AMBIGUOUS;
			match = names[i];
		}
	if (!match)
		return -BCDR_ERR_NOT_FOUND;
	return load_snapshot(repo, match, ret);
}

int repo_save_snapshot(struct repo *repo, struct snapshot *s)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = snapshot_encode(s, &text, &len);

	if (r < 0)
		return r;
	return repo_save_object(repo, OBJ_SNAPSHOT, "snapshots", text, len, s->id);
}

int repo_remove_snapshot(struct repo *repo, const uint8_t id[32])
{
	char name[128];

	repo_object_name("snapshots", id, name, sizeof(name));
	return repo->backend->ops->remove(repo->backend, name);
}

/* ---- index files ---- */

/* Blobs per index file at most: a reader holds one file's bytes (sealed
 * and plain) at a time, so a first backup of millions of files does not
 * write, nor every later command read, one file of hundreds of MB. */
#define INDEX_FILE_BLOBS 32768u

int repo_save_index(struct repo *repo, size_t first_pack)
{
	struct index *ix = repo->index;
	_cleanup_free_ size_t *count = NULL;
	_cleanup_free_ bool *keep = NULL;
	int r = 0;

	if (!ix || first_pack >= ix->npacks)
		return 0;
	count = calloc(ix->npacks, sizeof(*count));
	keep = calloc(ix->npacks, sizeof(*keep));
	if (!count || !keep)
		return -ENOMEM;
	for (size_t i = 0; i < ix->n; i++)
		if (ix->blobs[i].pack != INDEX_NO_PACK && ix->blobs[i].pack >= first_pack)
			count[ix->blobs[i].pack]++;
	for (size_t p = first_pack; p < ix->npacks && r >= 0;) {
		_cleanup_free_ uint8_t *data = NULL;
		size_t sum = 0, len;

		memset(keep, 0, ix->npacks * sizeof(*keep));
		for (; p < ix->npacks && (sum == 0 || sum + count[p] <= INDEX_FILE_BLOBS); p++) {
			keep[p] = true;
			sum += count[p];
		}
		if (sum == 0)
			continue;
		r = index_encode(ix, keep, &data, &len);
		if (r >= 0)
			r = repo_save_object(repo, OBJ_INDEX, "index", data, len, NULL);
	}
	return r;
}

/* ---- blobs and trees ---- */

/* The blob at b (an index entry, maybe a copy) in pack pack_id. */
static int read_located(struct repo *repo, struct crypto_ctx *c, void *dctx, enum blob_type type,
			const uint8_t id[32], const struct index_blob *b, const uint8_t pack_id[32],
			uint8_t **buf, size_t *cap, uint8_t **scratch, size_t *scratch_cap)
{
	char name[128];
	int r;

	if (b->type != type || b->length > BLOB_MAX_STORED)
		return -BCDR_ERR_CORRUPT;
	if ((r = bytes_reserve(scratch, scratch_cap, 2 * (size_t)b->length)) < 0)
		return r;
	if ((r = bytes_reserve(buf, cap, (size_t)b->raw_length + 1)) < 0)
		return r;
	repo_object_name("data", pack_id, name, sizeof(name));
	r = backend_read(repo->backend, name, b->offset, b->length, *scratch);
	if (r < 0)
		return r == -ENOENT ? -BCDR_ERR_NOT_FOUND : r;
	r = blob_open(c, type, id, *scratch, b->length, *scratch + b->length, *buf,
		      (size_t)b->raw_length, dctx, true);
	if (r >= 0 && (uint32_t)r != b->raw_length)
		return -BCDR_ERR_CORRUPT;
	return r;
}

int repo_read_blob(struct repo *repo, struct crypto_ctx *c, void *dctx, enum blob_type type,
		   const uint8_t id[32], uint8_t **buf, size_t *cap, uint8_t **scratch,
		   size_t *scratch_cap)
{
	const struct index_blob *b = repo->index ? index_find(repo->index, id) : NULL;

	if (!b || b->pack == INDEX_NO_PACK)
		return -BCDR_ERR_NOT_FOUND;
	return read_located(repo, c, dctx, type, id, b, repo->index->packs[b->pack], buf, cap,
			    scratch, scratch_cap);
}

/* The nodes the summary counts, within what the blobs can hold (a node
 * takes at least 64 bytes): room reserved up front, no regrowing. */
static size_t tree_size_hint(const struct repo *repo, const struct snapshot *s)
{
	const struct snapshot_summary *sum = &s->summary;
	uint64_t hint = sum->files_new + sum->files_changed + sum->files_unchanged + sum->dirs +
			sum->errors;
	uint64_t most = (uint64_t)s->ntree * repo->chunker.max / 64;

	hint += hint / 16 + 16;
	return (size_t)(hint < most ? hint : most);
}

struct repo_tree {
	struct tree_reader r; /* first: the caller's handle */
	struct repo *repo;
	const struct snapshot *s;
	size_t next;
	pthread_mutex_t *index_lock;
	ZSTD_DCtx *d;
	uint8_t *buf, *scratch;
	size_t cap, scap;
};

/* The next tree blob into the reader: one blob in memory at a time. */
static int tree_fill(void *userdata, struct tree_reader *r)
{
	struct repo_tree *t = userdata;
	int k;

	if (t->next == t->s->ntree) {
		tree_reader_end(r);
		return 0;
	}
	if (t->index_lock) {
		/* Others insert meanwhile: the entry and pack ID are copied
		 * under their lock, the blob read without it. */
		const struct index_blob *found;
		struct index_blob b = {};
		uint8_t pack[32];

		pthread_mutex_lock(t->index_lock);
		found = index_find(t->repo->index, t->s->tree[t->next]);
		if (found && found->pack != INDEX_NO_PACK) {
			b = *found;
			memcpy(pack, t->repo->index->packs[b.pack], 32);
		}
		pthread_mutex_unlock(t->index_lock);
		if (!found || b.pack == INDEX_NO_PACK)
			return -BCDR_ERR_NOT_FOUND;
		k = read_located(t->repo, t->repo->crypto, t->d, BLOB_TREE, t->s->tree[t->next], &b,
				 pack, &t->buf, &t->cap, &t->scratch, &t->scap);
	} else {
		k = repo_read_blob(t->repo, t->repo->crypto, t->d, BLOB_TREE, t->s->tree[t->next],
				   &t->buf, &t->cap, &t->scratch, &t->scap);
	}
	if (k < 0)
		return k;
	t->next++;
	return tree_reader_feed(r, t->buf, (size_t)k);
}

int repo_tree_open(struct repo *repo, const struct snapshot *s, struct tree_reader **ret)
{
	struct repo_tree *t;
	int r;

	if (!repo->index && (r = repo_load_index(repo)) < 0)
		return r;
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->repo = repo;
	t->s = s;
	if ((r = tree_reader_init(&t->r, tree_fill, t)) < 0 ||
	    (r = tree_reader_expect(&t->r, tree_size_hint(repo, s))) < 0 ||
	    !(t->d = ZSTD_createDCtx())) {
		repo_tree_close(&t->r);
		return r < 0 ? r : -ENOMEM;
	}
	*ret = &t->r;
	return 0;
}

void repo_tree_set_index_lock(struct tree_reader *r, pthread_mutex_t *lock)
{
	((struct repo_tree *)r)->index_lock = lock;
}

void repo_tree_close(struct tree_reader *r)
{
	struct repo_tree *t = (struct repo_tree *)r;

	if (!t)
		return;
	tree_reader_release(&t->r);
	ZSTD_freeDCtx(t->d);
	free(t->buf);
	free(t->scratch);
	free(t);
}

int repo_load_tree(struct repo *repo, const struct snapshot *s, struct tree **ret)
{
	struct tree_reader *tr;
	struct tree *t;
	struct node *n;
	int r;

	if ((r = repo_tree_open(repo, s, &tr)) < 0)
		return r;
	t = tr->refused; /* the nodes join the refusals */
	if ((r = tree_reserve(t, tree_size_hint(repo, s))) < 0) {
		repo_tree_close(tr);
		return r;
	}
	while ((r = tree_reader_next(tr, &n)) == 1) {
		struct node *to = tree_append(t);

		if (!to) {
			r = -ENOMEM;
			break;
		}
		*to = *n;
		memset(n, 0, sizeof(*n));
	}
	if (r >= 0)
		*ret = TAKE_PTR(tr->refused);
	repo_tree_close(tr);
	return r < 0 ? r : 0;
}

/* ---- locks ---- */

/* A held lock: refreshed by a thread of its own (a new lock object with the
 * current time, then the old one removed, as restic does), so a lock older
 * than the stale age is one whose process stopped refreshing it. Every
 * field after the mutex is under it. */
struct repo_lock {
	struct backend *backend; /* borrowed from the repo */
	bool exclusive;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop;
	bool lost;        /* our lock object vanished: removed as stale */
	usec_t refreshed; /* monotonic time of the last successful refresh */
	char name[33];    /* the lock object we hold now */
};

static usec_t lock_refresh_usec = 5 * USEC_PER_MINUTE;
static usec_t lock_stale_usec = 30 * USEC_PER_MINUTE;
static pthread_once_t lock_timing_once = PTHREAD_ONCE_INIT;

/* BCDR_TEST_LOCK_REFRESH_MS shortens both intervals for the test suite
 * (stale stays six refreshes); never silently. */
static void lock_timing_init(void)
{
	const char *env = getenv("BCDR_TEST_LOCK_REFRESH_MS");
	char *end;
	unsigned long long ms;

	if (!env)
		return;
	ms = strtoull(env, &end, 10);
	if (*end || ms < 100 || ms > 5 * 60 * 1000) {
		log_warning("BCDR_TEST_LOCK_REFRESH_MS='%s' ignored: give 100 to 300000", env);
		return;
	}
	lock_refresh_usec = ms * USEC_PER_MSEC;
	lock_stale_usec = 6 * lock_refresh_usec;
	log_warning("BCDR_TEST_LOCK_REFRESH_MS=%llu: locks are refreshed every %.1f s and stale "
		    "after %.1f s (for the test suite only)",
		    ms, (double)lock_refresh_usec / USEC_PER_SEC,
		    (double)lock_stale_usec / USEC_PER_SEC);
}

static void lock_timing(usec_t *refresh, usec_t *stale)
{
	pthread_once(&lock_timing_once, lock_timing_init);
	if (refresh)
		*refresh = lock_refresh_usec;
	if (stale)
		*stale = lock_stale_usec;
}

bool repo_lock_is_ours(struct repo *repo, const char *name)
{
	bool ours = false;

	if (repo->lock) {
		pthread_mutex_lock(&repo->lock->mu);
		ours = strcmp(repo->lock->name, name) == 0;
		pthread_mutex_unlock(&repo->lock->mu);
	}
	return ours;
}

/* Writes a new lock object saying who we are and when; its name (32 hex)
 * goes to name. */
static int lock_write(struct backend *b, bool exclusive, char name[33])
{
	_cleanup_json_ json_t *j = json_object();
	_cleanup_free_ char *text = NULL;
	char host[256] = "", full[128];
	uint8_t rnd[16];
	int r;

	if (!j)
		return -ENOMEM;
	gethostname(host, sizeof(host) - 1);
	json_set_str(j, "host", host);
	json_set_int(j, "pid", getpid());
	json_set_int(j, "time_us", (long long)now_realtime());
	json_set_bool(j, "exclusive", exclusive);
	text = json_dumps(j, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	if ((r = crypto_random(rnd, sizeof(rnd))) < 0)
		return r;
	hex_encode(rnd, sizeof(rnd), name);
	snprintf(full, sizeof(full), "locks/%s", name);
	return b->ops->put(b, full, text, strlen(text));
}

/* Under l->mu. The new object first, then the old one removed: at every
 * moment one of ours is there. When the old one is gone, another process
 * took it for stale (we were stopped or cut off past the stale age) and
 * may have pruned: the lock is lost, and the new object stays until
 * unlock, so a prune still running sees a live lock and spares our packs. */
static int lock_refresh_locked(struct repo_lock *l)
{
	char name[33], full[128];
	uint64_t size;
	int r;

	if (l->lost)
		return -BCDR_ERR_LOCK_LOST;
	if ((r = lock_write(l->backend, l->exclusive, name)) < 0)
		return r;
	snprintf(full, sizeof(full), "locks/%s", l->name);
	r = l->backend->ops->stat(l->backend, full, &size);
	if (r == -ENOENT || r == -BCDR_ERR_NOT_FOUND) {
		l->lost = true;
		memcpy(l->name, name, sizeof(name));
		return -BCDR_ERR_LOCK_LOST;
	}
	if (r >= 0)
		r = l->backend->ops->remove(l->backend, full);
	if (r < 0 && r != -ENOENT) {
		/* Keep the old one as ours: the new one goes. */
		snprintf(full, sizeof(full), "locks/%s", name);
		l->backend->ops->remove(l->backend, full);
		return r;
	}
	memcpy(l->name, name, sizeof(name));
	l->refreshed = now_monotonic();
	return 0;
}

static void *lock_refresher(void *userdata)
{
	struct repo_lock *l = userdata;
	usec_t refresh, stale, retry_at = 0;

	lock_timing(&refresh, &stale);
	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		usec_t due = l->refreshed + refresh, now = now_monotonic();
		struct timespec ts;
		int r;

		if (retry_at > due)
			due = retry_at;
		if (now < due) {
			ts.tv_sec = (time_t)(due / USEC_PER_SEC);
			ts.tv_nsec = (long)(due % USEC_PER_SEC) * 1000;
			pthread_cond_timedwait(&l->cond, &l->mu, &ts);
			continue;
		}
		/* A failed refresh (a network error) is tried again soon; once
		 * the stale age has passed without one, others may have taken
		 * the lock for stale, and it is lost. */
		r = lock_refresh_locked(l);
		if (r < 0 && !l->lost && now_monotonic() - l->refreshed > stale)
			l->lost = true;
		if (l->lost)
			break;
		retry_at = r < 0 ? now_monotonic() + refresh / 5 : 0;
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int repo_lock_verify(struct repo *repo)
{
	struct repo_lock *l = repo->lock;
	usec_t refresh;
	int r = 0;

	if (!l)
		return 0;
	lock_timing(&refresh, NULL);
	pthread_mutex_lock(&l->mu);
	if (l->lost)
		r = -BCDR_ERR_LOCK_LOST;
	else if (now_monotonic() - l->refreshed >= refresh)
		r = lock_refresh_locked(l);
	pthread_mutex_unlock(&l->mu);
	return r;
}

static bool lock_is_stale(json_t *j, const char *myhost)
{
	json_t *host = json_object_get(j, "host"), *pid = json_object_get(j, "pid"),
	       *t = json_object_get(j, "time_us");
	usec_t now = now_realtime(), stale;

	lock_timing(NULL, &stale);
	if (!json_is_string(host) || !json_is_integer(pid) || !json_is_integer(t))
		return true;
	if ((usec_t)json_integer_value(t) + stale < now)
		return true;
	if (strcmp(json_string_value(host), myhost) == 0 && json_integer_value(pid) > 0 &&
	    json_integer_value(pid) < INT32_MAX &&
	    kill((pid_t)json_integer_value(pid), 0) < 0 && errno == ESRCH)
		return true;
	return false;
}

struct lock_scan {
	struct repo *repo;
	bool exclusive; /* any live lock conflicts */
	bool remove_stale;
	bool count_only; /* no conflicts: count the live locks */
	unsigned removed, live;
	char conflict[300];
};

static int scan_lock(const char *name, uint64_t size, void *userdata)
{
	struct lock_scan *s = userdata;
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_json_ json_t *j = NULL;
	char full[128], host[256] = "";
	size_t len;
	int r;

	(void)size;
	if (repo_lock_is_ours(s->repo, name))
		return 0;
	snprintf(full, sizeof(full), "locks/%s", name);
	r = s->repo->backend->ops->get(s->repo->backend, full, 64 << 10, &data, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	gethostname(host, sizeof(host) - 1);
	j = json_loadb((const char *)data, len, 0, NULL);
	if (!json_is_object(j) || lock_is_stale(j, host)) {
		if (s->remove_stale && s->repo->backend->ops->remove(s->repo->backend, full) >= 0)
			s->removed++;
		return 0;
	}
	s->live++;
	if (s->count_only)
		return 0;
	if (s->exclusive || json_is_true(json_object_get(j, "exclusive"))) {
		json_t *h = json_object_get(j, "host"), *p = json_object_get(j, "pid");

		snprintf(s->conflict, sizeof(s->conflict), "%s lock held by pid %lld on '%s'",
			 json_is_true(json_object_get(j, "exclusive")) ? "an exclusive" : "a",
			 (long long)json_integer_value(p), json_is_string(h) ? json_string_value(h) : "?");
		return -BCDR_ERR_LOCKED;
	}
	return 0;
}

static char lock_conflict[300];

const char *repo_lock_conflict(void)
{
	return lock_conflict;
}

/* Stops the refresher: it is gone when this returns. */
static void lock_stop(struct repo_lock *l)
{
	if (!l->started)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	l->started = false;
}

static void repo_lock_free(struct repo_lock *l)
{
	if (!l)
		return;
	lock_stop(l);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

int repo_lock(struct repo *repo, bool exclusive)
{
	struct lock_scan s = { .repo = repo, .exclusive = exclusive, .remove_stale = exclusive };
	struct repo_lock *l;
	pthread_condattr_t ca;
	int r;

	if (repo->lock)
		return -EBUSY;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->backend = repo->backend;
	l->exclusive = exclusive;
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* Write ours first, then look: of two racing lockers at least one sees
	 * the other. */
	r = lock_write(repo->backend, exclusive, l->name);
	if (r < 0) {
		repo_lock_free(l);
		return r;
	}
	l->refreshed = now_monotonic();
	repo->lock = l;
	r = repo->backend->ops->list(repo->backend, "locks", scan_lock, &s);
	if (r < 0) {
		snprintf(lock_conflict, sizeof(lock_conflict), "%s", s.conflict);
		repo_unlock(repo);
		return r;
	}
	r = pthread_create(&l->thread, NULL, lock_refresher, l);
	if (r) {
		repo_unlock(repo);
		return -r;
	}
	l->started = true;
	return 0;
}

int repo_unlock(struct repo *repo)
{
	struct repo_lock *l = repo->lock;
	char full[128];
	int r;

	if (!l)
		return 0;
	lock_stop(l); /* then its name is ours alone */
	snprintf(full, sizeof(full), "locks/%s", l->name);
	r = repo->backend->ops->remove(repo->backend, full);
	repo->lock = NULL;
	repo_lock_free(l);
	return r == -ENOENT ? 0 : r;
}

int repo_remove_stale_locks(struct repo *repo, unsigned *ret_removed)
{
	struct lock_scan s = { .repo = repo, .exclusive = false, .remove_stale = true };
	int r = repo->backend->ops->list(repo->backend, "locks", scan_lock, &s);

	if (r < 0 && r != -BCDR_ERR_LOCKED)
		return r;
	if (ret_removed)
		*ret_removed = s.removed;
	return 0;
}

int repo_count_live_locks(struct repo *repo, unsigned *ret)
{
	struct lock_scan s = { .repo = repo, .count_only = true };
	int r = repo->backend->ops->list(repo->backend, "locks", scan_lock, &s);

	if (r < 0)
		return r;
	*ret = s.live;
	return 0;
}
