/*
 * jose_test.c: JWS sign and verify for each algorithm, the published
 * examples of RFC 7515 (A.3, ES256) and RFC 8037 (A.4, Ed25519), and the
 * refusals: alg none, key confusion, crit, tampering, bad shapes, sizes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jose/jose.h"

/* RFC 7515 appendix A.3: the ES256 example, its public key. */
static const char rfc7515_jwk[] =
    "{\"kty\":\"EC\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
static const char rfc7515_jws[] =
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApm"
    "WQxfKTUJqPP3-Kg6NU1Q";

/* RFC 8037 appendix A.4: Ed25519 over the text "Example of Ed25519
 * signing" (not a JSON object, so a good signature ends in INVALID). */
static const char rfc8037_jwk[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
static const char rfc8037_jws[] =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5Bh"
    "VsPt9g7sVvpAr_MuM0KAg";

static struct gh_jose_key *
jwk_key(enum gh_jose_alg alg, const char *text)
{
	struct gh_jose_key *k = NULL;
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	assert_int_equal(gh_jose_key_from_jwk(alg, j, &k), GH_OK);
	json_decref(j);
	return k;
}

static void
test_rfc7515_es256_example_verifies(void **state)
{
	struct gh_jose_key *k = jwk_key(GH_JOSE_ES256, rfc7515_jwk);
	json_t *claims = NULL, *hdr = NULL;
	char *bad;

	(void)state;
	assert_int_equal(gh_jose_verify(k, rfc7515_jws, strlen(rfc7515_jws),
	    &hdr, &claims), GH_OK);
	assert_string_equal(json_string_value(json_object_get(claims, "iss")),
	    "joe");
	assert_int_equal(json_integer_value(json_object_get(claims, "exp")),
	    1300819380);
	json_decref(claims);
	json_decref(hdr);
	/* One flipped signature character. */
	bad = strdup(rfc7515_jws);
	bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(gh_jose_verify(k, bad, strlen(bad), NULL, &claims),
	    GH_ERR_DENIED);
	assert_null(claims);
	free(bad);
	gh_jose_key_free(k);
}

static void
test_rfc8037_ed25519_example_signature_is_good(void **state)
{
	struct gh_jose_key *k = jwk_key(GH_JOSE_EDDSA, rfc8037_jwk);
	json_t *claims = NULL;
	char *bad;

	(void)state;
	/* The signature passes; the payload is text, not claims. */
	assert_int_equal(gh_jose_verify(k, rfc8037_jws, strlen(rfc8037_jws),
	    NULL, &claims), GH_ERR_INVALID);
	bad = strdup(rfc8037_jws);
	bad[30] = bad[30] == 'x' ? 'y' : 'x';	/* inside the payload */
	assert_int_equal(gh_jose_verify(k, bad, strlen(bad), NULL, &claims),
	    GH_ERR_DENIED);
	free(bad);
	gh_jose_key_free(k);
}

static void
roundtrip(enum gh_jose_alg alg)
{
	struct gh_jose_key *k = NULL, *pub = NULL, *again = NULL;
	struct gh_buf pem;
	json_t *claims = json_pack("{s:s, s:i}", "sub", "u1", "exp", 42);
	json_t *jwk, *got = NULL, *hdr = NULL;
	char *jws = NULL;

	gh_buf_init(&pem, 16384, GH_BUF_SECRET);
	assert_int_equal(gh_jose_key_generate(alg, &k), GH_OK);
	assert_int_equal(gh_jose_sign(k, "kid1", "JWT", claims, &jws), GH_OK);
	jwk = gh_jose_key_public_jwk(k, "kid1");
	assert_non_null(jwk);
	assert_null(json_object_get(jwk, "d"));
	assert_string_equal(json_string_value(json_object_get(jwk, "alg")),
	    gh_jose_alg_name(alg));
	assert_int_equal(gh_jose_key_from_jwk(alg, jwk, &pub), GH_OK);
	assert_int_equal(gh_jose_verify(pub, jws, strlen(jws), &hdr, &got),
	    GH_OK);
	assert_true(json_equal(got, claims));
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")),
	    "kid1");
	assert_string_equal(json_string_value(json_object_get(hdr, "typ")),
	    "JWT");
	json_decref(got);
	json_decref(hdr);
	/* PEM round trip signs verifiably too. */
	assert_int_equal(gh_jose_key_private_pem(k, &pem), GH_OK);
	assert_int_equal(gh_jose_key_from_pem(alg, pem.data, pem.len, &again),
	    GH_OK);
	free(jws);
	assert_int_equal(gh_jose_sign(again, "kid1", NULL, claims, &jws),
	    GH_OK);
	assert_int_equal(gh_jose_verify(pub, jws, strlen(jws), NULL, &got),
	    GH_OK);
	json_decref(got);
	free(jws);
	json_decref(jwk);
	json_decref(claims);
	gh_buf_free(&pem);
	gh_jose_key_free(k);
	gh_jose_key_free(pub);
	gh_jose_key_free(again);
}

