/*
 * crypt.c: "gh-crypt", the SQLite VFS that encrypts tenant databases page
 * by page. It wraps the unix VFS and sees every byte SQLite moves for a
 * connection opened through it:
 *
 *   main database  4096-byte pages. The first 4064 bytes of each page are
 *                  AES-256-GCM ciphertext; the last 32 (SQLite's reserved
 *                  bytes, which SQLite itself never uses) hold the page's
 *                  key version (u32, big-endian), a random 96-bit nonce and
 *                  the 128-bit tag. AAD = "gh-page" | org id | page number
 *                  | key version. A page of zeros on disk (never written)
 *                  reads back as zeros.
 *   WAL            the 32-byte header and each frame's 24-byte header are
 *                  left as SQLite wrote them (they hold page numbers, salts
 *                  and checksums of the plaintext, no data); each frame's
 *                  page image is sealed exactly like the database page of
 *                  the same number. SQLite writes a frame as its header
 *                  and then its page; the header is held back and goes to
 *                  the file with the sealed page in one write (same bytes,
 *                  one system call). A held header is written out first
 *                  if anything else reaches the file before its page.
 *   -shm           untouched: the WAL index (page numbers, no data), not
 *                  persistent.
 *   anything else  refused. Connections run with temp_store=MEMORY, so
 *                  statement journals, sorter files and VACUUM's copy never
 *                  reach a file; a file kind that would be written in clear
 *                  fails to open instead.
 *
 * Reads SQLite makes of part of a page (the 100-byte header, the WAL's
 * frame headers) are served by reading and opening the whole page. Writes
 * of page images are whole pages; anything else fails closed.
 *
 * Untrusted input: the bytes of the database and WAL files. A page that
 * fails authentication is never handed to SQLite: the read fails with
 * SQLITE_IOERR_AUTH. The one exception is SQLite's WAL recovery, which
 * reads whole frames to find where the valid log ends: there an
 * unauthentic page image (a frame torn by a crash) is handed over as
 * zeros, which fail SQLite's frame checksum, so recovery stops at that
 * frame exactly as it would for a torn frame without encryption.
 *
 * Secrets: each connection's page keys (struct gh_store_crypt), kept in
 * locked, undumpable memory and wiped when the connection closes. The
 * OpenSSL context holding the expanded key is reset after every page.
 *
 * Process-wide state: the VFS is registered with SQLite once (SQLite's VFS
 * list is process-wide by design), and the key context travels from
 * sqlite.c to the VFS's xOpen through a thread-local handed over for the
 * duration of one sqlite3_open_v2 call; no key appears in a file name or
 * URI.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/store_int.h"

#define PAGE_SZ		GH_STORE_PAGE_SIZE
#define META_SZ		GH_STORE_PAGE_RESERVE
#define BODY_SZ		(PAGE_SZ - META_SZ)	/* the encrypted part */
#define NONCE_SZ	12
#define TAG_SZ		16
#define KEY_SZ		32
#define WAL_HDR_SZ	32
#define FRAME_HDR_SZ	24
#define FRAME_SZ	(FRAME_HDR_SZ + PAGE_SZ)
#define OLD_KEYS	4	/* older key versions cached per connection */
#define AAD_MAX		(7 + 2 + GH_ID_LEN + 4 + 4)

static const char page_label[7] = { 'g', 'h', '-', 'p', 'a', 'g', 'e' };
static const char sqlite_magic[16] = "SQLite format 3";

struct key_slot {
	uint32_t version;	/* 0: empty */
	struct gh_secret *key;
};

struct gh_store_crypt {
	struct gh_store_keys keys;
	char org_id[GH_ID_LEN + 1];
	bool attached;		/* taken by the VFS's xOpen */
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *cctx;
	struct key_slot newest;
	struct key_slot old[OLD_KEYS];
	unsigned old_next;	/* round-robin replacement */
};

enum file_kind { KIND_MAIN, KIND_WAL };

/* One open file. The underlying unix file follows it in the same block. */
struct cfile {
	sqlite3_file base;
	struct gh_store_crypt *c;	/* borrowed: the connection's keys */
	enum file_kind kind;
	sqlite3_file *real;
	uint8_t *buf;			/* one frame: header and page */
	uint8_t *out;			/* one sealed page */
	sqlite3_int64 hdr_off;		/* the last frame header written */
	uint32_t hdr_pgno;
	/* WAL: a frame header SQLite wrote that is not in the file yet
	 * (kept in hdr, at hdr_off), waiting for its page. */
	bool hdr_held;
	uint8_t hdr[FRAME_HDR_SZ];
};

#define CFILE_SZ ((sizeof(struct cfile) + 7) & ~(size_t)7)

static _Thread_local struct gh_store_crypt *handed_over;

/* ---- keys ----------------------------------------------------------------- */

