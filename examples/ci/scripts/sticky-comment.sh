#!/bin/sh
# Posts FILE as the pull request's (merge request's) plan comment, or updates the comment this
# script posted before: the one holding MARKER, a hidden HTML comment naming the fleet. So a pull
# request has one plan comment per fleet, kept current, instead of one per push.
#
# Usage: sticky-comment.sh github|gitlab NUMBER MARKER FILE
#   github: gh (GH_TOKEN, GITHUB_REPOSITORY as in GitHub Actions)
#   gitlab: curl (GITLAB_API_TOKEN, a project access token with api scope; CI_API_V4_URL,
#           CI_PROJECT_ID as in GitLab CI)
# The comment is FILE cut to 65,000 characters (GitHub refuses more than 65,536) with MARKER on
# its first line.
set -eu

forge=${1:?usage: sticky-comment.sh github|gitlab NUMBER MARKER FILE}
number=${2:?PR or MR number}
marker=${3:?marker}
file=${4:?comment file}
case $number in *[!0-9]*) echo "sticky-comment: $number is not a pull request number" >&2; exit 2 ;; esac
case $marker in '<!-- '*' -->') ;; *) echo "sticky-comment: the marker must be an HTML comment: <!-- ... -->" >&2; exit 2 ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
body=$work/body.md
{
  printf '%s\n' "$marker"
  head -c 65000 "$file"
  if [ "$(wc -c <"$file")" -gt 65000 ]; then
    printf '\n\n**Cut to fit a comment:** the whole plan is in the job'"'"'s artifacts.\n'
  fi
} >"$body"

case $forge in
  github)
    repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}
    # The marker is plain text inside the body: jq's contains() needs no escaping of it.
    id=$(gh api --paginate "repos/$repo/issues/$number/comments" --jq "[.[] | select(.body | contains(\"$marker\"))][0].id // empty")
    if [ -n "$id" ]; then
      gh api --method PATCH "repos/$repo/issues/comments/$id" -F "body=@$body" --jq .html_url
    else
      gh api --method POST "repos/$repo/issues/$number/comments" -F "body=@$body" --jq .html_url
    fi
    ;;
  gitlab)
    api=${CI_API_V4_URL:?CI_API_V4_URL is not set}/projects/${CI_PROJECT_ID:?CI_PROJECT_ID is not set}
    # The token goes in a header file, never on a command line.
    printf 'PRIVATE-TOKEN: %s\nContent-Type: application/json\n' "${GITLAB_API_TOKEN:?GITLAB_API_TOKEN is not set}" >"$work/headers"
    curl -fsS -H "@$work/headers" "$api/merge_requests/$number/notes?per_page=100&sort=asc" >"$work/notes.json"
    id=$(MARKER=$marker node -e 'const notes = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const n = notes.find((x) => x.body.includes(process.env.MARKER)); if (n) console.log(n.id);' "$work/notes.json")
    node -e 'console.log(JSON.stringify({ body: require("fs").readFileSync(process.argv[1], "utf8") }))' "$body" >"$work/body.json"
    if [ -n "$id" ]; then
      curl -fsS -X PUT -H "@$work/headers" --data-binary "@$work/body.json" -o /dev/null "$api/merge_requests/$number/notes/$id"
    else
      curl -fsS -X POST -H "@$work/headers" --data-binary "@$work/body.json" -o /dev/null "$api/merge_requests/$number/notes"
    fi
    ;;
  *)
    echo "sticky-comment: unknown forge $forge (github or gitlab)" >&2
    exit 2
    ;;
esac
