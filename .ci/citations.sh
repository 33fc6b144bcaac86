#!/usr/bin/env bash
# Every citation names a primary source or a page of docs/: a citation of a
# file that is not in the repository (the team's reading digests) fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if git grep -nE '(roce|ndk-semantics|ndkpi-abi|windows-driver)\.md|DESIGN\.md|shared/spec' -- . ':!.ci/citations.sh'; then
  echo "citations: FAIL: the lines above cite a file that is not in the repository" >&2
  exit 1
fi
for d in $(git grep -ohE 'docs/[a-z0-9_-]+\.md' -- . | sort -u); do
  [ -f "$d" ] || { echo "citations: FAIL: $d is cited but does not exist" >&2; exit 1; }
done
echo "citations: every cited docs/ page exists; no citation of a file outside the repository"