static bool
all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	size_t i;

	for (i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/*
 * Asks the callback for version (0: the newest) into fresh locked memory.
 * Refuses a version 0 answer, a different version than asked and an
 * all-zero key: nothing is ever sealed or opened with a default key.
 */
static gh_err
key_fetch(struct gh_store_crypt *c, uint32_t version, struct key_slot *out)
{
	struct gh_secret *key = NULL;
	uint32_t got = version;
	gh_err err;

	err = gh_secret_new(KEY_SZ, &key);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "org %s: page key", c->org_id);
		return err;
	}
	err = c->keys.page_key(c->keys.arg, c->org_id, version, &got,
	    key->data);
	if (err != GH_OK) {
		GH_LOG_WARN(err, "org %s: page key version %u unavailable",
		    c->org_id, (unsigned)version);
		goto out;
	}
	if (got == 0 || (version != 0 && got != version) ||
	    all_zero(key->data, KEY_SZ)) {
		err = GH_ERR_CRYPTO;
		GH_LOG_ERR(err, "org %s: page key callback gave an unusable "
		    "key (asked version %u, got %u)", c->org_id,
		    (unsigned)version, (unsigned)got);
		goto out;
	}
	out->version = got;
	out->key = key;
	key = NULL;
out:
	gh_secret_free(key);	/* wipes */
	return err;
}

/* The key for version, from the cache or the callback. */
static gh_err
key_get(struct gh_store_crypt *c, uint32_t version, const uint8_t **key_out)
{
	struct key_slot *s;
	unsigned i;
	gh_err err;

	*key_out = NULL;
	if (version == 0)
		return GH_ERR_CRYPTO;	/* never written by us */
	if (version == c->newest.version) {
		*key_out = c->newest.key->data;
		return GH_OK;
	}
	for (i = 0; i < OLD_KEYS; i++)
		if (c->old[i].version == version) {
			*key_out = c->old[i].key->data;
			return GH_OK;
		}
	s = &c->old[c->old_next];
	gh_secret_free(s->key);
	s->key = NULL;
	s->version = 0;
	err = key_fetch(c, version, s);
	if (err != GH_OK)
		return err;
	c->old_next = (c->old_next + 1) % OLD_KEYS;
	*key_out = s->key->data;
	return GH_OK;
}

gh_err
gh_store_crypt_new(const struct gh_store_keys *keys, const char *org_id,
    struct gh_store_crypt **out)
{
	struct gh_store_crypt *c;
	gh_err err;

	*out = NULL;
	if (keys == NULL || keys->page_key == NULL || !gh_id_valid(org_id))
		GH_PANIC("page keys without a callback or a valid org id");
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		GH_LOG_ERR(GH_ERR_NOMEM, "org %s: page keys", org_id);
		return GH_ERR_NOMEM;
	}
	c->keys = *keys;
	memcpy(c->org_id, org_id, GH_ID_LEN + 1);
	c->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	c->cctx = EVP_CIPHER_CTX_new();
	if (c->cipher == NULL || c->cctx == NULL) {
		err = GH_ERR_CRYPTO;
		GH_LOG_ERR(err, "org %s: AES-256-GCM unavailable", org_id);
		goto out;
	}
	err = key_fetch(c, 0, &c->newest);
	if (err != GH_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	gh_store_crypt_free(c);
	return err;
}

void
gh_store_crypt_free(struct gh_store_crypt *c)
{
	unsigned i;

	if (c == NULL)
		return;
	gh_secret_free(c->newest.key);
	for (i = 0; i < OLD_KEYS; i++)
		gh_secret_free(c->old[i].key);
	EVP_CIPHER_CTX_free(c->cctx);
	EVP_CIPHER_free(c->cipher);
	gh_wipe(c, sizeof *c);
	free(c);
}

uint32_t
gh_store_crypt_version(const struct gh_store_crypt *c)
{
	return c->newest.version;
}

void
gh_store_crypt_hand_over(struct gh_store_crypt *c)
{
	handed_over = c;
}

bool
gh_store_crypt_attached(const struct gh_store_crypt *c)
{
	return c->attached;
}

/* ---- sealing pages ---------------------------------------------------------- */

static size_t
page_aad(const struct gh_store_crypt *c, uint32_t pgno, uint32_t version,
    uint8_t aad[static AAD_MAX])
{
	size_t n = 0;

	memcpy(aad, page_label, sizeof page_label);
	n += sizeof page_label;
	aad[n++] = 0;
	aad[n++] = GH_ID_LEN;	/* length-prefixed: unambiguous */
	memcpy(aad + n, c->org_id, GH_ID_LEN);
	n += GH_ID_LEN;
	put_be32(aad + n, pgno);
	n += 4;
	put_be32(aad + n, version);
	n += 4;
	return n;
}

/*
 * One GCM pass over the page body. enc: in is plaintext, out gets the
 * ciphertext and tag is written; else in is ciphertext, out gets plaintext
 * and tag is checked. Returns false on any failure (a bad tag included),
 * with out wiped.
 */
