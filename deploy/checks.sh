# SPDX-License-Identifier: Apache-2.0
#
# The TAP-like reporting the deployment tests share (deploy/docker/test.sh,
# deploy/compose/test.sh); sourced, not run. Each check prints "ok - ..." or "not ok - ...";
# summary prints the "N passed, N failed" line tests/run.sh reads and fails if a check failed.

passed=0
failed=0

ok() {
	passed=$((passed + 1))
	echo "ok - $*"
}
not_ok() {
	failed=$((failed + 1))
	echo "not ok - $*"
}
check() { # DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
note() { echo "# $*"; }
# wait_for SECONDS COMMAND...: runs COMMAND every $WAIT_STEP seconds (default 1) until it
# succeeds; fails at the deadline.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep "${WAIT_STEP:-1}"
	done
}
summary() {
	echo "$passed passed, $failed failed"
	[ $failed = 0 ]
}
