/*
 * build.h - building the package modules of a program into the store.
 *
 * A build plan is the package graph of a checked program, restricted to
 * what was asked for (--only) and their dependencies, in an order where
 * every package comes after its dependencies (ties broken by name, so the
 * order is the same on every run). Planning resolves and checks each
 * source directory and computes every store path without building
 * anything; running realises them in order.
 */
#ifndef PUNIX_ENGINE_BUILD_H
#define PUNIX_ENGINE_BUILD_H

#include <stdbool.h>

#include "../store/store.h"
#include "desc.h"
#include "vault.h"

enum build_state {
	BUILD_PENDING,
	BUILD_OK,       /* built now */
	BUILD_CACHED,   /* already valid */
	BUILD_FAILED,   /* its build failed */
	BUILD_BLOCKED,  /* a dependency failed: not built */
	BUILD_DRY_RUN,  /* planned only */
};

struct build_item {
	const struct pkg_desc *pkg;
	char *source_dir;     /* resolved, or NULL */
	char *source_name;    /* a url source: its file's name in src/ */
	const char **dep_paths; /* sorted */
	struct store_drv drv;
	char *path;           /* the store path */
	enum build_state state;
	struct store_result result;
	const char *blocked_by; /* module name of the failed dependency */
	/* a url source's token: the header made (from plan->secrets) only when the file is fetched */
	struct fetch_header token;
	const struct secret_sources *secrets;
};

struct build_plan {
	struct build_item *items; /* in build order */
	size_t n;
	/*
	 * Where url sources' tokens come from (vault.h), set by the caller
	 * before build_plan_run; NULL: none can be had (a token is [E11]).
	 */
	const struct secret_sources *secrets;
	/*
	 * How url sources are downloaded (limits, CA bundle, progress), set by
	 * the caller before build_plan_run; zeroed by build_plan_make: the
	 * defaults, no progress.
	 */
	struct fetch_settings fetch;
};

/* A problem with something the program wrote, to report at its place. */
struct build_located {
	struct desc_loc loc;
	char *message;
	int code; /* its [E#]; 0: [E6] */
};

/*
 * Plans, from every package of a program (pkgs, n), the ones named in only
 * (all of them when nonly is 0) and their dependencies. Source paths are
 * resolved relative to the declaring file and must lie inside tree_root;
 * each violation is appended to *located (return 1; the caller reports them
 * as [E6] and frees them with build_located_free). An unknown name in only
 * returns -ENOENT with *bad set to it. Other failures are negative errnos
 * with err set.
 */
int build_plan_make(struct build_plan *plan, struct store *s, const struct pkg_desc *pkgs, size_t n,
		    const char *tree_root, const char *const *only, size_t nonly, struct build_located **located,
		    size_t *nlocated, const char **bad, struct sbuf *err);
void build_located_free(struct build_located *l, size_t n);
void build_plan_free(struct build_plan *plan);

/* The index of a module in the plan, or -1. */
long build_plan_find(const struct build_plan *plan, const char *module);

/*
 * Realises every item in order (or marks it BUILD_DRY_RUN). progress, if
 * not NULL, is called before each build and report after each item.
 */
void build_plan_run(struct build_plan *plan, struct store *s, bool dry_run,
		    void (*progress)(void *arg, const struct build_item *it, size_t i, size_t n),
		    void (*report)(void *arg, const struct build_item *it), void *arg);

#endif
