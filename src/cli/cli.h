/* cli.h: the gatehouse command line: subcommands, configuration. */
#ifndef GH_CLI_H
#define GH_CLI_H

/* Runs the command line; returns the process exit status. */
int gh_cli_main(int argc, char **argv);

#endif
