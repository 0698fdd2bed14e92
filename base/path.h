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

#endif
