/*
 * aead.c: AES-256-GCM with random 96-bit nonces and 128-bit tags, the one
 * AEAD every layer of the key hierarchy uses (OpenSSL 3 EVP).
 *
 * Untrusted input: sealed blobs read from databases; they are authenticated
 * before the caller sees any plaintext: the output is decrypted in place in
 * the caller's buffer and wiped (rolled back) when the tag does not match.
 * Secrets: the keys passed in (borrowed) and the plaintext. Refuses an
 * all-zero key both ways.
 *
 * Nonces: 96 bits from the OpenSSL DRBG through gh_rand_public, the
 * per-thread pool of src/core/rand.c: one RAND_bytes call per few hundred
 * seals instead of one each (the DRBG call was 44 % of a 64-byte seal).
 * Every nonce is still an independent DRBG output used once, so the
 * collision bound is the one of random nonces (q^2 / 2^97 for q seals
 * under a key); the pool is emptied in a forked child.
 */
#include "kms/kms_int.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <string.h>

#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN 16

/* The fetched cipher is immutable once fetched and shared by all threads;
 * fetching it per call costs a third of a small record's time. */
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *gcm_cipher;

static void
gcm_fetch(void)
{
	gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *
gcm_get(void)
{
	if (pthread_once(&gcm_once, gcm_fetch) != 0)
		return NULL;
	return gcm_cipher;
}

static bool
key_is_zero(const uint8_t key[GH_KMS_KEY_LEN])
{
	uint8_t acc = 0;
	size_t i;

	for (i = 0; i < GH_KMS_KEY_LEN; i++)
		acc |= key[i];
	return acc == 0;
}

/* A fresh 96-bit nonce from this thread's pool, refilled from the DRBG. */
static gh_err
nonce_next(uint8_t nonce[AEAD_NONCE_LEN])
{
	return gh_rand_public(nonce, AEAD_NONCE_LEN);
}

/* Restores out to start bytes on failure, wiping what was appended. */
static void
buf_rollback(struct gh_buf *out, size_t start)
{
	if (out->err != GH_OK || out->data == NULL || out->len < start)
		return;
	gh_wipe(out->data + start, out->len - start);
	out->len = start;
	out->data[start] = '\0';
}

/* Keys ctx (key != NULL: refusing an all-zero key) or only sets the nonce
 * of a context keyed before, for one message in direction enc. */
static gh_err
gcm_begin(EVP_CIPHER_CTX *ctx, const uint8_t *key, const uint8_t *nonce,
    int enc, const uint8_t *aad, size_t aad_len, const OSSL_PARAM *params)
{
	const EVP_CIPHER *cipher = NULL;
	int n;

	if (key != NULL && (cipher = gcm_get()) == NULL)
		return GH_ERR_CRYPTO;
	if (EVP_CipherInit_ex2(ctx, cipher, key, nonce, enc, params) != 1)
		return GH_ERR_CRYPTO;
	if (aad_len > 0 &&
	    EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
		return GH_ERR_CRYPTO;
	return GH_OK;
}

/* Gets the 16-byte tag after a seal through the provider's parameters:
 * EVP_CIPHER_CTX_ctrl would translate to the same call at a cost of a
 * fifth of a small value's time. (An open hands the expected tag over
 * with its nonce, in gcm_begin.) */
static bool
gcm_tag_get(EVP_CIPHER_CTX *ctx, uint8_t tag[AEAD_TAG_LEN])
{
	OSSL_PARAM params[2];

	params[0] = OSSL_PARAM_construct_octet_string(
	    OSSL_CIPHER_PARAM_AEAD_TAG, tag, AEAD_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	return EVP_CIPHER_CTX_get_params(ctx, params) == 1;
}

/* Transforms len bytes from in to out (GCM allows out == in). */
static gh_err
gcm_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len)
{
	int n;

	if (len > 0 && (EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1 ||
	    n < 0 || (size_t)n != len))
		return GH_ERR_CRYPTO;
	return GH_OK;
}

/*
 * Appends n bytes to out for the transform of len bytes at *in. The
 * transform goes straight from *in to the new bytes: no copy, and no
 * plaintext ever passes through a ciphertext buffer. *in may lie in out's
 * own (used) storage, which the append can move: it is then re-pointed to
 * its new place. NULL on failure (a bad overlap: GH_ERR_INVALID).
 */
static uint8_t *
append_for(struct gh_buf *out, size_t n, const uint8_t **in, size_t len,
    gh_err *err)
{
	uintptr_t a = (uintptr_t)*in, lo = (uintptr_t)out->data;
	bool alias = len > 0 && out->data != NULL && a < lo + out->cap &&
	    lo < a + len;
	size_t off = alias ? (size_t)(a - lo) : 0;
	uint8_t *dst;

	*err = GH_ERR_INVALID;
	if (alias && (a < lo || off + len > out->len))
		return NULL;
	if ((dst = gh_buf_append(out, n)) == NULL) {
		*err = gh_buf_err(out);
		return NULL;
	}
	if (alias)
		*in = out->data + off;
	*err = GH_OK;
	return dst;
}

gh_err
kms_aead_seal_ctx(EVP_CIPHER_CTX *ctx, const uint8_t *key,
    const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
    struct gh_buf *out)
{
	uint8_t nonce[AEAD_NONCE_LEN], tag[AEAD_TAG_LEN], *dst;
	size_t start = out->len;
	gh_err err;
	int n;

	if (pt_len > INT32_MAX || aad_len > INT32_MAX)
		return GH_ERR_LIMIT;
	if (key != NULL && key_is_zero(key))
		return GH_ERR_CRYPTO;
	if ((err = nonce_next(nonce)) != GH_OK)
		return err;
	if ((err = gcm_begin(ctx, key, nonce, 1, aad, aad_len, NULL)) !=
	    GH_OK)
		return err;
	/* Room for nonce | ciphertext | tag at once, each then written in
	 * its place; the plaintext is encrypted straight into it. */
	dst = append_for(out, AEAD_NONCE_LEN + pt_len + AEAD_TAG_LEN, &pt,
	    pt_len, &err);
	if (dst == NULL)
		goto out;
	memcpy(dst, nonce, AEAD_NONCE_LEN);
	dst += AEAD_NONCE_LEN;
	if ((err = gcm_update(ctx, dst, pt, pt_len)) != GH_OK)
		goto out;
	err = GH_ERR_CRYPTO;
	if (EVP_CipherFinal_ex(ctx, tag, &n) != 1 || n != 0)
		goto out;
	if (!gcm_tag_get(ctx, dst + pt_len))
		goto out;
	err = GH_OK;
out:
	if (err != GH_OK)
		buf_rollback(out, start);
	return err;
}

gh_err
kms_aead_open_ctx(EVP_CIPHER_CTX *ctx, const uint8_t *key,
    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
    struct gh_buf *out)
{
	uint8_t tag[AEAD_TAG_LEN], fin[AEAD_TAG_LEN], *dst;
	size_t start = out->len, body_len;
	const uint8_t *body;
	OSSL_PARAM params[2];
	gh_err err;
	int n;

	/* Nothing is ever decrypted with a default or all-zero key. */
	if (key != NULL && key_is_zero(key))
		return GH_ERR_CRYPTO;
	if (in_len < AEAD_NONCE_LEN + AEAD_TAG_LEN)
		return GH_ERR_INVALID;
	body_len = in_len - AEAD_NONCE_LEN - AEAD_TAG_LEN;
	if (body_len > INT32_MAX || aad_len > INT32_MAX)
		return GH_ERR_LIMIT;
	/* The expected tag goes in with the nonce: one parameter pass. */
	memcpy(tag, in + in_len - AEAD_TAG_LEN, sizeof tag);
	params[0] = OSSL_PARAM_construct_octet_string(
	    OSSL_CIPHER_PARAM_AEAD_TAG, tag, AEAD_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	if ((err = gcm_begin(ctx, key, in, 0, aad, aad_len, params)) !=
	    GH_OK)
		return err;
	body = in + AEAD_NONCE_LEN;
	if ((dst = append_for(out, body_len, &body, body_len, &err)) == NULL)
		goto out;
	if ((err = gcm_update(ctx, dst, body, body_len)) != GH_OK)
		goto out;
	/* A bad tag fails here (OpenSSL compares in constant time); the
	 * unauthenticated output is rolled back. */
	err = GH_ERR_CRYPTO;
	if (EVP_CipherFinal_ex(ctx, fin, &n) != 1 || n != 0)
		goto out;
	err = GH_OK;
out:
	if (err != GH_OK)
		buf_rollback(out, start);
	gh_wipe(fin, sizeof fin);
	return err;
}

gh_err
kms_aead_seal(const uint8_t key[GH_KMS_KEY_LEN], const uint8_t *aad,
    size_t aad_len, const uint8_t *pt, size_t pt_len, struct gh_buf *out)
{
	EVP_CIPHER_CTX *ctx;
	gh_err err;

	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return GH_ERR_NOMEM;
	err = kms_aead_seal_ctx(ctx, key, aad, aad_len, pt, pt_len, out);
	EVP_CIPHER_CTX_free(ctx);	/* wipes the key schedule */
	return err;
}

gh_err
kms_aead_open(const uint8_t key[GH_KMS_KEY_LEN], const uint8_t *aad,
    size_t aad_len, const uint8_t *in, size_t in_len, struct gh_buf *out)
{
	EVP_CIPHER_CTX *ctx;
	gh_err err;

	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return GH_ERR_NOMEM;
	err = kms_aead_open_ctx(ctx, key, aad, aad_len, in, in_len, out);
	EVP_CIPHER_CTX_free(ctx);
	return err;
}
