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

const services = [];
for (const subgraph of input.subgraphs) {
  if (!subgraph.name || !subgraph.url || typeof subgraph.sdl !== "string") {
    fail(`compose: each subgraph needs name, url and sdl: ${JSON.stringify(subgraph).slice(0, 200)}`);
  }
  try {
    services.push({ name: subgraph.name, url: subgraph.url, typeDefs: parse(subgraph.sdl) });
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
