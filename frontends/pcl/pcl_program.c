/*
 * pcl_program.c - the front end's public entry points (see pcl.h).
 *
 * This file drives the pipeline, so it sits on top: it calls the parser,
 * the evaluator and the schema checks, and none of them calls back into it.
 * The public lookups they need too (pcl_program_find, pcl_value_field) are
 * in pcl_lookup.c, below them all.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcl_internal.h"

struct pcl_program *pcl_program_new(void)
{
	struct pcl_program *p = xcalloc(1, sizeof(*p));
	arena_init(&p->arena);
	strmap_init(&p->by_name);
	return p;
}

void pcl_program_free(struct pcl_program *p)
{
	if (!p)
		return;
	pcl_diags_free(p);
	VEC_FREE(&p->decls);
	VEC_FREE(&p->modules);
	VEC_FREE(&p->eval_stack);
	VEC_FREE(&p->eval_stack_mod);
	VEC_FREE(&p->eval_results);
	strmap_free(&p->by_name);
	free(p->intern.slots);
	free(p->types.slots);
	VEC_FREE(&p->tscratch);
	arena_free(&p->arena);
	free(p);
}

void pcl_program_add_source(struct pcl_program *p, const char *path, const char *buf, size_t len)
{
	const char *file = arena_strdup(&p->arena, path);
	if (len > PCL_MAX_SOURCE_BYTES) {
		pcl_error(p, (struct pcl_loc){file, 0, 0}, PCL_E0,
			  "file is %zu bytes; PCL sources are limited to %zu bytes", len, PCL_MAX_SOURCE_BYTES);
		return;
	}
	pcl_parse(p, file, buf, len);
}

void pcl_program_error(struct pcl_program *p, const char *path, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pcl_verror(p, (struct pcl_loc){arena_strdup(&p->arena, path), 0, 0}, code, fmt, ap);
	va_end(ap);
}

void pcl_program_error_at(struct pcl_program *p, struct pcl_loc loc, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	loc.file = loc.file ? arena_strdup(&p->arena, loc.file) : NULL;
	pcl_verror(p, loc, code, fmt, ap);
	va_end(ap);
}

void pcl_program_sort_diags(struct pcl_program *p)
{
	pcl_diags_sort(p);
}

static int loc_cmp(struct pcl_loc a, struct pcl_loc b)
{
	int c = a.file == b.file ? 0 : strcmp(a.file, b.file);
	if (c)
		return c;
	if (a.line != b.line)
		return a.line < b.line ? -1 : 1;
	return a.col < b.col ? -1 : a.col > b.col;
}

static int decl_pos_cmp(const void *a, const void *b)
{
	const struct pcl_decl *x = *(struct pcl_decl *const *)a, *y = *(struct pcl_decl *const *)b;
	return loc_cmp(x->loc, y->loc);
}

/*
 * Sorting by name: each module with the first 8 bytes of its name as a
 * big-endian number, so that most comparisons never reach the names (which
 * lie all over the arena: a cache miss each).
 */
struct name_key {
	uint64_t prefix;
	struct pcl_module *m;
};

static uint64_t name_prefix(const char *s)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; i < 8 && s[i]; i++)
		v = v << 8 | (unsigned char)s[i];
	return v << (8 * (8 - i));
}

static int name_key_cmp(const void *a, const void *b)
{
	const struct name_key *x = a, *y = b;
	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	return strcmp(x->m->m_name, y->m->m_name);
}

static void sort_modules(struct pcl_program *p)
{
	size_t n = p->modules.n;
	bool sorted = true;
	for (size_t i = 1; i < n && sorted; i++)
		sorted = strcmp(p->modules.v[i - 1]->m_name, p->modules.v[i]->m_name) < 0;
	if (!sorted) {
		struct name_key *k = xmalloc(n * sizeof(*k));
		for (size_t i = 0; i < n; i++)
			k[i] = (struct name_key){name_prefix(p->modules.v[i]->m_name), (struct pcl_module *)p->modules.v[i]};
		qsort(k, n, sizeof(*k), name_key_cmp);
		for (size_t i = 0; i < n; i++)
			p->modules.v[i] = k[i].m;
		free(k);
	}
	for (size_t i = 0; i < n; i++) {
		struct pcl_decl *d = (struct pcl_decl *)((char *)p->modules.v[i] - offsetof(struct pcl_decl, module));
		d->index = i;
	}
}

/*
 * Registers declarations by name. The first declaration in (file, line,
 * column) order owns a name, whatever order the files were given in.
 */
static void register_modules(struct pcl_program *p)
{
	/* Usually in order already: files are added sorted and parsed front to back. */
	bool sorted = true;
	for (size_t i = 1; i < p->decls.n && sorted; i++)
		sorted = decl_pos_cmp(&p->decls.v[i - 1], &p->decls.v[i]) <= 0;
	if (!sorted)
		qsort(p->decls.v, p->decls.n, sizeof(p->decls.v[0]), decl_pos_cmp);
	for (size_t i = 0; i < p->decls.n; i++) {
		struct pcl_decl *d = p->decls.v[i];
		d->module.m_name = d->name;
		d->module.m_loc = d->loc;
		struct pcl_decl *first = strmap_put(&p->by_name, d->name, d);
		if (first) {
			d->duplicate = true;
			struct pcl_diag *e = pcl_error(p, d->loc, PCL_E3, "module '%s' is declared twice", d->name);
			pcl_diag_note(e, first->loc, "first declared here");
			continue;
		}
		VEC_PUSH(&p->modules, &d->module);
	}
	sort_modules(p);
}

size_t pcl_program_check(struct pcl_program *p)
{
	if (!p->checked) {
		p->checked = true;
		register_modules(p);
		pcl_eval_all(p);
		pcl_schema_check(p);
		pcl_diags_sort(p);
	}
	return p->nerrors;
}

size_t pcl_program_error_count(const struct pcl_program *p)
{
	return p->nerrors;
}

size_t pcl_program_ndiags(const struct pcl_program *p)
{
	return p->diags.n;
}

const struct pcl_diag *pcl_program_diag(const struct pcl_program *p, size_t i)
{
	return i < p->diags.n ? &p->diags.v[i] : NULL;
}

size_t pcl_program_nmodules(const struct pcl_program *p)
{
	return p->modules.n;
}

const struct pcl_module *pcl_program_module(const struct pcl_program *p, size_t i)
{
	return i < p->modules.n ? p->modules.v[i] : NULL;
}

const char *pcl_kind_name(enum pcl_kind k)
{
	switch (k) {
	case PCL_KIND_DATA: return "data";
	case PCL_KIND_PACKAGE: return "package";
	case PCL_KIND_STACK: return "stack";
	case PCL_KIND_SERVICE: return "service";
	case PCL_KIND_FLEET: return "fleet";
	}
	return "data";
}
