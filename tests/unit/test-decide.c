/* SPDX-License-Identifier: Apache-2.0 */
/* The decision logic shared with the BPF programs (bpf/include/bulwark_decide.h):
 * bw_decide, bw_lowest_slot, bw_outcome_worse, bw_net_collect,
 * bw_path_key_bits and bw_ipv6_is_v4mapped, run as plain C on the host. */
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark_abi.h"
#include "bulwark_decide.h"

#include "bw-test.h"

#define BIT(n) (1ULL << (n))

static struct bw_ruleset ruleset(__u64 block_mask)
{
	struct bw_ruleset rs;

	memset(&rs, 0, sizeof(rs));
	rs.block_mask = block_mask;
	rs.generation = 1;
	return rs;
}

static void test_decide_no_rules(void)
{
	struct bw_ruleset rs = ruleset(BIT(0));
	struct bw_outcome o;

	for (unsigned cls = 0; cls < BW_CLASS_COUNT; cls++) {
		o = bw_decide(&rs, cls, 0, 0, 0);
		ASSERT(o.decision == BW_DECISION_ALLOW);
		ASSERT(o.rule_id == 0);
	}
	/* A matching allow list of a slot without one changes nothing. */
	o = bw_decide(&rs, BW_CLASS_EXEC, 0, BIT(3), 0);
	ASSERT(o.decision == BW_DECISION_ALLOW);
}

static void test_decide_deny(void)
{
	struct bw_ruleset rs = ruleset(BIT(5));
	struct bw_outcome o;

	/* Deny in a Block slot. */
	o = bw_decide(&rs, BW_CLASS_FILE_READ, BIT(5), 0, 42);
	ASSERT(o.decision == BW_DECISION_BLOCK);
	ASSERT(o.slot == 5);
	ASSERT(o.rule_id == 42);

	/* Deny only in an Audit slot. */
	o = bw_decide(&rs, BW_CLASS_FILE_READ, BIT(2), 0, 7);
	ASSERT(o.decision == BW_DECISION_AUDIT);
	ASSERT(o.slot == 2);
	ASSERT(o.rule_id == 7);

	/* Block beats Audit, whatever the slot order. */
	o = bw_decide(&rs, BW_CLASS_EXEC, BIT(2) | BIT(5), 0, 9);
	ASSERT(o.decision == BW_DECISION_BLOCK);
	ASSERT(o.slot == 5);
	ASSERT(o.rule_id == 9);
	rs = ruleset(BIT(1));
	o = bw_decide(&rs, BW_CLASS_EXEC, BIT(1) | BIT(6), 0, 9);
	ASSERT(o.decision == BW_DECISION_BLOCK);
	ASSERT(o.slot == 1);

	/* Several Audit slots: the lowest is reported. */
	rs = ruleset(0);
	o = bw_decide(&rs, BW_CLASS_NET, BIT(40) | BIT(17), 0, 3);
	ASSERT(o.decision == BW_DECISION_AUDIT);
	ASSERT(o.slot == 17);
	ASSERT(o.rule_id == 3);

	/* Slot 63 works like any other. */
	rs = ruleset(BIT(63));
	o = bw_decide(&rs, BW_CLASS_FILE_WRITE, BIT(63), 0, 11);
	ASSERT(o.decision == BW_DECISION_BLOCK);
	ASSERT(o.slot == 63);
	ASSERT(o.rule_id == 11);

	/* An allow-list match does not cancel a deny match. */
	rs = ruleset(BIT(0));
	rs.allowlist_mask[BW_CLASS_EXEC] = BIT(0);
	o = bw_decide(&rs, BW_CLASS_EXEC, BIT(0), BIT(0), 4);
	ASSERT(o.decision == BW_DECISION_BLOCK);
	ASSERT(o.rule_id == 4);
}

