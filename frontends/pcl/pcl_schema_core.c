/*
 * pcl_schema_core.c - what every schema check is built from: the path of the
 * value being checked (for messages), type mismatches ([E1]), and checking
 * a record against a field table (unknown fields [E2], missing ones [E3]).
 *
 * It knows no module kind and no field: those are in pcl_schema.c, which
 * calls down into this file and never the reverse.
 */
#include <assert.h>
#include <string.h>

#include "pcl_schema.h"

/* ---- paths and messages ------------------------------------------------ */

size_t pcl_path_push_field(struct sctx *c, const char *name)
{
	size_t saved = c->path.sb_len;
	if (c->path.sb_len)
		sbuf_putc(&c->path, '.');
	sbuf_puts(&c->path, name);
	return saved;
}

size_t pcl_path_push_index(struct sctx *c, size_t i)
{
	size_t saved = c->path.sb_len;
	char buf[24], *q = buf + sizeof(buf);
	*--q = ']';
	do
		*--q = (char)('0' + i % 10);
	while (i /= 10);
	*--q = '[';
	sbuf_append(&c->path, q, (size_t)(buf + sizeof(buf) - q));
	return saved;
}

void pcl_path_pop(struct sctx *c, size_t saved)
{
	c->path.sb_len = saved;
	if (c->path.sb_buf)
		c->path.sb_buf[saved] = '\0';
}

const char *pcl_path_str(const struct sctx *c)
{
	return sbuf_str(&c->path);
}

/* Reports [E1] unless v is the poison of an earlier error. */
void pcl_mismatch(struct sctx *c, const struct pcl_value *v, const char *want)
{
	if (v->v_kind == PCL_V_ERROR)
		return;
	struct sbuf got = SBUF_INIT;
	pcl_type_name(v, &got);
	struct pcl_diag *d = pcl_error(c->p, v->v_loc, PCL_E1, "type mismatch in '%s': expected %s, got %s",
				       pcl_path_str(c), want, sbuf_str(&got));
	if (v->v_kind == PCL_V_SECRET)
		pcl_diag_hint(d, "secrets are resolved when used and are allowed only in a service's 'environment' and a "
				 "url source's 'token'");
	else if (v->v_kind == PCL_V_OUT || v->v_kind == PCL_V_FMT)
		pcl_diag_hint(d, "a package's store path is known only once it is built: a string holding one is allowed "
				 "only in a service's 'args' and 'environment' and a config file's 'content'");
	sbuf_free(&got);
}

bool pcl_want_str(struct sctx *c, const struct pcl_value *v)
{
	if (v->v_kind == PCL_V_STR)
		return true;
	pcl_mismatch(c, v, "Str");
	return false;
}

bool pcl_want_str_or_out(struct sctx *c, const struct pcl_value *v)
{
	if (v->v_kind == PCL_V_STR || v->v_kind == PCL_V_FMT)
		return true;
	if (v->v_kind == PCL_V_OUT)
		return false; /* a store path: nothing to check */
	pcl_mismatch(c, v, "Str");
	return false;
}

bool pcl_want_list(struct sctx *c, const struct pcl_value *v, const char *want)
{
	if (v->v_kind == PCL_V_LIST)
		return true;
	pcl_mismatch(c, v, want);
	return false;
}

bool pcl_want_rec(struct sctx *c, const struct pcl_value *v)
{
	if (v->v_kind == PCL_V_REC)
		return true;
	pcl_mismatch(c, v, "a record");
	return false;
}

/* ---- generic record checking ------------------------------------------- */

/*
 * Checks v against a field table: unknown fields, missing required ones,
 * then each present field's check. 'skip' names fields handled elsewhere.
 */
void pcl_check_fields(struct sctx *c, const struct pcl_value *v, const struct fspec *spec, size_t nspec,
		      const char *const *skip)
{
	const char *names[32];
	assert(nspec <= sizeof(names) / sizeof(names[0]));
	for (size_t i = 0; i < nspec; i++)
		names[i] = spec[i].name;
	/* A misspelt required field is reported once, as unknown with a hint. */
	const char *hinted[8];
	size_t nhinted = 0;
	bool present[32] = {false};
	/* The fields and the table are both sorted by name: one merge. */
	size_t j = 0;
	for (size_t i = 0; i < v->v_rec.n; i++) {
		const struct pcl_vfield *f = &v->v_rec.fields[i];
		const struct fspec *s = NULL;
		int cmp = 1;
		while (j < nspec && (cmp = strcmp(spec[j].name, f->f_name)) < 0)
			j++;
		if (j < nspec && cmp == 0) {
			s = &spec[j];
			present[j] = true;
		}
		if (s) {
			size_t saved = pcl_path_push_field(c, f->f_name);
			if (s->check)
				s->check(c, f->f_value);
			pcl_path_pop(c, saved);
			continue;
		}
		bool skipped = false;
		for (const char *const *k = skip; k && *k; k++)
			skipped |= strcmp(*k, f->f_name) == 0;
		if (skipped)
			continue;
		struct pcl_diag *d;
		if (c->path.sb_len)
			d = pcl_error(c->p, f->f_loc, PCL_E2, "unknown field '%s' in '%s' of module '%s'", f->f_name,
				      pcl_path_str(c), c->mod->m_name);
		else
			d = pcl_error(c->p, f->f_loc, PCL_E2, "unknown field '%s' on module '%s'", f->f_name,
				      c->mod->m_name);
		const char *sug = pcl_suggest(f->f_name, names, nspec);
		if (sug) {
			pcl_diag_hint(d, "did you mean '%s'?", sug);
			if (nhinted < NELEM(hinted))
				hinted[nhinted++] = sug;
		}
	}
	for (j = 0; j < nspec; j++) {
		if (!spec[j].required || present[j])
			continue;
		bool was_hinted = false;
		for (size_t k = 0; k < nhinted; k++)
			was_hinted |= strcmp(hinted[k], spec[j].name) == 0;
		if (was_hinted)
			continue;
		if (c->path.sb_len)
			pcl_error(c->p, v->v_loc, PCL_E3, "missing required field '%s' in '%s' of module '%s'", spec[j].name,
				  pcl_path_str(c), c->mod->m_name);
		else
			pcl_error(c->p, v->v_loc, PCL_E3, "missing required field '%s' in module '%s'", spec[j].name,
				  c->mod->m_name);
	}
}

void pcl_each_item(struct sctx *c, const struct pcl_value *v, check_fn fn)
{
	for (size_t i = 0; i < v->v_list.n; i++) {
		size_t saved = pcl_path_push_index(c, i);
		fn(c, v->v_list.items[i]);
		pcl_path_pop(c, saved);
	}
}

/* ---- module kinds in messages ------------------------------------------ */

const char *pcl_kind_article(enum pcl_kind k)
{
	switch (k) {
	case PCL_KIND_PACKAGE: return "a package";
	case PCL_KIND_STACK: return "a stack";
	case PCL_KIND_SERVICE: return "a service";
	case PCL_KIND_FLEET: return "a fleet";
	case PCL_KIND_DATA: break;
	}
	return "a data";
}

void pcl_shape_error(struct sctx *c, const struct pcl_value *v, const char *what, const char *hint)
{
	struct pcl_diag *d = pcl_error(c->p, v->v_loc, PCL_E6, "'%s' %s, got %s", pcl_path_str(c), what,
				       pcl_show(c->p, v->v_str.s));
	if (hint)
		pcl_diag_hint(d, "%s", hint);
}
