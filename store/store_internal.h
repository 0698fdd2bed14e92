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

#endif