static void test_decide_allowlist(void)
{
	struct bw_ruleset rs = ruleset(BIT(3));
	struct bw_outcome o;

	rs.allowlist_mask[BW_CLASS_EXEC] = BIT(3);

	/* Missed in a Block slot: block, no rule to report, that slot. */
	o = bw_decide(&rs, BW_CLASS_EXEC, 0, 0, 0);
	ASSERT(o.decision == BW_DECISION_BLOCK);
	ASSERT(o.slot == 3);
	ASSERT(o.rule_id == 0);

	/* Missed, though another slot's allow list matched. */
	o = bw_decide(&rs, BW_CLASS_EXEC, 0, BIT(4), 0);
	ASSERT(o.decision == BW_DECISION_BLOCK);
	ASSERT(o.slot == 3);

	/* Hit: allowed. */
	o = bw_decide(&rs, BW_CLASS_EXEC, 0, BIT(3), 0);
	ASSERT(o.decision == BW_DECISION_ALLOW);

	/* The allow list is per class: another class is not restricted. */
	o = bw_decide(&rs, BW_CLASS_FILE_READ, 0, 0, 0);
	ASSERT(o.decision == BW_DECISION_ALLOW);
	o = bw_decide(&rs, BW_CLASS_NET, 0, 0, 0);
	ASSERT(o.decision == BW_DECISION_ALLOW);

	/* Allow list of an Audit slot missed: audit. */
	rs = ruleset(0);
	rs.allowlist_mask[BW_CLASS_NET] = BIT(8);
	o = bw_decide(&rs, BW_CLASS_NET, 0, 0, 0);
	ASSERT(o.decision == BW_DECISION_AUDIT);
	ASSERT(o.slot == 8);
	ASSERT(o.rule_id == 0);

	/* Two allow lists, both must list the target. */
	rs = ruleset(BIT(1) | BIT(2));
	rs.allowlist_mask[BW_CLASS_FILE_WRITE] = BIT(1) | BIT(2);
	o = bw_decide(&rs, BW_CLASS_FILE_WRITE, 0, BIT(1), 0);
	ASSERT(o.decision == BW_DECISION_BLOCK);
	ASSERT(o.slot == 2);
	o = bw_decide(&rs, BW_CLASS_FILE_WRITE, 0, BIT(1) | BIT(2), 0);
	ASSERT(o.decision == BW_DECISION_ALLOW);
}

static void test_decide_mixed(void)
{
	struct bw_ruleset rs = ruleset(BIT(4));
	struct bw_outcome o;

	/* The Audit slot 0 misses its allow list, the Block slot 4 denies:
	 * block, reporting slot 4's deny rule (not the allow-list miss). */
	rs.allowlist_mask[BW_CLASS_FILE_READ] = BIT(0);
	o = bw_decide(&rs, BW_CLASS_FILE_READ, BIT(4), 0, 77);
	ASSERT(o.decision == BW_DECISION_BLOCK);
	ASSERT(o.slot == 4);
	ASSERT(o.rule_id == 77);

	/* The Block slot misses its allow list, an Audit slot denies: the
	 * block is decided by the allow list, so no rule is reported. */
	rs = ruleset(BIT(4));
	rs.allowlist_mask[BW_CLASS_FILE_READ] = BIT(4);
	o = bw_decide(&rs, BW_CLASS_FILE_READ, BIT(0), 0, 55);
	ASSERT(o.decision == BW_DECISION_BLOCK);
	ASSERT(o.slot == 4);
	ASSERT(o.rule_id == 0);

	/* Audit slots only, one denies and one misses its allow list: the
	 * deny rule is reported. */
	rs = ruleset(0);
	rs.allowlist_mask[BW_CLASS_EXEC] = BIT(1);
	o = bw_decide(&rs, BW_CLASS_EXEC, BIT(6), 0, 12);
	ASSERT(o.decision == BW_DECISION_AUDIT);
	ASSERT(o.slot == 6);
	ASSERT(o.rule_id == 12);
}

