/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl loaded on first use: see curl-dlopen.h. */
#define BW_CURL_TABLE_DEFINITION
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

#include "curl-dlopen.h"

struct bw_curl_table bw_curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const char *load_error;
static char load_error_text[512]; /* dlerror()'s text is overwritten by its next call */

static void load(void)
{
	/* Never closed: libcurl's global state lives as long as the agent. */
	void *h = dlopen(BW_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		goto fail;
#define BW_CURL_RESOLVE(name)                                                   \
	if (!(bw_curl.sym_##name = (__typeof__(name) *)dlsym(h, #name)))         \
		goto fail;
	BW_CURL_SYMBOLS(BW_CURL_RESOLVE)
#undef BW_CURL_RESOLVE
	return;
fail:
	snprintf(load_error_text, sizeof(load_error_text), "%s", dlerror());
	load_error = load_error_text;
}

int bw_curl_load(const char **why)
{
	pthread_once(&load_once, load);
	if (load_error) {
		if (why)
			*why = load_error;
		return -ELIBACC;
	}
	return 0;
}
