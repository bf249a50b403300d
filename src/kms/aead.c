/*
 * aead.c: AES-256-GCM with random 96-bit nonces and 128-bit tags, the one
 * AEAD every layer of the key hierarchy uses (OpenSSL 3 EVP).
 *
 * Untrusted input: sealed blobs read from databases; they are authenticated
 * before any plaintext reaches the caller's buffer. Secrets: the keys passed
 * in (borrowed) and the plaintext, which goes through a small stack block
 * that is wiped before returning. Refuses an all-zero key both ways.
 */
#include "kms/kms_int.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN 16
#define AEAD_CHUNK 1024

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

/* Runs data through ctx in blocks, appending the output to out. */
static gh_err
gcm_update(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t in_len,
    struct gh_buf *out)
{
	uint8_t block[AEAD_CHUNK];
	gh_err err = GH_OK;
	int n;

	while (in_len > 0) {
		size_t take = in_len < sizeof block ? in_len : sizeof block;

		if (EVP_CipherUpdate(ctx, block, &n, in, (int)take) != 1 ||
		    n < 0 || (size_t)n > sizeof block) {
			err = GH_ERR_CRYPTO;
			break;
		}
		gh_buf_put(out, block, (size_t)n);
		if ((err = gh_buf_err(out)) != GH_OK)
			break;
		in += take;
		in_len -= take;
	}
	gh_wipe(block, sizeof block);
	return err;
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

gh_err
kms_aead_seal(const uint8_t key[GH_KMS_KEY_LEN], const uint8_t *aad,
    size_t aad_len, const uint8_t *pt, size_t pt_len, struct gh_buf *out)
{
	const EVP_CIPHER *cipher = gcm_get();
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t nonce[AEAD_NONCE_LEN], tag[AEAD_TAG_LEN];
	size_t start = out->len;
	gh_err err;
	int n;

	if (cipher == NULL)
		return GH_ERR_CRYPTO;
	if (key_is_zero(key))
		return GH_ERR_CRYPTO;
	if (pt_len > INT32_MAX || aad_len > INT32_MAX)
		return GH_ERR_LIMIT;
	if ((err = gh_rand_bytes(nonce, sizeof nonce)) != GH_OK)
		return err;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return GH_ERR_NOMEM;
	err = GH_ERR_CRYPTO;
	if (EVP_CipherInit_ex2(ctx, cipher, key, nonce, 1, NULL) != 1)
		goto out;
	if (aad_len > 0 &&
	    EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
		goto out;
	gh_buf_put(out, nonce, sizeof nonce);
	if ((err = gh_buf_err(out)) != GH_OK)
		goto out;
	if ((err = gcm_update(ctx, pt, pt_len, out)) != GH_OK)
		goto out;
	err = GH_ERR_CRYPTO;
	if (EVP_CipherFinal_ex(ctx, tag, &n) != 1 || n != 0)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, sizeof tag,
	    tag) != 1)
		goto out;
	gh_buf_put(out, tag, sizeof tag);
	err = gh_buf_err(out);
out:
	if (err != GH_OK)
		buf_rollback(out, start);
	EVP_CIPHER_CTX_free(ctx);
	return err;
}

gh_err
kms_aead_open(const uint8_t key[GH_KMS_KEY_LEN], const uint8_t *aad,
    size_t aad_len, const uint8_t *in, size_t in_len, struct gh_buf *out)
{
	const EVP_CIPHER *cipher = gcm_get();
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t tag[AEAD_TAG_LEN], fin[AEAD_TAG_LEN];
	size_t start = out->len, body_len;
	gh_err err;
	int n;

	if (cipher == NULL)
		return GH_ERR_CRYPTO;
	/* Nothing is ever decrypted with a default or all-zero key. */
	if (key_is_zero(key))
		return GH_ERR_CRYPTO;
	if (in_len < AEAD_NONCE_LEN + AEAD_TAG_LEN)
		return GH_ERR_INVALID;
	body_len = in_len - AEAD_NONCE_LEN - AEAD_TAG_LEN;
	if (body_len > INT32_MAX || aad_len > INT32_MAX)
		return GH_ERR_LIMIT;
	memcpy(tag, in + in_len - AEAD_TAG_LEN, sizeof tag);
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return GH_ERR_NOMEM;
	err = GH_ERR_CRYPTO;
	if (EVP_CipherInit_ex2(ctx, cipher, key, in, 0, NULL) != 1)
		goto out;
	if (aad_len > 0 &&
	    EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
		goto out;
	if ((err = gcm_update(ctx, in + AEAD_NONCE_LEN, body_len, out)) !=
	    GH_OK)
		goto out;
	err = GH_ERR_CRYPTO;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, sizeof tag,
	    tag) != 1)
		goto out;
	/* A bad tag fails here; the unauthenticated output is rolled back. */
	if (EVP_CipherFinal_ex(ctx, fin, &n) != 1 || n != 0)
		goto out;
	err = GH_OK;
out:
	if (err != GH_OK)
		buf_rollback(out, start);
	gh_wipe(fin, sizeof fin);
	EVP_CIPHER_CTX_free(ctx);
	return err;
}
