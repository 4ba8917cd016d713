/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policies in force. A reload replaces them with what the directory says
 * now, except that a document which fails to parse never takes away what was
 * enforced: the last good version of that policy (found by kind, namespace
 * and name when the bad document still says them, else by its file) stays.
 * Deleting a file or a document is how a policy is removed.
 */
#pragma once

#include "policy.h"

struct bw_policy_store {
	struct bw_policy_list current;
	struct bw_diags rejected; /* of the last reload */
	size_t kept;              /* last good versions kept by the last reload */
	struct bw_parse_cache *cache; /* files unchanged since they were parsed are not read again */
};

/* Returns 0, or a negative errno when dir cannot be read (nothing changes). */
int bw_policy_store_reload(struct bw_policy_store *s, const char *dir);
void bw_policy_store_clear(struct bw_policy_store *s);
/* The next reload reads every file again (SIGHUP). */
void bw_policy_store_forget_files(struct bw_policy_store *s);
