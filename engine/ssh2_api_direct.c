/*
 * ssh2_api_direct.c - the libssh2 table of the static build, which links
 * libssh2 in (ssh2_api.h): the functions themselves, nothing to load.
 */
#define PUNIX_SSH2_API_IMPL
#include "ssh2_api.h"

static const struct ssh2_api direct = {
#define SSH2_DIRECT(f) .f = f,
	SSH2_FUNCTIONS(SSH2_DIRECT)
#undef SSH2_DIRECT
};

const struct ssh2_api *ssh2_load(struct sbuf *err)
{
	(void)err;
	return &direct;
}

const struct ssh2_api *ssh2_api(void)
{
	return &direct;
}
