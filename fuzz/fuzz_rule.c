/* fuzz_rule.c: libFuzzer target for the assignment rule expression parser
 * and evaluator (src/access/rule.c): any bytes must parse or be refused
 * with a position inside the input, and a parsed rule must respect its
 * bounds and evaluate without faults. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access/access_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Answers from the input's bytes, so that both branches run. */
static const char *
fz_value(void *arg, const char *name)
{
	return (strlen(name) & 1) ? NULL : (const char *)arg;
}

static bool
fz_in_group(void *arg, const char *name)
{
	return name[0] != '\0' && (name[0] & 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_access_rule_error e;
	struct gh_access_rule *r = NULL;
	struct gh_access_facts f = { fz_value, fz_in_group, "Support" };
	size_t i;
	gh_err err;

	err = gh_access_rule_parse((const char *)data, size, &r, &e);
	if (err == GH_ERR_INVALID) {
		if (r != NULL || e.code == NULL || e.msg[0] == '\0' ||
		    (e.pos > size && e.pos != GH_RULE_EXPR_MAX))
			__builtin_trap();
		return 0;
	}
	if (err != GH_OK)
		return 0;
	if (size > GH_RULE_EXPR_MAX || r->n + r->lits > GH_RULE_NODES_MAX ||
	    r->root < 0 || (size_t)r->root >= r->n)
		__builtin_trap();
	for (i = 0; i < r->n; i++)
		if (r->nodes[i].kind == RK_CMP && (r->nodes[i].name == NULL ||
		    r->nodes[i].n_vals == 0))
			__builtin_trap();
	(void)gh_access_rule_eval(r, &f);
	gh_access_rule_free(r);
	return 0;
}
