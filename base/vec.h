/*
 * vec.h - a typed growable array, the one array helper of the tree.
 *
 *   VEC(int) v = {0};
 *   VEC_PUSH(&v, 42);
 *   for (size_t i = 0; i < v.n; i++) use(v.v[i]);
 *   VEC_FREE(&v);
 *
 * Growth doubles, so pushing n elements costs O(n).
 */
#ifndef PUNIX_BASE_VEC_H
#define PUNIX_BASE_VEC_H

#include <stddef.h>
#include <stdlib.h>

#include "xalloc.h"

#define VEC(T)              \
	struct {            \
		T *v;       \
		size_t n;   \
		size_t cap; \
	}

#define VEC_RESERVE(vp, want)                                                     \
	do {                                                                      \
		if ((want) > (vp)->cap) {                                         \
			size_t vec_c_ = (vp)->cap ? (vp)->cap : 8;                \
			while (vec_c_ < (want))                                   \
				vec_c_ *= 2;                                      \
			(vp)->v = xreallocarray((vp)->v, vec_c_, sizeof(*(vp)->v)); \
			(vp)->cap = vec_c_;                                       \
		}                                                                 \
	} while (0)

#define VEC_PUSH(vp, x)                          \
	do {                                     \
		VEC_RESERVE((vp), (vp)->n + 1); \
		(vp)->v[(vp)->n++] = (x);        \
	} while (0)

#define VEC_FREE(vp)                          \
	do {                                  \
		free((vp)->v);                \
		(vp)->v = NULL;               \
		(vp)->n = (vp)->cap = 0;      \
	} while (0)

#endif
