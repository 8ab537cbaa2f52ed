// Renders every LaTeX string in a JSON array with KaTeX (display mode, errors thrown).
// Usage: node check.js strings.json. Prints each failure and exits 1 if any.
const fs = require("fs");
const katex = require("katex");

const items = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const { name, tex } of items) {
  try {
    // Whole documents expand more macros than KaTeX allows by default (1000); LaTeX has no
    // such limit, so raise it rather than split the documents.
    katex.renderToString(tex, { displayMode: true, throwOnError: true, strict: "error", maxExpand: 1e6 });
  } catch (e) {
    failed += 1;
    console.log(`${name}: ${e.message}`);
  }
}
console.log(`${items.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
