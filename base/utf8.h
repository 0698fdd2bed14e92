/*
 * utf8.h - strict UTF-8 decoding.
 *
 * Strict means: no overlong forms, no surrogates, nothing above U+10FFFF.
 * PCL source must be valid UTF-8 in strings and comments; anything else is a
 * located error rather than bytes passed through to unit files.
 */
#ifndef PUNIX_BASE_UTF8_H
#define PUNIX_BASE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes one code point from p[0..len). Returns the number of bytes it
 * occupies (1..4), or 0 if the bytes are not a valid UTF-8 sequence.
 */
size_t utf8_decode(const unsigned char *p, size_t len, uint32_t *cp);

/* Returns 1 if all of p[0..len) is valid UTF-8. */
int utf8_valid(const char *p, size_t len);

#endif
