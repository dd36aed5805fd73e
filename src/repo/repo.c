/* The repository (repo/repo.h): its objects (sealed, compressed, named by
 * their hash), keys and config, creating and opening it. The rest of
 * repo.h is in repo-index.c (index files and snapshots), repo-blob.c
 * (blobs and trees) and repo-lock.c (locks). */
#include "repo/repo.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <zstd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/parallel.h"

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
	return repo_save_object_with(repo, repo->crypto, kind, dir, plain, len, ret_id);
}

int repo_save_object_with(struct repo *repo, struct crypto_ctx *c, enum object_kind kind,
			  const char *dir, const void *plain, size_t len, uint8_t ret_id[32])
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
	r = object_seal(c, kind, plain, len, &obj, &olen);
	if (r < 0)
		return r;
	if ((r = crypto_sha256(c, obj, olen, id)) < 0)
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

static int load_object_with(struct repo *repo, struct crypto_ctx *c, enum object_kind kind,
			    const char *dir, const char *name, size_t max, uint8_t **ret,
			    size_t *ret_len)
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
	if ((r = crypto_sha256(c, data, len, got)) < 0)
		return r;
	if (memcmp(want, got, 32) != 0)
		return -BCDR_ERR_CORRUPT;
	return repo_open_object(c, kind, data, len, max, ret, ret_len);
}

int repo_load_object(struct repo *repo, enum object_kind kind, const char *dir, const char *name,
		     size_t max, uint8_t **ret, size_t *ret_len)
{
	return load_object_with(repo, repo->crypto, kind, dir, name, max, ret, ret_len);
}

/* repo_parallel()'s loop: each thread's state is its crypto context. */
struct crypto_loop {
	struct repo *repo;
	int (*turn)(size_t i, struct crypto_ctx *c, void *userdata);
	void *userdata;
};

static int crypto_loop_setup(void *userdata, void **ret)
{
	struct crypto_loop *l = userdata;
	struct crypto_ctx *c = NULL;
	int r = crypto_ctx_new(&l->repo->key, &c);

	*ret = c;
	return r;
}

static void crypto_loop_teardown(void *state)
{
	crypto_ctx_free(state);
}

static int crypto_loop_turn(size_t i, void *state, void *userdata)
{
	struct crypto_loop *l = userdata;

	return l->turn(i, state, l->userdata);
}

int repo_parallel(struct repo *repo, size_t n,
		  int (*turn)(size_t i, struct crypto_ctx *c, void *userdata), void *userdata)
{
	static const struct parallel_ops ops = {
		.setup = crypto_loop_setup, .teardown = crypto_loop_teardown,
		.turn = crypto_loop_turn,
	};
	struct crypto_loop l = { .repo = repo, .turn = turn, .userdata = userdata };

	return parallel_for(n, repo->backend->connections ? repo->backend->connections : 2, &ops,
			    &l);
}

/* What repo_load_objects()'s turns share; fn is called under mu. */
struct object_loader {
	struct repo *repo;
	enum object_kind kind;
	const char *dir;
	char *const *names;
	size_t max;
	repo_object_fn fn;
	void *userdata;
	pthread_mutex_t mu;
};

static int load_one(size_t i, struct crypto_ctx *c, void *userdata)
{
	struct object_loader *l = userdata;
	_cleanup_free_ uint8_t *plain = NULL;
	size_t len;
	int r = load_object_with(l->repo, c, l->kind, l->dir, l->names[i], l->max, &plain, &len);

	if (r < 0)
		return r;
	pthread_mutex_lock(&l->mu);
	r = l->fn(i, plain, len, l->userdata);
	pthread_mutex_unlock(&l->mu);
	return r;
}

int repo_load_objects(struct repo *repo, enum object_kind kind, const char *dir,
		      char *const *names, size_t n, size_t max, repo_object_fn fn, void *userdata)
{
	struct object_loader l = {
		.repo = repo, .kind = kind, .dir = dir, .names = names, .max = max, .fn = fn,
		.userdata = userdata,
	};
	int r;

	pthread_mutex_init(&l.mu, NULL);
	r = repo_parallel(repo, n, load_one, &l);
	pthread_mutex_destroy(&l.mu);
	return r;
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

struct config_get {
	struct backend *backend;
	uint8_t *data;
	size_t len;
	int r;
};

static void *config_get_main(void *arg)
{
	struct config_get *g = arg;

	g->r = g->backend->ops->get(g->backend, "config", 1 << 20, &g->data, &g->len);
	return NULL;
}

int repo_open_at(const char *location, const struct backend_options *o, const char *password,
		 struct repo **ret)
{
	_cleanup_(repo_freep) struct repo *repo = repo_alloc();
	_cleanup_free_ uint8_t *cfg = NULL, *plain = NULL;
	struct key_try t = { .password = password };
	struct config_get g = {};
	size_t cfg_len, plain_len, min, avg, max;
	pthread_t getter;
	bool getting;
	int r;

	if (!repo)
		return -ENOMEM;
	r = backend_at(location, o, false, &repo->backend);
	if (r < 0)
		return r;
	/* The config is read while the keys are listed and tried: on a
	 * remote store that is a round trip less for every command. */
	g.backend = repo->backend;
	getting = pthread_create(&getter, NULL, config_get_main, &g) == 0;
	t.repo = repo;
	key_refusal[0] = 0;
	r = repo->backend->ops->list(repo->backend, "keys", try_key, &t);
	if (getting)
		pthread_join(getter, NULL);
	else
		config_get_main(&g);
	cfg = g.data;
	cfg_len = g.len;
	/* The config's errors come first: no repository, or a newer format
	 * (readable without a key), says more than the keys can. */
	if (g.r < 0)
		return g.r == -ENOENT ? -BCDR_ERR_NOT_FOUND : g.r;
	if (cfg_len >= 5 && memcmp(cfg, "BCDR", 4) == 0 && cfg[4] > REPO_FORMAT_VERSION)
		return -BCDR_ERR_VERSION;
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
