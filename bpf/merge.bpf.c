// SPDX-License-Identifier: Apache-2.0
/*
 * ringmerge's BPF merge: merges sorted runs of RocksDB data blocks into one stream in internal-key
 * order (user key bytewise ascending, then seq/type trailer descending), walking the raw blocks
 * (prefix-compressed entries) itself. It runs on demand as a SEC("syscall") program through
 * BPF_PROG_TEST_RUN; every byte it touches lives in the BPF arena, which user space maps at the
 * same addresses: io_uring reads land there, and the merged output is read from there.
 *
 * Two programs share the code: merge_linear picks the minimum by a linear scan (best for few
 * runs), merge_heap keeps a binary min-heap of run indices (best for many). Both accept any run
 * count up to what user space allocates. The per-entry work is split into global functions, which
 * the verifier checks once each instead of once per call site (measured on Linux 6.x: with
 * everything inlined the program exceeds the verifier's 1M-instruction budget).
 *
 * Trust: the program only reads arena memory (a stray address reads zeros and writes nothing
 * outside the arena, by the kernel's construction), so a malformed block can at worst produce
 * garbage output - and the program bounds-checks every entry against its block and reports
 * RM_CORRUPT, which user space turns into Status::Corruption, like RocksDB's own decoder.
 */

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed int __s32;
typedef signed long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

#include <bpf/bpf_helpers.h>

#include "merge_abi.h"

/* uapi values (BPF_MAP_TYPE_ARENA is newer than the distribution's kernel headers). */
#define RM_BPF_MAP_TYPE_ARENA 33
#define RM_BPF_F_MMAPABLE (1U << 10)

#define __arena __attribute__((address_space(1)))
#ifndef __arg_arena
#define __arg_arena __attribute__((btf_decl_tag("arg:arena")))
#endif

/* Bounded loop without a verifier-visible bound: `may_goto` leaves the loop once the kernel's
 * per-frame iteration budget is spent (the program then returns and user space calls again,
 * since every loop here is resumable). */
#define can_loop                                                          \
	({                                                                \
		__label__ l_break, l_continue;                            \
		bool ret = true;                                          \
		asm volatile goto("may_goto %l[l_break]" :::: l_break);   \
		goto l_continue;                                          \
	l_break:                                                          \
		ret = false;                                              \
	l_continue:;                                                      \
		ret;                                                      \
	})

/* 4 GiB of address space; pages only cost memory once user space touches them. */
struct {
	__uint(type, RM_BPF_MAP_TYPE_ARENA);
	__uint(map_flags, RM_BPF_F_MMAPABLE);
	__uint(max_entries, 1u << 20);
} arena SEC(".maps");

#define RUN(s, i) ((struct rm_run __arena *)((s)->runs) + (i))
#define HEAP(s) ((__u32 __arena *)((s)->heap))

/* Little-endian fixed64 at p (RocksDB's EncodeFixed64). */
static __always_inline __u64 load_le64(const __u8 __arena *p)
{
	return *(const __u64 __arena *)p;
}

/* memcmp-style comparison of a[0..alen) and b[0..blen): <0, 0, >0 (bytewise, then shorter first). */
__noinline int cmp_bytes(const __u8 __arena *a __arg_arena, __u32 alen,
			 const __u8 __arena *b __arg_arena, __u32 blen)
{
	__u32 n = alen < blen ? alen : blen;
	__u32 i = 0;

	for (; i + 8 <= n && can_loop; i += 8) {
		__u64 x = __builtin_bswap64(*(const __u64 __arena *)(a + i));
		__u64 y = __builtin_bswap64(*(const __u64 __arena *)(b + i));

		if (x != y)
			return x < y ? -1 : 1;
	}
	for (; i < n && can_loop; i++) {
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	}
	if (alen == blen)
		return 0;
	return alen < blen ? -1 : 1;
}

