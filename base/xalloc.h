/*
 * xalloc.h - allocation that cannot fail silently.
 *
 * Out of memory is reported once and the process exits with status 3 (a
 * failure of the machine, not of the user's input). Callers never see NULL.
 */
#ifndef PUNIX_BASE_XALLOC_H
#define PUNIX_BASE_XALLOC_H

#include <stddef.h>

_Noreturn void xalloc_die(void);
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* realloc for an array of n elements of size bytes, checking overflow. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
