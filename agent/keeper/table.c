/* The keeper's table: slots numbered by the agent, metadata, the state blob.
 * Records are checked whole before any is applied, so a malformed message changes
 * nothing and every fd it carried is closed by the caller. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keeper.h"

unsigned char keeper_meta_bytes[KEEPER_METAS_MAX][KEEPER_META_MAX];
unsigned char keeper_blob[KEEPER_BLOB_MAX];

void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
void put32(unsigned char *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
uint32_t get32(const unsigned char *p) { return get16(p) | ((uint32_t)get16(p + 2) << 16); }

int table_init(struct table *t, uint32_t max)
{
	size_t bytes = (size_t)max * (sizeof(int32_t) + sizeof(uint16_t));
	/* One mapping for the life of the process: nothing is allocated after start. */
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t i;
	if (m == MAP_FAILED) return -1;
	memset(t, 0, sizeof *t);
	t->max = max;
	t->fd = m;
	t->meta = (uint16_t *)((int32_t *)m + max);
	for (i = 0; i < max; i++) t->fd[i] = -1;
	return 0;
}

#define NEED(n) do { if (len - off < (size_t)(n)) { *why = "record truncated"; return -1; } } while (0)

int table_check(const struct table *t, const unsigned char *p, size_t len, size_t nfds,
                int *dump, const char **why)
{
	size_t off = 0, fds = 0;
	uint32_t i, n;
	*dump = 0;
	while (off < len) {
		unsigned char op = p[off++];
		if (*dump) { *why = "records after Q"; return -1; }
		switch (op) {
		case 'M':
			NEED(4);
			if (get16(p + off) >= KEEPER_METAS_MAX) { *why = "meta id out of range"; return -1; }
			n = get16(p + off + 2);
			if (n == 0 || n > KEEPER_META_MAX) { *why = "meta length out of range"; return -1; }
			off += 4;
			NEED(n);
			off += n;
			break;
		case 'A':
			NEED(4);
			if (get16(p + off) >= KEEPER_METAS_MAX) { *why = "meta id out of range"; return -1; }
			n = get16(p + off + 2);
			off += 4;
			NEED((size_t)n * 4);
			for (i = 0; i < n; i++)
				if (get32(p + off + 4 * i) >= t->max) { *why = "slot out of range"; return -1; }
			off += (size_t)n * 4;
			fds += n;
			break;
		case 'D':
			NEED(2);
			n = get16(p + off);
			off += 2;
			NEED((size_t)n * 4);
			for (i = 0; i < n; i++)
				if (get32(p + off + 4 * i) >= t->max) { *why = "slot out of range"; return -1; }
			off += (size_t)n * 4;
			break;
		case 'S':
			NEED(4);
			n = get32(p + off);
			if (n > KEEPER_BLOB_MAX) { *why = "state blob too large"; return -1; }
			off += 4;
			NEED(n);
			off += n;
			break;
		case 'R':
			break;
		case 'Q':
			*dump = 1;
			break;
		default:
			*why = "unknown record";
			return -1;
		}
	}
	if (fds != nfds) { *why = "fd count does not match the A records"; return -1; }
	return 0;
}

static void put_slot(struct table *t, uint32_t s, int fd, uint16_t meta)
{
	int had = t->fd[s] >= 0;
	if (had) close(t->fd[s]);
	t->fd[s] = fd;
	t->meta[s] = meta;
	t->used = t->used + (fd >= 0) - had;
}

void table_apply(struct table *t, const unsigned char *p, size_t len, const int *fds)
{
	size_t off = 0, k = 0;
	uint32_t i, n, s;
	while (off < len) {
		unsigned char op = p[off++];
		switch (op) {
		case 'M':
			s = get16(p + off);
			n = get16(p + off + 2);
			memcpy(keeper_meta_bytes[s], p + off + 4, n);
			t->meta_len[s] = (uint16_t)n;
			off += 4 + n;
			break;
		case 'A':
			s = get16(p + off); /* the meta id */
			n = get16(p + off + 2);
			off += 4;
			for (i = 0; i < n; i++, k++) put_slot(t, get32(p + off + 4 * i), fds[k], (uint16_t)s);
			off += (size_t)n * 4;
			break;
		case 'D':
			n = get16(p + off);
			off += 2;
			for (i = 0; i < n; i++) put_slot(t, get32(p + off + 4 * i), -1, 0);
			off += (size_t)n * 4;
			break;
		case 'S':
			n = get32(p + off);
			memcpy(keeper_blob, p + off + 4, n);
			t->blob_len = n;
			off += 4 + n;
			break;
		case 'R':
			for (s = 0; s < t->max && t->used > 0; s++)
				if (t->fd[s] >= 0) put_slot(t, s, -1, 0);
			memset(t->meta_len, 0, sizeof t->meta_len);
			t->blob_len = 0;
			break;
		default: /* 'Q': the caller dumps */
			break;
		}
	}
}

int send_msg(int conn, const unsigned char *p, size_t len, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * KEEPER_FDS_PER_MSG)];
	} u;
	struct iovec iov = { .iov_base = (void *)p, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;
	if (nfds > 0) {
		struct cmsghdr *c;
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do r = sendmsg(conn, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -1 : 0;
}

/* Output buffer of the dump: one message at a time. */
static unsigned char out[KEEPER_MSG_MAX];
static int out_fds[KEEPER_FDS_PER_MSG];

int table_dump(const struct table *t, int conn)
{
	size_t off = 0, nfds = 0, rec = 0;
	uint32_t s, n = 0;
	int cur = -1;
	/* Metadata first: an 'A' record names a meta id defined before it. */
	for (s = 0; s < KEEPER_METAS_MAX; s++) {
		uint16_t l = t->meta_len[s];
		if (l == 0) continue;
		if (off + 5 + l > sizeof out) {
			if (send_msg(conn, out, off, NULL, 0) < 0) return -1;
			off = 0;
		}
		out[off] = 'M';
		put16(out + off + 1, (uint16_t)s);
		put16(out + off + 3, l);
		memcpy(out + off + 5, keeper_meta_bytes[s], l);
		off += 5 + l;
	}
	if (off > 0 && send_msg(conn, out, off, NULL, 0) < 0) return -1;
	off = 0;
	/* Slots: runs of one meta in one 'A' record, at most KEEPER_FDS_PER_MSG fds a message. */
	for (s = 0; s < t->max; s++) {
		if (t->fd[s] < 0) continue;
		if (nfds == KEEPER_FDS_PER_MSG) {
			put16(out + rec + 3, (uint16_t)n);
			if (send_msg(conn, out, off, out_fds, nfds) < 0) return -1;
			off = nfds = 0;
			cur = -1;
		}
		if (cur != t->meta[s]) {
			if (cur >= 0) put16(out + rec + 3, (uint16_t)n);
			rec = off;
			out[off] = 'A';
			put16(out + off + 1, t->meta[s]);
			off += 5;
			n = 0;
			cur = t->meta[s];
		}
		put32(out + off, s);
		off += 4;
		n++;
		out_fds[nfds++] = t->fd[s];
	}
	if (nfds > 0) {
		put16(out + rec + 3, (uint16_t)n);
		if (send_msg(conn, out, off, out_fds, nfds) < 0) return -1;
	}
	if (t->blob_len > 0) {
		out[0] = 'S';
		put32(out + 1, t->blob_len);
		memcpy(out + 5, keeper_blob, t->blob_len);
		if (send_msg(conn, out, 5 + t->blob_len, NULL, 0) < 0) return -1;
	}
	out[0] = 'E';
	return send_msg(conn, out, 1, NULL, 0);
}
