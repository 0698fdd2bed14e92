/*
 * pcl_lower.c - from checked values to the plain descriptions the store and
 * the engine consume, and the canonical encoding of values that hashes use.
 *
 * Lowering trusts the checker: it runs only on a program with no errors,
 * so every required field is present with its type.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pcl_internal.h"

void pcl_value_canonical(const struct pcl_value *v, struct sbuf *out)
{
	switch (v->v_kind) {
	case PCL_V_STR:
		sbuf_printf(out, "s%zu:", v->v_str.len);
		sbuf_append(out, v->v_str.s, v->v_str.len);
		return;
	case PCL_V_INT:
		sbuf_printf(out, "i%lld;", (long long)v->v_int);
		return;
	case PCL_V_BOOL:
		sbuf_puts(out, v->v_bool ? "b1" : "b0");
		return;
	case PCL_V_LIST:
		sbuf_printf(out, "l%zu[", v->v_list.n);
		for (size_t i = 0; i < v->v_list.n; i++)
			pcl_value_canonical(v->v_list.items[i], out);
		sbuf_putc(out, ']');
		return;
	case PCL_V_REC:
		/* fields are stored sorted by name: the order written never shows */
		sbuf_printf(out, "r%zu{", v->v_rec.n);
		for (size_t i = 0; i < v->v_rec.n; i++) {
			sbuf_printf(out, "%zu:%s", strlen(v->v_rec.fields[i].f_name), v->v_rec.fields[i].f_name);
			pcl_value_canonical(v->v_rec.fields[i].f_value, out);
		}
		sbuf_putc(out, '}');
		return;
	case PCL_V_OUT:
		sbuf_printf(out, "o%zu:%s", strlen(v->v_out.module), v->v_out.module);
		return;
	case PCL_V_SECRET:
	case PCL_V_ERROR:
		break;
	}
	assert(!"a secret or an error value has no canonical encoding");
	abort();
}

static const char *str_field(const struct pcl_value *rec, const char *name)
{
	const struct pcl_value *v = pcl_value_field(rec, name);
	return v && v->v_kind == PCL_V_STR ? v->v_str.s : NULL;
}

static int cstr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void lower_package(struct pcl_program *p, const struct pcl_module *m, struct pkg_desc *pkg)
{
	const struct pcl_value *v = m->m_value;
	pkg->module = m->m_name;
	pkg->loc = (struct desc_loc){m->m_loc.file, m->m_loc.line, m->m_loc.col};
	pkg->pname = str_field(v, "pname");
	pkg->version = str_field(v, "version");
	pkg->recipe = str_field(v, "recipe");
	const struct pcl_value *args = pcl_value_field(v, "recipeArgs");
	struct sbuf enc = SBUF_INIT;
	pcl_value_canonical(args, &enc);
	pkg->args = arena_strndup(&p->arena, sbuf_str(&enc), enc.sb_len);
	pkg->args_len = enc.sb_len;
	sbuf_free(&enc);
	pkg->command = str_field(args, "command");
	const struct pcl_value *src = pcl_value_field(v, "source");
	if (src) {
		const struct pcl_value *path = pcl_value_field(src, "path");
		pkg->source_path = path->v_str.s;
		pkg->source_loc = (struct desc_loc){path->v_loc.file, path->v_loc.line, path->v_loc.col};
	}
	const struct pcl_value *deps = pcl_value_field(v, "deps");
	size_t n = deps ? deps->v_list.n : 0;
	const char **names = arena_alloc(&p->arena, (n + 1) * sizeof(*names));
	for (size_t i = 0; i < n; i++) {
		const struct pcl_value *d = deps->v_list.items[i];
		names[i] = d->v_kind == PCL_V_OUT ? d->v_out.module : d->v_str.s;
	}
	qsort(names, n, sizeof(*names), cstr_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(names[k - 1], names[i]) != 0)
			names[k++] = names[i];
	pkg->deps = names;
	pkg->ndeps = k;
}

size_t pcl_program_packages(struct pcl_program *p, const struct pkg_desc **out)
{
	assert(p->checked && p->nerrors == 0);
	if (!p->packages) {
		size_t n = 0;
		for (size_t i = 0; i < p->modules.n; i++)
			n += p->modules.v[i]->m_kind == PCL_KIND_PACKAGE;
		struct pkg_desc *pk = arena_alloc(&p->arena, (n + 1) * sizeof(*pk));
		size_t k = 0;
		for (size_t i = 0; i < p->modules.n; i++)
			if (p->modules.v[i]->m_kind == PCL_KIND_PACKAGE)
				lower_package(p, p->modules.v[i], &pk[k++]);
		p->packages = pk;
		p->npackages = n;
	}
	*out = p->packages;
	return p->npackages;
}
