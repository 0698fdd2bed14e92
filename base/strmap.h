/*
 * strmap.h - a string-keyed hash map (open addressing, linear probing).
 *
 * Keys are borrowed: the caller keeps them alive (in the PCL front end they
 * live in the program's arena). Lookups are O(1) on average, which is what
 * keeps checking a 10^5-module program linear.
 */
#ifndef PUNIX_BASE_STRMAP_H
#define PUNIX_BASE_STRMAP_H

#include <stddef.h>

struct strmap_slot {
	const char *s_key;
	void *s_val;
};

struct strmap {
	struct strmap_slot *m_slots;
	size_t m_cap; /* power of two, or 0 */
	size_t m_n;
};

void strmap_init(struct strmap *m);
void strmap_free(struct strmap *m);
/* Returns the value for key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/*
 * Inserts key if absent and returns NULL; if present, leaves the map as it
 * is and returns the existing value.
 */
void *strmap_put(struct strmap *m, const char *key, void *val);

#endif
