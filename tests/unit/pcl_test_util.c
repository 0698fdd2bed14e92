/*
 * pcl_test_util.c - see pcl_test_util.h.
 */
#include "pcl_test_util.h"

#include <string.h>

#include "base/sbuf.h"

char *pcl_check_files(const char *const *names, const char *const *srcs, size_t n)
{
	struct pcl_program *p = pcl_program_new();
	for (size_t i = 0; i < n; i++)
		pcl_program_add_source(p, names[i], srcs[i], strlen(srcs[i]));
	struct sbuf sb = SBUF_INIT;
	if (pcl_program_check(p) == 0) {
		sbuf_puts(&sb, "ok");
	} else {
		for (size_t i = 0; i < pcl_program_ndiags(p); i++)
			pcl_diag_format(pcl_program_diag(p, i), &sb);
	}
	pcl_program_free(p);
	return sbuf_detach(&sb, NULL);
}

char *pcl_check_text(const char *src)
{
	const char *name = "t.pcl";
	return pcl_check_files(&name, &src, 1);
}

struct pcl_program *pcl_checked(const char *src)
{
	struct pcl_program *p = pcl_program_new();
	pcl_program_add_source(p, "t.pcl", src, strlen(src));
	pcl_program_check(p);
	return p;
}
