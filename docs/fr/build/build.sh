#!/usr/bin/env bash
# `make docs`: renders every French deliverable (docs/fr/*.md) to HTML and PDF in docs/fr/_build/.
#   1. diagrams: docs/fr/diagrams/*.mmd -> .svg (mermaid-cli, system Chromium), committed beside their source;
#   2. documents: pandoc (Debian) -> standalone HTML with docs/fr/build/style.css, then Chromium --print-to-pdf;
#   3. slides: presentation.md -> HTML and PDF with Marp (marp-cli, system Chromium).
# The npm tools are installed from package-lock.json into docs/fr/build/node_modules (git-ignored), never a
# browser download (PUPPETEER_SKIP_DOWNLOAD, --ignore-scripts). Each step prints its duration.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
FR="$ROOT/docs/fr"
BUILD="$FR/build"
OUT="$FR/_build"
CHROMIUM="${COCKPIT_CHROMIUM:-/usr/bin/chromium}"
DOCS=(cadrage architecture pilotage guide-ci-cd procedures-incidents documentation-technique)

say() { printf '\033[1;34m[docs]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[docs] error:\033[0m %s\n' "$*" >&2; exit 1; }
t0=$SECONDS
step_start=$SECONDS
step() { say "$1: done in $((SECONDS - step_start)) s"; step_start=$SECONDS; }

command -v pandoc >/dev/null || die "pandoc is missing (Debian package 'pandoc'; bash deploy/local/setup.sh --docs installs it)"
command -v npm >/dev/null || die "npm is missing (Debian packages 'nodejs npm'; bash deploy/local/setup.sh --docs installs them)"
[[ -x "$CHROMIUM" ]] || die "Chromium not found at $CHROMIUM (Debian package 'chromium'; set COCKPIT_CHROMIUM to another path)"

export PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=1 PUPPETEER_EXECUTABLE_PATH="$CHROMIUM"
export CHROME_PATH="$CHROMIUM" CHROME_NO_SANDBOX=1

# npm tools, reinstalled only when package-lock.json changes
stamp="$BUILD/node_modules/.installed-$(sha256sum "$BUILD/package-lock.json" | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  say "installing mermaid-cli and marp-cli from package-lock.json into docs/fr/build/node_modules (no browser download)"
  (cd "$BUILD" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  rm -f "$BUILD"/node_modules/.installed-*; touch "$stamp"
fi
step "npm tools"

mkdir -p "$OUT"
# 1. diagrams (re-rendered when the .mmd is newer than its .svg)
for src in "$FR"/diagrams/*.mmd; do
  svg="${src%.mmd}.svg"
  if [[ ! -f "$svg" || "$src" -nt "$svg" || "$BUILD/mermaid-config.json" -nt "$svg" ]]; then
    "$BUILD/node_modules/.bin/mmdc" --quiet -p "$BUILD/puppeteer-config.json" -c "$BUILD/mermaid-config.json" \
      -b white -i "$src" -o "$svg"
  fi
done
step "diagrams ($(ls "$FR"/diagrams/*.mmd | wc -l) Mermaid sources)"

# 2. documents: HTML (images embedded), then PDF
print_pdf() {  # html pdf
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-pdf-header-footer --run-all-compositor-stages-before-draw \
    --virtual-time-budget=5000 --print-to-pdf="$2" "file://$1" >/dev/null 2>&1 || die "Chromium could not print $1"
  [[ -s "$2" ]] || die "Chromium wrote no PDF for $1"
}
for name in "${DOCS[@]}"; do
  pandoc "$FR/$name.md" -f markdown+gfm_auto_identifiers-implicit_figures -t html5 --standalone --self-contained \
    --toc --toc-depth=2 --shift-heading-level-by=-1 --resource-path="$FR" --css "$BUILD/style.css" \
    --lua-filter "$BUILD/links.lua" --metadata lang=fr -o "$OUT/$name.html"
  print_pdf "$OUT/$name.html" "$OUT/$name.pdf"
done
step "documents (${#DOCS[@]} x HTML + PDF, pandoc $(pandoc --version | head -1 | cut -d' ' -f2))"

# 3. slides (the HTML reads the images beside it)
mkdir -p "$OUT/images" "$OUT/diagrams"
cp "$FR"/images/*.png "$OUT/images/"; cp "$FR"/diagrams/*.svg "$OUT/diagrams/"
(cd "$FR" && "$BUILD/node_modules/.bin/marp" --no-config-file --quiet --html --allow-local-files \
  presentation.md -o "$OUT/presentation.html" \
  && "$BUILD/node_modules/.bin/marp" --no-config-file --quiet --html --allow-local-files --pdf \
  presentation.md -o "$OUT/presentation.pdf") || die "Marp could not render presentation.md"
step "slides (Marp HTML + PDF)"

say "docs/fr/_build: $(ls "$OUT"/*.html | wc -l) HTML, $(ls "$OUT"/*.pdf | wc -l) PDF in $((SECONDS - t0)) s"
