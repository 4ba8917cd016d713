/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GnuTLS, loaded when the agent first talks to a cluster (dlopen), not
 * linked: linked, its constructor and the libraries it brings (nettle, gmp,
 * p11-kit, libtasn1, libidn2) cost 2.6 MiB of resident memory in every
 * process, measured, on a node that enforces only local policy files.
 * systemd loads its optional libraries the same way.
 *
 * The calls in http-client.c keep GnuTLS's names: after this header they go
 * through the table below. Only http-client.c includes it (it is the one
 * file that calls GnuTLS); bw_gnutls_load() must have succeeded first.
 */
#pragma once

#include <gnutls/gnutls.h>

/* The name bulwarkd loads: Debian's libgnutls30 (GnuTLS 3.7). */
#define BW_GNUTLS_SONAME "libgnutls.so.30"

#define BW_GNUTLS_SYMBOLS(X)                                                                       \
	X(gnutls_alert_get)                                                                        \
	X(gnutls_alert_get_name)                                                                   \
	X(gnutls_certificate_allocate_credentials)                                                 \
	X(gnutls_certificate_free_credentials)                                                     \
	X(gnutls_certificate_set_x509_key_file2)                                                   \
	X(gnutls_certificate_set_x509_key_mem2)                                                    \
	X(gnutls_certificate_set_x509_system_trust)                                                \
	X(gnutls_certificate_set_x509_trust_file)                                                  \
	X(gnutls_certificate_set_x509_trust_mem)                                                   \
	X(gnutls_certificate_verification_status_print)                                            \
	X(gnutls_check_version)                                                                    \
	X(gnutls_credentials_set)                                                                  \
	X(gnutls_deinit)                                                                           \
	X(gnutls_handshake)                                                                        \
	X(gnutls_handshake_set_timeout)                                                            \
	X(gnutls_init)                                                                             \
	X(gnutls_record_check_pending)                                                             \
	X(gnutls_record_get_direction)                                                             \
	X(gnutls_record_recv)                                                                      \
	X(gnutls_record_send)                                                                      \
	X(gnutls_server_name_set)                                                                  \
	X(gnutls_session_get_verify_cert_status)                                                   \
	X(gnutls_session_set_verify_cert)                                                          \
	X(gnutls_set_default_priority)                                                             \
	X(gnutls_strerror)                                                                         \
	X(gnutls_transport_set_int2)

/* Each entry has the type of GnuTLS's own declaration. gnutls_free is a
 * variable (a function pointer GnuTLS sets), so it is looked up apart. */
struct bw_gnutls_table {
#define BW_GNUTLS_MEMBER(name) __typeof__(name) *sym_##name;
	BW_GNUTLS_SYMBOLS(BW_GNUTLS_MEMBER)
#undef BW_GNUTLS_MEMBER
	gnutls_free_function *sym_gnutls_free;
};

extern struct bw_gnutls_table bw_gnutls;

/* Loads GnuTLS (3.7 or later) and resolves every symbol above, once
 * (thread-safe). Returns 0, or -ELIBACC with *why (static text) saying
 * which library or symbol is missing. */
int bw_gnutls_load(const char **why);

#ifndef BW_GNUTLS_TABLE_DEFINITION
#define gnutls_alert_get (*bw_gnutls.sym_gnutls_alert_get)
#define gnutls_alert_get_name (*bw_gnutls.sym_gnutls_alert_get_name)
#define gnutls_certificate_allocate_credentials (*bw_gnutls.sym_gnutls_certificate_allocate_credentials)
#define gnutls_certificate_free_credentials (*bw_gnutls.sym_gnutls_certificate_free_credentials)
#define gnutls_certificate_set_x509_key_file2 (*bw_gnutls.sym_gnutls_certificate_set_x509_key_file2)
#define gnutls_certificate_set_x509_key_mem2 (*bw_gnutls.sym_gnutls_certificate_set_x509_key_mem2)
#define gnutls_certificate_set_x509_system_trust (*bw_gnutls.sym_gnutls_certificate_set_x509_system_trust)
#define gnutls_certificate_set_x509_trust_file (*bw_gnutls.sym_gnutls_certificate_set_x509_trust_file)
#define gnutls_certificate_set_x509_trust_mem (*bw_gnutls.sym_gnutls_certificate_set_x509_trust_mem)
#define gnutls_certificate_verification_status_print                                               \
	(*bw_gnutls.sym_gnutls_certificate_verification_status_print)
#define gnutls_check_version (*bw_gnutls.sym_gnutls_check_version)
#define gnutls_credentials_set (*bw_gnutls.sym_gnutls_credentials_set)
#define gnutls_deinit (*bw_gnutls.sym_gnutls_deinit)
#define gnutls_handshake (*bw_gnutls.sym_gnutls_handshake)
#define gnutls_handshake_set_timeout (*bw_gnutls.sym_gnutls_handshake_set_timeout)
#define gnutls_init (*bw_gnutls.sym_gnutls_init)
#define gnutls_record_check_pending (*bw_gnutls.sym_gnutls_record_check_pending)
#define gnutls_record_get_direction (*bw_gnutls.sym_gnutls_record_get_direction)
#define gnutls_record_recv (*bw_gnutls.sym_gnutls_record_recv)
#define gnutls_record_send (*bw_gnutls.sym_gnutls_record_send)
#define gnutls_server_name_set (*bw_gnutls.sym_gnutls_server_name_set)
#define gnutls_session_get_verify_cert_status (*bw_gnutls.sym_gnutls_session_get_verify_cert_status)
#define gnutls_session_set_verify_cert (*bw_gnutls.sym_gnutls_session_set_verify_cert)
#define gnutls_set_default_priority (*bw_gnutls.sym_gnutls_set_default_priority)
#define gnutls_strerror (*bw_gnutls.sym_gnutls_strerror)
#define gnutls_transport_set_int2 (*bw_gnutls.sym_gnutls_transport_set_int2)
#undef gnutls_free
#define gnutls_free(p) ((*bw_gnutls.sym_gnutls_free)(p))
#endif