static bool
gcm(struct gh_store_crypt *c, int enc, const uint8_t *key,
    const uint8_t nonce[NONCE_SZ], const uint8_t *aad, size_t aad_len,
    const uint8_t *in, uint8_t *out, uint8_t tag[TAG_SZ])
{
	int n, fin;
	bool ok;

	ok = EVP_CipherInit_ex2(c->cctx, c->cipher, key, nonce, enc,
	    NULL) == 1 &&
	    EVP_CipherUpdate(c->cctx, NULL, &n, aad, (int)aad_len) == 1 &&
	    EVP_CipherUpdate(c->cctx, out, &n, in, BODY_SZ) == 1 &&
	    n == BODY_SZ &&
	    (enc || EVP_CIPHER_CTX_ctrl(c->cctx, EVP_CTRL_GCM_SET_TAG, TAG_SZ,
	    tag) == 1) &&
	    EVP_CipherFinal_ex(c->cctx, out + n, &fin) == 1 && fin == 0 &&
	    (!enc || EVP_CIPHER_CTX_ctrl(c->cctx, EVP_CTRL_GCM_GET_TAG,
	    TAG_SZ, tag) == 1);
	/* Drops the expanded key now rather than keep it in unlocked heap
	 * memory for the connection's lifetime. */
	EVP_CIPHER_CTX_reset(c->cctx);
	if (!ok)
		gh_wipe(out, BODY_SZ);
	return ok;
}

/* Seals plaintext page pgno into out with the newest key. */
static int
page_seal(struct gh_store_crypt *c, uint32_t pgno, const uint8_t *in,
    uint8_t *out)
{
	uint8_t aad[AAD_MAX], *meta = out + BODY_SZ;
	uint32_t v = c->newest.version;
	size_t aad_len;

	put_be32(meta, v);
	/* Nonces are public: from this thread's pool (src/core/rand.c). */
	if (gh_rand_public(meta + 4, NONCE_SZ) != GH_OK)
		return SQLITE_IOERR_WRITE;
	aad_len = page_aad(c, pgno, v, aad);
	if (!gcm(c, 1, c->newest.key->data, meta + 4, aad, aad_len, in, out,
	    meta + 4 + NONCE_SZ)) {
		GH_LOG_ERR(GH_ERR_CRYPTO, "org %s: sealing page %u failed",
		    c->org_id, (unsigned)pgno);
		return SQLITE_IOERR_WRITE;
	}
	return SQLITE_OK;
}

/*
 * Opens sealed page pgno into out (the reserved bytes come back as zeros).
 * Returns SQLITE_OK, or SQLITE_IOERR_AUTH when the page does not
 * authenticate (logged unless quiet) or when its key is unavailable
 * (always logged; *no_key set).
 */
static int
page_open(struct gh_store_crypt *c, uint32_t pgno, const uint8_t *in,
    uint8_t *out, bool quiet, bool *no_key)
{
	const uint8_t *meta = in + BODY_SZ, *key;
	uint8_t aad[AAD_MAX], tag[TAG_SZ];
	uint32_t v = get_be32(meta);
	size_t aad_len;
	gh_err err;

	*no_key = false;
	if (v == 0) {
		/* Never sealed by us: torn or forged. */
		if (!quiet)
			GH_LOG_ERR(GH_ERR_CRYPTO, "org %s: page %u carries "
			    "no key version", c->org_id, (unsigned)pgno);
		return SQLITE_IOERR_AUTH;
	}
	err = key_get(c, v, &key);
	if (err != GH_OK) {
		*no_key = true;
		GH_LOG_ERR(err, "org %s: page %u: no key for version %u",
		    c->org_id, (unsigned)pgno, (unsigned)v);
		return SQLITE_IOERR_AUTH;
	}
	memcpy(tag, meta + 4 + NONCE_SZ, TAG_SZ);
	aad_len = page_aad(c, pgno, v, aad);
	if (!gcm(c, 0, key, meta + 4, aad, aad_len, in, out, tag)) {
		if (!quiet)
			GH_LOG_ERR(GH_ERR_CRYPTO, "org %s: page %u fails "
			    "authentication (key version %u)", c->org_id,
			    (unsigned)pgno, (unsigned)v);
		return SQLITE_IOERR_AUTH;
	}
	memset(out + BODY_SZ, 0, META_SZ);
	return SQLITE_OK;
}

/*
 * Page 1 must describe the layout the VFS relies on: 4096-byte pages with
 * 32 reserved bytes. Checked on every write (SQLite cannot be made to use
 * the reserved bytes) and after every read.
 */
static bool
page1_layout_ok(const struct gh_store_crypt *c, const uint8_t *p)
{
	if (p[16] == (PAGE_SZ >> 8) && p[17] == (PAGE_SZ & 0xff) &&
	    p[20] == META_SZ)
		return true;
	GH_LOG_ERR(GH_ERR_STORE, "org %s: page 1 declares page size %u and "
	    "%u reserved bytes, not %u and %u; refusing it", c->org_id,
	    (unsigned)(p[16] << 8 | p[17]), (unsigned)p[20], PAGE_SZ,
	    META_SZ);
	return false;
}

/* ---- the main database file ----------------------------------------------- */

