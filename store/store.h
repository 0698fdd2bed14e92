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
#include "../base/strmap.h"
#include "store_fetch.h"
#include "store_unpack.h"

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

/*
 * The version of the store's layout, written into its marker
 * (<root>/.punix-store) when the store is made. A directory without the
 * marker is not a store: nothing that deletes (gc, recover) touches it.
 */
#define STORE_FORMAT 1
#define STORE_MARKER ".punix-store"

/*
 * A store has two directories (docs/store.md): its logical one, `root`,
 * which store paths, manifests and units name; and its real one, `real`,
 * where its bytes are as this machine sees them. They are equal for the
 * local store; a target's store opened through a rebased ops table has the
 * logical root in the table's path space and the real one under the
 * transport root. Effects use `root` through `ops`; messages name `real`.
 */
struct store {
	struct punix_ops *ops;
	char *root;     /* logical: absolute, canonical, no trailing slash */
	char *real;     /* real: for messages */
	char *meta_dir;
	char *lock_dir;
	char *build_dir;
	char *log_dir;
	char *cache_dir; /* url sources' downloads (store_fetch.h), or NULL: set by the opener, freed by store_close */
	char system[96]; /* what its builds are for, "<uname -m>-linux", from its ops table's machine */
};

enum {
	STORE_CREATE = 1 << 0, /* make the store (and its marker) if it does not exist */
};

/*
 * Opens the store at root (absolute and canonical) with build logs in
 * log_dir (NULL: none). Without STORE_CREATE nothing is created, and a
 * directory without a valid marker is refused (-ENOENT: nothing there;
 * -ENOTDIR/-EBADMSG/-EPROTO: not a store, or not this version's), with err
 * naming it. real_hint, if not NULL, is where root really is, for messages.
 */
int store_open(struct store *s, struct punix_ops *ops, const char *root, const char *real_hint,
	       const char *log_dir, int flags, struct sbuf *err);
/*
 * A store that does not exist (yet), for what only names paths or counts
 * them (store path, store info, build --dry-run): it has no entries, and
 * nothing is created. Closed with store_close.
 */
void store_view(struct store *s, struct punix_ops *ops, const char *root);
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
	/*
	 * A url source instead (source_dir NULL): the URL, the name its file
	 * gets in src/, and (in source_hash) its declared SHA-256. Only the
	 * name and the hash are inputs: the same file from another URL is the
	 * same derivation. fetch downloads it (the caller's network seam),
	 * sending header's line if header is not NULL (a token: made only
	 * when the file is not cached; not an input, so it names no path);
	 * unpack reads it if its name is an archive's (unpack_format_of);
	 * module names the package in messages (not an input). fetch_set,
	 * if not NULL, is how downloads are made (limits, CA bundle, progress;
	 * not an input either).
	 */
	const char *source_url;
	const char *source_name;
	fetch_transfer_fn fetch;
	unpack_read_fn unpack;
	/*
	 * A git source instead: the repository and the tag, cloned into the
	 * download cache; source_hash is its tree's declared hash, the input,
	 * as a local source's tree hash is (the same tree is the same source).
	 */
	const char *git_url, *git_tag;
	const struct fetch_header *header;
	const struct fetch_settings *fetch_set;
	const char *module;
	unsigned char source_hash[32];
	const char *system;  /* "x86_64-linux" */
	const char *const *deps; /* store paths of dependencies, sorted, unique */
	size_t ndeps;
};

/* The canonical bytes the path is named by. */
void store_drv_encode(const struct store_drv *d, struct sbuf *out);
/* "<root>/<hash>-<pname>-<version>", malloc'd. */
char *store_drv_path(const struct store *s, const struct store_drv *d);
/* The system string of an architecture ("x86_64" -> "x86_64-linux"), into out. */
void store_system_of(const char *arch, char *out, size_t n);

/* ---- validity and realisation -------------------------------------------- */

/* The last component of a store path ("<hash>-<pname>-<version>"). */
const char *store_path_name(const char *path);

/* ---- the bytes on disk (store_format.c: pure, fuzzed) --------------------- */

/* "<32 base32 chars>-<name>", with only safe file-name characters. */
bool store_name_valid(const char *name);
/* The name of path if it is <store_dir>/<a valid name>, else NULL. */
const char *store_path_in(const char *store_dir, const char *path);

/* The marker's bytes for a store whose logical directory is store_dir. */
char *store_marker_encode(const char *store_dir, size_t *len);
/* 0 with *store_dir malloc'd; -EBADMSG or -EPROTO with err saying why. */
int store_marker_parse(const char *buf, size_t len, char **store_dir, struct sbuf *err);

