/*
 * fetch_none.c - fetch_transfer and fetch_archive_read for punix-static
 * (fetch.h): it serves hosts and never builds, so it has neither libcurl
 * (whose static archive would bring OpenSSL, Kerberos and more) nor
 * libarchive. A cached file still works: the cache never calls this; a
 * cached archive cannot be unpacked.
 */
#include <errno.h>

#include "fetch.h"

int fetch_transfer(const struct fetch_request *rq, fetch_sink_fn sink, void *arg, struct sbuf *err)
{
	(void)rq, (void)sink, (void)arg;
	sbuf_puts(err, "this punix (punix-static) was built without libcurl: fetch with punix");
	return -1;
}

int fetch_archive_read(enum unpack_format f, struct unpack_source *src, unpack_each_fn each, void *arg,
		       struct sbuf *err)
{
	(void)f, (void)src, (void)each, (void)arg;
	sbuf_puts(err, "this punix (punix-static) was built without libarchive: unpack with punix");
	return -EIO;
}
