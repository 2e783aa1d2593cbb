/* fdstore-keeper internals: the table (table.c) and the connection loop (keeper.c). */
#ifndef FDSTORE_KEEPER_INTERNAL_H
#define FDSTORE_KEEPER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../include/keeper.h"

#define PROG "fdstore-keeper"

/* Everything the keeper holds. Reserved once at start (table_init), never grown. */
struct table {
	uint32_t max;          /* slots */
	uint32_t used;
	int32_t *fd;           /* max entries, -1 = empty */
	uint16_t *meta;        /* max entries */
	uint16_t meta_len[KEEPER_METAS_MAX];  /* 0 = undefined */
	uint32_t blob_len;
	uint32_t refused;      /* peers of another uid turned away */
};

/* meta bytes live in one static array: KEEPER_METAS_MAX * KEEPER_META_MAX */
extern unsigned char keeper_meta_bytes[KEEPER_METAS_MAX][KEEPER_META_MAX];
extern unsigned char keeper_blob[KEEPER_BLOB_MAX];

/* 0, or -1 with errno set (ENOMEM: the slots cannot be reserved). */
int table_init(struct table *t, uint32_t max);

/* Checks one received message against every bound without changing anything:
 * 0 valid (*dump set when it ends with 'Q'), or -1 with *why set. */
int table_check(const struct table *t, const unsigned char *p, size_t len, size_t nfds,
                int *dump, const char **why);

/* Applies a message table_check accepted; takes ownership of every fd in fds. */
void table_apply(struct table *t, const unsigned char *p, size_t len, const int *fds);

/* Sends the dump to conn (blocking, bounded by SO_SNDTIMEO): 0 or -1 with errno. */
int table_dump(const struct table *t, int conn);

/* One message to conn: 0 or -1 with errno. */
int send_msg(int conn, const unsigned char *p, size_t len, const int *fds, size_t nfds);

void put16(unsigned char *p, uint16_t v);
void put32(unsigned char *p, uint32_t v);
uint16_t get16(const unsigned char *p);
uint32_t get32(const unsigned char *p);

#endif
