/* Keeper protocol (docs/keeper.md): one AF_UNIX SOCK_SEQPACKET connection between
 * the agent and fdstore-keeper, socket DIR/.keeper/keeper.sock. Shared by the
 * keeper (agent/keeper) and, as constants, by the agent (src/keeper/wire.ts keeps
 * the same numbers; test/keeper checks them equal).
 *
 * Every message is a sequence of records, integers little-endian, no padding:
 *   'M' u16 meta  u16 len  len bytes    define metadata `meta` (opaque to the keeper)
 *   'A' u16 meta  u16 n    n * u32 slot the next n fds of the message go into these slots
 *   'D' u16 n     n * u32 slot          close these slots
 *   'S' u32 len   len bytes             replace the state blob
 *   'R'                                 close every slot, forget metadata and blob
 *   'Q'                                 dump (agent -> keeper; must be the last record)
 *   'H' u32 version u32 max_slots u32 max_metas u32 used u32 blob_len u32 refused
 *                                       the keeper's hello (keeper -> agent, first)
 *   'E'                                 end of a dump (keeper -> agent)
 * A dump is messages of 'M', 'A' (at most KEEPER_FDS_PER_MSG fds each) and 'S'
 * records, then a message 'E'. Anything malformed closes the connection and every
 * fd the message carried. */
#ifndef FDSTORE_KEEPER_H
#define FDSTORE_KEEPER_H

#define KEEPER_VERSION 1

/* Socket inside the run dir: DIR/KEEPER_DIR/KEEPER_SOCKET, the directory 0700. */
#define KEEPER_DIR ".keeper"
#define KEEPER_SOCKET "keeper.sock"

/* Kernel SCM_MAX_FD. */
#define KEEPER_FDS_PER_MSG 253

/* Largest message either side sends or accepts. A full 'A' record is 4 + 253 * 4
 * bytes; the blob is the big one. Fits the default unix socket send buffer
 * (net.core.wmem_default, 208 KiB). */
#define KEEPER_MSG_MAX (128 * 1024)

/* The state blob: a few hundred bytes per container plus STATUS= texts. */
#define KEEPER_BLOB_MAX (64 * 1024)

/* Metadata: "s" + poll + container NUL fdname (<= 1 + 1 + 63 + 1 + 255), or
 * "l" + container NUL name NUL kind NUL address (address <= 108 + "[]:65535"). */
#define KEEPER_META_MAX 512
/* Distinct metadata at once: (container, fd name, poll) combinations in use. The
 * agent reuses ids whose entries are gone. */
#define KEEPER_METAS_MAX 4096

/* Default and largest number of slots (--max-fds). */
#define KEEPER_SLOTS_DEFAULT 65536
#define KEEPER_SLOTS_MAX (1 << 20)

/* How long one blocking send to a peer may take before the peer is dropped. */
#define KEEPER_SEND_TIMEOUT_MS 2000

#define KEEPER_EXIT_USAGE 100
#define KEEPER_EXIT_SYSCALL 111

#endif