static void test_decide_bad_class(void)
{
	struct bw_ruleset rs = ruleset(~0ULL);
	struct bw_outcome o;

	for (unsigned c = 0; c < BW_CLASS_COUNT; c++)
		rs.allowlist_mask[c] = ~0ULL;
	o = bw_decide(&rs, BW_CLASS_COUNT, ~0ULL, 0, 1);
	ASSERT(o.decision == BW_DECISION_ALLOW);
	ASSERT(o.rule_id == 0);
	o = bw_decide(&rs, 1000, ~0ULL, 0, 1);
	ASSERT(o.decision == BW_DECISION_ALLOW);
	o = bw_decide(&rs, (unsigned)-1, ~0ULL, 0, 1);
	ASSERT(o.decision == BW_DECISION_ALLOW);
	/* The last valid class is judged. */
	o = bw_decide(&rs, BW_CLASS_COUNT - 1, 0, 0, 0);
	ASSERT(o.decision == BW_DECISION_BLOCK);
}

static void test_lowest_slot(void)
{
	for (unsigned i = 0; i < 64; i++) {
		ASSERT(bw_lowest_slot(BIT(i)) == i);
		/* Higher bits do not matter. */
		ASSERT(bw_lowest_slot(~0ULL << i) == i);
		if (i < 63)
			ASSERT(bw_lowest_slot(BIT(i) | BIT(63)) == i);
	}
	ASSERT(bw_lowest_slot(0x8000000100000000ULL) == 32);
	ASSERT(bw_lowest_slot(0x00f0000000000000ULL) == 52);
	ASSERT(bw_lowest_slot(0x0000000000000006ULL) == 1);
	ASSERT(bw_lowest_slot(0x0000000000fff000ULL) == 12);
	ASSERT(bw_lowest_slot(~0ULL) == 0);
}

static void test_outcome_worse(void)
{
	struct bw_outcome allow = { BW_DECISION_ALLOW, 1, 0 };
	struct bw_outcome audit_a = { BW_DECISION_AUDIT, 2, 20 };
	struct bw_outcome audit_b = { BW_DECISION_AUDIT, 3, 30 };
	struct bw_outcome block_a = { BW_DECISION_BLOCK, 4, 40 };
	struct bw_outcome block_b = { BW_DECISION_BLOCK, 5, 50 };
	struct bw_outcome o;

	o = bw_outcome_worse(allow, audit_a);
	ASSERT(o.decision == BW_DECISION_AUDIT && o.rule_id == 20);
	o = bw_outcome_worse(audit_a, allow);
	ASSERT(o.decision == BW_DECISION_AUDIT && o.rule_id == 20);
	o = bw_outcome_worse(audit_a, block_a);
	ASSERT(o.decision == BW_DECISION_BLOCK && o.rule_id == 40);
	o = bw_outcome_worse(block_a, audit_a);
	ASSERT(o.decision == BW_DECISION_BLOCK && o.rule_id == 40);
	/* Ties: the first argument wins. */
	o = bw_outcome_worse(audit_a, audit_b);
	ASSERT(o.slot == 2 && o.rule_id == 20);
	o = bw_outcome_worse(audit_b, audit_a);
	ASSERT(o.slot == 3 && o.rule_id == 30);
	o = bw_outcome_worse(block_b, block_a);
	ASSERT(o.slot == 5 && o.rule_id == 50);
	o = bw_outcome_worse(allow, (struct bw_outcome){ BW_DECISION_ALLOW, 9, 0 });
	ASSERT(o.slot == 1);
}

static struct bw_port_rule port_rule(__u16 lo, __u16 hi, __u8 proto, __u8 slot, __u8 allow, __u32 id)
{
	struct bw_port_rule r;

	memset(&r, 0, sizeof(r));
	r.port_lo = lo;
	r.port_hi = hi;
	r.protocol = proto;
	r.slot = slot;
	r.allow = allow;
	r.rule_id = id;
	return r;
}

struct collected {
	__u64 deny, allow;
	__u32 rule;
};

static struct collected collect(const struct bw_net_value *v, __u16 port, __u8 proto, __u64 block_mask)
{
	struct collected c = { 0, 0, 0 };

	bw_net_collect(v, port, proto, block_mask, &c.deny, &c.allow, &c.rule);
	return c;
}

