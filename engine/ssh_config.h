/*
 * ssh_config.h - OpenSSH's client configuration (ssh_config(5)) and its
 * known_hosts files (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT), read from
 * bytes, so that punix reaches a host the way `ssh HOST` would: the same
 * HostName, User, Port, keys and known hosts file people already set up.
 *
 * Pure: the caller reads the files, including the ones a config Includes,
 * and hands over their text. Nothing here opens a file, looks up a user or
 * a service, resolves a name or reads the environment; what would need one
 * of those is left as written and reported as a warning, never guessed.
 */
#ifndef PUNIX_ENGINE_SSH_CONFIG_H
#define PUNIX_ENGINE_SSH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "../base/sbuf.h"

/* One argument of an Include (see ssh_config_resolve); the strings belong to the config. */
struct ssh_config_include {
	char *pattern;   /* as written, ~ expanded; may hold glob(7) wildcards */
	char *where;     /* "path:line" of the Include, for messages */
	bool check_only; /* in a block that does not apply: ssh reads its files only to refuse their errors */
};

struct ssh_config_raw; /* private: the texts fed so far and the values as written, for ssh_config_feed */

struct ssh_host_config {
	char *hostname;        /* HostName, %h expanded to the alias, in lower case as ssh uses it; NULL if not set */
	char *user;            /* User; NULL if not set */
	int port;              /* Port; 0 if not set */
	char **identity_files; /* IdentityFile, in order, expanded (see below); "none" (any case) as "none" */
	size_t nidentity;
	char *user_known_hosts_file;         /* UserKnownHostsFile (first one), expanded, or "none"; NULL if not set */
	int strict_host_key_checking;        /* -1 not set, 0 no/off/false, 1 yes/true, 2 accept-new, 3 ask */
	struct ssh_config_include *includes; /* in the order OpenSSH would read them */
	size_t ninclude;
	char **warnings; /* "path:line: ..." for what applies but could not be followed */
	size_t nwarning;
	struct ssh_config_raw *raw;
};

/*
 * Resolves the settings for host alias `host` (as typed: `ssh HOST`) from
 * the text of a config file (buf, len; path is only for messages), as
 * OpenSSH does:
 *
 *  - Lines are `Keyword value...` or `Keyword=value...`; keywords are
 *    case-insensitive, unknown ones ignored. Arguments split at blanks,
 *    with "..." and '...' quoting and \", \', \\ and (unquoted) "\ "
 *    escapes; a # that starts an argument or a line begins a comment.
 *  - The first value obtained for each keyword wins; IdentityFile adds to
 *    a list instead (in order, duplicates dropped, at most 100).
 *  - `Host PATTERN...` applies the lines after it when one pattern matches
 *    the alias (case-sensitive, `*` and `?` wildcards) and no `!PATTERN`
 *    does. `Match` applies them when all its criteria hold: `all`,
 *    `[!]host LIST` (the HostName obtained so far, %h expanded, or the
 *    alias; LIST is comma-separated patterns, `!` negates one;
 *    case-insensitive), `[!]originalhost LIST` (the alias), `[!]user LIST`
 *    (the User so far, else local_user) and `[!]localuser LIST`. The other
 *    criteria OpenSSH knows (canonical, final, exec, localnetwork, tagged,
 *    command, version, sessiontype) cannot be decided here: such a block is
 *    skipped, with a warning unless a decidable criterion already failed.
 *  - HostName: %h is the alias, %% a percent. IdentityFile and
 *    UserKnownHostsFile: a leading ~ or ~local_user is home; %d home, %u
 *    local_user, %h the final HostName (or the alias) in lower case, %n
 *    the alias as typed, %p the port (22 if not set), %r the User (or
 *    local_user), %% a percent. The tokens that need the local machine
 *    (%C %i %j %k %L %l), ~otheruser and ${ENV} stay as written, with a
 *    warning, as does a token whose value is not known (%d, %u, %r without
 *    home or local_user; those may be NULL).
 *  - Validated as OpenSSH does, in blocks that apply or not: a Port is a
 *    number 1..65535 (or "ssh"), StrictHostKeyChecking one of its values,
 *    one argument where one is taken, a value for every keyword but Host,
 *    Include and UserKnownHostsFile (for which none is an empty list), no
 *    empty argument, Match criteria. Also refused: a line over 4096 bytes,
 *    a NUL byte, an unterminated quote, an unknown %-token in a value that
 *    applies.
 *
 * Include is not followed: each argument of an Include is listed in
 * out->includes, ~ expanded and otherwise as written; check_only if its
 * block does not apply, as ssh still reads those files, for their errors.
 * The caller expands its glob(7) pattern (a relative one is under ~/.ssh
 * for a user's config, /etc/ssh for the system's), reads each file, in
 * lexical order, and hands it to ssh_config_feed. OpenSSH reads an
 * included file where its Include stands, and so does each feed: it reads
 * all the text again, each file fed so far at its Include, whatever order
 * they came in. What follows an Include sees what the file set (a value
 * after it loses, a Match host sees its HostName, so another block may
 * apply), and the file's own Includes are listed right after the one being
 * fed. Looping over out->includes by index while feeding (entries after
 * the index may change, those before do not) thus gives what ssh reads,
 * and refuses what it refuses (includes nested past 16 levels, as a loop
 * of includes ends, too).
 *
 * Returns 0, or -EBADMSG with err naming path:line and what is wrong, and
 * *out cleared; -EINVAL if host is NULL or empty. Free with
 * ssh_host_config_free.
 */
