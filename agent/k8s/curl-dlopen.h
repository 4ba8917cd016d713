/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl, loaded when the agent first talks to a cluster (dlopen), not
 * linked: on a node that enforces only local policy files, libcurl and its
 * TLS, Kerberos and LDAP libraries would be ~5 MiB of bulwarkd's resident
 * memory for nothing (bench/ footprint). systemd loads its optional
 * libraries the same way.
 *
 * The calls in kube-client.c keep libcurl's names: after this header they
 * go through the table below. Only kube-client.c includes it (it is the one
 * file that calls libcurl); bw_curl_load() must have succeeded first.
 */
#pragma once

#include <curl/curl.h>

/* The name bulwarkd loads (Debian's libcurl4, the OpenSSL build that
 * libcurl4-openssl-dev links against). */
#define BW_CURL_SONAME "libcurl.so.4"

#define BW_CURL_SYMBOLS(X)                                                                \
	X(curl_easy_cleanup)                                                              \
	X(curl_easy_getinfo)                                                              \
	X(curl_easy_init)                                                                 \
	X(curl_easy_setopt)                                                               \
	X(curl_easy_strerror)                                                             \
	X(curl_global_init)                                                               \
	X(curl_multi_add_handle)                                                          \
	X(curl_multi_cleanup)                                                             \
	X(curl_multi_info_read)                                                           \
	X(curl_multi_init)                                                                \
	X(curl_multi_perform)                                                             \
	X(curl_multi_poll)                                                                \
	X(curl_multi_remove_handle)                                                       \
	X(curl_multi_wakeup)                                                              \
	X(curl_slist_append)                                                              \
	X(curl_slist_free_all)

/* Each entry has the type of libcurl's own declaration. */
struct bw_curl_table {
#define BW_CURL_MEMBER(name) __typeof__(name) *sym_##name;
	BW_CURL_SYMBOLS(BW_CURL_MEMBER)
#undef BW_CURL_MEMBER
};

extern struct bw_curl_table bw_curl;

/* Loads libcurl and resolves every symbol above, once (thread-safe).
 * Returns 0, or -ELIBACC with *why (static text from dlerror, valid until
 * the next call) saying which library or symbol is missing. */
int bw_curl_load(const char **why);

#ifndef BW_CURL_TABLE_DEFINITION
/* libcurl's typecheck-gcc.h wraps setopt/getinfo in checking macros that
 * call the functions by name: those checks are lost here. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_cleanup (*bw_curl.sym_curl_easy_cleanup)
#define curl_easy_getinfo (*bw_curl.sym_curl_easy_getinfo)
#define curl_easy_init (*bw_curl.sym_curl_easy_init)
#define curl_easy_setopt (*bw_curl.sym_curl_easy_setopt)
#define curl_easy_strerror (*bw_curl.sym_curl_easy_strerror)
#define curl_global_init (*bw_curl.sym_curl_global_init)
#define curl_multi_add_handle (*bw_curl.sym_curl_multi_add_handle)
#define curl_multi_cleanup (*bw_curl.sym_curl_multi_cleanup)
#define curl_multi_info_read (*bw_curl.sym_curl_multi_info_read)
#define curl_multi_init (*bw_curl.sym_curl_multi_init)
#define curl_multi_perform (*bw_curl.sym_curl_multi_perform)
#define curl_multi_poll (*bw_curl.sym_curl_multi_poll)
#define curl_multi_remove_handle (*bw_curl.sym_curl_multi_remove_handle)
#define curl_multi_wakeup (*bw_curl.sym_curl_multi_wakeup)
#define curl_slist_append (*bw_curl.sym_curl_slist_append)
#define curl_slist_free_all (*bw_curl.sym_curl_slist_free_all)
#endif
