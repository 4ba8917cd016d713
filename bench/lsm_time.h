/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared by bench/lsm_time.bpf.c and bulwark-bench: the hooks timed and
 * what is counted for each (per CPU; user space sums). */
#pragma once

enum {
	LSM_TIME_FILE_OPEN,
	LSM_TIME_BPRM_CREDS_FOR_EXEC,
	LSM_TIME_BPRM_CHECK,
	LSM_TIME_SOCKET_CONNECT,
	LSM_TIME_HOOKS,
};

struct lsm_time {
	__u64 calls;
	__u64 ns;
};
