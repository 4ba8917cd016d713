/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes label selectors (metav1.LabelSelector) evaluated against a label
 * set, with exactly the semantics of k8s.io/apimachinery/pkg/labels so that a
 * policy selects the same pods here as `kubectl get pods -l ...` would.
 */
#pragma once

#include <stdbool.h>

#include "policy.h"

/* Returns the value of key in l, or NULL when l has no such key. A NULL l is
 * an empty label set. Label sets are maps: if a key were present twice, the
 * first occurrence wins. */
const char *bw_labels_get(const struct bw_labels *l, const char *key);

/* True when sel has neither matchLabels nor matchExpressions (or is NULL). */
bool bw_selector_is_empty(const struct bw_selector *sel);

/* True when labels satisfy every matchLabels entry AND every
 * matchExpressions term:
 *   In            key present and its value is one of values
 *   NotIn         key absent, or its value is none of values
 *   Exists        key present (values ignored)
 *   DoesNotExist  key absent (values ignored)
 * An empty (or NULL) selector matches everything; NULL labels are an empty
 * label set. */
bool bw_selector_matches(const struct bw_selector *sel, const struct bw_labels *labels);
