/* migrations.h: the numbered SQL migrations embedded at build time. */
#ifndef GH_STORE_MIGRATIONS_H
#define GH_STORE_MIGRATIONS_H

#include <stddef.h>

struct gh_migration {
	int version;		/* 1..n, no gaps */
	const char *name;	/* file name, for logs */
	const char *sql;	/* one or more statements */
};

extern const struct gh_migration gh_migrations_directory[];
extern const size_t gh_migrations_directory_len;
extern const struct gh_migration gh_migrations_tenant[];
extern const size_t gh_migrations_tenant_len;

#endif
