/*
 * arena.c - chunked bump allocator (see arena.h).
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Large enough that a 10^5-module program needs a few hundred chunks. */
#define ARENA_CHUNK_MIN ((size_t)64 * 1024)
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
	a->a_bytes = 0;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->a_head;
	while (c) {
		struct arena_chunk *next = c->c_next;
		free(c);
		c = next;
	}
	a->a_head = NULL;
	a->a_bytes = 0;
}

void *arena_alloc(struct arena *a, size_t size)
{
	size_t need = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	if (need < size)
		xalloc_die();
	struct arena_chunk *c = a->a_head;
	if (!c || c->c_size - c->c_used < need) {
		size_t cap = need > ARENA_CHUNK_MIN ? need : ARENA_CHUNK_MIN;
		c = xmalloc(sizeof(*c) + cap);
		c->c_used = 0;
		c->c_size = cap;
		c->c_next = a->a_head;
		a->a_head = c;
	}
	void *p = c->c_data + c->c_used;
	c->c_used += need;
	a->a_bytes += need;
	memset(p, 0, size);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *p = arena_alloc(a, len + 1);
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
