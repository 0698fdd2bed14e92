/*
 * kinds.c - the table of op kinds, by name (as the journal records them)
 * and by type (as ops are submitted). Each kind's steps are in its own file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "../base/xalloc.h"
#include "engine.h"
#include "op_internal.h"
#include "target.h"

static const struct op_kind *const kinds[] = {&deploy_kind, &rollback_kind, &set_current_kind, &gc_kind,
					       &prune_kind, &host_deploy_kind, &host_remote_kind, &fleet_kind};

const struct op_kind *find_kind(const char *name)
{
	for (size_t i = 0; i < NSTEPS(kinds); i++)
		if (strcmp(kinds[i]->name, name) == 0)
			return kinds[i];
	return NULL;
}

const struct op_kind *kind_of(enum op_type t)
{
	switch (t) {
	case OP_DEPLOY: return &deploy_kind;
	case OP_ROLLBACK: return &rollback_kind;
	case OP_SET_CURRENT: return &set_current_kind;
	case OP_GC: return &gc_kind;
	case OP_PRUNE: return &prune_kind;
	}
	return NULL;
}
