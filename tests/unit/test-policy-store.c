/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy store keeps the last good version of a policy whose document
 * is rejected, and removes a policy only when its document is gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy-store.h"

#include "bw-test.h"

static char dir[] = "/tmp/bulwark-store-XXXXXX";

static void put(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static void rm(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

#define POLICY(kind, name, mode, denied)                                        \
	"apiVersion: bulwark.dev/v1alpha1\nkind: " kind "\nmetadata:\n  name: " name \
	"\nspec:\n  mode: " mode "\n  exec:\n    deny:\n      - path: " denied "\n"

static const struct bw_policy *find(const struct bw_policy_store *s, const char *name)
{
	for (size_t i = 0; i < s->current.n; i++)
		if (!strcmp(s->current.items[i]->name, name))
			return s->current.items[i];
	return NULL;
}

int main(void)
{
	struct bw_policy_store s = { 0 };
	const struct bw_policy *p;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}

	put("a.yaml", POLICY("ClusterBulwarkPolicy", "a", "Block", "/bin/sh"));
	put("b.yaml", POLICY("ClusterBulwarkPolicy", "b", "Audit", "/bin/ls") "---\n"
		      POLICY("ClusterBulwarkPolicy", "c", "Block", "/bin/cat"));
	ASSERT(bw_policy_store_reload(&s, dir) == 0);
	ASSERT(s.current.n == 3 && s.rejected.n == 0 && s.kept == 0);

	/* A bad edit of a: the old a stays, with its old rule. */
	put("a.yaml", POLICY("ClusterBulwarkPolicy", "a", "Blok", "/bin/bash"));
	ASSERT(bw_policy_store_reload(&s, dir) == 0);
	ASSERT(s.current.n == 3 && s.rejected.n == 1 && s.kept == 1);
	p = find(&s, "a");
	ASSERT(p && p->mode == BW_MODE_BLOCK && p->exec_deny.n == 1 && !strcmp(p->exec_deny.items[0].path, "/bin/sh"));
	ASSERT(s.rejected.n == 1 && s.rejected.items[0].name && !strcmp(s.rejected.items[0].name, "a"));

	/* A good edit replaces it. */
	put("a.yaml", POLICY("ClusterBulwarkPolicy", "a", "Audit", "/bin/bash"));
	ASSERT(bw_policy_store_reload(&s, dir) == 0);
	p = find(&s, "a");
	ASSERT(p && p->mode == BW_MODE_AUDIT && !strcmp(p->exec_deny.items[0].path, "/bin/bash"));
	ASSERT(s.rejected.n == 0 && s.kept == 0);

	/* A YAML syntax error in b.yaml names no policy: what b.yaml gave
	 * before (b and c) stays, and a is untouched. */
	put("b.yaml", "apiVersion: [unclosed\n");
	ASSERT(bw_policy_store_reload(&s, dir) == 0);
	ASSERT(s.rejected.n == 1 && s.kept == 2);
	ASSERT(find(&s, "b") && find(&s, "c") && find(&s, "a"));

	/* One bad document among good ones: only that policy is kept old. */
	put("b.yaml", POLICY("ClusterBulwarkPolicy", "b", "Block", "/bin/ls") "---\n"
		      POLICY("ClusterBulwarkPolicy", "c", "Block", "relative"));
	ASSERT(bw_policy_store_reload(&s, dir) == 0);
	p = find(&s, "b");
	ASSERT(p && p->mode == BW_MODE_BLOCK);           /* the new b */
	p = find(&s, "c");
	ASSERT(p && !strcmp(p->exec_deny.items[0].path, "/bin/cat")); /* the old c */
	ASSERT(s.kept == 1);

	/* Deleting a file removes its policies; a kept policy is not
	 * resurrected once its document is gone. */
	rm("b.yaml");
	ASSERT(bw_policy_store_reload(&s, dir) == 0);
	ASSERT(s.current.n == 1 && find(&s, "a") && !find(&s, "b") && !find(&s, "c"));

	/* A reload that reads a policy exactly as before keeps the same
	 * object, serial and all (the compiler reuses what it compiled from
	 * it); a changed one, or one that only moved in its file, is new. */
	{
		const struct bw_policy *a0, *d0, *e0;
		uint64_t sa, sd, se;

		put("d.yaml", POLICY("ClusterBulwarkPolicy", "d", "Block", "/bin/ls") "---\n"
			      POLICY("ClusterBulwarkPolicy", "e", "Block", "/bin/cat"));
		ASSERT(bw_policy_store_reload(&s, dir) == 0);
		a0 = find(&s, "a");
		d0 = find(&s, "d");
		e0 = find(&s, "e");
		ASSERT(a0 && d0 && e0 && d0->serial != e0->serial && a0->serial != d0->serial);
		sa = a0 ? a0->serial : 0;
		sd = d0 ? d0->serial : 0;
		se = e0 ? e0->serial : 0;
		ASSERT(bw_policy_store_reload(&s, dir) == 0);
		ASSERT(find(&s, "a") == a0 && find(&s, "d") == d0 && find(&s, "e") == e0);
		ASSERT(a0 && a0->serial == sa);

		/* d changes (and grows by a line); e, after it in the same
		 * file, now starts a line later: both are new; a is untouched. */
		put("d.yaml", POLICY("ClusterBulwarkPolicy", "d", "Block", "/bin/ls") "      - path: /bin/ps\n---\n"
			      POLICY("ClusterBulwarkPolicy", "e", "Block", "/bin/cat"));
		ASSERT(bw_policy_store_reload(&s, dir) == 0);
		ASSERT(find(&s, "a") == a0 && s.current.n == 3 && s.rejected.n == 0);
		p = find(&s, "d");
		ASSERT(p && p->serial > se && p->serial != sd && p->exec_deny.n == 2);
		p = find(&s, "e");
		ASSERT(p && p->serial != se && p->serial > sd);
		rm("d.yaml");
		ASSERT(bw_policy_store_reload(&s, dir) == 0);
		ASSERT(s.current.n == 1 && find(&s, "a") == a0);
	}

	/* Files are read again only when they changed: with the racy window
	 * off, an unchanged file is replayed from the cache (same objects),
	 * a rewritten one is parsed, a deleted one forgotten; its policy
	 * duplicates are still found across files. */
	{
		const struct bw_policy *a0 = find(&s, "a"), *f0;
		size_t parsed, reused;

		bw_policy_store_forget_files(&s);
		ASSERT(bw_policy_store_reload(&s, dir) == 0); /* makes the cache: default window */
		bw_parse_cache_counts(s.cache, &parsed, &reused);
		ASSERT(parsed == 1 && reused == 0);
		/* a.yaml was written just now (racy): read again, but the same
		 * bytes are not parsed again; a same-size rewrite in the same
		 * second is (its stat could look unchanged, its bytes do not). */
		ASSERT(bw_policy_store_reload(&s, dir) == 0);
		bw_parse_cache_counts(s.cache, &parsed, &reused);
		ASSERT(parsed == 0 && reused == 1 && find(&s, "a") == a0);
		put("a.yaml", POLICY("ClusterBulwarkPolicy", "a", "Audit", "/bin/bosh"));
		ASSERT(bw_policy_store_reload(&s, dir) == 0);
		bw_parse_cache_counts(s.cache, &parsed, &reused);
		ASSERT(parsed == 1 && reused == 0);
		a0 = find(&s, "a");
		ASSERT(a0 && !strcmp(a0->exec_deny.items[0].path, "/bin/bosh"));

		bw_parse_cache_set_racy_window(s.cache, 0);
		put("f.yaml", POLICY("ClusterBulwarkPolicy", "f", "Block", "/bin/ls"));
		ASSERT(bw_policy_store_reload(&s, dir) == 0); /* a: same bytes as its racy entry */
		bw_parse_cache_counts(s.cache, &parsed, &reused);
		ASSERT(parsed == 1 && reused == 1);
		f0 = find(&s, "f");
		ASSERT(bw_policy_store_reload(&s, dir) == 0);
		bw_parse_cache_counts(s.cache, &parsed, &reused);
		ASSERT(parsed == 0 && reused == 2);
		ASSERT(find(&s, "a") == a0 && find(&s, "f") == f0 && s.current.n == 2 && s.rejected.n == 0);

		/* g.yaml (after f.yaml) claims f again: rejected, even
		 * though f.yaml itself comes from the cache. */
		put("g.yaml", POLICY("ClusterBulwarkPolicy", "f", "Audit", "/bin/ps"));
		ASSERT(bw_policy_store_reload(&s, dir) == 0);
		bw_parse_cache_counts(s.cache, &parsed, &reused);
		ASSERT(parsed == 1 && reused == 2);
		ASSERT(s.rejected.n == 1 && find(&s, "f") == f0);
		ASSERT(bw_policy_store_reload(&s, dir) == 0); /* and again, all three from the cache */
		bw_parse_cache_counts(s.cache, &parsed, &reused);
		ASSERT(parsed == 0 && reused == 3 && s.rejected.n == 1 && find(&s, "f") == f0);
		rm("g.yaml");

		/* A rewrite of f.yaml (another size) is read. */
		put("f.yaml", POLICY("ClusterBulwarkPolicy", "f", "Block", "/bin/lsblk"));
		ASSERT(bw_policy_store_reload(&s, dir) == 0);
		bw_parse_cache_counts(s.cache, &parsed, &reused);
		ASSERT(parsed == 1 && reused == 1 && s.rejected.n == 0);
		f0 = find(&s, "f");
		ASSERT(f0 && !strcmp(f0->exec_deny.items[0].path, "/bin/lsblk"));
		rm("f.yaml");
		ASSERT(bw_policy_store_reload(&s, dir) == 0);
		bw_parse_cache_counts(s.cache, &parsed, &reused);
		ASSERT(parsed == 0 && reused == 1 && s.current.n == 1 && find(&s, "a") == a0);
	}

	/* An unreadable directory changes nothing. */
	ASSERT(bw_policy_store_reload(&s, "/nonexistent/bulwark") < 0);
	ASSERT(s.current.n == 1 && find(&s, "a"));

	bw_policy_store_clear(&s);
	rm("a.yaml");
	rmdir(dir);
	return bw_test_summary();
}