/* Copies n bytes, eight at a time (arena accesses need no alignment on x86-64 and arm64). */
__noinline int copy_bytes(__u8 __arena *dst __arg_arena, const __u8 __arena *src __arg_arena,
			  __u32 n)
{
	__u32 i = 0;

	/* 64, then 32 bytes per iteration: the loop's own cost (may_goto, compare, branch) is
	 * what a JITed BPF copy spends most on. */
	for (; i + 64 <= n && can_loop; i += 64) {
		__u64 a = *(const __u64 __arena *)(src + i);
		__u64 b = *(const __u64 __arena *)(src + i + 8);
		__u64 c = *(const __u64 __arena *)(src + i + 16);
		__u64 d = *(const __u64 __arena *)(src + i + 24);
		__u64 e = *(const __u64 __arena *)(src + i + 32);
		__u64 f = *(const __u64 __arena *)(src + i + 40);
		__u64 g = *(const __u64 __arena *)(src + i + 48);
		__u64 h = *(const __u64 __arena *)(src + i + 56);

		*(__u64 __arena *)(dst + i) = a;
		*(__u64 __arena *)(dst + i + 8) = b;
		*(__u64 __arena *)(dst + i + 16) = c;
		*(__u64 __arena *)(dst + i + 24) = d;
		*(__u64 __arena *)(dst + i + 32) = e;
		*(__u64 __arena *)(dst + i + 40) = f;
		*(__u64 __arena *)(dst + i + 48) = g;
		*(__u64 __arena *)(dst + i + 56) = h;
	}
	for (; i + 32 <= n && can_loop; i += 32) {
		__u64 a = *(const __u64 __arena *)(src + i);
		__u64 b = *(const __u64 __arena *)(src + i + 8);
		__u64 c = *(const __u64 __arena *)(src + i + 16);
		__u64 d = *(const __u64 __arena *)(src + i + 24);

		*(__u64 __arena *)(dst + i) = a;
		*(__u64 __arena *)(dst + i + 8) = b;
		*(__u64 __arena *)(dst + i + 16) = c;
		*(__u64 __arena *)(dst + i + 24) = d;
	}
	for (; i + 8 <= n && can_loop; i += 8)
		*(__u64 __arena *)(dst + i) = *(const __u64 __arena *)(src + i);
	for (; i < n && can_loop; i++)
		dst[i] = src[i];
	return 0;
}

/* Run a's current entry before run b's? Internal-key order; ties go to the lower run index. */
__noinline int run_less_full(struct rm_run __arena *a __arg_arena, __u32 ai,
			     struct rm_run __arena *b __arg_arena, __u32 bi)
{
	int c = cmp_bytes((const __u8 __arena *)a->key, a->key_len - 8,
			  (const __u8 __arena *)b->key, b->key_len - 8);

	if (c != 0)
		return c < 0;
	if (a->packed != b->packed)
		return a->packed > b->packed;
	return ai < bi;
}

/* Most comparisons end at the cached 16 bytes of prefix, without a call. Zero padding keeps the
 * order: prefixes differ only where the keys differ, or where one key ends (and is smaller). */
static __always_inline int run_less(struct rm_run __arena *a, __u32 ai, struct rm_run __arena *b,
				    __u32 bi)
{
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix;
	if (a->prefix2 != b->prefix2)
		return a->prefix2 < b->prefix2;
	return run_less_full(a, ai, b, bi);
}

/* Decodes a varint32 at p (at most 5 bytes, all before limit); returns bytes used, 0 if bad. */
static __always_inline __u32 varint32(const __u8 __arena *p, __u32 avail, __u32 *out)
{
	__u32 v = 0;
	__u32 i;

	for (i = 0; i < 5; i++) {
		__u8 b;

		if (i >= avail)
			return 0;
		b = p[i];
		v |= (__u32)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*out = v;
			return i + 1;
		}
	}
	return 0;
}

