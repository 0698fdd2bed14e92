/*
 * pcl_check_fuzz.c - libFuzzer target over the whole PCL front end: lexing,
 * parsing, reference resolution, evaluation, type and schema checks, the
 * formatting of every diagnostic, and lowering when the input is clean.
 *
 * An input holding a NUL byte is split there into two sources, so the
 * composition of several files (duplicate modules across files, references
 * between them) is exercised too. Everything allocated is freed, so
 * LeakSanitizer reports any leak as a finding.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/sbuf.h"
#include "frontends/pcl/pcl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	struct pcl_program *p = pcl_program_new();
	if (nul) {
		size_t first = (size_t)(nul - text);
		pcl_program_add_source(p, "b.pcl", nul + 1, size - first - 1);
		pcl_program_add_source(p, "a.pcl", text, first);
	} else {
		pcl_program_add_source(p, "a.pcl", text, size);
	}
	size_t errors = pcl_program_check(p);
	struct sbuf out = SBUF_INIT;
	for (size_t i = 0; i < pcl_program_ndiags(p); i++)
		pcl_diag_format(pcl_program_diag(p, i), &out);
	if (errors == 0) {
		const struct pkg_desc *pk;
		size_t n = pcl_program_packages(p, &pk);
		for (size_t i = 0; i < n; i++)
			sbuf_append(&out, pk[i].args, pk[i].args_len);
	}
	sbuf_free(&out);
	pcl_program_free(p);
	return 0;
}