static int
main_read(struct cfile *f, uint8_t *dst, int amt, sqlite3_int64 off)
{
	sqlite3_int64 pos = off, end = off + amt, pstart;
	bool short_read = false;
	uint32_t pgno;
	size_t skip, n;
	bool no_key;
	int rc;

	while (pos < end) {
		pstart = pos - pos % PAGE_SZ;
		if (pstart / PAGE_SZ >= UINT32_MAX)
			return SQLITE_IOERR_READ;
		pgno = (uint32_t)(pstart / PAGE_SZ) + 1;
		skip = (size_t)(pos - pstart);
		n = PAGE_SZ - skip;
		if ((sqlite3_int64)n > end - pos)
			n = (size_t)(end - pos);
		rc = f->real->pMethods->xRead(f->real, f->buf, PAGE_SZ, pstart);
		if (rc == SQLITE_IOERR_SHORT_READ)
			short_read = true;
		else if (rc != SQLITE_OK)
			return rc;
		if (all_zero(f->buf, PAGE_SZ)) {
			/* Past the end of the file, or never written. */
			memset(f->out, 0, PAGE_SZ);
		} else {
			if (pgno == 1 && memcmp(f->buf, sqlite_magic,
			    sizeof sqlite_magic) == 0) {
				GH_LOG_ERR(GH_ERR_STORE, "org %s: the database "
				    "file is plain SQLite, not encrypted",
				    f->c->org_id);
				return SQLITE_IOERR_AUTH;
			}
			rc = page_open(f->c, pgno, f->buf, f->out, false,
			    &no_key);
			if (rc != SQLITE_OK)
				return rc;
			if (pgno == 1 && !page1_layout_ok(f->c, f->out))
				return SQLITE_IOERR_AUTH;
		}
		memcpy(dst + (pos - off), f->out + skip, n);
		pos += (sqlite3_int64)n;
	}
	/* SQLite wants short reads reported, with the rest zero-filled
	 * (done above). */
	return short_read ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

static int
main_write(struct cfile *f, const uint8_t *src, int amt, sqlite3_int64 off)
{
	uint32_t pgno;
	int rc;

	if (amt != PAGE_SZ || off < 0 || off % PAGE_SZ != 0 ||
	    off / PAGE_SZ >= UINT32_MAX) {
		GH_LOG_ERR(GH_ERR_STORE, "org %s: refusing a database write "
		    "of %d bytes at %lld (not one page)", f->c->org_id, amt,
		    (long long)off);
		return SQLITE_IOERR_WRITE;
	}
	pgno = (uint32_t)(off / PAGE_SZ) + 1;
	if (pgno == 1 && !page1_layout_ok(f->c, src))
		return SQLITE_IOERR_WRITE;
	rc = page_seal(f->c, pgno, src, f->out);
	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xWrite(f->real, f->out, PAGE_SZ, off);
}

/* ---- the WAL ---------------------------------------------------------------- */

/* Reads [pos, pos+n) as stored (headers), noting a short read. */
static int
raw_read(struct cfile *f, uint8_t *dst, size_t n, sqlite3_int64 pos,
    bool *short_read)
{
	int rc = f->real->pMethods->xRead(f->real, dst, (int)n, pos);

	if (rc == SQLITE_IOERR_SHORT_READ) {
		*short_read = true;
		return SQLITE_OK;
	}
	return rc;
}

/*
 * Opens the page image of the frame at foff into f->out. whole_frame: the
 * caller reads header and page together, which is how SQLite's recovery
 * finds the end of the log; there a stale frame (salts of an older log
 * generation) or a torn one (failing authentication) comes back as zeros,
 * which fail SQLite's own frame check, so the log ends there as it would
 * without encryption. A missing key is never taken for a torn frame.
 */
static int
wal_page(struct cfile *f, sqlite3_int64 foff, sqlite3_int64 k,
    bool whole_frame, bool *short_read)
{
	uint8_t salts[8];
	bool frame_short = false, hdr_short = false, no_key;
	uint32_t pgno;
	int rc;

	rc = raw_read(f, f->buf, FRAME_SZ, foff, &frame_short);
	if (rc != SQLITE_OK)
		return rc;
	if (frame_short)
		*short_read = true;
	if (frame_short && all_zero(f->buf + FRAME_HDR_SZ, PAGE_SZ)) {
		memset(f->out, 0, PAGE_SZ);	/* past the end of the log */
		return SQLITE_OK;
	}
	pgno = get_be32(f->buf);
	if (whole_frame) {
		rc = raw_read(f, salts, sizeof salts, 16, &hdr_short);
		if (rc != SQLITE_OK)
			return rc;
		if (hdr_short || memcmp(salts, f->buf + 8, sizeof salts) != 0) {
			memset(f->out, 0, PAGE_SZ);	/* stale frame */
			return SQLITE_OK;
		}
	}
	if (pgno == 0) {
		rc = SQLITE_IOERR_AUTH;
		no_key = false;
	} else {
		rc = page_open(f->c, pgno, f->buf + FRAME_HDR_SZ, f->out,
		    whole_frame, &no_key);
		if (rc == SQLITE_OK && pgno == 1 &&
		    !page1_layout_ok(f->c, f->out))
			return SQLITE_IOERR_AUTH;
	}
	if (rc == SQLITE_OK || no_key)
		return rc;
	if (!whole_frame) {
		if (pgno == 0)
			GH_LOG_ERR(GH_ERR_CRYPTO, "org %s: WAL frame %lld "
			    "names page 0", f->c->org_id, (long long)k + 1);
		return rc;
	}
	GH_LOG_WARN(GH_ERR_CRYPTO, "org %s: WAL frame %lld (page %u) fails "
	    "authentication; the log ends there", f->c->org_id,
	    (long long)k + 1, (unsigned)pgno);
	memset(f->out, 0, PAGE_SZ);
	return SQLITE_OK;
}

static int
wal_read(struct cfile *f, uint8_t *dst, int amt, sqlite3_int64 off)
{
	sqlite3_int64 pos = off, end = off + amt, foff, pstart, k;
	bool short_read = false;
	size_t n;
	int rc;

	while (pos < end) {
		if (pos < WAL_HDR_SZ) {
			n = (size_t)((end < WAL_HDR_SZ ? end : WAL_HDR_SZ) - pos);
			rc = raw_read(f, dst + (pos - off), n, pos,
			    &short_read);
			if (rc != SQLITE_OK)
				return rc;
			pos += (sqlite3_int64)n;
			continue;
		}
		k = (pos - WAL_HDR_SZ) / FRAME_SZ;
		foff = WAL_HDR_SZ + k * FRAME_SZ;
		pstart = foff + FRAME_HDR_SZ;
		if (pos < pstart) {
			/* Frame headers are stored as SQLite wrote them. */
			n = (size_t)((end < pstart ? end : pstart) - pos);
			rc = raw_read(f, dst + (pos - off), n, pos,
			    &short_read);
			if (rc != SQLITE_OK)
				return rc;
			pos += (sqlite3_int64)n;
			continue;
		}
		n = (size_t)((end < pstart + PAGE_SZ ? end : pstart + PAGE_SZ) -
		    pos);
		rc = wal_page(f, foff, k, off <= foff && end >= pstart + PAGE_SZ,
		    &short_read);
		if (rc != SQLITE_OK)
			return rc;
		memcpy(dst + (pos - off), f->out + (pos - pstart), n);
		pos += (sqlite3_int64)n;
	}
	return short_read ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

/*
 * Writes out a held frame header. Called before anything else touches the
 * WAL (a read, a write elsewhere, a sync, a size, a truncation, a lock,
 * the wal-index, closing), so that the file always reads as if the header
 * had been written when SQLite wrote it.
 */
static int
hdr_flush(struct cfile *f)
{
	int rc;

	if (!f->hdr_held)
		return SQLITE_OK;
	f->hdr_held = false;
	rc = f->real->pMethods->xWrite(f->real, f->hdr, FRAME_HDR_SZ,
	    f->hdr_off);
	if (rc != SQLITE_OK)
		f->hdr_off = -1;
	return rc;
}

static int
wal_write(struct cfile *f, const uint8_t *src, int amt, sqlite3_int64 off)
{
	sqlite3_int64 r = off - WAL_HDR_SZ, foff;
	uint8_t hdr[4];
	uint32_t pgno;
	bool short_read = false, with_hdr;
	int rc;

	foff = off - FRAME_HDR_SZ;
	/* The page of the held header: both go out together below. */
	with_hdr = f->hdr_held && f->hdr_off == foff && amt == PAGE_SZ;
	if (!with_hdr) {
		rc = hdr_flush(f);
		if (rc != SQLITE_OK)
			return rc;
	}
	if (off == 0 && amt == WAL_HDR_SZ)
		return f->real->pMethods->xWrite(f->real, src, amt, off);
	if (r >= 0 && r % FRAME_SZ == 0 && amt == FRAME_HDR_SZ) {
		memcpy(f->hdr, src, FRAME_HDR_SZ);
		f->hdr_off = off;
		f->hdr_pgno = get_be32(src);
		f->hdr_held = true;
		return SQLITE_OK;
	}
	if (!(r >= 0 && r % FRAME_SZ == FRAME_HDR_SZ && amt == PAGE_SZ)) {
		GH_LOG_ERR(GH_ERR_STORE, "org %s: refusing a WAL write of %d "
		    "bytes at %lld (not a header or one page)", f->c->org_id,
		    amt, (long long)off);
		return SQLITE_IOERR_WRITE;
	}
	if (f->hdr_off == foff) {
		pgno = f->hdr_pgno;
	} else {
		/* SQLite rewrites a page image in place when a transaction
		 * changes a page twice; its header is on disk already. */
		rc = raw_read(f, hdr, sizeof hdr, foff, &short_read);
		if (rc != SQLITE_OK || short_read)
			return SQLITE_IOERR_WRITE;
		pgno = get_be32(hdr);
	}
	/*
	 * The frame checksum SQLite wrote covers the page as passed here,
	 * reserved bytes included, while reads hand those bytes back as
	 * zeros. SQLite leaves them zero; anything else would make recovery
	 * drop the frame, so fail now instead.
	 */
	if (pgno == 0 || !all_zero(src + BODY_SZ, META_SZ)) {
		GH_LOG_ERR(GH_ERR_STORE, "org %s: refusing WAL frame for page "
		    "%u (bad page number or reserved bytes in use)",
		    f->c->org_id, (unsigned)pgno);
		goto refuse;
	}
	if (pgno == 1 && !page1_layout_ok(f->c, src))
		goto refuse;
	if (!with_hdr) {
		rc = page_seal(f->c, pgno, src, f->out);
		if (rc != SQLITE_OK)
			return rc;
		return f->real->pMethods->xWrite(f->real, f->out, PAGE_SZ, off);
	}
	/* Header and sealed page in one write, into the frame buffer. */
	f->hdr_held = false;
	rc = page_seal(f->c, pgno, src, f->buf + FRAME_HDR_SZ);
	if (rc != SQLITE_OK) {
		f->hdr_off = -1;
		return rc;
	}
	memcpy(f->buf, f->hdr, FRAME_HDR_SZ);
	rc = f->real->pMethods->xWrite(f->real, f->buf, FRAME_SZ, foff);
	if (rc != SQLITE_OK)
		f->hdr_off = -1;
	return rc;
refuse:
	/* The held header is dropped with its frame: SQLite fails the
	 * transaction, and the frame was never in the file. */
	f->hdr_held = false;
	f->hdr_off = -1;
	return SQLITE_IOERR_WRITE;
}

/* ---- sqlite3_io_methods ------------------------------------------------------ */

static int
c_close(sqlite3_file *pf)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = SQLITE_OK, frc;

	if (f->real->pMethods != NULL) {
		frc = hdr_flush(f);
		rc = f->real->pMethods->xClose(f->real);
		if (rc == SQLITE_OK)
			rc = frc;
	}
	free(f->buf);
	free(f->out);
	f->buf = f->out = NULL;
	return rc;
}

static int
c_read(sqlite3_file *pf, void *dst, int amt, sqlite3_int64 off)
{
	struct cfile *f = (struct cfile *)pf;
	int rc;

	if (amt <= 0 || off < 0)
		return SQLITE_IOERR_READ;
	rc = hdr_flush(f);
	if (rc != SQLITE_OK)
		return rc;
	if (f->kind == KIND_MAIN)
		return main_read(f, dst, amt, off);
	return wal_read(f, dst, amt, off);
}

static int
c_write(sqlite3_file *pf, const void *src, int amt, sqlite3_int64 off)
{
	struct cfile *f = (struct cfile *)pf;

	if (f->kind == KIND_MAIN)
		return main_write(f, src, amt, off);
	return wal_write(f, src, amt, off);
}

static int
c_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = hdr_flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xTruncate(f->real, size);
}

