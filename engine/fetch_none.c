/*
 * fetch_none.c - fetch_transfer for punix-static (fetch.h): it serves
 * hosts and never builds, so it has no libcurl (whose static archive would
 * bring OpenSSL, Kerberos and more). A cached file still works: the cache
 * never calls this.
 */
#include "fetch.h"

int fetch_transfer(const char *url, const char *header, uint64_t max, fetch_sink_fn sink, void *arg,
		   struct sbuf *err)
{
	(void)url, (void)header, (void)max, (void)sink, (void)arg;
	sbuf_puts(err, "this punix (punix-static) was built without libcurl: fetch with punix");
	return -1;
}
