/*
 * arena.c - chunked bump allocator (see arena.h).
 *
 * Two chains of chunks: one for objects, aligned for any type, and one for
 * strings, which need no alignment (a three-byte string costs four bytes,
 * not sixteen). Chunks grow geometrically, so a large program needs few of
 * them and a small one stays small.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define ARENA_CHUNK_MIN ((size_t)64 * 1024)
#define ARENA_CHUNK_MAX ((size_t)4 * 1024 * 1024)
#define ARENA_ALIGN ((size_t)16)

struct arena_chunk {
	struct arena_chunk *c_next;
	size_t c_used;
	size_t c_size;
	_Alignas(16) unsigned char c_data[];
};

void arena_init(struct arena *a)
{
	a->a_head = NULL;
	a->a_text = NULL;
	a->a_bytes = 0;
}

static void free_chain(struct arena_chunk *c)
{
	while (c) {
		struct arena_chunk *next = c->c_next;
		free(c);
		c = next;
	}
}

void arena_free(struct arena *a)
{
	free_chain(a->a_head);
	free_chain(a->a_text);
	arena_init(a);
}

/* need bytes from the chain at *head, starting a new chunk when they do not fit. */
static void *bump(struct arena *a, struct arena_chunk **head, size_t need)
{
	struct arena_chunk *c = *head;
	if (!c || c->c_size - c->c_used < need) {
		/* Each chunk as large as the last one doubled, up to a cap. */
		size_t cap = c ? c->c_size * 2 : ARENA_CHUNK_MIN;
		if (cap > ARENA_CHUNK_MAX)
			cap = ARENA_CHUNK_MAX;
		if (cap < need)
			cap = need;
		c = xmalloc(sizeof(*c) + cap);
		c->c_used = 0;
		c->c_size = cap;
		c->c_next = *head;
		*head = c;
	}
	void *p = c->c_data + c->c_used;
	c->c_used += need;
	a->a_bytes += need;
	return p;
}

void *arena_alloc(struct arena *a, size_t size)
{
	size_t need = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	if (need < size)
		xalloc_die();
	void *p = bump(a, &a->a_head, need);
	memset(p, 0, size);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
	if (len + 1 == 0)
		xalloc_die();
	char *p = bump(a, &a->a_text, len + 1);
	if (len)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

void *arena_memdup(struct arena *a, const void *p, size_t size)
{
	void *q = arena_alloc(a, size);
	if (size)
		memcpy(q, p, size);
	return q;
}
