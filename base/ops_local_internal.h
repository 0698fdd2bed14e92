/*
 * ops_local_internal.h - the pieces of the local table (ops_local.c) that
 * the confined table (ops_beneath.c) shares. Not for other layers.
 */
#ifndef PUNIX_BASE_OPS_LOCAL_INTERNAL_H
#define PUNIX_BASE_OPS_LOCAL_INTERNAL_H

#include <sys/stat.h>

#include "ops.h"

enum ops_ftype local_ftype(mode_t m);
void local_fill_stat(const struct stat *st, struct ops_stat *out);
/* OPS_O_* to open(2) flags, close-on-exec. */
int local_open_flags(int flags);
/* Reads the regular file open on fd (ops.h: read_file's contract); closes fd. */
int local_read_fd(int fd, size_t max, char **buf, size_t *len);
/* Lists the directory open on fd (ops.h: list_dir's contract); closes fd. */
int local_list_fd(int fd, char ***names, size_t *n);
int local_readlinkat(int dfd, const char *path, char **target);
/* ops.h: remove_children, relative to the directory open on dfd (ops_remove.c) */
int local_remove_children_fd(int dfd, const char *const *names, size_t n);
int local_remove_children(struct punix_ops *o, const char *dir, const char *const *names, size_t n);
/*
 * user's uid and gid from the user database, with getpwnam_r: ops run on
 * several threads at once (a fleet's builds chown to the build user and
 * back to root side by side), and getpwnam's one static result would let
 * one thread's look-up answer another's. 0, -ENOENT, or another -errno.
 */
int local_user_ids(const char *user, uid_t *uid, gid_t *gid);
/* flock(2)s fd; on success *h = fd, on failure fd is closed. */
int local_flock(int fd, int exclusive, int wait, int *h);

/* ops.h: stream_open and its kin, for the local table (ops_stream.c) */
int local_stream_open(struct punix_ops *o, const char *line, struct ops_stream **s);
ssize_t local_stream_read(struct punix_ops *o, struct ops_stream *s, void *buf, size_t n);
ssize_t local_stream_write(struct punix_ops *o, struct ops_stream *s, const void *buf, size_t n);
int local_stream_close(struct punix_ops *o, struct ops_stream *s, int *status);

#endif
