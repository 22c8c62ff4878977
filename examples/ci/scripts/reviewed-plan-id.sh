#!/bin/sh
# Prints the plan id that reviewers approved for the merged commit SHA: the one in the plan
# comment (sticky-comment.sh) of the pull request (merge request) SHA belongs to. The apply job
# passes it to `upkeep apply --plan-id`, which refuses any other plan: a plan that changed after
# review (main moved, a host drifted) is not applied.
#
# Usage: reviewed-plan-id.sh github|gitlab SHA MARKER
# The comment carries the id as "<!-- upkeep-plan-id: ID -->" (see examples/ci/README.md).
set -eu

forge=${1:?usage: reviewed-plan-id.sh github|gitlab SHA MARKER}
sha=${2:?commit}
marker=${3:?marker}
case $sha in *[!0-9a-f]* | '') echo "reviewed-plan-id: $sha is not a commit id" >&2; exit 2 ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case $forge in
  github)
    repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}
    number=$(gh api "repos/$repo/commits/$sha/pulls" --jq '.[0].number // empty')
    [ -n "$number" ] || { echo "reviewed-plan-id: commit $sha belongs to no pull request: nothing was reviewed" >&2; exit 1; }
    gh api --paginate "repos/$repo/issues/$number/comments" --jq "[.[] | select(.body | contains(\"$marker\"))][-1].body // empty" >"$work/comment"
    ;;
  gitlab)
    api=${CI_API_V4_URL:?CI_API_V4_URL is not set}/projects/${CI_PROJECT_ID:?CI_PROJECT_ID is not set}
    printf 'PRIVATE-TOKEN: %s\n' "${GITLAB_API_TOKEN:?GITLAB_API_TOKEN is not set}" >"$work/headers"
    curl -fsS -H "@$work/headers" "$api/repository/commits/$sha/merge_requests" >"$work/mrs.json"
    number=$(node -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); if (m[0]) console.log(m[0].iid);' "$work/mrs.json")
    [ -n "$number" ] || { echo "reviewed-plan-id: commit $sha belongs to no merge request: nothing was reviewed" >&2; exit 1; }
    curl -fsS -H "@$work/headers" "$api/merge_requests/$number/notes?per_page=100&sort=asc" >"$work/notes.json"
    MARKER=$marker node -e 'const n = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).filter((x) => x.body.includes(process.env.MARKER)).pop(); if (n) process.stdout.write(n.body);' "$work/notes.json" >"$work/comment"
    ;;
  *)
    echo "reviewed-plan-id: unknown forge $forge (github or gitlab)" >&2
    exit 2
    ;;
esac

id=$(sed -n 's/^<!-- upkeep-plan-id: \([0-9a-f]\{64\}\) -->$/\1/p' "$work/comment" | head -n 1)
[ -n "$id" ] || { echo "reviewed-plan-id: pull request $number has no plan comment with a plan id: nothing was reviewed" >&2; exit 1; }
echo "$id"
