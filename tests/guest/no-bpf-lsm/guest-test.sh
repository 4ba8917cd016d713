#!/bin/sh
# Never reached: /init stops before it when the BPF LSM is missing.
echo "BULWARK-TEST: FAIL the guest ran its tests without the BPF LSM"
exit 1
