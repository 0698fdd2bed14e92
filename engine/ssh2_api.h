/*
 * ssh2_api.h - libssh2, reached through a table (docs/building.md).
 *
 * punix loads libssh2 (and with it OpenSSL's libcrypto) only when an op
 * goes over SSH: a local command never pays for starting them, which is
 * most of a rollback's time. ssh2_api_dlopen.c fills the table from
 * libssh2.so.1 with dlopen on first use; ssh2_api_direct.c, linked into the
 * static build instead, fills it with the functions linked in.
 *
 * Included after <libssh2.h> by the SSH transport's files only: each
 * function it calls is redefined to go through the table, so the call
 * sites read as plain libssh2. ssh2_api() must have returned a table
 * (ssh2_load) before any of them runs.
 */
#ifndef PUNIX_SSH2_API_H
#define PUNIX_SSH2_API_H

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "../base/sbuf.h"

#define SSH2_FUNCTIONS(X)                                                                                             \
	X(libssh2_agent_connect)                                                                                      \
	X(libssh2_agent_disconnect)                                                                                   \
	X(libssh2_agent_free)                                                                                         \
	X(libssh2_agent_get_identity)                                                                                 \
	X(libssh2_agent_init)                                                                                         \
	X(libssh2_agent_list_identities)                                                                              \
	X(libssh2_agent_set_identity_path)                                                                            \
	X(libssh2_agent_userauth)                                                                                     \
	X(libssh2_channel_close)                                                                                      \
	X(libssh2_channel_eof)                                                                                        \
	X(libssh2_channel_free)                                                                                       \
	X(libssh2_channel_get_exit_signal)                                                                            \
	X(libssh2_channel_get_exit_status)                                                                            \
	X(libssh2_channel_handle_extended_data2)                                                                      \
	X(libssh2_channel_open_ex)                                                                                    \
	X(libssh2_channel_process_startup)                                                                            \
	X(libssh2_channel_read_ex)                                                                                    \
	X(libssh2_channel_send_eof)                                                                                   \
	X(libssh2_channel_wait_closed)                                                                                \
	X(libssh2_channel_write_ex)                                                                                   \
	X(libssh2_exit)                                                                                               \
	X(libssh2_free)                                                                                               \
	X(libssh2_init)                                                                                               \
	X(libssh2_knownhost_checkp)                                                                                   \
	X(libssh2_knownhost_free)                                                                                     \
	X(libssh2_knownhost_init)                                                                                     \
	X(libssh2_knownhost_readline)                                                                                 \
	X(libssh2_session_disconnect_ex)                                                                              \
	X(libssh2_session_free)                                                                                       \
	X(libssh2_session_handshake)                                                                                  \
	X(libssh2_session_hostkey)                                                                                    \
	X(libssh2_session_init_ex)                                                                                    \
	X(libssh2_session_last_errno)                                                                                 \
	X(libssh2_session_last_error)                                                                                 \
	X(libssh2_session_set_blocking)                                                                               \
	X(libssh2_session_set_timeout)                                                                                \
	X(libssh2_sftp_close_handle)                                                                                  \
	X(libssh2_sftp_fstat_ex)                                                                                      \
	X(libssh2_sftp_fsync)                                                                                         \
	X(libssh2_sftp_init)                                                                                          \
	X(libssh2_sftp_last_error)                                                                                    \
	X(libssh2_sftp_mkdir_ex)                                                                                      \
	X(libssh2_sftp_open_ex)                                                                                       \
	X(libssh2_sftp_read)                                                                                          \
	X(libssh2_sftp_readdir_ex)                                                                                    \
	X(libssh2_sftp_rename_ex)                                                                                     \
	X(libssh2_sftp_rmdir_ex)                                                                                      \
	X(libssh2_sftp_shutdown)                                                                                      \
	X(libssh2_sftp_stat_ex)                                                                                       \
	X(libssh2_sftp_symlink_ex)                                                                                    \
	X(libssh2_sftp_unlink_ex)                                                                                     \
	X(libssh2_sftp_write)                                                                                         \
	X(libssh2_userauth_publickey_frommemory)

struct ssh2_api {
#define SSH2_MEMBER(f) __typeof__(f) *f;
	SSH2_FUNCTIONS(SSH2_MEMBER)
#undef SSH2_MEMBER
};

/*
 * The table, loading libssh2 the first time (thread-safe); NULL with err
 * saying why (libssh2.so.1 is not installed, or lacks a function).
 */
const struct ssh2_api *ssh2_load(struct sbuf *err);
/* The table once ssh2_load has returned it (never NULL then). */
const struct ssh2_api *ssh2_api(void);

