#!/bin/sh
# commit-host-keys.sh FILE BRANCH: commits FILE (upkeep-host-keys.json) to BRANCH of the origin
# when bin/apply changed it, so the next pipeline's clean checkout still knows the keys it rotated
# provisioned hosts to. Without it that run would find every such host presenting a key nothing
# pins, and refuse it (never trust on first use): the pipeline would stop after its first apply.
#
# It runs after every apply, failed ones included: a run can rotate keys and fail later. The
# commit says "[skip ci]", so pushing it starts no pipeline (it carries no reviewed plan). Pushed
# over the checkout's own credentials; when BRANCH moved meanwhile, it is rebased and pushed again.
set -eu

file=${1:?usage: commit-host-keys.sh FILE BRANCH}
branch=${2:?usage: commit-host-keys.sh FILE BRANCH}
case $branch in
-* | *[!A-Za-z0-9._/-]*) echo "commit-host-keys.sh: not a branch name: $branch" >&2 && exit 2 ;;
esac

if [ ! -f "$file" ]; then
	echo "$file: not written by bin/apply (no provisioned host had its key rotated): nothing to commit"
	exit 0
fi
if [ -z "$(git status --porcelain -- "$file")" ]; then
	echo "$file: unchanged"
	exit 0
fi

git add -- "$file"
git -c user.name=upkeep-ci -c user.email=upkeep-ci@invalid commit --quiet -m "upkeep: host keys rotated by bin/apply [skip ci]" -- "$file"
for attempt in 1 2 3; do
	if git push --quiet origin "HEAD:refs/heads/$branch"; then
		echo "$file: committed to $branch"
		exit 0
	fi
	[ "$attempt" = 3 ] && break
	# Another commit landed on the branch meanwhile: replay ours on top of it.
	git fetch --quiet origin "$branch"
	if ! git -c user.name=upkeep-ci -c user.email=upkeep-ci@invalid rebase --quiet FETCH_HEAD; then
		git rebase --abort
		break
	fi
done
echo "commit-host-keys.sh: could not push $file to $branch; commit it by hand before the next apply, or that run refuses the rotated hosts" >&2
exit 1
