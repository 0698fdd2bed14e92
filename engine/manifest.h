/*
 * manifest.h - generation manifests (gen-NNN.json) and the layout of a
 * stack's directory on a target. Every manifest read is validated: a
 * truncated, foreign or hand-edited one is an error naming the file.
 */
#ifndef PUNIX_ENGINE_MANIFEST_H
#define PUNIX_ENGINE_MANIFEST_H

#include <jansson.h>

#include "../base/ops.h"
#include "../base/sbuf.h"

struct manifest_file {
	const char *path;
	const char *sha256; /* NULL for a secret file: its content is never hashed */
	uint32_t mode;
	const char *owner;  /* secret files: a user to own it, or NULL */
};

struct manifest {
	json_t *root; /* owns the strings below */
	long generation;
	const char *stack;
	const char *deployed_at;
	const char **store_paths;
	size_t npaths;
	struct manifest_file *files;
	size_t nfiles;
	struct manifest_file *secret_files; /* kept in gen-NNN.secrets/ */
	size_t nsecret;
};

char *gen_manifest_path(const char *deployments_root, const char *stack, long n);
char *gen_files_dir(const char *deployments_root, const char *stack, long n);
char *gen_secrets_dir(const char *deployments_root, const char *stack, long n);
char *stack_dir(const char *deployments_root, const char *stack);

/* Reads and validates gen-NNN.json of stack on a target. -ENOENT if absent. */
int manifest_read(struct punix_ops *o, const char *deployments_root, const char *stack, long n, struct manifest *m,
		  struct sbuf *err);
/*
 * Validates the bytes of a manifest (pure; fuzzed): path names the file in
 * messages, stack and n are what its name says it is.
 */
int manifest_parse(const char *buf, size_t len, const char *path, const char *stack, long n, struct manifest *m,
		   struct sbuf *err);
void manifest_free(struct manifest *m);

/*
 * The generation current names: 0 if there is no current link, -1 with err
 * set if the link is not a generation's manifest name.
 */
long current_generation(struct punix_ops *o, const char *deployments_root, const char *stack, struct sbuf *err);

/* Generation numbers present (with a manifest file), ascending. */
int list_generations(struct punix_ops *o, const char *deployments_root, const char *stack, long **gens, size_t *n);

/* Hex SHA-256 of bytes into out[65]. */
void sha256_hex(const void *p, size_t n, char out[65]);

#endif
