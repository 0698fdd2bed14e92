/*
 * plan.h - an op's plan, typed, and its versioned binary encoding.
 *
 * The plan is what an op's steps after the plan step need, recorded in the
 * op's journal record before the next step runs, so that recovery (in
 * another process, after a crash) can finish or undo the op from the
 * journal alone: where the target is, the generation, what it pins and
 * which files it has.
 *
 *   plan   := "PPL" version(1) { field }
 *   field  := tag(1) length(4, LE) bytes
 *
 * Text fields are UTF-8 without NUL; numbers are 8 bytes LE (two's
 * complement for the signed ones); a list is its field repeated, in order;
 * a file entry is a nested sequence of fields. Every field of a version is
 * known to its decoder: an unknown tag, a field of the wrong size or a
 * truncated one is an error that names it, never a guess. Version 1 is the
 * first; version 2 adds the target's --remote-punix (host mode) and a
 * fleet run's hosts; version 3 adds --supervisor-conf, and a plan without
 * it is still written as version 2; version 4 adds confirm-or-revert
 * (--confirm-timeout, the confirmation's token, --health), written only by
 * an op that asks for it. Plans of versions 1 and 2 are still
 * read; a plan written by punix before it (JSON text, journal format 2)
 * is still read (plan_decode takes both).
 */
#ifndef PUNIX_ENGINE_PLAN_H
#define PUNIX_ENGINE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../base/sbuf.h"

#define PLAN_VERSION 4

/* A file of the generation: a config file (by content hash) or a secret (never its content). */
struct plan_file {
	char *path;
	char *sha256; /* config files; NULL for a secret */
	uint32_t mode;
	char *owner;  /* secrets: the service's user, or NULL */
};

struct op_plan {
	/* where: the target */
	char *ssh, *known_hosts, *key, *transport_root, *deployments_root, *unit_dir, *store_root;
	char *stack;
	char *remote_punix; /* host mode: the target's punix as the op named it (--remote-punix), or NULL */
	char *supervisor_conf; /* supervisord stacks: --supervisor-conf as given, or NULL (version 3) */
	char *fleet;        /* a fleet run's: {"file", "hosts": [{"host", "stack", "target", "op", "status"}]} (JSON) */
	bool activate, enable;
	/* confirm-or-revert (version 4): seconds to wait (0: none), the token a deployer confirms with (NULL: none
	 * needed, only the health check), the health check (NULL: none) */
	long confirm_timeout;
	char *confirm_token, *health;
	bool confirm_needed; /* a deployer's confirmation is waited for (host mode); else the token is the op's own */
	/* deploy, rollback, set-current */
	long generation, previous;
	char *deployed_at, *source_hash;
	char **store_paths;
	size_t npaths;
	struct plan_file *config_files, *secret_files;
	size_t nconfig, nsecret;
	char **adopt;
	size_t nadopt;
	char *services; /* the manifest's "services" (JSON text, written into the manifest as is) */
	/* gc */
	char **dead;    /* store paths to delete if still dead under the lock */
	size_t ndead;
	long roots, keep_set;
	/* prune */
	long keep;
	long *prune;    /* generations to delete */
	size_t nprune;
};

/* Encodes p; malloc'd bytes in *out. */
void plan_encode(const struct op_plan *p, unsigned char **out, size_t *len);
/*
 * Decodes a plan (binary, or a JSON plan of an older punix) into p; 0, or
 * -EBADMSG with err saying what is wrong and p empty.
 */
int plan_decode(const void *buf, size_t len, struct op_plan *p, struct sbuf *err);
void plan_free(struct op_plan *p);

/* The plan as one JSON object, for `punix journal show`; malloc'd text. */
char *plan_to_json(const struct op_plan *p);

/* Files as a manifest and `journal show` list them: [{"path", "mode", "sha256"?, "owner"?}]. */
json_t *plan_files_json(const struct plan_file *f, size_t n);
/* Paths as a JSON list. */
json_t *plan_texts_json(char *const *l, size_t n);

/* A copy of s (NULL stays NULL), for filling a plan. */
char *plan_strdup(const char *s);
/* Appends a copy of s to the list. */
void plan_list_add(char ***list, size_t *n, const char *s);

#endif
