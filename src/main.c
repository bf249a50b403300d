/* main.c: dispatches subcommands; nothing else (but SQLite's
 * process-wide settings, which must precede any use of SQLite). */
#include "cli/cli.h"
#include "store/store.h"

int
main(int argc, char **argv)
{
	gh_store_sqlite_setup();
	return gh_cli_main(argc, argv);
}