struct store_registration {
	char *nar_sha256; /* hex */
	uint64_t bytes;
	char **deps;      /* store paths, each <store_dir>/<valid name> */
	size_t ndeps;
};

/*
 * Validates the registration of <store_dir>/<name>: its path must be
 * exactly that, its dependencies paths of the same store. -EBADMSG with err
 * saying why (without the file's name: the caller adds it).
 */
int store_registration_parse(const char *buf, size_t len, const char *store_dir, const char *name,
			     struct store_registration *g, struct sbuf *err);
void store_registration_free(struct store_registration *g);

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

/* ---- receiving a path from elsewhere (store_receive.c) ---------------------- */

/*
 * A store path sent by another machine: begin (with the registration that
 * came with it), its entries in order (the path itself first, a directory
 * before what is in it) with each file's bytes, then commit. begin returns
 * 1 when the path is valid here already: entries are then read and
 * dropped, and commit returns 1. commit checks the tree's hash against the
 * registration and every dependency's validity, then makes it valid as a
 * build would; on any failure nothing valid changes.
 */
struct store_recv {
	struct store *s;
	char *path, *tmp, *cur;
	struct store_registration reg;
	int lock_h, fd;
	uint64_t left;
	size_t nentries;
	bool skip;
	/* entries that are not directories ("\n"-separated): nothing may be written below them */
	struct sbuf leaves;
};
/* The lock file of the store path (or name) path: "<store>/.locks/<name>.lock"; malloc'd. */
char *store_lock_path(const struct store *s, const char *path);
void store_recv_init(struct store_recv *rv);
int store_recv_begin(struct store *s, const char *path, const char *reg, size_t reg_len, struct store_recv *rv,
		     struct sbuf *err);
/* kind: 'd', 'f', 'x' (executable), 'l' (link is its target); size: a file's */
int store_recv_entry(struct store_recv *rv, char kind, const char *rel, const char *link, uint64_t size,
		     struct sbuf *err);
int store_recv_data(struct store_recv *rv, const void *buf, size_t n, struct sbuf *err);
int store_recv_commit(struct store_recv *rv, struct sbuf *err);
void store_recv_abort(struct store_recv *rv);
/*
 * Makes the tree at tmp (beside path, made by the caller) the valid path,
 * with no dependencies: hashed, read-only, durable, renamed, registered.
 * 1 if path was valid already (tmp is removed).
 */
int store_add_tree(struct store *s, const char *tmp, const char *path, struct sbuf *err);

/* ---- maintenance ----------------------------------------------------------- */

struct store_entry {
	char *path;
	char *nar_sha256; /* hex, as registered */
	uint64_t bytes;
};

/* The registration of path: its dependencies (malloc'd strings). */
int store_path_deps(struct store *s, const char *path, char ***deps, size_t *n);

/*
 * Every registration of the store, each read once (store_gc.c): what a
 * collection decides on. One listing of .meta/, one read per path; an
 * invalid registration fails it (err names it), as store_list does.
 */
struct store_index_entry {
	char *path; /* <root>/<name> */
	uint64_t bytes;
	char **deps; /* store paths of the same store */
	size_t ndeps;
};
struct store_index {
	struct store_index_entry *v; /* sorted by path */
	size_t n;
	struct strmap by_path;
};
int store_index_read(struct store *s, struct store_index *ix, struct sbuf *err);
/* The entry of a registered path, or NULL. */
const struct store_index_entry *store_index_get(const struct store_index *ix, const char *path);
void store_index_free(struct store_index *ix);

/*
 * Deletes paths of the store so that no moment leaves a path that looks
 * valid: every registration goes first, with one fsync of their directory
 * (the paths are then merely unregistered, which recovery cleans), then
 * each tree is removed in place, by descriptors (ops.h: remove_children).
 * A path or registration already gone is no error. On success *done is n.
 */
int store_delete_many(struct store *s, const char *const *paths, size_t n, size_t *done);
/*
 * Removes what a creation of the store at root that was cut short left
 * beside it: directories named like its temporary (ops_tmp_name) holding
 * nothing but a marker. Run by recovery; a creation still in progress
 * elsewhere would fail cleanly (its rename finds nothing) and can be retried.
 */
int store_sweep_creation(struct punix_ops *o, const char *root);
/* Empties .trash/ (what a deletion of an older punix, which renamed paths there first, left). */
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