static __always_inline int corrupt(struct rm_session __arena *s, __u32 run, __u32 detail)
{
	s->run = run;
	s->detail = detail;
	return RM_CORRUPT;
}

/*
 * Moves run `ri` to its next entry in bounds. Returns 0 with the run VALID or DONE, or an RM_*
 * code for user space (RM_NEED_CHUNK, RM_NEED_KEY, RM_CORRUPT, RM_AGAIN; `s->run` names the run)
 * with the run left where it can resume.
 */
__noinline int run_advance(struct rm_session __arena *s __arg_arena, __u32 ri)
{
	struct rm_run __arena *r = RUN(s, ri);

	if (r->state == RM_RUN_DONE)
		return 0;
	if (r->state == RM_RUN_NEED_CHUNK) {
		s->run = ri;
		return RM_NEED_CHUNK;
	}
	while (can_loop) {
		__u32 p, avail, n, shared, non_shared, value_len, key_len;
		const __u8 __arena *e;
		int c;

		if (r->state == RM_RUN_LOAD) {
			if (r->nblocks == 0) {
				r->state = RM_RUN_NEED_CHUNK;
				s->run = ri;
				return RM_NEED_CHUNK;
			}
			r->block_idx = 0;
			r->base = ((struct rm_block __arena *)r->blocks)[0].addr;
			r->data_end = ((struct rm_block __arena *)r->blocks)[0].data_end;
			r->next = 0;
			r->state = RM_RUN_VALID; /* walking; "valid" once an entry is decoded */
		}
		p = r->next;
		if (p >= r->data_end) {
			struct rm_block __arena *blk;

			if (r->block_idx + 1 >= r->nblocks) {
				r->state = RM_RUN_NEED_CHUNK;
				s->run = ri;
				return RM_NEED_CHUNK;
			}
			r->block_idx++;
			blk = (struct rm_block __arena *)r->blocks + r->block_idx;
			r->base = blk->addr;
			r->data_end = blk->data_end;
			r->next = 0;
			/* The previous block's last key is no prefix base for this one. */
			r->key_len = 0;
			continue;
		}
		e = (const __u8 __arena *)r->base + p;
		avail = r->data_end - p;
		/* Fast path as in RocksDB's DecodeEntry: all three lengths in one byte each. */
		if (avail >= 3 && (e[0] | e[1] | e[2]) < 128) {
			shared = e[0];
			non_shared = e[1];
			value_len = e[2];
			n = 3;
		} else {
			__u32 m;

			n = varint32(e, avail, &shared);
			if (n == 0)
				return corrupt(s, ri, RM_BAD_ENTRY_HEADER);
			m = varint32(e + n, avail - n, &non_shared);
			if (m == 0)
				return corrupt(s, ri, RM_BAD_ENTRY_HEADER);
			n += m;
			m = varint32(e + n, avail - n, &value_len);
			if (m == 0)
				return corrupt(s, ri, RM_BAD_ENTRY_HEADER);
			n += m;
		}
		if (shared > r->key_len)
			return corrupt(s, ri, RM_BAD_SHARED);
		if ((__u64)n + non_shared + value_len > avail)
			return corrupt(s, ri, RM_BAD_ENTRY_BOUNDS);
		key_len = shared + non_shared;
		if (key_len < 8)
			return corrupt(s, ri, RM_BAD_KEY_LENGTH);
		if (key_len > r->key_cap) {
			s->run = ri;
			s->need = key_len;
			return RM_NEED_KEY;
		}
		copy_bytes((__u8 __arena *)r->key + shared, e + n, non_shared);
		r->key_len = key_len;
		r->value = (__u64)(e + n + non_shared);
		r->value_len = value_len;
		r->next = p + n + non_shared + value_len;
		r->packed = load_le64((const __u8 __arena *)r->key + key_len - 8);
		{
			__u32 ulen = key_len - 8;
			__u64 pre = __builtin_bswap64(load_le64((const __u8 __arena *)r->key));

			__u64 pre2 = __builtin_bswap64(load_le64((const __u8 __arena *)r->key + 8));

			if (ulen < 8)
				pre = ulen ? pre & (~0ULL << (8 * (8 - ulen))) : 0;
			if (ulen <= 8)
				pre2 = 0;
			else if (ulen < 16)
				pre2 &= ~0ULL << (8 * (16 - ulen));
			r->prefix = pre;
			r->prefix2 = pre2;
		}
		if (s->has_end) {
			c = cmp_bytes((const __u8 __arena *)r->key, key_len - 8,
				      (const __u8 __arena *)s->end, s->end_len);
			if (c >= 0) {
				r->state = RM_RUN_DONE;
				return 0;
			}
		}
		if (s->has_start && !r->started) {
			c = cmp_bytes((const __u8 __arena *)r->key, key_len - 8,
				      (const __u8 __arena *)s->start, s->start_len);
			if (c < 0)
				continue;
		}
		r->started = 1;
		r->state = RM_RUN_VALID;
		return 0;
	}
	/* The loop budget ran out mid-walk: the run is consistent, a new call resumes it. */
	s->run = ri;
	return RM_AGAIN;
}

