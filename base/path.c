/*
 * path.c - see path.h.
 */
#include "path.h"

#include <string.h>

bool path_is_normal_abs(const char *s)
{
	if (s[0] != '/' || s[1] == '\0' || strpbrk(s, "\n\r"))
		return false;
	for (const char *p = s + 1;;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!e)
			return true;
		p = e + 1;
	}
}
