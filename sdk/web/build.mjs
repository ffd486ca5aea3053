// Builds dist/: an ES module for bundlers and a single script (global
// `IdentityCapture`) for a plain <script> tag. Type declarations come from
// `tsc` (npm run build runs it first). No runtime dependencies.
import { build } from "esbuild";
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const common = {
  entryPoints: ["src/index.ts"],
  bundle: true,
  minify: true,
  sourcemap: true,
  target: ["es2022", "chrome100", "safari16", "firefox110"],
  legalComments: "none",
  logLevel: "warning",
};

await build({ ...common, format: "esm", outfile: "dist/identity-capture.js" });
await build({
  ...common,
  format: "iife",
  globalName: "IdentityCapture",
  outfile: "dist/identity-capture.iife.js",
});

const sizes = {};
for (const file of ["identity-capture.js", "identity-capture.iife.js"]) {
  const data = readFileSync(`dist/${file}`);
  sizes[file] = { bytes: data.length, gzipBytes: gzipSync(data, { level: 9 }).length };
}
writeFileSync("dist/sizes.json", JSON.stringify(sizes, null, 2) + "\n");
for (const [file, s] of Object.entries(sizes)) {
  console.log(`${file}: ${s.bytes} bytes, ${s.gzipBytes} bytes gzipped`);
}
