// The reference side of the differential corpus (tests/contract/test_corpus.py): one node process
// that answers operations with @apollo/gateway over many supergraphs, without HTTP in front.
// stdin, one JSON object a line:
//   {"id": 1, "supergraph": "<file>", "query": "...", "variables": {...}}
// stdout, one JSON object a line, in the same order:
//   {"id": 1, "result": {"data": ..., "errors": [...]}}      the operation's answer
//   {"id": 1, "startup": "<message>"}                          the gateway refused the supergraph
// A gateway is started once per supergraph file (its start-up time is reported on stderr as
// "startup <file> <ms>"), the way a deployment loads one supergraph.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { ApolloGateway } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";

const servers = new Map();

async function serverFor(file) {
  let entry = servers.get(file);
  if (entry === undefined) {
    const started = performance.now();
    const gateway = new ApolloGateway({ supergraphSdl: readFileSync(file, "utf8") });
    const server = new ApolloServer({
      gateway,
      includeStacktraceInErrorResponses: false,
      introspection: true,
    });
    try {
      await server.start();
      entry = { server };
    } catch (error) {
      entry = { startup: String(error?.message ?? error) };
    }
    process.stderr.write(`startup ${file} ${(performance.now() - started).toFixed(1)}\n`);
    servers.set(file, entry);
  }
  return entry;
}

async function answer(request) {
  const entry = await serverFor(request.supergraph);
  if (entry.startup !== undefined) return { id: request.id, startup: entry.startup };
  const response = await entry.server.executeOperation({
    query: request.query,
    variables: request.variables ?? undefined,
  });
  const body = response.body.kind === "single" ? response.body.singleResult : { incremental: true };
  return { id: request.id, result: body, status: response.http.status ?? 200 };
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ id: null, startup: `bad request: ${error}` })}\n`);
    continue;
  }
  let reply;
  try {
    reply = await answer(request);
  } catch (error) {
    reply = { id: request.id, crash: String(error?.stack ?? error) };
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}
for (const { server } of servers.values()) {
  if (server) await server.stop();
}
