/*
 * help_service.c - `punix service --help`: the usage and what each
 * command and option does (docs/cli.md says the same at length).
 */
#include <stdio.h>

#include "cli.h"

#define SERVICE_USAGE_TEXT                                                                                  \
	"usage: punix service deploy STACK[,STACK...] --file F [--dry-run] [--adopt PATH]... [--activate [--enable]]\n" \
	"                            [--vault-secrets FILE] [TARGET OPTIONS]\n"                          \
	"       punix service rollback STACK [--activate [--enable]] [TARGET OPTIONS]\n"                \
	"       punix service set-current STACK N [--activate [--enable]] [TARGET OPTIONS]\n"           \
	"       punix service status STACK [--json] [TARGET OPTIONS]\n"                                 \
	"       punix service verify STACK [--json] [TARGET OPTIONS]\n"                                 \
	"       punix service prune STACK --keep N [TARGET OPTIONS]\n"                                 \
	"       punix service confirm STACK TOKEN [--wait SECS] [TARGET OPTIONS]\n"                     \
	"  (deploy, rollback and set-current also take [--confirm-timeout SECS [--health CMD]])\n"

const char cli_service_usage[] = SERVICE_USAGE_TEXT;

void cmd_service_help(void)
{
	fputs(SERVICE_USAGE_TEXT
	      "\n"
	      "  deploy       build what the stack needs, stage a new generation, flip current to it,\n"
	      "               and make the live files equal its files; STACK,STACK,... deploys each\n"
	      "               of them at once (one op each, reported in the order named)\n"
	      "  rollback     flip to the newest generation older than the current one\n"
	      "  set-current  flip to generation N (any kept generation, older or newer)\n"
	      "  status       the stack's generations and which one is current\n"
	      "  verify       compare the live files with the current generation's (exit 1 on drift)\n"
	      "  prune        delete all generations but the current one and the newest N\n"
	      "  confirm      give the confirmation an op started with --confirm-timeout waits for\n"
	      "               (a deployer does this itself over a new connection; TOKEN is the op's;\n"
	      "               with --target, on that host by its punix)\n"
	      "\n"
	      "Options:\n"
	      "  --file F               the program (a file or directory; repeatable) [deploy]\n"
	      "  --dry-run              deploy into <deployments-root>/.dry-run/ as --transport-root would\n"
	      "  --adopt PATH           [deploy] take over PATH, a file that exists and that no generation\n"
	      "                         of the stack wrote (refused otherwise, [E13]); its original comes\n"
	      "                         back when the stack stops declaring it (repeatable)\n"
	      "  --vault-secrets FILE   [deploy] where { from_vault = \"NAME\" } secrets are read: a JSON\n"
	      "                         object of names to single-line strings, mode 0600, owned by you\n"
	      "  --activate             after the flip: systemctl daemon-reload, restart the units that\n"
	      "                         changed, stop the ones that went, then run each changed service's\n"
	      "                         <name>-provision.service (supervisord stacks: supervisorctl\n"
	      "                         reread, update, restart, status); ignored on a rebased target\n"
	      "  --enable               with --activate: also systemctl enable, for boot\n"
	      "  --target ssh://[USER@]HOST[:PORT]  deploy to another machine over SSH; HOST may be\n"
	      "                         an alias of ~/.ssh/config (HostName, User, Port, IdentityFile)\n"
	      "  --known-hosts FILE     [--target] the host's key must be in it (OpenSSH format;\n"
	      "                         default ~/.ssh/known_hosts; never trusted on first use)\n"
	      "  --key FILE             [--target] the private key to log in with, FILE.pub beside it\n"
	      "                         (default: the SSH agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)\n"
	      "  --mode MODE            [--target] host: the op runs on the target, by its punix, under its\n"
	      "                         journal and lock; agentless: every step driven from here over SSH;\n"
	      "                         auto (default): host where a punix runs or can be bootstrapped\n"
	      "  --build-on-target      [deploy --target] send the program and its whole directory tree;\n"
	      "                         the target's punix builds and deploys it there (a target of\n"
	      "                         another architecture; host mode only, not with --transport-root)\n"
	      "  --remote-punix PATH    [--target] the target's punix (default: punix on its PATH, then a\n"
	      "                         static build this punix pushes into the target's store)\n"
	      "  --transport-root DIR   rebase every target path under DIR\n"
	      "  --deployments-root DIR where generations live (default $PUNIX_HOME/deployments)\n"
	      "  --unit-dir DIR         where units go (default /etc/systemd/system)\n"
	      "  --supervisor-conf FILE [deploy, rollback, set-current] a supervisord stack's supervisord.conf:\n"
	      "                         programs go in the directory of its [include] files glob, and\n"
	      "                         --activate runs supervisorctl -c FILE (default\n"
	      "                         /etc/supervisor/supervisord.conf)\n"
	      "  --store-root DIR       the local store (default $PUNIX_STORE_DIR, else $PUNIX_HOME/store)\n"
	      "  --state-dir DIR        the journal (default $PUNIX_STATE_DIR, else $PUNIX_HOME/journal)\n"
	      "  --json                 one JSON object instead of lines\n"
	      "  --keep N               [prune] how many of the newest generations to keep (0 or more)\n"
	      "  --confirm-timeout SECS [deploy, rollback, set-current] after activation, the target waits\n"
	      "                         SECS for the deployer's confirmation over a new connection (with\n"
	      "                         --target; host mode) and for --health to pass; without both in time\n"
	      "                         it flips back to the generation before by itself ([E18], exit 1)\n"
	      "  --health CMD           [with --confirm-timeout] a shell command run on the target until it\n"
	      "                         exits 0 (tried again each second until the time is up)\n"
	      "  --wait SECS            [confirm] how long to wait for the op to begin waiting (default 10)\n"
	      "\n"
	      "Exit status: 0 ok; 1 a coded error ([E#]) or drift; 2 usage; 3 a build or transport failure;\n"
	      "4 another op holds the stack.\n",
	      stdout);
}