static int
c_sync(sqlite3_file *pf, int flags)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = hdr_flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xSync(f->real, flags);
}

static int
c_file_size(sqlite3_file *pf, sqlite3_int64 *size)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = hdr_flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xFileSize(f->real, size);
}

static int
c_lock(sqlite3_file *pf, int lock)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = hdr_flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xLock(f->real, lock);
}

static int
c_unlock(sqlite3_file *pf, int lock)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = hdr_flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xUnlock(f->real, lock);
}

static int
c_check_reserved(sqlite3_file *pf, int *out)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = hdr_flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int
c_file_control(sqlite3_file *pf, int op, void *arg)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = hdr_flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int
c_sector_size(sqlite3_file *pf)
{
	struct cfile *f = (struct cfile *)pf;

	return f->real->pMethods->xSectorSize(f->real);
}

static int
c_device_characteristics(sqlite3_file *pf)
{
	struct cfile *f = (struct cfile *)pf;
	int d = f->real->pMethods->xDeviceCharacteristics(f->real);

	/* No atomic-write shortcuts: every page goes through xWrite. */
	return d & ~(SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_ATOMIC512 |
	    SQLITE_IOCAP_ATOMIC1K | SQLITE_IOCAP_ATOMIC2K |
	    SQLITE_IOCAP_ATOMIC4K | SQLITE_IOCAP_ATOMIC8K |
	    SQLITE_IOCAP_ATOMIC16K | SQLITE_IOCAP_ATOMIC32K |
	    SQLITE_IOCAP_ATOMIC64K | SQLITE_IOCAP_BATCH_ATOMIC);
}

