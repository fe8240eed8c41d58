#!/bin/sh
# The HTML report in a real browser (headless Chromium): it must load with
# no console error, every picture must have drawn something, and a
# screenshot must come out. The page itself has no script; this test
# inserts a small checker into a copy of it. Skips (77) without chromium.
# usage: report_browser.sh MSGRSIM SCENARIO.scn
set -eu
msgrsim=$1
scn=$2
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium not installed: skipped"; exit 77; }
tmp=$(mktemp -d /tmp/msgrsim-browser-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$msgrsim" run --quiet --trace "$tmp/t.db" "$scn" >/dev/null
"$msgrsim" report "$tmp/t.db" -o "$tmp/r" >/dev/null

cat > "$tmp/check.js" <<'JS'
<script>
window.__errs = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  __errs.push('error: ' + (e.message || (t && (t.src || t.href)) || '?'));
}, true);
(function () {
  var orig = console.error;
  console.error = function () {
    __errs.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    orig.apply(console, arguments);
  };
})();
window.addEventListener('load', function () {
  var bad = [];
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  var svgs = document.querySelectorAll('body svg');
  svgs.forEach(function (s, i) {
    if (s.parentElement.closest('svg')) return;
    var r = s.getBoundingClientRect();
    if (r.width < 50 || r.height < 50) bad.push('svg ' + i + ' has no size');
    if (!s.querySelector('path,polygon,polyline,rect,line,ellipse,text'))
      bad.push('svg ' + i + ' draws nothing');
  });
  document.querySelectorAll('img').forEach(function (im) {
    if (!im.complete || im.naturalWidth === 0) bad.push('broken image ' + im.src);
  });
  var out = document.createElement('pre');
  out.id = 'report-check';
  var all = bad.concat(__errs);
  out.textContent = all.length ? 'report-check: FAIL ' + all.join('; ')
                               : 'report-check: ok ' + svgs.length + ' svg';
  document.body.appendChild(out);
});
</script>
JS
# the checker goes first in <head>, so it sees every later error
sed -e '/<head>/r '"$tmp/check.js" "$tmp/r/index.html" > "$tmp/r/checked.html"

flags="--headless --no-sandbox --disable-gpu --no-first-run
       --disable-dev-shm-usage --user-data-dir=$tmp/profile
       --virtual-time-budget=5000"
# shellcheck disable=SC2086
timeout 120 "$browser" $flags --enable-logging=stderr --v=0 --dump-dom \
    "file://$tmp/r/checked.html" > "$tmp/dom.html" 2> "$tmp/log.txt" || {
    echo "chromium failed:"; tail -20 "$tmp/log.txt"; exit 1; }
# the result element, not the script's own text
check=$(grep -o '<pre id="report-check">[^<]*' "$tmp/dom.html" |
        sed 's/^<pre id="report-check">//' || true)
echo "$check"
case "$check" in
"report-check: ok "*) ;;
*) echo "the page did not pass its check"; tail -20 "$tmp/log.txt"; exit 1 ;;
esac
if grep -E 'CONSOLE\([0-9]+\)\] "(Uncaught|Error)' "$tmp/log.txt"; then
    echo "console errors above"; exit 1
fi

# shellcheck disable=SC2086
timeout 120 "$browser" $flags --screenshot="$tmp/shot.png" \
    --window-size=1280,2400 "file://$tmp/r/index.html" \
    >/dev/null 2>> "$tmp/log.txt" || {
    echo "screenshot failed:"; tail -20 "$tmp/log.txt"; exit 1; }
size=$(wc -c < "$tmp/shot.png")
[ "$size" -gt 20000 ] || { echo "screenshot too small ($size bytes)"; exit 1; }
echo "report_browser: ok (screenshot $size bytes)"
