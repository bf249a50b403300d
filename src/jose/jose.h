/*
 * jose.h: JSON Web Signatures in compact form (RFC 7515) and JSON Web Keys
 * (RFC 7517) for the OpenID Connect provider: ES256 (P-256, raw r||s),
 * RS256 (RSA of 2048 bits or more) and EdDSA (Ed25519), on OpenSSL EVP.
 *
 * Untrusted input: compact JWS strings from clients (tokens sent back to
 * us, id_token_hint) and JWKs (tests, known vectors). Parsing is strict:
 * bounded sizes, "alg" must be present and equal to the algorithm of the
 * verifying key ("none" and key confusion are refused), any "crit" header
 * is refused. Secrets: private keys (EVP_PKEY inside struct gh_jose_key;
 * the PEM forms go through GH_BUF_SECRET buffers).
 */
#ifndef GH_JOSE_H
#define GH_JOSE_H

#include <jansson.h>

#include "core/core.h"

#define GH_JOSE_MAX_LEN (16 * 1024)	/* longest compact JWS accepted */
#define GH_JOSE_KID_MAX 64

enum gh_jose_alg {
	GH_JOSE_ES256 = 1,
	GH_JOSE_RS256 = 2,
	GH_JOSE_EDDSA = 3,
};

struct gh_jose_key;

/* "ES256", "RS256", "EdDSA". */
const char *gh_jose_alg_name(enum gh_jose_alg alg);
/* Parses an alg name; GH_ERR_INVALID for anything else ("none" too). */
gh_err gh_jose_alg_parse(const char *name, enum gh_jose_alg *out)
    GH_MUST_CHECK;

/* Makes a fresh private key for alg (RSA: 2048 bits). */
gh_err gh_jose_key_generate(enum gh_jose_alg alg, struct gh_jose_key **out)
    GH_MUST_CHECK;
/* Appends the private key as PKCS#8 PEM to out (make it GH_BUF_SECRET). */
gh_err gh_jose_key_private_pem(const struct gh_jose_key *k,
    struct gh_buf *out) GH_MUST_CHECK;
/* Loads a PKCS#8 PEM private key for alg; GH_ERR_INVALID when the key's
 * type does not fit alg (or an RSA key is shorter than 2048 bits). */
gh_err gh_jose_key_from_pem(enum gh_jose_alg alg, const void *pem,
    size_t pem_len, struct gh_jose_key **out) GH_MUST_CHECK;
/* Imports a public JWK object (kty EC/crv P-256, RSA, OKP/crv Ed25519)
 * for alg; GH_ERR_INVALID when malformed or of the wrong type. */
gh_err gh_jose_key_from_jwk(enum gh_jose_alg alg, json_t *jwk,
    struct gh_jose_key **out) GH_MUST_CHECK;
enum gh_jose_alg gh_jose_key_alg(const struct gh_jose_key *k);
/* A second handle on the same key (the EVP_PKEY is shared, refcounted):
 * each handle is freed on its own, and may sign or verify from another
 * thread at the same time. */
gh_err gh_jose_key_dup(const struct gh_jose_key *k, struct gh_jose_key **out)
    GH_MUST_CHECK;
/* The public JWK with "kid", "alg" and "use": "sig" (new reference). */
json_t *gh_jose_key_public_jwk(const struct gh_jose_key *k, const char *kid);
/* Wipes and frees. NULL is a no-op. */
void gh_jose_key_free(struct gh_jose_key *k);

/* Signs claims (borrowed) with header {"alg", "kid", "typ" (NULL: none)}.
 * *out is a malloc'd NUL-terminated compact JWS. */
gh_err gh_jose_sign(const struct gh_jose_key *k, const char *kid,
    const char *typ, json_t *claims, char **out) GH_MUST_CHECK;

/* gh_jose_sign of a payload already serialised: payload[0..payload_len)
 * must be the compact JSON text of the claims object (the caller's
 * writer escapes it like json_dumps). */
gh_err gh_jose_sign_payload(const struct gh_jose_key *k, const char *kid,
    const char *typ, const char *payload, size_t payload_len, char **out)
    GH_MUST_CHECK;

/* Parses the protected header of a compact JWS without verifying: checks
 * the shape (three base64url parts, bounded), that the header is an
 * object with a known "alg" and no "crit". *header_out: new reference. */
gh_err gh_jose_header(const char *jws, size_t len, json_t **header_out)
    GH_MUST_CHECK;

/* The payload object of a compact JWS WITHOUT verifying it: only to find
 * which key should verify it (e.g. the "iss" of a client assertion).
 * Never trust what it returns before gh_jose_verify succeeds. */
gh_err gh_jose_claims_unverified(const char *jws, size_t len,
    json_t **claims_out) GH_MUST_CHECK;

/* Verifies jws with key k: the header must pass gh_jose_header and name
 * k's algorithm. On success *claims_out is the payload object (new
 * reference) and *header_out (may be NULL) the header. GH_ERR_INVALID:
 * malformed; GH_ERR_DENIED: wrong alg for the key or bad signature. No
 * claim (exp, aud...) is checked here. */
gh_err gh_jose_verify(const struct gh_jose_key *k, const char *jws,
    size_t len, json_t **header_out, json_t **claims_out) GH_MUST_CHECK;

/*
 * Signatures already verified: a bounded set, safe to share between
 * threads, that lets a caller checking the same token again and again
 * (introspection) skip the signature math and the parsing, most of the
 * cost of a verification (ES256: tens of microseconds). An entry is the
 * SHA-256 of the whole JWS, the binding it verified under, and its parsed
 * header and claims, recorded after its signature verified; a full set
 * forgets entries (direct-mapped), never errs. binding must name the key
 * for good (e.g. org id and kid, when a kid is never reused for another
 * key); the caller still decides on each call that the key may verify
 * (not retired). Header and claims handed out from the set are shared
 * with it: treat them as read-only (jansson's counts are atomic).
 */
#define GH_JOSE_BINDING_MAX 160
struct gh_jose_seen;
/* Room for about 2^bits entries (bits in 4..20). */
gh_err gh_jose_seen_new(unsigned bits, struct gh_jose_seen **out)
    GH_MUST_CHECK;
void gh_jose_seen_free(struct gh_jose_seen *s);
/* gh_jose_verify, skipping the signature check when seen (may be NULL)
 * holds (binding, jws); everything else (shape, header, alg) is checked
 * as always, the header and payload by the parse of the same bytes. */
gh_err gh_jose_verify_seen(const struct gh_jose_key *k,
    struct gh_jose_seen *seen, const char *binding, const char *jws,
    size_t len, json_t **header_out, json_t **claims_out) GH_MUST_CHECK;

/* Chooses the key of a token from its checked header (borrowed): *key_out
 * (the caller's, valid until gh_jose_verify_by returns) and the binding
 * naming that key for good ("" : do not cache). An error is returned as
 * is. */
typedef gh_err (*gh_jose_key_fn)(void *arg, json_t *header,
    const struct gh_jose_key **key_out,
    char binding[static GH_JOSE_BINDING_MAX]);
/* gh_jose_verify_seen where key_fn picks the key from the header: the
 * header is parsed once (or taken from seen for the same bytes). */
gh_err gh_jose_verify_by(struct gh_jose_seen *seen, const char *jws,
    size_t len, gh_jose_key_fn key_fn, void *arg, json_t **header_out,
    json_t **claims_out) GH_MUST_CHECK;

#endif
