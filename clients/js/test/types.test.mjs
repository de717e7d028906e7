// tinyvex.d.ts checked by the TypeScript compiler (Debian's
// node-typescript), when it is installed: the API as an app
// writes it compiles under --strict, and misuses do not.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = join(dirname(fileURLToPath(import.meta.url)), "types");
const tsc = spawnSync("tsc", ["--version"], { encoding: "utf8" });
const skip = tsc.error ? "tsc not found (Debian package node-typescript)" :
    false;
const flags = ["--noEmit", "--strict", "--target", "es2020", "--module",
    "es2020", "--moduleResolution", "node", "--lib", "es2020,dom"];

function compile(file) {
	return spawnSync("tsc", [...flags, join(here, file)],
	    { encoding: "utf8" });
}

test("the public API as an app uses it type-checks", { skip }, () => {
	const r = compile("usage.ts");
	assert.equal(r.status, 0, r.stdout + r.stderr);
});

test("misuses of the API are type errors, one for each", { skip }, () => {
	const r = compile("misuse.ts");
	const want = readFileSync(join(here, "misuse.ts"), "utf8").split("\n")
	    .map((line, i) => line.endsWith("// error") ? i + 1 : 0)
	    .filter((n) => n > 0);
	const got = [...new Set([...r.stdout.matchAll(/misuse\.ts\((\d+),/g)]
	    .map((m) => Number(m[1])))];
	assert.notEqual(r.status, 0);
	assert.deepEqual(got, want, r.stdout);
});