static void
test_each_alg_signs_and_verifies(void **state)
{
	(void)state;
	roundtrip(GH_JOSE_ES256);
	roundtrip(GH_JOSE_RS256);
	roundtrip(GH_JOSE_EDDSA);
}

static void
test_dup_outlives_the_original_and_signs(void **state)
{
	struct gh_jose_key *k = NULL, *d = NULL;
	json_t *claims = json_pack("{s:s}", "sub", "x"), *got = NULL;
	char *jws = NULL;

	(void)state;
	assert_int_equal(gh_jose_key_generate(GH_JOSE_ES256, &k), GH_OK);
	assert_int_equal(gh_jose_key_dup(k, &d), GH_OK);
	assert_ptr_not_equal(k, d);
	assert_int_equal(gh_jose_key_alg(d), GH_JOSE_ES256);
	gh_jose_key_free(k);
	assert_int_equal(gh_jose_sign(d, "kid1", NULL, claims, &jws), GH_OK);
	assert_int_equal(gh_jose_verify(d, jws, strlen(jws), NULL, &got),
	    GH_OK);
	assert_string_equal(json_string_value(json_object_get(got, "sub")),
	    "x");
	json_decref(got);
	json_decref(claims);
	free(jws);
	gh_jose_key_free(d);
}

static char *
b64(const char *s)
{
	char *o = malloc(gh_b64url_len(strlen(s)) + 1);

	gh_b64url_encode((const uint8_t *)s, strlen(s), o);
	return o;
}

/* A token with header text hdr, a valid payload and signature sig. */
static char *
forge(const char *hdr, const char *sig)
{
	char *h = b64(hdr), *p = b64("{\"sub\":\"x\"}");
	char *out = malloc(strlen(h) + strlen(p) + strlen(sig) + 3);

	sprintf(out, "%s.%s.%s", h, p, sig);
	free(h);
	free(p);
	return out;
}

static void
test_alg_none_and_unknown_algs_are_refused(void **state)
{
	struct gh_jose_key *k = jwk_key(GH_JOSE_ES256, rfc7515_jwk);
	const char *hdrs[] = { "{\"alg\":\"none\"}", "{\"alg\":\"HS256\"}",
	    "{\"alg\":\"es256\"}", "{}", "{\"alg\":1}", "[]", "nope",
	    "{\"alg\":\"ES256\",\"alg\":\"ES256\"}" };
	json_t *claims = NULL, *hdr = NULL;
	char *t;

	(void)state;
	for (size_t i = 0; i < sizeof hdrs / sizeof *hdrs; i++) {
		t = forge(hdrs[i], "AAAA");
		assert_int_equal(gh_jose_header(t, strlen(t), &hdr),
		    GH_ERR_INVALID);
		assert_int_equal(gh_jose_verify(k, t, strlen(t), NULL,
		    &claims), GH_ERR_INVALID);
		assert_null(claims);
		free(t);
	}
	gh_jose_key_free(k);
}

static void
test_crit_is_refused(void **state)
{
	json_t *hdr = NULL;
	char *t = forge("{\"alg\":\"ES256\",\"crit\":[\"exp\"],\"exp\":1}",
	    "AAAA");

	(void)state;
	assert_int_equal(gh_jose_header(t, strlen(t), &hdr), GH_ERR_INVALID);
	assert_null(hdr);
	free(t);
}