int ssh_config_resolve(const char *path, const char *buf, size_t len, const char *host, const char *home,
                       const char *local_user, struct ssh_host_config *out, struct sbuf *err);

/*
 * Reads the text of a file that c->includes[i] named, the nth (from 0) of
 * the files its pattern matches in lexical order, into c as OpenSSH would
 * have read it at that Include (see above). Includes nested deeper than 16
 * are refused, as OpenSSH does. Returns 0, or -EBADMSG with err naming
 * path:line, and c freed (an error in any file is an error of the config);
 * -EINVAL if i is out of range.
 */
int ssh_config_feed(struct ssh_host_config *c, size_t i, size_t nth, const char *path, const char *buf, size_t len,
                    struct sbuf *err);

void ssh_host_config_free(struct ssh_host_config *c);

/* ---- known_hosts ------------------------------------------------------------------------- */

enum ssh_known_host_marker { SSH_KH_PLAIN, SSH_KH_CERT_AUTHORITY, SSH_KH_REVOKED };

/*
 * One known_hosts entry:
 *   [@cert-authority|@revoked] HOSTS KEYTYPE BASE64KEY [COMMENT]
 * HOSTS is comma-separated patterns (`*`, `?`, `!`, `[host]:port`), or
 * one hashed name `|1|base64(20-byte salt)|base64(20-byte HMAC-SHA1)`.
 */
struct ssh_known_host {
	enum ssh_known_host_marker marker;
	bool hashed;
	char *hosts;
	char *key_type;
	char *key;     /* base64, as written */
	char *comment; /* the rest of the line, NULL if none */
};

/*
 * Parses one line (len bytes, a trailing "\n" or "\r\n" allowed): 1 with
 * *kh filled for an entry, 0 for a blank or comment line, or -EBADMSG with
 * err saying what is wrong (without a place: the caller knows it). An entry
 * has a key type OpenSSH knows and a key that is padded base64 of an SSH
 * key blob of that type (what ssh's sshkey_read checks; ssh skips other
 * lines); a marker, if any, is one of the two; and a host field that can
 * match something: no empty pattern, a [host]:port with a port 1..65535 (or
 * wildcards), a hashed name of 20-byte salt and hash. That last part is
 * stricter than ssh, which would keep such a line but never match it.
 */
int ssh_known_hosts_parse_line(const char *line, size_t len, struct ssh_known_host *kh, struct sbuf *err);
void ssh_known_host_free(struct ssh_known_host *kh);

/*
 * Checks the text of a known_hosts file (path is only for messages):
 * returns 0 with *entries the number of entries, or -EBADMSG with
 * "path:line: what" for the first malformed line in err, and how many more
 * there are, and *entries the number of good ones.
 */
int ssh_known_hosts_check(const char *path, const char *buf, size_t len, size_t *entries, struct sbuf *err);

#endif
