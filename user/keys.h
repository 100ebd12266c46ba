/* keys: the host's signing keys, with forward security.
 *
 * An offline root key certifies one Ed25519 key per epoch in advance; the host keeps only
 * the current epoch's seed and overwrites it with the next (a one-way hash) when the epoch
 * ends, so a compromise at time T yields no key of an earlier epoch. docs/FORMAT.md has the
 * exact files and messages. */
#ifndef RUNSEAL_KEYS_H
#define RUNSEAL_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KEYS_DIR_DEFAULT   "/etc/runseal"
#define KEYS_EPOCH_SECONDS 3600
#define KEYS_EPOCHS	   8760
#define KEYS_MAX_INTERVAL  60
#define KEYS_LATE_SLACK	   5 /* seconds a seal may take beyond max_interval */
#define KEYS_ERRLEN	   512
#define SEAL_LINE_MAX	   1024 /* signed bytes of a seal line; runseal's are ~470 */
#define SEAL_MSG_MAX	   (16 + 16 + SEAL_LINE_MAX)
#define CERT_MSG_MAX	   128

struct epoch_schedule {
	unsigned char host_id[16];
	unsigned char root_pub[32];
	uint64_t t0, len, n, max_interval, late_slack;
	unsigned char (*pub)[32];  /* n public keys */
	unsigned char (*cert)[64]; /* n root signatures */
};

struct epoch_signer {
	int fd; /* epoch.key, kept open to overwrite in place */
	uint64_t epoch;
	unsigned char seed[32];
};

/* Key files and their directory must belong to one owner, passed as `owner`: root (0) on a
 * host; the unit tests pass their own uid. */

/* Creates root.pub, root.key, epochs.pub and epoch.key in dir (made 0700 if missing, and
 * refused unless owned by owner) with the modes of docs/FORMAT.md. Refuses to overwrite
 * existing keys. Writes the root key id and host id (hex) to root_id and host_id when not
 * NULL. */
int keys_generate(const char *dir, uint64_t t0, uint64_t epoch_seconds, uint64_t epochs,
		  uint64_t max_interval, uint64_t late_slack, uid_t owner, char root_id[65],
		  char host_id[33], char *err, size_t errlen);
/* True when dir holds a complete key set (root.pub, epochs.pub, epoch.key). */
bool keys_exist(const char *dir);

/* root.pub: host id and root public key. */
int keys_load_root_pub(const char *path, unsigned char host_id[16], unsigned char pub[32],
		       char *err, size_t errlen);
/* epochs.pub, checked against root_pub (header fields and key id; certificates are checked
 * one by one with epoch_cert_ok). */
int keys_load_schedule(const char *path, const unsigned char root_pub[32], struct epoch_schedule *s,
		       char *err, size_t errlen);
void keys_free_schedule(struct epoch_schedule *s);
bool epoch_cert_ok(const struct epoch_schedule *s, uint64_t e);
/* The epoch of Unix time t, or UINT64_MAX when t is before t0 or after the last epoch. */
uint64_t epoch_of(const struct epoch_schedule *s, uint64_t t);

/* Opens epoch.key after checking that dir and the file are owned by owner with no group or
 * other permission bits (a clear error naming the file otherwise). */
int signer_open(const char *dir, uid_t owner, struct epoch_signer *sg, char *err, size_t errlen);
/* Moves forward to epoch e (>= the current one): each seed passed over is overwritten on
 * disk (in place, fsync) and in memory. Refuses to go backwards. */
int signer_advance(struct epoch_signer *sg, uint64_t e, char *err, size_t errlen);
int signer_sign(const struct epoch_signer *sg, const unsigned char *msg, size_t len,
		unsigned char sig[64]);
void signer_public(const struct epoch_signer *sg, unsigned char pub[32]);
void signer_close(struct epoch_signer *sg); /* erases the seed from memory */

/* The epoch whose key should be on disk at Unix time now: now's epoch, the schedule's n
 * once it has run out (every key erased), 0 before t0. */
uint64_t keys_epoch_due(const struct epoch_schedule *s, uint64_t now);
/* The epoch number epoch.key in dir is at (its seed is not read). */
int keys_key_epoch(const char *dir, uint64_t *epoch, char *err, size_t errlen);
/* `runseal keys tick`: erases the seeds of every epoch that has ended by now, whether or
 * not anything seals (cron or a systemd timer runs it). *from and *to: the key's epoch
 * before and after. */
int keys_tick(const char *dir, uid_t owner, uint64_t now, uint64_t *from, uint64_t *to, char *err,
	      size_t errlen);

/* Pure helpers shared by the sealer and the verifier. */
void key_id(const unsigned char pub[32], char out[65]);
void epoch_seed_next(const unsigned char seed[32], unsigned char next[32]);
int ed25519_public(const unsigned char seed[32], unsigned char pub[32]);
int ed25519_sign(const unsigned char seed[32], const unsigned char *msg, size_t len,
		 unsigned char sig[64]);
bool ed25519_verify(const unsigned char pub[32], const unsigned char *msg, size_t len,
		    const unsigned char sig[64]);
/* What a seal's signature covers: label, host id and the seal line up to its final
 * ,"sig":"..."} (every field but the signature). 0 when the line is too long. */
size_t seal_message(unsigned char out[SEAL_MSG_MAX], const unsigned char host_id[16],
		    const char *line, size_t len);
/* A seal line must end in exactly ,"sig":"<128 lowercase hex>"}: gives the length of the
 * bytes before that suffix (the signed ones) and the signature; -1 otherwise. */
int seal_split(const char *line, size_t len, size_t *signed_len, unsigned char sig[64]);
size_t cert_message(unsigned char out[CERT_MSG_MAX], const unsigned char host_id[16], uint64_t e,
		    uint64_t not_before, uint64_t not_after, uint64_t max_interval,
		    uint64_t late_slack, const unsigned char pub[32]);
/* Hex helpers: unhex returns 0 when s is exactly 2n lowercase hex digits. */
int unhex(const char *s, size_t slen, unsigned char *out, size_t n);

#endif