static void
test_key_confusion_is_refused(void **state)
{
	struct gh_jose_key *es = NULL, *rs = NULL, *ed = NULL, *x = NULL;
	struct gh_buf pem;
	json_t *claims = json_pack("{s:s}", "sub", "u"), *got = NULL, *jwk;
	char *jws = NULL;

	(void)state;
	gh_buf_init(&pem, 16384, GH_BUF_SECRET);
	assert_int_equal(gh_jose_key_generate(GH_JOSE_ES256, &es), GH_OK);
	assert_int_equal(gh_jose_key_generate(GH_JOSE_RS256, &rs), GH_OK);
	assert_int_equal(gh_jose_key_generate(GH_JOSE_EDDSA, &ed), GH_OK);
	assert_int_equal(gh_jose_sign(rs, "k", NULL, claims, &jws), GH_OK);
	/* An RS256 token against ES256 and EdDSA keys. */
	assert_int_equal(gh_jose_verify(es, jws, strlen(jws), NULL, &got),
	    GH_ERR_DENIED);
	assert_int_equal(gh_jose_verify(ed, jws, strlen(jws), NULL, &got),
	    GH_ERR_DENIED);
	assert_null(got);
	/* A key of one type cannot be loaded for another alg. */
	assert_int_equal(gh_jose_key_private_pem(es, &pem), GH_OK);
	assert_int_equal(gh_jose_key_from_pem(GH_JOSE_RS256, pem.data,
	    pem.len, &x), GH_ERR_INVALID);
	assert_int_equal(gh_jose_key_from_pem(GH_JOSE_EDDSA, pem.data,
	    pem.len, &x), GH_ERR_INVALID);
	assert_null(x);
	jwk = gh_jose_key_public_jwk(es, "k");
	assert_int_equal(gh_jose_key_from_jwk(GH_JOSE_RS256, jwk, &x),
	    GH_ERR_INVALID);
	assert_int_equal(gh_jose_key_from_jwk(GH_JOSE_EDDSA, jwk, &x),
	    GH_ERR_INVALID);
	json_decref(jwk);
	free(jws);
	json_decref(claims);
	gh_buf_free(&pem);
	gh_jose_key_free(es);
	gh_jose_key_free(rs);
	gh_jose_key_free(ed);
}

static void
test_unverified_claims_are_read_but_shape_is_checked(void **state)
{
	json_t *c = NULL;
	char *t = forge("{\"alg\":\"none\"}", "AAAA");

	(void)state;
	assert_int_equal(gh_jose_claims_unverified(rfc7515_jws,
	    strlen(rfc7515_jws), &c), GH_OK);
	assert_string_equal(json_string_value(json_object_get(c, "iss")),
	    "joe");
	json_decref(c);
	c = NULL;
	assert_int_equal(gh_jose_claims_unverified(t, strlen(t), &c),
	    GH_ERR_INVALID);
	assert_null(c);
	free(t);
}

static void
test_malformed_and_oversized_tokens_are_refused(void **state)
{
	struct gh_jose_key *k = jwk_key(GH_JOSE_ES256, rfc7515_jwk);
	const char *bad[] = { "", ".", "..", "a.b", "a.b.c.d",
	    "eyJhbGciOiJFUzI1NiJ9..AAAA", "eyJhbGciOiJFUzI1NiJ9.e30.",
	    "eyJhbGciOiJFUzI1NiJ9.e30.!!!!", "eyJhbGciOiJFUzI1NiJ9=.e30.AA" };
	json_t *claims = NULL;
	char *big;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_not_equal(gh_jose_verify(k, bad[i], strlen(bad[i]),
		    NULL, &claims), GH_OK);
	big = malloc(GH_JOSE_MAX_LEN + 2);
	memset(big, 'A', GH_JOSE_MAX_LEN + 1);
	big[10] = '.';
	big[20] = '.';
	big[GH_JOSE_MAX_LEN + 1] = '\0';
	assert_int_equal(gh_jose_verify(k, big, strlen(big), NULL, &claims),
	    GH_ERR_INVALID);
	assert_null(claims);
	free(big);
	gh_jose_key_free(k);
}

