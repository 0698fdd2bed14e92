/*
 * store_internal.h - what the store's files share and nobody else needs.
 */
#ifndef PUNIX_STORE_INTERNAL_H
#define PUNIX_STORE_INTERNAL_H

#include "store.h"

char *store_meta_path(const struct store *s, const char *path);
/* Writes the registration of a complete output: the commit point of a build. */
int store_register(struct store *s, const char *path, const unsigned char nar[32], uint64_t bytes,
		   const char *const *deps, size_t ndeps);

/*
 * Reads and validates the registration of the path named name (.meta/<name>.json);
 * a malformed one, or one that names a path outside the store, is an error in err.
 */
int store_read_registration(struct store *s, const char *name, struct store_registration *g, struct sbuf *err);
/* list_dir of a store directory; one not made yet lists as empty. */
int store_list_or_empty(struct store *s, const char *dir, char ***names, size_t *n);

#endif
