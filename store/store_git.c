/*
 * store_git.c - git sources in the download cache (store_fetch.h,
 * docs/building.md "git sources").
 *
 * The tree of a tag whose declared tree hash is H is kept as the directory
 * <cache>/git-<hex H>: cloned (`git clone --depth 1 --branch TAG`, the git
 * program run through the ops table) into an O_EXCL temporary beside it,
 * its .git removed, its tree hashed as a local source's is
 * (store_hash_tree); only a tree with hash H is renamed into place. A
 * cached tree is hashed again before each use. Concurrent fetches of one
 * hash serialise on the flock of <cache>/git-<hex H>.lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../base/xalloc.h"
#include "store.h"
#include "store_fetch.h"

/* Where git is; NULL if it is not installed. */
static const char *git_program(struct punix_ops *o)
{
	static const char *const where[] = {"/usr/bin/git", "/usr/local/bin/git", "/bin/git"};
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		struct ops_stat st;
		if (o->stat(o, where[i], 1, &st) == 0 && st.type == OPS_FT_REG)
			return where[i];
	}
	return NULL;
}

/* The last line git wrote (its error), from the log; or a default. */
static void last_line(struct punix_ops *o, const char *log, struct sbuf *out)
{
	char *buf = NULL;
	size_t len = 0;
	if (o->read_file(o, log, 1 << 16, &buf, &len) < 0 || !len) {
		sbuf_puts(out, "git said nothing");
		free(buf);
		return;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	size_t start = len;
	while (start && buf[start - 1] != '\n')
		start--;
	sbuf_append(out, buf + start, len - start);
	free(buf);
}

/* Clones tag of url into dir/tree (dir is ours, empty); 0, or <0 with err. */
static int clone(struct punix_ops *o, const char *git, const char *url, const char *tag, const char *dir,
		 struct sbuf *err)
{
	struct sbuf tree = SBUF_INIT, log = SBUF_INIT, home = SBUF_INIT;
	sbuf_printf(&tree, "%s/tree", dir);
	sbuf_printf(&log, "%s/git.log", dir);
	sbuf_printf(&home, "HOME=%s", dir);
	/* "--" ends the options: neither url nor the directory can be taken for one */
	const char *argv[] = {git, "-c", "advice.detachedHead=false", "-c", "protocol.file.allow=always", "clone",
			      "--quiet", "--depth", "1", "--branch", tag, "--", url, tree.sb_buf, NULL};
	const char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", home.sb_buf, "LC_ALL=C", "GIT_TERMINAL_PROMPT=0",
			     "GIT_CONFIG_NOSYSTEM=1", "GIT_ASKPASS=/bin/false", NULL};
	struct ops_cmd cmd = {argv, env, dir, log.sb_buf, 1, 0, 0, 0, 15 * 60 * 1000};
	int status = 0;
	int r = o->run(o, &cmd, &status);
	if (r < 0) {
		sbuf_printf(err, "cannot run %s: %s", git, strerror(-r));
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		sbuf_printf(err, "git clone of tag %s failed: ", tag);
		last_line(o, log.sb_buf, err);
		r = -EIO;
	} else {
		struct sbuf dotgit = SBUF_INIT;
		sbuf_printf(&dotgit, "%s/.git", tree.sb_buf);
		r = ops_remove_tree(o, dotgit.sb_buf);
		if (r < 0)
			sbuf_printf(err, "cannot remove %s: %s", dotgit.sb_buf, strerror(-r));
		sbuf_free(&dotgit);
	}
	sbuf_free(&tree);
	sbuf_free(&log);
	sbuf_free(&home);
	return r;
}

int store_fetch_git(struct punix_ops *o, const char *cache_dir, const char *url, const char *tag,
		    const unsigned char want[32], char **path, struct sbuf *err)
{
	*path = NULL;
	char hex[65];
	store_hex(want, 32, hex);
	struct sbuf final = SBUF_INIT, lock = SBUF_INIT;
	sbuf_printf(&final, "%s/git-%s", cache_dir, hex);
	sbuf_printf(&lock, "%s.lock", final.sb_buf);
	int h = -1;
	char *tmp = NULL;
	int r = store_cache_lock(o, cache_dir, lock.sb_buf, &h, err);
	if (r < 0)
		goto out;
	struct ops_stat st;
	unsigned char got[32];
	if (o->stat(o, final.sb_buf, 0, &st) == 0) {
		if (st.type == OPS_FT_DIR && store_hash_tree(o, final.sb_buf, got, NULL) == 0 && memcmp(got, want, 32) == 0)
			goto out; /* cached, and still what was declared */
		if ((r = ops_remove_tree(o, final.sb_buf)) < 0) {
			sbuf_printf(err, "cannot remove %s, which no longer has its hash: %s", final.sb_buf, strerror(-r));
			goto out;
		}
	}
	const char *git = git_program(o);
	if (!git) {
		sbuf_puts(err, "git is not installed here (apt install git)");
		r = -ENOENT;
		goto out;
	}
	tmp = ops_tmp_name(final.sb_buf);
	if ((r = o->mkdir(o, tmp, 0700)) < 0) {
		sbuf_printf(err, "cannot create %s: %s", tmp, strerror(-r));
		goto out;
	}
	r = clone(o, git, url, tag, tmp, err);
	struct sbuf tree = SBUF_INIT;
	sbuf_printf(&tree, "%s/tree", tmp);
	if (r == 0 && (r = store_hash_tree(o, tree.sb_buf, got, NULL)) < 0)
		sbuf_printf(err, "cannot hash the tree of tag %s: %s", tag, strerror(-r));
	if (r == 0 && memcmp(got, want, 32) != 0) {
		char ghex[65];
		store_hex(got, 32, ghex);
		sbuf_printf(err, "the tree of tag %s hashes to %s, not the declared %s", tag, ghex, hex);
		r = -EBADMSG;
	}
	if (r == 0 && (r = o->rename(o, tree.sb_buf, final.sb_buf)) == 0)
		r = o->fsync_path(o, cache_dir);
	else if (r == 0)
		sbuf_printf(err, "cannot move the tree into %s", final.sb_buf);
	sbuf_free(&tree);
	ops_remove_tree(o, tmp);
out:
	free(tmp);
	if (h >= 0)
		o->unlock(o, h);
	sbuf_free(&lock);
	if (r == 0)
		*path = sbuf_detach(&final, NULL);
	else
		sbuf_free(&final);
	return r;
}
