/*
 * pcl_lookup.c - reading what evaluation built: a module by name, a field
 * of a record by name.
 *
 * These are public (pcl.h) and also what pcl_eval, pcl_schema and pcl_lower
 * read values with. They live below all of them and call no other file of
 * the front end, so that reading a value never reaches back up into the
 * entry points of pcl_program.c.
 */
#include <string.h>

#include "pcl_internal.h"

const struct pcl_module *pcl_program_find(const struct pcl_program *p, const char *name)
{
	struct pcl_decl *d = strmap_get(&p->by_name, name);
	return d ? &d->module : NULL;
}

const struct pcl_value *pcl_value_field(const struct pcl_value *v, const char *name)
{
	if (!v || v->v_kind != PCL_V_REC)
		return NULL;
	size_t lo = 0, hi = v->v_rec.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(v->v_rec.fields[mid].f_name, name);
		if (c == 0)
			return v->v_rec.fields[mid].f_value;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
