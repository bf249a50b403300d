/* access_int.h: private to src/access and its tests: the parsed form of a
 * rule expression. */
#ifndef GH_ACCESS_INT_H
#define GH_ACCESS_INT_H

#include "access/access.h"

enum rule_kind { RK_AND = 1, RK_OR, RK_NOT, RK_CMP, RK_GROUP };
enum rule_op { RO_EQ = 1, RO_NE, RO_IN, RO_CO, RO_SW, RO_EW };

struct rule_node {
	enum rule_kind kind;
	enum rule_op op;	/* RK_CMP */
	int a, b;		/* children (node indexes), -1 when none */
	char *name;		/* RK_CMP: field or attribute; RK_GROUP: group */
	char **vals;		/* RK_CMP: the literal(s), owned */
	size_t n_vals;
	size_t pos;		/* byte offset in the expression */
	bool encrypted;		/* bound: vals are blind indexes */
};

struct gh_access_rule {
	struct rule_node nodes[GH_RULE_NODES_MAX];
	size_t n;		/* nodes used */
	size_t lits;		/* list members, counted against the bound */
	int root;
};

/* Helpers shared by the files of src/access (app.c). */
/* RFC 3339 text of ms, or JSON null when ms <= 0. */
json_t *access_time_json(int64_t ms);
/* Valid UTF-8 without control characters, min..max bytes. */
bool access_text_ok(const char *s, size_t min, size_t max);
/* name with ASCII letters lowercased, truncated to cap. */
void access_name_key(const char *name, char *out, size_t cap);
/* Runs a SELECT COUNT(*) bound to a (and b when not NULL). */
gh_err access_count(struct gh_db *db, const char *sql, const char *a,
    const char *b, int64_t *out) GH_MUST_CHECK;
/* "<created_at>.<id>" of the last row of the previous page. */
gh_err access_cursor_parse(const char *c, int64_t *at_out,
    char id_out[static GH_ID_LEN + 1]) GH_MUST_CHECK;
/* "%q%" lowercased with LIKE's metacharacters escaped; malloc'd. */
char *access_like_pattern(const char *q);

#endif
