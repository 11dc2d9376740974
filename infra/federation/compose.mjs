// Composes Federation v2 subgraphs into a supergraph SDL.
// stdin:  {"subgraphs":[{"name":"identity","url":"http://127.0.0.1:8001/graphql","sdl":"..."}]}
// stdout: the supergraph SDL; on composition errors they go to stderr and the exit code is 1.
import { readFileSync } from "node:fs";
import { parse } from "graphql";
import { composeServices, compositionHasErrors } from "@theguild/federation-composition";

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

let input;
try {
  input = JSON.parse(readFileSync(0, "utf8"));
} catch (error) {
  fail(`compose: stdin is not JSON: ${error.message}`);
}
if (!input || !Array.isArray(input.subgraphs) || input.subgraphs.length === 0) {
  fail('compose: expected {"subgraphs":[{"name","url","sdl"}, ...]} on stdin');
}

// Newest federation spec this composition library knows; strawberry links a newer one by
// default. Composition of subgraphs that import nothing newer is unaffected by the version,
// so such links are rewritten down to it (the directives keep their meaning).
const MAX_MINOR = 9;
const KNOWN_UP_TO_MAX = new Set([
  "@key", "@requires", "@provides", "@external", "@tag", "@extends", "@shareable",
  "@inaccessible", "@override", "@composeDirective", "@interfaceObject", "@authenticated",
  "@requiresScopes", "@policy", "@context", "@fromContext", "@cost", "@listSize",
  "FieldSet", "Scope", "Policy", "ContextFieldValue",
]);
const FEDERATION_LINK = /https:\/\/specs\.apollo\.dev\/federation\/v2\.(\d+)/g;

function downgradeFederationLink(name, sdl) {
  let newer = false;
  const rewritten = sdl.replace(FEDERATION_LINK, (match, minor) => {
    if (Number(minor) <= MAX_MINOR) return match;
    newer = true;
    return `https://specs.apollo.dev/federation/v2.${MAX_MINOR}`;
  });
  if (!newer) return sdl;
  const imports = [...sdl.matchAll(/import:\s*\[([^\]]*)\]/g)]
    .flatMap((m) => m[1].split(","))
    .map((item) => item.trim().replace(/^"|"$/g, ""))
    .filter((item) => item.length > 0);
  const unknown = imports.filter((item) => !KNOWN_UP_TO_MAX.has(item));
  if (unknown.length > 0) {
    fail(`compose: subgraph ${name} links a federation version newer than v2.${MAX_MINOR} ` +
      `and imports ${unknown.join(", ")}, which this composition does not know`);
  }
  return rewritten;
}

const services = [];
for (const subgraph of input.subgraphs) {
  if (!subgraph.name || !subgraph.url || typeof subgraph.sdl !== "string") {
    fail(`compose: each subgraph needs name, url and sdl: ${JSON.stringify(subgraph).slice(0, 200)}`);
  }
  try {
    const sdl = downgradeFederationLink(subgraph.name, subgraph.sdl);
    services.push({ name: subgraph.name, url: subgraph.url, typeDefs: parse(sdl) });
  } catch (error) {
    fail(`compose: subgraph ${subgraph.name} SDL does not parse: ${error.message}`);
  }
}

const result = composeServices(services);
if (compositionHasErrors(result)) {
  for (const error of result.errors) {
    const code = error.extensions?.code ? ` [${error.extensions.code}]` : "";
    process.stderr.write(`${error.message}${code}\n`);
  }
  process.exit(1);
}
process.stdout.write(result.supergraphSdl.endsWith("\n") ? result.supergraphSdl : `${result.supergraphSdl}\n`);