static int
c_shm_map(sqlite3_file *pf, int i, int sz, int extend, void volatile **pp)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = hdr_flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xShmMap(f->real, i, sz, extend, pp);
}

static int
c_shm_lock(sqlite3_file *pf, int ofst, int n, int flags)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = hdr_flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xShmLock(f->real, ofst, n, flags);
}

static void
c_shm_barrier(sqlite3_file *pf)
{
	struct cfile *f = (struct cfile *)pf;

	/* No way to report a failure here; a lost header fails the
	 * frame's page write, or SQLite's check of the frame. */
	(void)hdr_flush(f);
	f->real->pMethods->xShmBarrier(f->real);
}

static int
c_shm_unmap(sqlite3_file *pf, int del)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = hdr_flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xShmUnmap(f->real, del);
}

/* Version 2: shared memory but no xFetch, so SQLite never maps the file
 * and always reads pages through c_read. */
static const sqlite3_io_methods cfile_methods = {
	.iVersion = 2,
	.xClose = c_close,
	.xRead = c_read,
	.xWrite = c_write,
	.xTruncate = c_truncate,
	.xSync = c_sync,
	.xFileSize = c_file_size,
	.xLock = c_lock,
	.xUnlock = c_unlock,
	.xCheckReservedLock = c_check_reserved,
	.xFileControl = c_file_control,
	.xSectorSize = c_sector_size,
	.xDeviceCharacteristics = c_device_characteristics,
	.xShmMap = c_shm_map,
	.xShmLock = c_shm_lock,
	.xShmBarrier = c_shm_barrier,
	.xShmUnmap = c_shm_unmap,
};