#ifndef PUNIX_SSH2_API_IMPL
#define libssh2_agent_connect (ssh2_api()->libssh2_agent_connect)
#define libssh2_agent_disconnect (ssh2_api()->libssh2_agent_disconnect)
#define libssh2_agent_free (ssh2_api()->libssh2_agent_free)
#define libssh2_agent_get_identity (ssh2_api()->libssh2_agent_get_identity)
#define libssh2_agent_init (ssh2_api()->libssh2_agent_init)
#define libssh2_agent_list_identities (ssh2_api()->libssh2_agent_list_identities)
#define libssh2_agent_set_identity_path (ssh2_api()->libssh2_agent_set_identity_path)
#define libssh2_agent_userauth (ssh2_api()->libssh2_agent_userauth)
#define libssh2_channel_close (ssh2_api()->libssh2_channel_close)
#define libssh2_channel_eof (ssh2_api()->libssh2_channel_eof)
#define libssh2_channel_free (ssh2_api()->libssh2_channel_free)
#define libssh2_channel_get_exit_signal (ssh2_api()->libssh2_channel_get_exit_signal)
#define libssh2_channel_get_exit_status (ssh2_api()->libssh2_channel_get_exit_status)
#define libssh2_channel_handle_extended_data2 (ssh2_api()->libssh2_channel_handle_extended_data2)
#define libssh2_channel_open_ex (ssh2_api()->libssh2_channel_open_ex)
#define libssh2_channel_process_startup (ssh2_api()->libssh2_channel_process_startup)
#define libssh2_channel_read_ex (ssh2_api()->libssh2_channel_read_ex)
#define libssh2_channel_send_eof (ssh2_api()->libssh2_channel_send_eof)
#define libssh2_channel_wait_closed (ssh2_api()->libssh2_channel_wait_closed)
#define libssh2_channel_write_ex (ssh2_api()->libssh2_channel_write_ex)
#define libssh2_exit (ssh2_api()->libssh2_exit)
#define libssh2_free (ssh2_api()->libssh2_free)
#define libssh2_init (ssh2_api()->libssh2_init)
#define libssh2_knownhost_checkp (ssh2_api()->libssh2_knownhost_checkp)
#define libssh2_knownhost_free (ssh2_api()->libssh2_knownhost_free)
#define libssh2_knownhost_init (ssh2_api()->libssh2_knownhost_init)
#define libssh2_knownhost_readline (ssh2_api()->libssh2_knownhost_readline)
#define libssh2_session_disconnect_ex (ssh2_api()->libssh2_session_disconnect_ex)
#define libssh2_session_free (ssh2_api()->libssh2_session_free)
#define libssh2_session_handshake (ssh2_api()->libssh2_session_handshake)
#define libssh2_session_hostkey (ssh2_api()->libssh2_session_hostkey)
#define libssh2_session_init_ex (ssh2_api()->libssh2_session_init_ex)
#define libssh2_session_last_errno (ssh2_api()->libssh2_session_last_errno)
#define libssh2_session_last_error (ssh2_api()->libssh2_session_last_error)
#define libssh2_session_set_blocking (ssh2_api()->libssh2_session_set_blocking)
#define libssh2_session_set_timeout (ssh2_api()->libssh2_session_set_timeout)
#define libssh2_sftp_close_handle (ssh2_api()->libssh2_sftp_close_handle)
#define libssh2_sftp_fstat_ex (ssh2_api()->libssh2_sftp_fstat_ex)
#define libssh2_sftp_fsync (ssh2_api()->libssh2_sftp_fsync)
#define libssh2_sftp_init (ssh2_api()->libssh2_sftp_init)
#define libssh2_sftp_last_error (ssh2_api()->libssh2_sftp_last_error)
#define libssh2_sftp_mkdir_ex (ssh2_api()->libssh2_sftp_mkdir_ex)
#define libssh2_sftp_open_ex (ssh2_api()->libssh2_sftp_open_ex)
#define libssh2_sftp_read (ssh2_api()->libssh2_sftp_read)
#define libssh2_sftp_readdir_ex (ssh2_api()->libssh2_sftp_readdir_ex)
#define libssh2_sftp_rename_ex (ssh2_api()->libssh2_sftp_rename_ex)
#define libssh2_sftp_rmdir_ex (ssh2_api()->libssh2_sftp_rmdir_ex)
#define libssh2_sftp_shutdown (ssh2_api()->libssh2_sftp_shutdown)
#define libssh2_sftp_stat_ex (ssh2_api()->libssh2_sftp_stat_ex)
#define libssh2_sftp_symlink_ex (ssh2_api()->libssh2_sftp_symlink_ex)
#define libssh2_sftp_unlink_ex (ssh2_api()->libssh2_sftp_unlink_ex)
#define libssh2_sftp_write (ssh2_api()->libssh2_sftp_write)
#define libssh2_userauth_publickey_frommemory (ssh2_api()->libssh2_userauth_publickey_frommemory)
#endif

#endif
