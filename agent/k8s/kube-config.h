/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the Kubernetes API server is and how to authenticate to it: read
 * from a kubeconfig file (the --kubeconfig option) or from the environment
 * of a pod (in-cluster: the service account's projected token and CA).
 *
 * Supported in a kubeconfig: clusters[].cluster.{server,
 * certificate-authority, certificate-authority-data, insecure-skip-tls-verify,
 * proxy-url}, users[].user.{token, tokenFile, client-certificate,
 * client-certificate-data, client-key, client-key-data},
 * contexts[].context.{cluster, user, namespace}, current-context. A user that
 * only has exec or auth-provider credentials, basic auth or impersonation,
 * and a cluster with tls-server-name are rejected with a message rather than
 * ignored (they would end in a 401 or a TLS error that says less).
 *
 * Nothing here is thread-safe in the sense of concurrent writers, but a
 * loaded config is only read afterwards (bw_kube_config_token included), so
 * any number of threads may share one.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The service account directory a pod sees; BULWARK_SA_DIR overrides it
 * (tests). */
#define BW_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define BW_KUBE_SA_DIR_ENV "BULWARK_SA_DIR"

/* Largest kubeconfig, and largest token file, read. */
#define BW_KUBECONFIG_MAX (16u * 1024 * 1024)
#define BW_KUBE_TOKEN_MAX (64u * 1024)

struct bw_kube_config {
	char *server;   /* "https://host:port[/prefix]", no trailing slash */
	char *ca_file;  /* absolute; NULL: none */
	char *ca_data;  /* PEM, decoded from certificate-authority-data; wins over ca_file */
	bool insecure_skip_tls_verify;
	char *token;      /* static bearer token */
	char *token_file; /* reread on every request; wins over token when readable */
	char *client_cert_file, *client_key_file; /* absolute */
	char *client_cert_data, *client_key_data; /* PEM; win over the files */
	char *proxy_url;  /* NULL: the environment's (https_proxy, no_proxy), as kubectl */
	char *namespace;  /* the context's namespace, or the pod's; may be NULL */
	char *source;     /* for messages: "kubeconfig PATH (context C)" or "in-cluster" */
};

/* Frees every field and leaves a zeroed config. */
void bw_kube_config_clear(struct bw_kube_config *c);

/* Deep copy into dst (which is overwritten, not cleared). 0 or -ENOMEM. */
int bw_kube_config_copy(struct bw_kube_config *dst, const struct bw_kube_config *src);

/* Reads a kubeconfig. context NULL uses current-context. Relative file paths
 * are resolved against the kubeconfig's directory (made absolute), and the
 * files named must be readable now. On success c's previous content is
 * replaced and 0 returned; on failure c is untouched, a negative errno is
 * returned (-EINVAL for content, -ENOENT for a context, cluster or user that
 * is not there, the read error otherwise) and *error (when error is not
 * NULL) receives "PATH:LINE:COLUMN: FIELD: reason" or "PATH: FIELD: reason",
 * e.g. "/k/config:12:5: users[0].user.client-certificate-data: invalid
 * base64". */
int bw_kube_config_load_kubeconfig(const char *path, const char *context, struct bw_kube_config *c,
				   char **error);

/* Same from a buffer; path is used in messages and for relative paths. */
int bw_kube_config_load_kubeconfig_buffer(const char *path, const char *buf, size_t len,
					  const char *context, struct bw_kube_config *c, char **error);

/* In a pod: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
 * (an IPv6 address is bracketed), token_file = DIR/token (reread, since
 * projected tokens rotate; it must be readable now), ca_file = DIR/ca.crt
 * (must be readable), namespace from DIR/namespace when present, where DIR
 * is $BULWARK_SA_DIR or BW_KUBE_SA_DIR. Returns 0, -ENOENT when the
 * variables are not set (not in a cluster), or another negative errno; c and
 * *error as above. */
int bw_kube_config_in_cluster(struct bw_kube_config *c, char **error);

/* The bearer token to send now: token_file's content read afresh (surrounding
 * whitespace removed), or token when there is no token_file or it cannot be
 * read or is empty. NULL (errno set: ENOENT for no token at all) when there
 * is none. A token with control characters inside is refused (EINVAL): it
 * would break the header. The caller frees it (explicit_bzero first if it
 * cares). */
char *bw_kube_config_token(const struct bw_kube_config *c);

/* Standard base64 (RFC 4648 section 4, as Go's StdEncoding): whitespace is
 * ignored, padding may be omitted, anything else invalid is -EINVAL. *out is
 * NUL-terminated (not counted in *out_len). 0, -EINVAL or -ENOMEM. */
int bw_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);