/* ---- sqlite3_vfs -------------------------------------------------------------- */

static sqlite3_vfs crypt_vfs;

sqlite3_file *
gh_store_crypt_raw_file(sqlite3_file *f)
{
	if (f != NULL && f->pMethods == &cfile_methods)
		return ((struct cfile *)f)->real;
	return f;
}

static sqlite3_vfs *
real_vfs(sqlite3_vfs *v)
{
	return v->pAppData;
}

static int
v_open(sqlite3_vfs *v, const char *name, sqlite3_file *pf, int flags,
    int *out_flags)
{
	struct cfile *f = (struct cfile *)pf;
	struct gh_store_crypt *c;
	sqlite3_file *main_file;
	int rc;

	memset(f, 0, sizeof *f);
	if (flags & SQLITE_OPEN_MAIN_DB) {
		c = handed_over;
		handed_over = NULL;
		if (c == NULL) {
			GH_LOG_ERR(GH_ERR_INTERNAL, "database opened through "
			    "%s without page keys", GH_STORE_CRYPT_VFS);
			return SQLITE_CANTOPEN;
		}
		f->kind = KIND_MAIN;
	} else if ((flags & SQLITE_OPEN_WAL) && name != NULL) {
		main_file = sqlite3_database_file_object(name);
		if (main_file == NULL || main_file->pMethods != &cfile_methods)
			return SQLITE_CANTOPEN;
		c = ((struct cfile *)main_file)->c;
		f->kind = KIND_WAL;
	} else {
		/* A rollback journal or temporary file would hold pages in
		 * clear. */
		GH_LOG_ERR(GH_ERR_STORE, "refusing to open a file of kind "
		    "0x%x through %s", (unsigned)(flags & 0x7ff00),
		    GH_STORE_CRYPT_VFS);
		return SQLITE_IOERR;
	}
	f->c = c;
	f->real = (sqlite3_file *)((char *)f + CFILE_SZ);
	f->hdr_off = -1;
	f->buf = malloc(FRAME_SZ);
	f->out = malloc(PAGE_SZ);
	if (f->buf == NULL || f->out == NULL) {
		free(f->buf);
		free(f->out);
		return SQLITE_NOMEM;
	}
	rc = real_vfs(v)->xOpen(real_vfs(v), name, f->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		if (f->real->pMethods != NULL)
			f->real->pMethods->xClose(f->real);
		free(f->buf);
		free(f->out);
		return rc;
	}
	if (f->kind == KIND_MAIN)
		c->attached = true;
	f->base.pMethods = &cfile_methods;
	return SQLITE_OK;
}

static int
v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	return real_vfs(v)->xDelete(real_vfs(v), name, sync_dir);
}

static int
v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	return real_vfs(v)->xAccess(real_vfs(v), name, flags, out);
}

static int
v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	return real_vfs(v)->xFullPathname(real_vfs(v), name, n, out);
}

static void *
v_dlopen(sqlite3_vfs *v, const char *name)
{
	(void)v;
	(void)name;
	return NULL;	/* no extensions through this VFS */
}

static void
v_dlerror(sqlite3_vfs *v, int n, char *msg)
{
	(void)v;
	if (n > 0)
		gh_strlcpy(msg, "extensions are not loaded", (size_t)n);
}

static void (*
v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	(void)v;
	(void)h;
	(void)sym;
	return NULL;
}

static void
v_dlclose(sqlite3_vfs *v, void *h)
{
	(void)v;
	(void)h;
}

static int
v_randomness(sqlite3_vfs *v, int n, char *out)
{
	return real_vfs(v)->xRandomness(real_vfs(v), n, out);
}

static int
v_sleep(sqlite3_vfs *v, int us)
{
	return real_vfs(v)->xSleep(real_vfs(v), us);
}

static int
v_current_time(sqlite3_vfs *v, double *out)
{
	return real_vfs(v)->xCurrentTime(real_vfs(v), out);
}

static int
v_last_error(sqlite3_vfs *v, int n, char *out)
{
	return real_vfs(v)->xGetLastError(real_vfs(v), n, out);
}

