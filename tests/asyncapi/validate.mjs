// Validates an AsyncAPI document with the official parser: node validate.mjs FILE
// Prints one line per diagnostic (severity 0 error, 1 warning, 2 info, 3 hint) and exits 1 on
// any error or warning.
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const [file] = process.argv.slice(2);
const parser = new Parser();
const diagnostics = await parser.validate(await readFile(file, "utf8"));
for (const d of diagnostics) {
  console.log(`${d.severity} ${d.code} ${d.path.join("/")}: ${d.message}`);
}
process.exit(diagnostics.some((d) => d.severity <= 1) ? 1 : 0);
