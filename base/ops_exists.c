/*
 * ops_exists.c - the batched calls of the seam done one path at a time
 * (exists by stat, fsync_paths by fsync_path), for the tables that have no
 * cheaper way (base/ops.h). Calls nothing of ours but the table it is given.
 */
#include <errno.h>

#include "ops.h"

int ops_exists_by_stat(struct punix_ops *o, const char *const *paths, size_t n, unsigned char *found)
{
	for (size_t i = 0; i < n; i++) {
		struct ops_stat st;
		int r = o->stat(o, paths[i], 0, &st);
		if (r < 0 && r != -ENOENT && r != -ENOTDIR)
			return r;
		found[i] = r == 0;
	}
	return 0;
}

int ops_fsync_paths_each(struct punix_ops *o, const char *const *paths, size_t n, size_t *failed)
{
	for (size_t i = 0; i < n; i++) {
		int r = o->fsync_path(o, paths[i]);
		if (r < 0) {
			if (failed)
				*failed = i;
			return r;
		}
	}
	return 0;
}