static void test_net_collect_ports(void)
{
	struct bw_net_value v;
	struct collected c;

	memset(&v, 0, sizeof(v));
	v.rules[v.count++] = port_rule(80, 89, BW_PROTO_ANY, 2, 0, 100);

	c = collect(&v, 79, BW_PROTO_TCP, 0);
	ASSERT(c.deny == 0 && c.rule == 0);
	c = collect(&v, 80, BW_PROTO_TCP, 0);
	ASSERT(c.deny == BIT(2) && c.rule == 100);
	c = collect(&v, 85, BW_PROTO_UDP, 0);
	ASSERT(c.deny == BIT(2));
	c = collect(&v, 89, BW_PROTO_TCP, 0);
	ASSERT(c.deny == BIT(2) && c.rule == 100);
	c = collect(&v, 90, BW_PROTO_TCP, 0);
	ASSERT(c.deny == 0 && c.rule == 0);
	/* "any" protocol also matches protocols that are neither TCP nor UDP. */
	c = collect(&v, 80, BW_PROTO_ANY, 0);
	ASSERT(c.deny == BIT(2));

	/* Full range and single port edges. */
	memset(&v, 0, sizeof(v));
	v.rules[v.count++] = port_rule(0, 65535, BW_PROTO_ANY, 0, 0, 1);
	c = collect(&v, 0, BW_PROTO_TCP, 0);
	ASSERT(c.deny == BIT(0));
	c = collect(&v, 65535, BW_PROTO_UDP, 0);
	ASSERT(c.deny == BIT(0));
	memset(&v, 0, sizeof(v));
	v.rules[v.count++] = port_rule(65535, 65535, BW_PROTO_TCP, 0, 0, 1);
	c = collect(&v, 65535, BW_PROTO_TCP, 0);
	ASSERT(c.deny == BIT(0));
	c = collect(&v, 65534, BW_PROTO_TCP, 0);
	ASSERT(c.deny == 0);
}

static void test_net_collect_protocol(void)
{
	struct bw_net_value v;
	struct collected c;

	memset(&v, 0, sizeof(v));
	v.rules[v.count++] = port_rule(53, 53, BW_PROTO_UDP, 1, 0, 10);
	v.rules[v.count++] = port_rule(443, 443, BW_PROTO_TCP, 2, 0, 20);

	c = collect(&v, 53, BW_PROTO_UDP, 0);
	ASSERT(c.deny == BIT(1) && c.rule == 10);
	c = collect(&v, 53, BW_PROTO_TCP, 0);
	ASSERT(c.deny == 0 && c.rule == 0);
	c = collect(&v, 443, BW_PROTO_TCP, 0);
	ASSERT(c.deny == BIT(2) && c.rule == 20);
	c = collect(&v, 443, BW_PROTO_UDP, 0);
	ASSERT(c.deny == 0);
	/* A socket of another protocol only meets "any" rules. */
	c = collect(&v, 443, BW_PROTO_ANY, 0);
	ASSERT(c.deny == 0);
	c = collect(&v, 53, 132 /* SCTP, never passed by the hook */, 0);
	ASSERT(c.deny == 0);
}

static void test_net_collect_allow(void)
{
	struct bw_net_value v;
	struct collected c;

	memset(&v, 0, sizeof(v));
	v.rules[v.count++] = port_rule(443, 443, BW_PROTO_TCP, 3, 1, 30);
	v.rules[v.count++] = port_rule(22, 22, BW_PROTO_ANY, 4, 0, 40);

	c = collect(&v, 443, BW_PROTO_TCP, 0);
	ASSERT(c.allow == BIT(3));
	ASSERT(c.deny == 0);
	ASSERT(c.rule == 0); /* allow entries never become the reported rule */
	c = collect(&v, 22, BW_PROTO_TCP, 0);
	ASSERT(c.allow == 0);
	ASSERT(c.deny == BIT(4) && c.rule == 40);

	/* Masks accumulate into what the caller passed. */
	{
		__u64 deny = BIT(60), allow = BIT(61);
		__u32 rule = 0;

		bw_net_collect(&v, 443, BW_PROTO_TCP, 0, &deny, &allow, &rule);
		ASSERT(deny == BIT(60));
		ASSERT(allow == (BIT(61) | BIT(3)));
	}
}