/* Appends run ri's current entry to the output. 0 when emitted, else an RM_* code. */
__noinline int emit(struct rm_session __arena *s __arg_arena, __u32 ri)
{
	struct rm_run __arena *r = RUN(s, ri);
	struct rm_out_entry __arena *e;
	bool copy = !r->zero_copy;
	/* Output bytes this entry takes: its key, and its value only when copied. */
	__u64 need = (__u64)r->key_len + (copy ? r->value_len : 0);
	__u32 off = s->out_len;

	if (s->index_len >= s->index_cap)
		return RM_INDEX_FULL;
	if (off + need > s->out_cap) {
		if (off == 0) {
			s->need = need;
			return RM_NEED_OUT;
		}
		return RM_BATCH_FULL;
	}
	copy_bytes((__u8 __arena *)s->out_data + off, (const __u8 __arena *)r->key, r->key_len);
	e = (struct rm_out_entry __arena *)s->out_index + s->index_len;
	e->key_offset = off;
	e->key_len = r->key_len;
	e->value_len = r->value_len;
	if (copy) {
		copy_bytes((__u8 __arena *)s->out_data + off + r->key_len,
			   (const __u8 __arena *)r->value, r->value_len);
		e->value_addr = s->out_data + off + r->key_len;
		e->pinned = 0;
	} else {
		/* Rust keeps this run's chunk unchanged while a batch may point into it. */
		e->value_addr = r->value;
		e->pinned = 1;
	}
	s->out_len = off + (__u32)need;
	{
		__u64 b = (__u64)s->batch_bytes + r->key_len + r->value_len;

		s->batch_bytes = b > 0xffffffffULL ? 0xffffffffU : (__u32)b;
	}
	s->index_len++;
	s->emitted++;
	r->chunk_emits++;
	return 0;
}

/* Restores the heap property below position pos. */
__noinline int sift_down(struct rm_session __arena *s __arg_arena, __u32 pos)
{
	__u32 __arena *heap = HEAP(s);
	__u32 n = s->heap_len;

	while (can_loop) {
		__u32 l = 2 * pos + 1, r = l + 1, child = l;

		if (l >= n)
			break;
		if (r < n && run_less(RUN(s, heap[r]), heap[r], RUN(s, heap[l]), heap[l]))
			child = r;
		if (!run_less(RUN(s, heap[child]), heap[child], RUN(s, heap[pos]), heap[pos]))
			break;
		{
			__u32 t = heap[child];

			heap[child] = heap[pos];
			heap[pos] = t;
		}
		pos = child;
	}
	return 0;
}

/* Heapifies the runs holding an entry. The count lives in the arena, not a register: a
 * register counter would make the verifier walk every value it can take. */
