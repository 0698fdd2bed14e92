/*
 * path.h - the one definition of a safe absolute path, shared by the PCL
 * checker (which refuses bad paths where they are written) and the engine
 * (which refuses them in manifests it reads back).
 */
#ifndef PUNIX_BASE_PATH_H
#define PUNIX_BASE_PATH_H

#include <stdbool.h>

/*
 * Absolute and normal: starts with '/', is not "/" itself, has no empty,
 * "." or ".." component, no trailing '/', and no line break.
 */
bool path_is_normal_abs(const char *s);

/*
 * The canonical form of a directory the operator names (a root): absolute
 * (a relative p is taken below cwd, which must be absolute), with "//",
 * "." and a trailing '/' normalised away. A ".." component is refused, not
 * resolved: lexically it can point somewhere the operator did not mean.
 * malloc'd; NULL with *why set on refusal. "/" stays "/".
 */
char *path_canonical(const char *p, const char *cwd, const char **why);

#endif