static void test_net_collect_block_first(void)
{
	struct bw_net_value v;
	struct collected c;

	/* Audit slot 1 first, Block slot 2 second: the Block rule is reported. */
	memset(&v, 0, sizeof(v));
	v.rules[v.count++] = port_rule(0, 65535, BW_PROTO_ANY, 1, 0, 11);
	v.rules[v.count++] = port_rule(0, 65535, BW_PROTO_ANY, 2, 0, 22);
	v.rules[v.count++] = port_rule(0, 65535, BW_PROTO_ANY, 3, 0, 33);
	c = collect(&v, 80, BW_PROTO_TCP, BIT(2) | BIT(3));
	ASSERT(c.deny == (BIT(1) | BIT(2) | BIT(3)));
	ASSERT(c.rule == 22);
	/* No Block slot: the first deny met is reported. */
	c = collect(&v, 80, BW_PROTO_TCP, 0);
	ASSERT(c.rule == 11);
	/* Block slot first: it stays reported. */
	c = collect(&v, 80, BW_PROTO_TCP, BIT(1) | BIT(3));
	ASSERT(c.rule == 11);
	/* Only the later Block slot matters. */
	c = collect(&v, 80, BW_PROTO_TCP, BIT(3));
	ASSERT(c.rule == 33);

	/* Through bw_decide, as the connect hook does. */
	{
		struct bw_ruleset rs = ruleset(BIT(2));
		struct bw_outcome o;

		c = collect(&v, 80, BW_PROTO_TCP, rs.block_mask);
		o = bw_decide(&rs, BW_CLASS_NET, c.deny, c.allow, c.rule);
		ASSERT(o.decision == BW_DECISION_BLOCK);
		ASSERT(o.slot == 2);
		ASSERT(o.rule_id == 22);
	}

	/* Two Block slots, the higher one met first: the reported rule is the
	 * lowest slot's, the slot bw_decide() reports, so both name one policy. */
	memset(&v, 0, sizeof(v));
	v.rules[v.count++] = port_rule(0, 65535, BW_PROTO_ANY, 5, 0, 55);
	v.rules[v.count++] = port_rule(0, 65535, BW_PROTO_ANY, 2, 0, 22);
	{
		struct bw_ruleset rs = ruleset(BIT(2) | BIT(5));
		struct bw_outcome o;

		c = collect(&v, 80, BW_PROTO_TCP, rs.block_mask);
		ASSERT(c.rule == 22);
		o = bw_decide(&rs, BW_CLASS_NET, c.deny, c.allow, c.rule);
		ASSERT(o.slot == 2 && o.rule_id == 22);
	}
}

