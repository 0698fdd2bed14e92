/*
 * store.h - the content-addressed store: derivations, paths, realisation,
 * validity, verification.
 *
 * Layout under the store root (docs/store.md):
 *
 *   <hash>-<pname>-<version>/   a built package, read-only once valid
 *   .meta/<name>.json           its registration: written last, so a path
 *                               is valid exactly when its registration exists
 *   .locks/<name>.lock          one builder per derivation at a time
 *   .build/<name>-<random>/     a build in progress: src/, home/, tmp/ (its
 *                               output is written straight to <name>/)
 *
 * A package's store path is named by the SHA-256 of its canonical
 * derivation: the recipe and the builder's version, the evaluated recipe
 * arguments, the source tree's content, the target system, and the store
 * paths of its dependencies. Secrets never enter it.
 *
 * Every effect goes through the ops table given to store_open().
 */
#ifndef PUNIX_STORE_H
#define PUNIX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/ops.h"
#include "../base/sbuf.h"

/*
 * The identity of the std.shell builder. Changing how it runs a build (its
 * environment, working directory, normalisation of outputs) must change
 * this string, which changes every store path built with it.
 */
#define STORE_SHELL_BUILDER "std.shell/2"

/*
 * The user a build runs as when punix runs as root; when /etc/passwd has no
 * such user, builds run as nobody (uid 65534). Not root: as punix itself.
 * (`useradd --system --no-create-home --home-dir /nonexistent
 * --shell /usr/sbin/nologin punixbld` creates it; docs/store.md.)
 */
#define STORE_BUILD_USER "punixbld"

/* Characters of the hash part of a store path name: 160 bits in base32. */
#define STORE_HASH_CHARS 32

struct store {
	struct punix_ops *ops;
	char *root;     /* absolute, no trailing slash */
	char *meta_dir;
	char *lock_dir;
	char *build_dir;
	char *log_dir;
};

/* Opens (creating if needed) the store at root, with build logs in log_dir. */
int store_open(struct store *s, struct punix_ops *ops, const char *root, const char *log_dir, struct sbuf *err);
void store_close(struct store *s);

/* ---- hashing ------------------------------------------------------------- */

void store_sha256(const void *p, size_t n, unsigned char out[32]);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void store_hex(const unsigned char *p, size_t n, char *out);
/* Nix-style base32 of the first 20 bytes: STORE_HASH_CHARS chars + NUL. */
void store_base32(const unsigned char hash[32], char out[STORE_HASH_CHARS + 1]);

/*
 * The SHA-256 of the canonical serialisation of the tree at path: entry
 * names in byte order, for each its type, whether a file is executable,
 * file contents, symlink targets (never followed). *bytes, if not NULL,
 * gets the total size of file contents.
 */
int store_hash_tree(struct punix_ops *ops, const char *path, unsigned char out[32], uint64_t *bytes);

/* ---- derivations --------------------------------------------------------- */

struct store_drv {
	const char *pname;
	const char *version;
	const char *recipe;  /* "std.shell" */
	const char *args;    /* canonical encoding of recipeArgs */
	size_t args_len;
	const char *command; /* std.shell's command */
	const char *source_dir; /* resolved source directory, or NULL */
	unsigned char source_hash[32];
	const char *system;  /* "x86_64-linux" */
	const char *const *deps; /* store paths of dependencies, sorted, unique */
	size_t ndeps;
};

/* The canonical bytes the path is named by. */
void store_drv_encode(const struct store_drv *d, struct sbuf *out);
/* "<root>/<hash>-<pname>-<version>", malloc'd. */
char *store_drv_path(const struct store *s, const struct store_drv *d);
/* This machine's system string, e.g. "x86_64-linux". */
const char *store_system(void);

/* ---- validity and realisation -------------------------------------------- */

/* The last component of a store path ("<hash>-<pname>-<version>"). */
const char *store_path_name(const char *path);

bool store_is_valid(struct store *s, const char *path);

enum store_outcome {
	STORE_BUILT,
	STORE_CACHED,
	STORE_FAILED,
};

struct store_result {
	enum store_outcome outcome;
	char *log_path; /* malloc'd; the build log */
	struct sbuf error; /* why it failed, one line */
};

void store_result_free(struct store_result *r);

/*
 * Makes path valid by building d, unless it already is. Concurrent callers
 * for one derivation serialise on its lock; the later ones find it valid.
 * Leftovers of an interrupted build of the same derivation are removed
 * first. The command writes path itself ($OUTPUT), as STORE_BUILD_USER (or
 * nobody) when punix is root; path is registered only once it is complete,
 * root's (when punix is root), read-only and on disk. Returns 0 with r->outcome set, or a negative errno for an effect
 * that failed outside the build itself.
 */
int store_realise(struct store *s, const struct store_drv *d, const char *path, struct store_result *r);

/*
 * The store-wide lock: builds and deploys hold it shared for as long as
 * they may create or pin paths; garbage collection holds it exclusive
 * while it decides what is dead and deletes it. Waits. 0 with *h, or <0.
 */
int store_lock(struct store *s, bool exclusive, int *h);
void store_unlock(struct store *s, int h);

/* ---- maintenance ----------------------------------------------------------- */

struct store_entry {
	char *path;
	char *nar_sha256; /* hex, as registered */
	uint64_t bytes;
};

/* The registration of path: its dependencies (malloc'd strings). */
int store_path_deps(struct store *s, const char *path, char ***deps, size_t *n);

/*
 * Deletes registered paths so that no moment leaves a path that looks
 * valid: every registration goes first, with one fsync of their directory
 * (the paths are then merely unregistered, which recovery cleans), then
 * each tree is renamed into .trash/ and the trash removed. On return *done
 * counts the paths deleted.
 */
int store_delete_many(struct store *s, const char *const *paths, size_t n, size_t *done);
/* Empties .trash/ (what an interrupted deletion left). */
int store_empty_trash(struct store *s);

/* Every registered path, sorted by name. */
int store_list(struct store *s, struct store_entry **out, size_t *n, struct sbuf *err);
void store_entries_free(struct store_entry *e, size_t n);

/* Re-hashes one entry: 0 intact, 1 corrupted, 2 missing, <0 an error. */
int store_verify_entry(struct store *s, const struct store_entry *e);

/*
 * Removes what interrupted builds left behind: build directories and
 * unregistered paths whose derivation lock is free, temporary files of
 * registrations. report() is told each one; with dry set, nothing is
 * removed, only reported.
 */
int store_clean_leftovers(struct store *s, bool dry, void (*report)(void *arg, const char *what, const char *path),
			  void *arg);

#endif
