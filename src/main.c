/* main.c: dispatches subcommands; nothing else. */
#include "cli/cli.h"

int
main(int argc, char **argv)
{
	return gh_cli_main(argc, argv);
}