static void test_net_collect_clamp(void)
{
	struct bw_net_value v;
	struct collected c;

	memset(&v, 0, sizeof(v));
	for (unsigned i = 0; i < BW_PORT_RULES_MAX; i++)
		v.rules[i] = port_rule((__u16)(1000 + i), (__u16)(1000 + i), BW_PROTO_ANY, (__u8)i, 0, 500 + i);
	v.count = BW_PORT_RULES_MAX;
	c = collect(&v, 1000 + BW_PORT_RULES_MAX - 1, BW_PROTO_TCP, 0);
	ASSERT(c.deny == BIT(BW_PORT_RULES_MAX - 1));
	ASSERT(c.rule == 500 + BW_PORT_RULES_MAX - 1);

	/* A count past the array is clamped: every rule is still read, none
	 * beyond (ASan would see an overread of a heap copy). */
	{
		struct bw_net_value *h = malloc(sizeof(*h));

		ASSERT(h != NULL);
		if (!h)
			return;
		*h = v;
		h->count = 1000;
		c = collect(h, 1000, BW_PROTO_TCP, 0);
		ASSERT(c.deny == BIT(0));
		c = collect(h, 1000 + BW_PORT_RULES_MAX - 1, BW_PROTO_TCP, 0);
		ASSERT(c.deny == BIT(BW_PORT_RULES_MAX - 1));
		h->count = 0xffffffffu;
		c = collect(h, 1005, BW_PROTO_TCP, 0);
		ASSERT(c.deny == BIT(5));
		free(h);
	}

	/* count limits what is read: a rule past it is ignored. */
	v.count = 3;
	c = collect(&v, 1003, BW_PROTO_TCP, 0);
	ASSERT(c.deny == 0);
	c = collect(&v, 1002, BW_PROTO_TCP, 0);
	ASSERT(c.deny == BIT(2));
	v.count = 0;
	c = collect(&v, 1000, BW_PROTO_TCP, 0);
	ASSERT(c.deny == 0 && c.rule == 0);

	/* A slot number past 63 is folded into range, not shifted out. */
	memset(&v, 0, sizeof(v));
	v.rules[v.count++] = port_rule(0, 65535, BW_PROTO_ANY, 64 + 5, 0, 1);
	c = collect(&v, 1, BW_PROTO_TCP, 0);
	ASSERT(c.deny == BIT(5));
}

static void test_path_key_bits(void)
{
	ASSERT(bw_path_key_bits(0) == 8);
	ASSERT(bw_path_key_bits(1) == 16);
	ASSERT(bw_path_key_bits(254) == 255 * 8);
	ASSERT(bw_path_key_bits(255) == 256 * 8);
	ASSERT(bw_path_key_bits(256) == 256 * 8);
	ASSERT(bw_path_key_bits(4000) == BW_PATH_KEY_MAX * 8);
	/* Never more than the key holds. */
	ASSERT(bw_path_key_bits(BW_PATH_MAX) <= sizeof(((struct bw_path_key *)0)->data) * 8);
}

static void test_v4mapped(void)
{
	__u8 a[16];

	memset(a, 0, sizeof(a));
	a[10] = 0xff;
	a[11] = 0xff;
	a[12] = 10;
	a[15] = 1;
	ASSERT(bw_ipv6_is_v4mapped(a));
	a[12] = a[13] = a[14] = a[15] = 0; /* ::ffff:0.0.0.0 */
	ASSERT(bw_ipv6_is_v4mapped(a));

	for (int i = 0; i < 10; i++) {
		memset(a, 0, sizeof(a));
		a[10] = a[11] = 0xff;
		a[i] = 1;
		ASSERT(!bw_ipv6_is_v4mapped(a));
	}
	memset(a, 0, sizeof(a));
	a[10] = 0xff;
	ASSERT(!bw_ipv6_is_v4mapped(a));
	memset(a, 0, sizeof(a));
	a[11] = 0xff;
	ASSERT(!bw_ipv6_is_v4mapped(a));
	/* ::1 and the deprecated v4-compatible ::10.0.0.1 are not mapped. */
	memset(a, 0, sizeof(a));
	a[15] = 1;
	ASSERT(!bw_ipv6_is_v4mapped(a));
	a[12] = 10;
	ASSERT(!bw_ipv6_is_v4mapped(a));
	/* 64:ff9b::10.0.0.1 (NAT64) is not mapped either. */
	memset(a, 0, sizeof(a));
	a[1] = 0x64;
	a[2] = 0xff;
	a[3] = 0x9b;
	a[12] = 10;
	ASSERT(!bw_ipv6_is_v4mapped(a));
}

int main(void)
{
	test_decide_no_rules();
	test_decide_deny();
	test_decide_allowlist();
	test_decide_mixed();
	test_decide_bad_class();
	test_lowest_slot();
	test_outcome_worse();
	test_net_collect_ports();
	test_net_collect_protocol();
	test_net_collect_allow();
	test_net_collect_block_first();
	test_net_collect_clamp();
	test_path_key_bits();
	test_v4mapped();

	return bw_test_summary();
}