__noinline int build_heap(struct rm_session __arena *s __arg_arena)
{
	__u32 __arena *heap = HEAP(s);
	__u32 i;

	s->heap_len = 0;
	for (i = 0; i < s->nruns && can_loop; i++)
		if (RUN(s, i)->state == RM_RUN_VALID)
			heap[s->heap_len++] = i;
	for (i = s->heap_len / 2; i > 0 && can_loop; i--)
		sift_down(s, i - 1);
	return 0;
}

/* After the run at the heap's top moved: re-sift it, or drop it once it is done. */
static __always_inline void heap_fix_top(struct rm_session __arena *s)
{
	__u32 __arena *heap = HEAP(s);

	if (s->heap_len == 0)
		return;
	if (RUN(s, heap[0])->state == RM_RUN_DONE) {
		s->heap_len--;
		heap[0] = heap[s->heap_len];
	}
	if (s->heap_len > 0)
		sift_down(s, 0);
}

/* The run holding the smallest current entry by linear scan, or RM_NO_RUN. */
__noinline __u32 linear_min(struct rm_session __arena *s __arg_arena)
{
	__u32 best = RM_NO_RUN;
	__u32 i;

	for (i = 0; i < s->nruns && can_loop; i++) {
		if (RUN(s, i)->state != RM_RUN_VALID)
			continue;
		if (best == RM_NO_RUN || run_less(RUN(s, i), i, RUN(s, best), best))
			best = i;
	}
	return best;
}

/*
 * Positions every run on its first entry (once), then finishes the run left pending by the
 * previous call. 0 when the merge can go on, else the RM_* code to return.
 */
static __always_inline int resume(struct rm_session __arena *s, bool heap_mode)
{
	__u32 i;
	int rc;

	if (!s->initialized) {
		/* Resumes at the run that went back to user space: the runs before it hold their
		 * first entry already, and advancing them again would skip it. */
		for (i = s->init_next; i < s->nruns && can_loop; i++) {
			rc = run_advance(s, i);
			if (rc)
				return rc;
			s->init_next = i + 1;
		}
		if (s->init_next < s->nruns)
			return RM_AGAIN;
		if (heap_mode)
			build_heap(s);
		s->initialized = 1;
		s->pending = RM_NO_RUN;
		return 0;
	}
	if (s->pending != RM_NO_RUN) {
		i = s->pending;
		rc = run_advance(s, i);
		if (rc)
			return rc;
		if (heap_mode)
			heap_fix_top(s);
		s->pending = RM_NO_RUN;
	}
	return 0;
}

static __always_inline int merge(struct rm_args *ctx, bool heap_mode)
{
	struct rm_session __arena *s = (struct rm_session __arena *)ctx->session;
	int rc;

	/* Ties the arena map to this program (arena address casts need an associated arena). */
	asm volatile("" ::"r"(&arena));

	rc = resume(s, heap_mode);
	while (!rc && can_loop) {
		__u32 m;

		if (s->batch_bytes >= s->out_target) {
			rc = RM_BATCH_FULL;
			break;
		}
		m = heap_mode ? (s->heap_len ? HEAP(s)[0] : RM_NO_RUN) : linear_min(s);
		if (m == RM_NO_RUN) {
			rc = RM_EOF;
			break;
		}
		rc = emit(s, m);
		if (rc)
			break;
		/* The entry is out; from here the run is pending until it holds its next one. */
		s->pending = m;
		rc = run_advance(s, m);
		if (rc)
			break;
		if (heap_mode)
			heap_fix_top(s);
		s->pending = RM_NO_RUN;
	}
	if (!rc)
		rc = RM_AGAIN;
	s->result = rc;
	return 0;
}

SEC("syscall")
int merge_linear(struct rm_args *ctx)
{
	return merge(ctx, false);
}

SEC("syscall")
int merge_heap(struct rm_args *ctx)
{
	return merge(ctx, true);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