static void
test_seen_signatures_skip_only_the_math(void **state)
{
	struct gh_jose_key *a = NULL, *b = NULL;
	struct gh_jose_seen *seen = NULL;
	json_t *claims = json_pack("{s:s}", "sub", "u"), *got = NULL;
	char *jws = NULL, *bad;
	size_t n;

	(void)state;
	assert_int_equal(gh_jose_seen_new(3, &seen), GH_ERR_INVALID);
	assert_int_equal(gh_jose_seen_new(4, &seen), GH_OK);
	assert_int_equal(gh_jose_key_generate(GH_JOSE_ES256, &a), GH_OK);
	assert_int_equal(gh_jose_key_generate(GH_JOSE_ES256, &b), GH_OK);
	assert_int_equal(gh_jose_sign(a, "ka", NULL, claims, &jws), GH_OK);
	n = strlen(jws);
	/* Not seen yet: key b's math refuses it, and nothing is recorded. */
	assert_int_equal(gh_jose_verify_seen(b, seen, "org/ka", jws, n, NULL,
	    &got), GH_ERR_DENIED);
	assert_int_equal(gh_jose_verify_seen(a, seen, "org/ka", jws, n, NULL,
	    &got), GH_OK);
	assert_true(json_equal(got, claims));
	json_decref(got);
	got = NULL;
	/* Seen under this binding: the math is skipped (the binding is the
	 * caller's promise that it names key a)... */
	assert_int_equal(gh_jose_verify_seen(b, seen, "org/ka", jws, n, NULL,
	    &got), GH_OK);
	json_decref(got);
	got = NULL;
	/* ...but not under another binding. */
	assert_int_equal(gh_jose_verify_seen(b, seen, "org/kb", jws, n, NULL,
	    &got), GH_ERR_DENIED);
	/* Any other byte is another token: checked, and refused. */
	bad = strdup(jws);
	assert_non_null(bad);
	bad[strchr(bad, '.') - bad + 2] ^= 1;
	assert_int_equal(gh_jose_verify_seen(a, seen, "org/ka", bad, n, NULL,
	    &got), GH_ERR_DENIED);
	bad[strchr(bad, '.') - bad + 2] ^= 1;
	bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
	assert_int_equal(gh_jose_verify_seen(a, seen, "org/ka", bad, n, NULL,
	    &got), GH_ERR_DENIED);
	assert_null(got);
	/* A cache needs a binding. */
	assert_int_equal(gh_jose_verify_seen(a, seen, NULL, jws, n, NULL,
	    &got), GH_ERR_INVALID);
	free(bad);
	free(jws);
	json_decref(claims);
	gh_jose_key_free(a);
	gh_jose_key_free(b);
	gh_jose_seen_free(seen);
}

struct pick {
	const struct gh_jose_key *k;
	const char *binding;
	int calls;
	gh_err err;
};

static gh_err
pick_key(void *arg, json_t *header, const struct gh_jose_key **key_out,
    char binding[static GH_JOSE_BINDING_MAX])
{
	struct pick *p = arg;

	assert_non_null(json_object_get(header, "kid"));
	p->calls++;
	*key_out = p->k;
	snprintf(binding, GH_JOSE_BINDING_MAX, "%s", p->binding);
	return p->err;
}

