/*
 * strmap.c - string-keyed hash map (see strmap.h).
 */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static uint64_t strmap_hash(const char *s)
{
	/* FNV-1a: short keys, no adversary with a reason to collide them. */
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

void strmap_init(struct strmap *m)
{
	m->m_slots = NULL;
	m->m_cap = m->m_n = 0;
}

void strmap_free(struct strmap *m)
{
	free(m->m_slots);
	strmap_init(m);
}

static struct strmap_slot *strmap_find(const struct strmap *m, const char *key)
{
	size_t mask = m->m_cap - 1;
	size_t i = (size_t)strmap_hash(key) & mask;
	for (;;) {
		struct strmap_slot *s = &m->m_slots[i];
		if (!s->s_key || strcmp(s->s_key, key) == 0)
			return s;
		i = (i + 1) & mask;
	}
}

void *strmap_get(const struct strmap *m, const char *key)
{
	if (!m->m_cap)
		return NULL;
	struct strmap_slot *s = strmap_find(m, key);
	return s->s_key ? s->s_val : NULL;
}

static void strmap_grow(struct strmap *m)
{
	struct strmap old = *m;
	m->m_cap = old.m_cap ? old.m_cap * 2 : 16;
	m->m_slots = xcalloc(m->m_cap, sizeof(*m->m_slots));
	m->m_n = 0;
	for (size_t i = 0; i < old.m_cap; i++) {
		if (old.m_slots[i].s_key) {
			*strmap_find(m, old.m_slots[i].s_key) = old.m_slots[i];
			m->m_n++;
		}
	}
	free(old.m_slots);
}

void *strmap_put(struct strmap *m, const char *key, void *val)
{
	/* Keep the load factor under 1/2 so probes stay short. */
	if ((m->m_n + 1) * 2 > m->m_cap)
		strmap_grow(m);
	struct strmap_slot *s = strmap_find(m, key);
	if (s->s_key)
		return s->s_val;
	s->s_key = key;
	s->s_val = val;
	m->m_n++;
	return NULL;
}
