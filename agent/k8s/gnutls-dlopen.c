/* SPDX-License-Identifier: Apache-2.0 */
/* GnuTLS loaded on first use: see gnutls-dlopen.h. */
#define BW_GNUTLS_TABLE_DEFINITION
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

#include "gnutls-dlopen.h"

struct bw_gnutls_table bw_gnutls;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const char *load_error;
static char load_error_text[512]; /* dlerror()'s text is overwritten by its next call */

static void load(void)
{
	/* Never closed: GnuTLS's global state lives as long as the agent. */
	void *h = dlopen(BW_GNUTLS_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		goto fail;
#define BW_GNUTLS_RESOLVE(name)                                                 \
	if (!(bw_gnutls.sym_##name = (__typeof__(name) *)dlsym(h, #name)))       \
		goto fail;
	BW_GNUTLS_SYMBOLS(BW_GNUTLS_RESOLVE)
#undef BW_GNUTLS_RESOLVE
	if (!(bw_gnutls.sym_gnutls_free = dlsym(h, "gnutls_free")))
		goto fail;
	/* gnutls_session_set_verify_cert() and the defaults this client relies
	 * on (TLS 1.3, no SSL 3) are 3.7's. */
	if (!bw_gnutls.sym_gnutls_check_version("3.7.0")) {
		snprintf(load_error_text, sizeof(load_error_text), "%s is older than GnuTLS 3.7",
			 BW_GNUTLS_SONAME);
		load_error = load_error_text;
	}
	return;
fail:
	snprintf(load_error_text, sizeof(load_error_text), "%s", dlerror());
	load_error = load_error_text;
}

int bw_gnutls_load(const char **why)
{
	pthread_once(&load_once, load);
	if (load_error) {
		if (why)
			*why = load_error;
		return -ELIBACC;
	}
	return 0;
}
