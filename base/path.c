/*
 * path.c - see path.h.
 */
#include "path.h"

#include <stdlib.h>
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

char *path_canonical(const char *p, const char *cwd, const char **why)
{
	*why = NULL;
	if (!p || !p[0]) {
		*why = "it is empty";
		return NULL;
	}
	if (strpbrk(p, "\n\r")) {
		*why = "it holds a line break";
		return NULL;
	}
	if (p[0] != '/' && (!cwd || cwd[0] != '/')) {
		*why = "it is not absolute";
		return NULL;
	}
	size_t cap = strlen(p) + (p[0] == '/' ? 0 : strlen(cwd)) + 3;
	char *out = malloc(cap);
	if (!out)
		abort();
	size_t n = 0;
	out[n++] = '/';
	const char *parts[2] = {p[0] == '/' ? NULL : cwd, p};
	for (int k = 0; k < 2; k++) {
		for (const char *q = parts[k]; q && *q;) {
			while (*q == '/')
				q++;
			const char *e = strchr(q, '/');
			size_t len = e ? (size_t)(e - q) : strlen(q);
			if (len == 0)
				break;
			if (len == 2 && q[0] == '.' && q[1] == '.') {
				*why = "it has a '..' component (name the directory itself)";
				free(out);
				return NULL;
			}
			if (!(len == 1 && q[0] == '.')) {
				if (out[n - 1] != '/')
					out[n++] = '/';
				memcpy(out + n, q, len);
				n += len;
			}
			q += len;
		}
	}
	out[n] = '\0';
	return out;
}