static void
test_verify_by_asks_the_key_every_time_and_reuses_the_parse(void **state)
{
	struct gh_jose_key *a = NULL, *b = NULL;
	struct gh_jose_seen *seen = NULL;
	json_t *claims = json_pack("{s:s, s:s}", "sub", "u\"1", "x", "\xc3\xa9");
	json_t *got = NULL, *got2 = NULL, *hdr = NULL;
	struct pick p = { NULL, "org/ka", 0, GH_OK };
	char *jws = NULL, *via = NULL;
	size_t n;

	(void)state;
	assert_int_equal(gh_jose_seen_new(4, &seen), GH_OK);
	assert_int_equal(gh_jose_key_generate(GH_JOSE_ES256, &a), GH_OK);
	assert_int_equal(gh_jose_key_generate(GH_JOSE_ES256, &b), GH_OK);
	/* The header written directly is the one jansson would write. */
	assert_int_equal(gh_jose_sign(a, "k\"a", "at+jwt", claims, &jws),
	    GH_OK);
	{
		static const char want[] = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImtcIm"
		    "EiLCJ0eXAiOiJhdCtqd3QifQ.";

		assert_int_equal(strncmp(jws, want, sizeof want - 1), 0);
	}
	free(jws);
	assert_int_equal(gh_jose_sign(a, "ka", NULL, claims, &jws), GH_OK);
	n = strlen(jws);
	p.k = a;
	assert_int_equal(gh_jose_verify_by(seen, jws, n, pick_key, &p, &hdr,
	    &got), GH_OK);
	assert_true(json_equal(got, claims));
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")),
	    "ka");
	/* A hit: the key is still asked for (it may have been retired), the
	 * same parse comes back. */
	assert_int_equal(gh_jose_verify_by(seen, jws, n, pick_key, &p, NULL,
	    &got2), GH_OK);
	assert_int_equal(p.calls, 2);
	assert_ptr_equal(got, got2);
	json_decref(got2);
	got2 = NULL;
	/* A refusal of the key is final, seen or not. */
	p.err = GH_ERR_DENIED;
	assert_int_equal(gh_jose_verify_by(seen, jws, n, pick_key, &p, NULL,
	    &got2), GH_ERR_DENIED);
	assert_null(got2);
	/* Another binding: the math runs, and key b refuses. */
	p.err = GH_OK;
	p.k = b;
	p.binding = "org/kb";
	assert_int_equal(gh_jose_verify_by(seen, jws, n, pick_key, &p, NULL,
	    &got2), GH_ERR_DENIED);
	/* The key's own algorithm decides, even on a hit. */
	gh_jose_key_free(b);
	assert_int_equal(gh_jose_key_generate(GH_JOSE_EDDSA, &b), GH_OK);
	p.k = b;
	p.binding = "org/ka";
	assert_int_equal(gh_jose_verify_by(seen, jws, n, pick_key, &p, NULL,
	    &got2), GH_ERR_DENIED);
	/* RS256 through the shared contexts, from a duplicate handle. */
	gh_jose_key_free(b);
	b = NULL;
	assert_int_equal(gh_jose_key_generate(GH_JOSE_RS256, &b), GH_OK);
	gh_jose_key_free(a);
	assert_int_equal(gh_jose_key_dup(b, &a), GH_OK);
	assert_int_equal(gh_jose_sign_payload(a, "kr", NULL, "{\"sub\":\"u\"}",
	    11, &via), GH_OK);
	assert_int_equal(gh_jose_verify(b, via, strlen(via), NULL, &got2),
	    GH_OK);
	assert_string_equal(json_string_value(json_object_get(got2, "sub")),
	    "u");
	json_decref(got2);
	free(via);
	free(jws);
	json_decref(got);
	json_decref(hdr);
	json_decref(claims);
	gh_jose_key_free(a);
	gh_jose_key_free(b);
	gh_jose_seen_free(seen);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7515_es256_example_verifies),
		cmocka_unit_test(
		    test_rfc8037_ed25519_example_signature_is_good),
		cmocka_unit_test(test_each_alg_signs_and_verifies),
		cmocka_unit_test(test_dup_outlives_the_original_and_signs),
		cmocka_unit_test(test_alg_none_and_unknown_algs_are_refused),
		cmocka_unit_test(test_crit_is_refused),
		cmocka_unit_test(test_key_confusion_is_refused),
		cmocka_unit_test(test_seen_signatures_skip_only_the_math),
		cmocka_unit_test(
		    test_verify_by_asks_the_key_every_time_and_reuses_the_parse),
		cmocka_unit_test(
		    test_malformed_and_oversized_tokens_are_refused),
		cmocka_unit_test(
		    test_unverified_claims_are_read_but_shape_is_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
