/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The decision logic, shared verbatim by the BPF-LSM programs and the agent
 * (which unit-tests it on the host against real kernel LPM maps). Only pure
 * functions over already looked-up values live here; map lookups stay with
 * the caller because their API differs between the two worlds.
 *
 * Semantics (docs/POLICY.md):
 *  - a policy slot "violates" when its deny list matches, or when it has a
 *    non-empty allow list for the class and the target is not in it;
 *  - the most restrictive answer wins: a violating Block slot blocks, else a
 *    violating Audit slot audits, else the operation is allowed.
 */
#ifndef BULWARK_DECIDE_H
#define BULWARK_DECIDE_H

#include "bulwark_abi.h"

#ifndef __bpf__
#include <stdbool.h>
#endif

#ifndef BW_INLINE
#ifdef __bpf__
#define BW_INLINE static __always_inline
#else
#define BW_INLINE static inline
#endif
#endif

struct bw_outcome {
	__u8 decision; /* enum bw_decision */
	__u8 slot;     /* the policy slot to report */
	__u32 rule_id; /* the deny rule to report; 0 when an allow list was missed */
};

/* Index of the lowest set bit; mask must not be 0. Written out because the
 * BPF backend has no count-trailing-zeros instruction. */
BW_INLINE __u8 bw_lowest_slot(__u64 mask)
{
	__u8 n = 0;

	if (!(mask & 0xffffffffULL)) { n += 32; mask >>= 32; }
	if (!(mask & 0xffffULL)) { n += 16; mask >>= 16; }
	if (!(mask & 0xffULL)) { n += 8; mask >>= 8; }
	if (!(mask & 0xfULL)) { n += 4; mask >>= 4; }
	if (!(mask & 0x3ULL)) { n += 2; mask >>= 2; }
	if (!(mask & 0x1ULL)) { n += 1; }
	return n;
}

/* deny_rule is the deny rule the compiler chose to report for deny_mask
 * (from a Block slot whenever one of the deny slots is Block). */
BW_INLINE struct bw_outcome bw_decide(const struct bw_ruleset *rs, unsigned int cls,
				      __u64 deny_mask, __u64 allow_mask, __u32 deny_rule)
{
	struct bw_outcome out = { BW_DECISION_ALLOW, 0, 0 };
	__u64 missed, violators, blocking;

	if (cls >= BW_CLASS_COUNT)
		return out;
	missed = rs->allowlist_mask[cls] & ~allow_mask;
	violators = deny_mask | missed;
	if (!violators)
		return out;

	blocking = violators & rs->block_mask;
	out.decision = blocking ? BW_DECISION_BLOCK : BW_DECISION_AUDIT;
	if (deny_mask & (blocking ? blocking : violators)) {
		/* A deny rule of the deciding mode: report it. */
		out.slot = bw_lowest_slot(deny_mask & (blocking ? blocking : violators));
		out.rule_id = deny_rule;
	} else {
		/* Decided by an allow list that does not list the target. */
		out.slot = bw_lowest_slot(blocking ? blocking : violators);
		out.rule_id = 0;
	}
	return out;
}

/* The more restrictive of two outcomes; a wins ties. */
BW_INLINE struct bw_outcome bw_outcome_worse(struct bw_outcome a, struct bw_outcome b)
{
	return b.decision > a.decision ? b : a;
}

/* Folds the port rules of the longest matching CIDR entry for one connect.
 * protocol is BW_PROTO_TCP or BW_PROTO_UDP (anything else only matches
 * "any"); port is in host byte order. The deny rule kept for reporting is
 * one of the slot bw_decide() will report: a Block slot's before an Audit
 * slot's, then the lowest slot, then the first (most specific) rule. */
BW_INLINE void bw_net_collect(const struct bw_net_value *v, __u16 port, __u8 protocol,
			      __u64 block_mask, __u64 *deny_mask, __u64 *allow_mask,
			      __u32 *deny_rule)
{
	__u32 count = v->count;
	__u8 rule_slot = 0;
	bool rule_block = false;
	__u32 i;

	if (count > BW_PORT_RULES_MAX)
		count = BW_PORT_RULES_MAX;
	for (i = 0; i < BW_PORT_RULES_MAX; i++) {
		const struct bw_port_rule *r;
		__u8 slot;
		__u64 bit;
		bool block;

		if (i >= count)
			break;
		r = &v->rules[i];
		if (port < r->port_lo || port > r->port_hi)
			continue;
		if (r->protocol != BW_PROTO_ANY && r->protocol != protocol)
			continue;
		slot = r->slot & (BW_SLOTS_MAX - 1);
		bit = 1ULL << slot;
		if (r->allow) {
			*allow_mask |= bit;
			continue;
		}
		block = bit & block_mask;
		if (!*deny_rule || (block && !rule_block) || (block == rule_block && slot < rule_slot)) {
			*deny_rule = r->rule_id;
			rule_slot = slot;
			rule_block = block;
		}
		*deny_mask |= bit;
	}
}

/* Length in bits of the LPM key for a path of len bytes (NUL not counted):
 * the NUL terminator is part of the key so that exact rules match only the
 * whole path; paths that do not fit are cut at BW_PATH_KEY_MAX bytes. */
BW_INLINE __u32 bw_path_key_bits(__u32 len)
{
	__u32 bytes = len + 1;

	if (bytes > BW_PATH_KEY_MAX)
		bytes = BW_PATH_KEY_MAX;
	return bytes * 8;
}

/* ::ffff:a.b.c.d reaches an IPv4 peer through an IPv6 socket: it must be
 * judged by the IPv4 rules or the IPv6 socket would be a way around them. */
BW_INLINE int bw_ipv6_is_v4mapped(const __u8 a[16])
{
	int i;

	for (i = 0; i < 10; i++)
		if (a[i])
			return 0;
	return a[10] == 0xff && a[11] == 0xff;
}

#endif /* BULWARK_DECIDE_H */
