/* A repository: backend, keys, config, index, snapshots and locks. The
 * layout and every byte format are specified in docs/repository-format.md.
 *
 *   config            object (kind config): id, chunker sizes, compression
 *   keys/<id>         JSON: scrypt parameters, salt, the sealed master key
 *   data/<xx>/<id>    packs (pack.h)
 *   index/<id>        objects (kind index): where each blob lives
 *   snapshots/<id>    objects (kind snapshot): the commit points
 *   locks/<id>        JSON: host, pid, time, exclusive
 *
 * An object is "BCDR" | u8 format version | u8 kind | u16 0 | sealed(
 * zstd(plaintext)) with the first 8 bytes as associated data; all but the
 * config are named by the SHA-256 of their bytes. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "repo/backend.h"
#include "repo/chunker.h"
#include "repo/crypto.h"
#include "repo/index.h"
#include "repo/snapshot.h"
#include "repo/tree_reader.h"

#define REPO_FORMAT_VERSION 1
#define REPO_OBJECT_HEADER 8
#define REPO_MAX_OBJECT (1u << 30)
#define REPO_MAX_KEYFILE (64u << 10)

enum object_kind { OBJ_CONFIG = 1, OBJ_INDEX = 2, OBJ_SNAPSHOT = 3 };

struct repo_lock;

struct repo {
	struct backend *backend;
	struct master_key key;
	struct crypto_ctx *crypto; /* for the thread that opened the repository */
	struct chunker chunker;
	struct index *index;       /* after repo_load_index() */
	char **index_files;        /* their names, NULL-terminated */
	char key_name[65];         /* the key file the password opened */
	struct repo_lock *lock;    /* our lock, when held (refreshed by a thread) */
	char id[33];
	int compression;           /* zstd level */
};

/* Creates a repository at location (repo/location.h: a missing or empty
 * directory, or a remote one); o may be NULL. A malformed location is
 * -BCDR_ERR_USAGE (location_parse() says why). */
int repo_init_at(const char *location, const struct backend_options *o, const char *password,
		 struct repo **ret);
/* Opens it: a newer format gives -BCDR_ERR_VERSION, a password that opens
 * no key -BCDR_ERR_AUTH. */
int repo_open_at(const char *location, const struct backend_options *o, const char *password,
		 struct repo **ret);
/* The key files the last repo_open_at() of this thread skipped because
 * they ask scrypt for more than bcdr writes, as a message naming them; ""
 * when none (static, per thread). */
const char *repo_key_refusal(void);
/* The same with default options. */
int repo_init(const char *location, const char *password, struct repo **ret);
int repo_open(const char *location, const char *password, struct repo **ret);
/* Releases the lock if held. */
void repo_free(struct repo *repo);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct repo *, repo_free)

/* Stores plaintext as a new object in dir ("index", "snapshots"); its
 * name (hex SHA-256 of the stored bytes) goes to ret_id when not NULL. */
int repo_save_object(struct repo *repo, enum object_kind kind, const char *dir, const void *plain,
		     size_t len, uint8_t ret_id[32]);
/* The same, sealed with c: for threads other than the one that opened. */
int repo_save_object_with(struct repo *repo, struct crypto_ctx *c, enum object_kind kind,
			  const char *dir, const void *plain, size_t len, uint8_t ret_id[32]);
/* Finishes the pack (header sealed with c) and stores it as data/<id>. */
int repo_save_pack(struct repo *repo, struct crypto_ctx *c, struct pack_writer *w,
		   uint8_t ret_id[32]);
/* Loads and opens dir/name, checking the name is the hash of the bytes;
 * plaintext is a heap buffer (free() it) NUL-terminated. */
int repo_load_object(struct repo *repo, enum object_kind kind, const char *dir, const char *name,
		     size_t max, uint8_t **ret, size_t *ret_len);
/* Loads dir/NAME for each of the n names on parallel threads (the remote
 * store's connections, else two; each with its own crypto context, so
 * repo->crypto is not used) and hands each plaintext to fn, one call at a
 * time, in no given order; fn borrows it. The first error, a load's or
 * fn's, stops the rest and is returned. */
typedef int (*repo_object_fn)(size_t i, const uint8_t *plain, size_t len, void *userdata);
int repo_load_objects(struct repo *repo, enum object_kind kind, const char *dir,
		      char *const *names, size_t n, size_t max, repo_object_fn fn, void *userdata);
/* turn(i, c, userdata) for i in [0, n) on parallel threads (the remote
 * store's connections, else two), c the thread's own crypto context;
 * parallel_for() (lib/parallel.h) says the rest. */
int repo_parallel(struct repo *repo, size_t n,
		  int (*turn)(size_t i, struct crypto_ctx *c, void *userdata), void *userdata);
