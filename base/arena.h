/*
 * arena.h - bump allocation for data that lives exactly as long as one owner.
 *
 * The PCL front end allocates millions of small nodes, strings and values
 * whose lifetime is "until the program is freed". An arena makes that one
 * free() per chunk instead of one per node, and makes leaks on error paths
 * impossible by construction. Allocation failure aborts: every caller would
 * otherwise have to thread ENOMEM through a parser, and there is nothing
 * useful to do on a machine that is out of memory mid-parse.
 */
#ifndef PUNIX_BASE_ARENA_H
#define PUNIX_BASE_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *a_head; /* newest chunk first */
	struct arena_chunk *a_text; /* strings: byte-aligned, newest chunk first */
	size_t a_bytes;             /* total bytes handed out, for stats */
};

void arena_init(struct arena *a);
void arena_free(struct arena *a);
/* Zeroed, aligned for any type. Never returns NULL. */
void *arena_alloc(struct arena *a, size_t size);
/* Copies len bytes and appends a NUL (byte-aligned: strings need no more). */
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_strdup(struct arena *a, const char *s);
/* Copies n elements of size bytes each. */
void *arena_memdup(struct arena *a, const void *p, size_t size);

#endif
