/*
 * vault.h - where secrets come from (docs/pcl.md, "Secrets"): the
 * environment (from_env), a file (from_file), or the vault file given with
 * --vault-secrets (from_vault).
 *
 * A vault file is one JSON object of names to single-line strings:
 *
 *   {"registry-token": "s3cr3t", "DB_PASSWORD": "hunter2"}
 *
 * owned by the user punix runs as and readable by no one else (chmod 600).
 * It is read once (by the CLI for a build, by engine_open for an op) and
 * its values stay in memory, wiped when it is freed. No message names a
 * value: errors say where (a line of the file) and what (a name), never
 * what a value holds.
 */
#ifndef PUNIX_ENGINE_VAULT_H
#define PUNIX_ENGINE_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "../base/ops.h"
#include "../base/sbuf.h"

/* The largest vault file read (1 MiB). */
#define VAULT_MAX_BYTES ((size_t)1 << 20)

struct vault_entry {
	char *name;
	char *value; /* NUL-terminated; no NUL, CR or LF inside */
	size_t len;
};

struct vault {
	char *path; /* for messages; NULL for one parsed from memory */
	struct vault_entry *entries;
	size_t n;
};

/*
 * Parses a vault file's bytes: 0, or -EBADMSG with err saying why (not
 * JSON, not an object, a name given twice, a value that is not a string or
 * holds a line break or NUL) and where (line N), never a value.
 */
int vault_parse(const char *buf, size_t len, struct vault *out, struct sbuf *err);

/*
 * Reads the vault file at path through o: refused (-EPERM) unless it is a
 * regular file owned by uid (the user punix runs as) with no permission
 * for its group or others; then parsed (-EBADMSG). err names the file and
 * says how to fix it. The buffer read is wiped.
 */
int vault_open(struct punix_ops *o, const char *path, int64_t uid, struct vault *out, struct sbuf *err);

/* NAME's value (len, if not NULL, gets its length), or NULL. */
const char *vault_get(const struct vault *v, const char *name, size_t *len);

/* Wipes every value and frees them. */
void vault_free(struct vault *v);

/* Every place a secret can come from, as the CLI read them (once). */
struct secret_sources {
	char *const *env;          /* from_env: NAME=VALUE, NULL-terminated (NULL: none) */
	const struct vault *vault; /* from_vault: the --vault-secrets file, or NULL when none was given */
	struct punix_ops *ops;     /* from_file: read through it */
};

/*
 * Resolves one secret of kind (ENV_FROM_ENV, ENV_FROM_FILE or
 * ENV_FROM_VAULT, desc.h) named name: 0 with *value malloc'd (a file's one
 * trailing newline stripped; the caller wipes and frees it), or -1 with
 * why saying in a few words why not ("not set", "not in the vault file
 * /etc/punix/vault.json", ...), never a value.
 */
int secret_resolve(const struct secret_sources *ss, int kind, const char *name, char **value, size_t *len,
		   struct sbuf *why);

/* Overwrites n bytes at p with zeros, in a way the compiler keeps. */
void secret_wipe(void *p, size_t n);

#endif
