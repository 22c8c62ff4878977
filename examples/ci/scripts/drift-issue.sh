#!/bin/sh
# Opens an issue when `upkeep plan --live` found drift (files changed on hosts behind upkeep's
# back: plan.md has a "## Drift" section), or comments on the one already open for this fleet.
# Prints nothing and exits 0 when there is no drift.
#
# Usage: drift-issue.sh github|gitlab FLEET PLAN_DIR
#   github: gh (GH_TOKEN, GITHUB_REPOSITORY); gitlab: curl (GITLAB_API_TOKEN, CI_API_V4_URL,
#   CI_PROJECT_ID). The issue's body is PLAN_DIR/plan.md, cut to 65,000 characters.
set -eu

forge=${1:?usage: drift-issue.sh github|gitlab FLEET PLAN_DIR}
fleet=${2:?fleet name}
plan=${3:?plan directory}
case $fleet in *[!A-Za-z0-9._-]* | '') echo "drift-issue: $fleet is not a fleet name" >&2; exit 2 ;; esac

grep -q '^## Drift$' "$plan/plan.md" || exit 0

title="upkeep: drift on fleet $fleet"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 65000 "$plan/plan.md" >"$work/body.md"

case $forge in
  github)
    number=$(gh issue list --state open --search "\"$title\" in:title" --json number,title --jq "[.[] | select(.title == \"$title\")][0].number // empty")
    if [ -n "$number" ]; then
      gh issue comment "$number" --body-file "$work/body.md"
    else
      gh issue create --title "$title" --body-file "$work/body.md"
    fi
    ;;
  gitlab)
    api=${CI_API_V4_URL:?CI_API_V4_URL is not set}/projects/${CI_PROJECT_ID:?CI_PROJECT_ID is not set}
    printf 'PRIVATE-TOKEN: %s\nContent-Type: application/json\n' "${GITLAB_API_TOKEN:?GITLAB_API_TOKEN is not set}" >"$work/headers"
    curl -fsS -G -H "@$work/headers" --data-urlencode state=opened --data-urlencode in=title --data-urlencode "search=$title" "$api/issues" >"$work/issues.json"
    number=$(TITLE=$title node -e 'const i = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).find((x) => x.title === process.env.TITLE); if (i) console.log(i.iid);' "$work/issues.json")
    if [ -n "$number" ]; then
      node -e 'console.log(JSON.stringify({ body: require("fs").readFileSync(process.argv[1], "utf8") }))' "$work/body.md" >"$work/body.json"
      curl -fsS -X POST -H "@$work/headers" --data-binary "@$work/body.json" -o /dev/null "$api/issues/$number/notes"
    else
      TITLE=$title node -e 'console.log(JSON.stringify({ title: process.env.TITLE, description: require("fs").readFileSync(process.argv[1], "utf8") }))' "$work/body.md" >"$work/body.json"
      curl -fsS -X POST -H "@$work/headers" --data-binary "@$work/body.json" -o /dev/null "$api/issues"
    fi
    ;;
  *)
    echo "drift-issue: unknown forge $forge (github or gitlab)" >&2
    exit 2
    ;;
esac
