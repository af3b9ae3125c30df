#!/usr/bin/env bash
# Run a small profile of the pipeline on BASE and on the checked-out commit, as two DVC
# experiments, and write a Markdown comment comparing them.
#
#   usage: bash .github/pr-report.sh BASE_REV OUTPUT.md
#
# Needs `python`, `vaelab` and `dvc` from the project's environment on PATH (the workflow runs it
# under `uv run`). VAELAB_PROFILE picks the profile (default: small); VAELAB_MIRROR is
# honoured as by every stage.
set -euo pipefail

base_rev=$1
output=$2
profile=${VAELAB_PROFILE:-small}
head_rev=$(git rev-parse HEAD)
base_name="base-${profile}-$(git rev-parse --short "$base_rev")"
head_name="head-${profile}-$(git rev-parse --short "$head_rev")"

summaries=$(mktemp -d)
trap 'rm -rf "$summaries"' EXIT

run_profile() {  # REV EXPERIMENT_NAME
  git checkout --quiet --detach "$1"
  if [ -f src/vaelab/tools/command.py ]; then
    vaelab profile "$profile"
  else  # a base from before the vaelab command
    python -m vaelab.tools.profiles "$profile"
  fi
  dvc exp run --name "$2"
  cp reports/summary.md "$summaries/$2.md"
  git reset --quiet --hard  # drop the profile's params edit; the results live in the exp ref
}

run_profile "$base_rev" "$base_name"
run_profile "$head_rev" "$head_name"
git checkout --quiet --detach "$head_rev"

{
  echo "## The change still runs end to end: the \`$profile\` profile rerun against $(git rev-parse --short "$base_rev")"
  echo
  echo "Apart from the committed results above: both sides ran the \`$profile\` profile (\`vaelab profile $profile\`): small"
  echo "data subsets and few epochs, so compare the two columns with each other, not with the"
  echo "references' published figures."
  echo
  echo "### Changed params and metrics"
  echo
  dvc exp diff "$base_name" "$head_name" --md
  echo
  echo "### Summary of this change's run"
  echo
  sed -n '/^| experiment/,/^$/p' "$summaries/$head_name.md"
} > "$output"
echo "wrote $output"