/* Opens an object already read (for check and the fuzzers). */
int repo_open_object(struct crypto_ctx *c, enum object_kind kind, const uint8_t *data, size_t len,
		     size_t max, uint8_t **ret, size_t *ret_len);

/* Reads every index file into repo->index (again, if loaded). */
int repo_load_index(struct repo *repo);

/* Every snapshot, oldest first; free with snapshots_free(). One that
 * cannot be read or decoded fails the whole list (with its error). */
int repo_list_snapshots(struct repo *repo, struct snapshot ***ret, size_t *ret_n);
void snapshots_free(struct snapshot **v, size_t n);
/* "latest" or a unique hex prefix of a snapshot ID. */
int repo_find_snapshot(struct repo *repo, const char *spec, struct snapshot **ret);
int repo_save_snapshot(struct repo *repo, struct snapshot *s);
int repo_remove_snapshot(struct repo *repo, const uint8_t id[32]);

/* Reads, checks and decompresses one blob via the index into *buf (grown
 * as needed, capacity *cap). Returns its length. */
int repo_read_blob(struct repo *repo, struct crypto_ctx *c, void *dctx, enum blob_type type,
		   const uint8_t id[32], uint8_t **buf, size_t *cap, uint8_t **scratch,
		   size_t *scratch_cap);
/* Index files for the packs from first_pack on (those this process
 * added), a bounded number of blobs in each. */
int repo_save_index(struct repo *repo, size_t first_pack);
/* The same for ix's packs; the IDs of the files written in *ret_ids
 * (free() it; NULL: not wanted), their count in *ret_n. */
int repo_save_index_of(struct repo *repo, struct index *ix, size_t first_pack,
		       uint8_t (**ret_ids)[32], size_t *ret_n);
/* A snapshot's nodes one at a time (tree_reader_next), its tree blobs read
 * as the reader needs them; s must outlive the reader. */
int repo_tree_open(struct repo *repo, const struct snapshot *s, struct tree_reader **ret);
/* For a reader that runs while other threads insert into the index: it
 * looks blobs up under lock (the one they insert under). */
void repo_tree_set_index_lock(struct tree_reader *r, pthread_mutex_t *lock);
void repo_tree_close(struct tree_reader *r);
/* The snapshot's node list, whole. */
int repo_load_tree(struct repo *repo, const struct snapshot *s, struct tree **ret);

/* Locks: shared (backup, restore, check) or exclusive (forget, prune).
 * A held lock is refreshed every 5 minutes by a thread repo_lock() starts
 * and repo_unlock() stops; a lock not refreshed for 30 minutes, or whose
 * process is gone (same host), is stale: others ignore it, and exclusive
 * lockers remove it. BCDR_TEST_LOCK_REFRESH_MS (test suite only, logged)
 * shortens both, stale staying six refreshes. -EBUSY when already held. */
int repo_lock(struct repo *repo, bool exclusive);
int repo_unlock(struct repo *repo);
/* Refreshes the lock now when a refresh is due; -BCDR_ERR_LOCK_LOST when
 * another process removed it as stale (this one was stopped or cut off
 * past the stale age) or it went that long without a refresh: whatever it
 * protected may be gone, so nothing may be committed under it.
 * repo_save_object() calls it for every index and snapshot. 0 without a
 * lock. */
int repo_lock_verify(struct repo *repo);
/* True when name (a lock object in locks/) is the one we hold. */
bool repo_lock_is_ours(struct repo *repo, const char *name);
/* How many live locks others hold now (stale ones not counted). */
int repo_count_live_locks(struct repo *repo, unsigned *ret);
/* The locks of others that the look after taking ours saw: live ones,
 * and stale ones left in place (0 and 0 without a lock of ours). */
void repo_lock_others(struct repo *repo, unsigned *ret_live, unsigned *ret_stale);
/* Who holds the lock that made the last repo_lock() fail (static). */
const char *repo_lock_conflict(void);
/* Removes locks whose process is gone (same host) or that are too old;
 * *ret_others: the locks of others still there (live, or stale but not
 * removable). */
int repo_remove_stale_locks(struct repo *repo, unsigned *ret_removed, unsigned *ret_others);

/* Adds a key file for password (wrapping the same master key); its name
 * goes to ret_name (65 bytes). */
int repo_add_key(struct repo *repo, const char *password, char ret_name[65]);
int repo_remove_key(struct repo *repo, const char *name);

/* Decoders of repository bytes, exposed for check and the fuzzers. */
int key_file_decode(const uint8_t *data, size_t len, uint64_t *n, uint32_t *r, uint32_t *p,
		    uint8_t salt[32], uint8_t *sealed, size_t *sealed_len);
int config_decode(const uint8_t *data, size_t len, char id[33], size_t *min, size_t *avg,
		  size_t *max, int *compression);

/* "data/<hex>", "index/<hex>", ... into out (at least 80 bytes). */
void repo_object_name(const char *dir, const uint8_t id[32], char *out, size_t size);