static int
v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	return real_vfs(v)->xCurrentTimeInt64(real_vfs(v), out);
}

static pthread_once_t register_once = PTHREAD_ONCE_INIT;
static int register_rc = SQLITE_ERROR;

static void
register_vfs(void)
{
	sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");

	if (unix_vfs == NULL || unix_vfs->iVersion < 2)
		return;
	crypt_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)CFILE_SZ + unix_vfs->szOsFile,
		.mxPathname = unix_vfs->mxPathname,
		.zName = GH_STORE_CRYPT_VFS,
		.pAppData = unix_vfs,
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_full_pathname,
		.xDlOpen = v_dlopen,
		.xDlError = v_dlerror,
		.xDlSym = v_dlsym,
		.xDlClose = v_dlclose,
		.xRandomness = v_randomness,
		.xSleep = v_sleep,
		.xCurrentTime = v_current_time,
		.xGetLastError = v_last_error,
		.xCurrentTimeInt64 = v_current_time64,
	};
	register_rc = sqlite3_vfs_register(&crypt_vfs, 0);
}

gh_err
gh_store_crypt_register(void)
{
	pthread_once(&register_once, register_vfs);
	if (register_rc != SQLITE_OK) {
		GH_LOG_ERR(GH_ERR_STORE, "cannot register the %s VFS",
		    GH_STORE_CRYPT_VFS);
		return GH_ERR_STORE;
	}
	return GH_OK;
}

/* ---- key versions in use ------------------------------------------------------ */

/* Folds the version of one sealed page into *min; skips unwritten pages. */
static void
note_version(const uint8_t *page, uint32_t *min, bool *any)
{
	uint32_t v;

	if (all_zero(page, PAGE_SZ))
		return;
	v = get_be32(page + BODY_SZ);
	if (v == 0)
		return;		/* not a page we sealed (torn) */
	if (!*any || v < *min)
		*min = v;
	*any = true;
}

/* Reads one page-sized block (or a frame) of f at off; false at the end
 * of the file (a short read). */
static bool
scan_read(sqlite3_file *f, uint8_t *buf, int n, sqlite3_int64 off,
    sqlite3_int64 size, gh_err *err)
{
	int rc;

	if (off + n > size)
		return false;
	rc = f->pMethods->xRead(f, buf, n, off);
	if (rc == SQLITE_OK)
		return true;
	if (rc != SQLITE_IOERR_SHORT_READ) {
		*err = GH_ERR_STORE;
		GH_LOG_ERR(*err, "scan read at %lld failed (%d)",
		    (long long)off, rc);
	}
	return false;
}

static gh_err
scan_file(sqlite3_file *f, bool wal, uint32_t *min, bool *any)
{
	sqlite3_int64 size = 0, pos;
	gh_err err = GH_OK;
	uint8_t *buf;

	if (f == NULL || f->pMethods == NULL)
		return GH_OK;	/* no WAL open */
	if (f->pMethods->xFileSize(f, &size) != SQLITE_OK) {
		GH_LOG_ERR(GH_ERR_STORE, "scan: file size");
		return GH_ERR_STORE;
	}
	buf = malloc(FRAME_SZ);
	if (buf == NULL) {
		GH_LOG_ERR(GH_ERR_NOMEM, "scan buffer");
		return GH_ERR_NOMEM;
	}
	if (wal) {
		if (!scan_read(f, buf, WAL_HDR_SZ, 0, size, &err))
			goto out;	/* empty log */
		if (get_be32(buf + 8) != PAGE_SZ) {
			err = GH_ERR_STORE;
			GH_LOG_ERR(err, "WAL page size is not %u", PAGE_SZ);
			goto out;
		}
		/* Every frame, stale ones included: a version stays in use
		 * while any bytes on disk need it. */
		for (pos = WAL_HDR_SZ;
		    scan_read(f, buf, FRAME_SZ, pos, size, &err);
		    pos += FRAME_SZ)
			note_version(buf + FRAME_HDR_SZ, min, any);
	} else {
		for (pos = 0; scan_read(f, buf, PAGE_SZ, pos, size, &err);
		    pos += PAGE_SZ) {
			if (pos == 0 && memcmp(buf, sqlite_magic,
			    sizeof sqlite_magic) == 0) {
				err = GH_ERR_INVALID;
				GH_LOG_ERR(err, "the database is not encrypted");
				goto out;
			}
			note_version(buf, min, any);
		}
	}
out:
	free(buf);
	return err;
}

gh_err
gh_store_crypt_min_version(sqlite3_file *db, sqlite3_file *wal,
    uint32_t *version_out)
{
	uint32_t min = 0;
	bool any = false;
	gh_err err;

	*version_out = 0;
	err = scan_file(gh_store_crypt_raw_file(db), false, &min, &any);
	if (err == GH_OK)
		err = scan_file(gh_store_crypt_raw_file(wal), true, &min,
		    &any);
	if (err == GH_OK)
		*version_out = any ? min : 0;
	return err;
}
